// Optimizers: SGD (with momentum, dampening, Nesterov, weight decay) and Adam / AdamW, with
// PyTorch's semantics, updating parameters in place with one kernel per parameter per step.
// Kernels: shaders/optim.wgsl. Float64 references: engine/reference/optim.ts.
//
// Legend: params = the tensors being optimized (f32, any shape); grads = one gradient per
// parameter, same shape (null skips the parameter for this step, as PyTorch skips `grad is None`);
// t = per-parameter step count (Adam's bias corrections).
//
//   const opt = new Adam([w, b], { lr: 1e-3 });
//   opt.step([gw, gb]);          // explicit gradients, or
//   backward(loss); opt.step();  // each parameter's accumulated `.grad`
//   opt.zeroGrad();
//   opt.lr = schedule(k);        // read at every step and passed as a uniform
//
// State tensors (momentum buffers, moments) are created on a parameter's first step and marked
// keep(), so scope() never frees them; after that a step allocates nothing. dispose() frees them.
// Adam's stateOf(p) / loadState(p, state) read and restore them (checkpoint resume).
// Training helpers, one dispatch per parameter each: Adam.stepScaled (gradients times a factor on
// the GPU, e.g. global-norm clipping; optionally updating an exponential moving average of the new
// weights in the same pass), sumOfSquares (the squared global norm), emaUpdate (the average alone).
// rescaleRows: a projection step, each row (last axis) of a variable back to a given norm, in place.
// Update parameters outside of any pending backward pass: a saved tensor that is also a parameter
// would see the new values (PyTorch raises for this through its version counters; we do not track).

import { defineKernel, grid1d } from './kernel.ts';
import { Tensor, empty, zeros } from './tensor.ts';
import { sameShape, shapeString } from './shape.ts';

const WG = 64; // workgroup size of the optim kernels

const K = {
  sgd: defineKernel({ shader: 'optim', entry: 'sgd_step', bindings: { p: 'read_write', g: 'read', sgd: 'uniform' } }),
  sgdMomentum: defineKernel({ shader: 'optim', entry: 'sgd_momentum_step', bindings: { p: 'read_write', g: 'read', sgd: 'uniform', buf: 'read_write' } }),
  adam: defineKernel({ shader: 'optim', entry: 'adam_step', bindings: { p: 'read_write', g: 'read', adam: 'uniform', m: 'read_write', v: 'read_write' } }),
  adamScaled: defineKernel({ shader: 'optim', entry: 'adam_step_scaled', bindings: { p: 'read_write', g: 'read', adam: 'uniform', m: 'read_write', v: 'read_write', g_scale: 'read' } }),
  adamScaledEma: defineKernel({
    shader: 'optim',
    entry: 'adam_step_scaled_ema',
    bindings: { p: 'read_write', g: 'read', adam: 'uniform', m: 'read_write', v: 'read_write', g_scale: 'read', avg: 'read_write', ema: 'uniform' },
  }),
  sumSquares: defineKernel({ shader: 'optim', entry: 'sum_squares', bindings: { g: 'read', total: 'read_write', sq: 'uniform' } }),
  rescaleRows: defineKernel({ shader: 'optim', entry: 'rescale_rows', bindings: { xr: 'read_write', norms: 'read', rp: 'uniform' } }),
  ema: defineKernel({ shader: 'optim', entry: 'ema_step', bindings: { avg: 'read_write', src: 'read', ema: 'uniform' } }),
};

function checkNumber(what: string, x: number, ok: (x: number) => boolean, rule: string): number {
  if (typeof x !== 'number' || !Number.isFinite(x) || !ok(x)) throw new RangeError(`${what} must be ${rule}, got ${x}`);
  return x;
}

/** Shared parameter handling: validation, gradient lookup, the learning rate, zeroGrad, dispose. */
abstract class Optimizer {
  readonly params: readonly Tensor[];
  private lrValue = 0;

  constructor(
    protected readonly name: string,
    params: readonly Tensor[],
    lr: number,
  ) {
    if (!Array.isArray(params) || params.length === 0) throw new TypeError(`${name}: params must be a non-empty array of tensors`);
    params.forEach((p, i) => {
      if (!(p instanceof Tensor)) throw new TypeError(`${name}: params[${i}] is not a Tensor`);
      if (p.dtype !== 'f32') throw new TypeError(`${name}: params[${i}] ${p} is ${p.dtype}; only f32 tensors can be optimized`);
      if (p.disposed) throw new Error(`${name}: params[${i}] ${p} was disposed`);
      if (params.indexOf(p) !== i) throw new Error(`${name}: params[${i}] ${p} appears twice (it would be updated twice per step)`);
    });
    this.params = [...params];
    this.lr = lr;
  }

  /** The learning rate of the next step (any positive number; change it freely between steps). */
  get lr(): number {
    return this.lrValue;
  }

  set lr(value: number) {
    this.lrValue = checkNumber(`${this.name}: lr`, value, (x) => x > 0, 'a positive finite number');
  }

  /** The gradients for this step, checked against the parameters. */
  protected gradients(grads: readonly (Tensor | null | undefined)[] | undefined): (Tensor | null)[] {
    if (grads === undefined) {
      const own = this.params.map((p) => p.grad);
      if (own.every((g) => !g)) throw new Error(`${this.name}.step(): no parameter has a .grad; run backward() first or pass the gradients`);
      grads = own;
    }
    if (!Array.isArray(grads) || grads.length !== this.params.length) {
      throw new RangeError(`${this.name}.step(): got ${Array.isArray(grads) ? grads.length : typeof grads} gradients for ${this.params.length} parameters`);
    }
    return grads.map((g, i) => {
      if (g === null || g === undefined) return null;
      const p = this.params[i];
      if (!(g instanceof Tensor)) throw new TypeError(`${this.name}.step(): gradient ${i} is not a Tensor`);
      if (!sameShape(g.shape, p.shape)) throw new RangeError(`${this.name}.step(): gradient ${i} has shape ${shapeString(g.shape)} but its parameter has shape ${shapeString(p.shape)}`);
      if (g.dtype !== 'f32') throw new TypeError(`${this.name}.step(): gradient ${i} is ${g.dtype}, expected f32`);
      if (g === p) throw new Error(`${this.name}.step(): gradient ${i} is the parameter tensor itself`);
      if (p.disposed) throw new Error(`${this.name}.step(): parameter ${i} ${p} was disposed`);
      return g;
    });
  }

  /** Drops every parameter's accumulated gradient (PyTorch's zero_grad(set_to_none=True)). */
  zeroGrad(): void {
    for (const p of this.params) {
      p.grad?.dispose();
      p.grad = null;
    }
  }

  /**
   * One update of every parameter that has a gradient: `grads` in the order of the parameters
   * (null or undefined: no update of that one), or each parameter's .grad when omitted.
   */
  step(grads?: readonly (Tensor | null | undefined)[]): void {
    const gs = this.gradients(grads);
    this.params.forEach((p, i) => {
      const g = gs[i];
      if (g) this.update(p, g);
    });
  }

  /** Updates `p` in place by its gradient `g`, with the optimizer's state of `p`. */
  protected abstract update(p: Tensor, g: Tensor): void;

  /** Frees the optimizer's state tensors (the parameters stay). */
  abstract dispose(): void;
}

function grid(n: number): [number, number, number] {
  return grid1d(Math.ceil(n / WG));
}

export interface SgdOptions {
  lr: number;
  momentum?: number;
  dampening?: number;
  weightDecay?: number;
  nesterov?: boolean;
}

export class SGD extends Optimizer {
  readonly momentum: number;
  readonly dampening: number;
  readonly weightDecay: number;
  readonly nesterov: boolean;
  private readonly buffers = new Map<Tensor, Tensor>();

  constructor(params: readonly Tensor[], options: SgdOptions) {
    super('SGD', params, options?.lr);
    this.momentum = checkNumber('SGD: momentum', options.momentum ?? 0, (x) => x >= 0, '>= 0');
    this.dampening = checkNumber('SGD: dampening', options.dampening ?? 0, () => true, 'finite');
    this.weightDecay = checkNumber('SGD: weightDecay', options.weightDecay ?? 0, (x) => x >= 0, '>= 0');
    this.nesterov = options.nesterov ?? false;
    if (this.nesterov && (this.momentum <= 0 || this.dampening !== 0)) {
      throw new RangeError(`SGD: Nesterov momentum requires momentum > 0 and dampening 0 (got momentum ${this.momentum}, dampening ${this.dampening})`);
    }
  }

  /** The momentum buffer of `p` (undefined before its first step or without momentum). */
  momentumBuffer(p: Tensor): Tensor | undefined {
    return this.buffers.get(p);
  }

  protected update(p: Tensor, g: Tensor): void {
    let buf = this.buffers.get(p);
    const first = !buf;
    const sgd = {
      n: p.size,
      lr: this.lr,
      momentum: this.momentum,
      dampening: this.dampening,
      weight_decay: this.weightDecay,
      nesterov: this.nesterov ? 1 : 0,
      first: first ? 1 : 0,
    };
    if (this.momentum === 0) return K.sgd.dispatch({ p, g, sgd }, grid(p.size));
    if (!buf) this.buffers.set(p, (buf = empty(p.shape).keep())); // written, not read, on the first step
    K.sgdMomentum.dispatch({ p, g, sgd, buf }, grid(p.size));
  }

  dispose(): void {
    for (const b of this.buffers.values()) b.dispose();
    this.buffers.clear();
  }
}

export interface AdamOptions {
  lr?: number;
  betas?: readonly [number, number];
  eps?: number;
  weightDecay?: number;
  /** AdamW (Loshchilov & Hutter): decay the parameter directly instead of adding wd * p to g. */
  decoupledWeightDecay?: boolean;
}

export interface AdamState {
  step: number;
  m: Tensor;
  v: Tensor;
}

export class Adam extends Optimizer {
  readonly beta1: number;
  readonly beta2: number;
  readonly eps: number;
  readonly weightDecay: number;
  readonly decoupled: boolean;
  private readonly states = new Map<Tensor, AdamState>();

  constructor(params: readonly Tensor[], options: AdamOptions = {}, name = 'Adam') {
    super(name, params, options.lr ?? 1e-3);
    const betas = options.betas ?? [0.9, 0.999];
    if (!Array.isArray(betas) || betas.length !== 2) throw new RangeError(`${name}: betas must be a pair [beta1, beta2], got ${JSON.stringify(betas)}`);
    this.beta1 = checkNumber(`${name}: betas[0]`, betas[0], (x) => x >= 0 && x < 1, 'in [0, 1)');
    this.beta2 = checkNumber(`${name}: betas[1]`, betas[1], (x) => x >= 0 && x < 1, 'in [0, 1)');
    // eps = 0 would turn a zero gradient into 0/0 = NaN; PyTorch allows it, we do not.
    this.eps = checkNumber(`${name}: eps`, options.eps ?? 1e-8, (x) => x > 0, '> 0');
    this.weightDecay = checkNumber(`${name}: weightDecay`, options.weightDecay ?? 0, (x) => x >= 0, '>= 0');
    this.decoupled = options.decoupledWeightDecay ?? false;
  }

  /** Step count and moments of `p` (undefined before its first step). */
  stateOf(p: Tensor): Readonly<AdamState> | undefined {
    return this.states.get(p);
  }

  /**
   * Restores `p`'s step count and moments, e.g. from a checkpoint: the next step continues exactly
   * as the run that saved them would have. The optimizer takes ownership of `state.m` and `state.v`
   * (marked keep(); freed by dispose() or a later loadState); a state it held before is freed.
   * A parameter that never stepped has no state: do not call this with step 0.
   */
  loadState(p: Tensor, state: AdamState): void {
    const where = `${this.name}.loadState()`;
    if (!this.params.includes(p)) throw new Error(`${where}: ${p} is not one of this optimizer's parameters`);
    if (!(Number.isInteger(state?.step) && state.step >= 1)) throw new RangeError(`${where}: step must be an integer >= 1 (the steps already taken), got ${state?.step}`);
    for (const [what, t] of [['m', state.m], ['v', state.v]] as const) {
      if (!(t instanceof Tensor)) throw new TypeError(`${where}: ${what} is not a Tensor`);
      if (t.disposed) throw new Error(`${where}: ${what} ${t} was disposed`);
      if (t.dtype !== 'f32') throw new TypeError(`${where}: ${what} is ${t.dtype}, expected f32`);
      if (!sameShape(t.shape, p.shape)) throw new RangeError(`${where}: ${what} has shape ${shapeString(t.shape)} but its parameter has shape ${shapeString(p.shape)}`);
      if (t === p) throw new Error(`${where}: ${what} is the parameter tensor itself`);
    }
    if (state.m === state.v) throw new Error(`${where}: m and v must be different tensors (both are updated in place)`);
    const old = this.states.get(p);
    if (old) {
      if (old.m !== state.m && old.m !== state.v) old.m.dispose();
      if (old.v !== state.m && old.v !== state.v) old.v.dispose();
    }
    this.states.set(p, { step: state.step, m: state.m.keep(), v: state.v.keep() });
  }

  private gradScale: Tensor | null = null;
  private average: { of: Map<Tensor, Tensor>; decay: number } | null = null;

  /**
   * step(grads) with every gradient multiplied by scale[0], a [1] tensor (e.g. a clipping factor
   * computed on the GPU). With `average`, each parameter's average (same order as the parameters)
   * then becomes decay avg + (1 - decay) p, as emaUpdate does, in the update's own pass (and by
   * emaUpdate for a parameter without a gradient this step).
   */
  stepScaled(grads: readonly (Tensor | null | undefined)[], scale: Tensor, average?: { tensors: readonly Tensor[]; decay: number }): void {
    const where = `${this.name}.stepScaled()`;
    if (!(scale instanceof Tensor) || scale.size !== 1 || scale.dtype !== 'f32') throw new TypeError(`${where}: scale must be an f32 tensor of one element, got ${scale}`);
    if (average) {
      checkNumber(`${where}: average decay`, average.decay, (x) => x >= 0 && x <= 1, 'in [0, 1]');
      if (average.tensors.length !== this.params.length) throw new RangeError(`${where}: ${average.tensors.length} averages for ${this.params.length} parameters`);
      average.tensors.forEach((a, i) => {
        const p = this.params[i];
        if (!sameShape(a.shape, p.shape) || a.dtype !== 'f32' || a === p) throw new RangeError(`${where}: average ${i} ${a} must be an f32 tensor of its parameter's shape ${shapeString(p.shape)}, not the parameter itself`);
      });
    }
    const gs = this.gradients(grads);
    this.gradScale = scale;
    this.average = average ? { of: new Map(this.params.map((p, i) => [p, average.tensors[i]])), decay: average.decay } : null;
    try {
      this.step(gs);
    } finally {
      this.gradScale = null;
      this.average = null;
    }
    if (average) {
      gs.forEach((g, i) => {
        if (!g) emaUpdate(average.tensors[i], this.params[i], average.decay);
      });
    }
  }

  protected update(p: Tensor, g: Tensor): void {
    let s = this.states.get(p);
    if (!s) this.states.set(p, (s = { step: 0, m: zeros(p.shape).keep(), v: zeros(p.shape).keep() }));
    const t = ++s.step;
    const adam = {
      n: p.size,
      lr: this.lr,
      beta1: this.beta1,
      beta2: this.beta2,
      eps: this.eps,
      weight_decay: this.weightDecay,
      decoupled: this.decoupled ? 1 : 0,
      step_size: this.lr / (1 - this.beta1 ** t),
      bc2_sqrt: Math.sqrt(1 - this.beta2 ** t),
    };
    const avg = this.average?.of.get(p);
    if (this.gradScale && avg) {
      const decay = this.average!.decay;
      K.adamScaledEma.dispatch({ p, g, adam, m: s.m, v: s.v, g_scale: this.gradScale, avg, ema: { n: p.size, decay, rest: 1 - decay } }, grid(p.size));
    } else if (this.gradScale) K.adamScaled.dispatch({ p, g, adam, m: s.m, v: s.v, g_scale: this.gradScale }, grid(p.size));
    else K.adam.dispatch({ p, g, adam, m: s.m, v: s.v }, grid(p.size));
  }

  dispose(): void {
    for (const s of this.states.values()) {
      s.m.dispose();
      s.v.dispose();
    }
    this.states.clear();
  }
}

/** Adam with decoupled weight decay (PyTorch's AdamW; default weightDecay 0.01). */
export class AdamW extends Adam {
  constructor(params: readonly Tensor[], options: Omit<AdamOptions, 'decoupledWeightDecay'> = {}) {
    super(params, { weightDecay: 0.01, ...options, decoupledWeightDecay: true }, 'AdamW');
  }
}

/** sum over the tensors of sum x^2, as a [1] tensor: one single-workgroup dispatch per tensor. */
export function sumOfSquares(tensors: readonly Tensor[]): Tensor {
  if (tensors.length === 0) throw new RangeError('sumOfSquares: no tensors');
  const total = empty([1]);
  tensors.forEach((g, i) => {
    if (g.dtype !== 'f32') throw new TypeError(`sumOfSquares: tensor ${i} ${g} is ${g.dtype}, expected f32`);
    K.sumSquares.dispatch({ g, total, sq: { n: g.size, first: i === 0 ? 1 : 0 } }, [1, 1, 1]);
  });
  return total;
}

/** avg = decay avg + (1 - decay) src, in place (an exponential moving average of weights). */
export function emaUpdate(avg: Tensor, src: Tensor, decay: number): void {
  checkNumber('emaUpdate: decay', decay, (x) => x >= 0 && x <= 1, 'in [0, 1]');
  if (!sameShape(avg.shape, src.shape) || avg.dtype !== 'f32' || src.dtype !== 'f32') throw new RangeError(`emaUpdate: avg ${avg} and src ${src} must be f32 tensors of one shape`);
  if (avg === src) throw new Error('emaUpdate: avg and src are the same tensor');
  K.ema.dispatch({ avg, src, ema: { n: avg.size, decay, rest: 1 - decay } }, grid(avg.size));
}

/**
 * x[r, :] *= norms[r] / ||x[r, :]|| in place over the rows of the last axis (x [..., L], norms of
 * x's shape with L = 1, or [rows]): ILO's spherical projection of the latent rows and noise maps
 * in one dispatch per variable. Not recorded on the tape (an update, like an optimizer step); a
 * zero row gives NaN, as the unfused expression does.
 */
export function rescaleRows(x: Tensor, norms: Tensor): void {
  const len = x.shape[x.rank - 1];
  if (x.dtype !== 'f32' || norms.dtype !== 'f32' || x.rank < 1 || norms.size * len !== x.size) {
    throw new RangeError(`rescaleRows: x ${x} needs f32 norms with one element per row of its last axis, got ${norms}`);
  }
  if (x === norms) throw new Error('rescaleRows: x and norms are the same tensor');
  const rows = norms.size;
  K.rescaleRows.dispatch({ xr: x, norms, rp: { rows, len } }, grid(rows));
}
