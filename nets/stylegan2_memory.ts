// Peak GPU memory of a StyleGAN2 forward + backward, planned without running it (nothing touches a
// device): a replay of what the engine allocates and frees, op by op, from the config and the batch.
// long because the replay mirrors every op's allocations in one file, checked against one counter.
//
// The scenario is the one ILO/SGILO run every step (and `replay generator`): inside a scope, W+ and
// the noise maps are uploaded and require grad, image = synthesis(W+, noise), then
// grad(image, [W+, ...noise], {upstream: R}); optionally every parameter requires grad too (a
// training step). The parameters live throughout (kept).
//
// The replay mirrors, allocation for allocation, the engine code it models:
//   - the tape (engine/tape.ts): an op is recorded only when an input requires grad; recorded ops
//     retain their saved tensors until the tape is cleared; grad() walks the nodes backwards,
//     accumulates with add(), disposes gradients of inputs that need none, and frees each node's
//     output gradient once used;
//   - each op's allocations and frees, in order (engine/ops/*.ts): e.g. modulated_conv's forward
//     allocates coef [N,Co], y, and the phase kernels [Co,Ci,4,3,3] when upsampling (in the backward
//     instead with the subgroup kernels), and its backward h [N,Co], gs, u and gx (u freed at once),
//     gk and gw; binary ops allocate both gradients at
//     the broadcast shape and reduce the broadcast one with sum_to;
//   - nets/stylegan2.ts: every intermediate of the forward stays alive until the scope closes
//     (the net does not dispose them), so the backward runs on top of the whole forward.
// The pool (engine/buffer_pool.ts) counts exact requested bytes in `bytesInUse`, the quantity
// planned here; it also rounds each buffer up to its bucket and keeps freed buffers for reuse, so
// the GPU memory a fresh process holds afterwards is `poolBytes` (bucket sizes, with reuse).
//
// The plan is checked against the engine's own counter on the Fashion model (test/stylegan2_memory
// .test.ts: `measurePeakBytes`, which wraps the pool's acquire to record the peak of bytesInUse).
// Any change to an op's allocations shows up there as a mismatch.
//
// Dimensions: N batch, S style dim, L blocks, C[r] channels at resolution r, k kernel side.

import { bucketSize } from '../engine/buffer_pool.ts';
import { engine } from '../engine/engine.ts';
import { HostRandom } from '../engine/reference/host.ts';
import { grad, clearTape } from '../engine/tape.ts';
import { scope, tensor, type Tensor } from '../engine/tensor.ts';
import { sizeOf, type Shape } from '../engine/shape.ts';
import { planModulatedConv } from '../engine/ops/modulated_conv_plan.ts';
import { StyleGAN2, configF, noiseSide, numBlocks, numLatents, numNoises, parameterShapes, type StyleGAN2Config } from './stylegan2.ts';

interface SimTensor {
  shape: number[];
  bytes: number;
  refs: number;
  userDisposed: boolean;
  freed: boolean;
  requiresGrad: boolean;
  node: SimNode | null;
  kept: boolean;
}

interface SimNode {
  inputs: SimTensor[];
  output: SimTensor;
  saved: SimTensor[];
  backward: (gy: SimTensor, needs: boolean[]) => (SimTensor | null)[];
}

/** The pool and the tape of engine/tensor.ts, engine/buffer_pool.ts and engine/tape.ts, sizes only. */
class Replay {
  inUse = 0;
  peak = 0;
  largest = 0;
  /** A fresh pool: buffers created (bucket bytes), and freed ones by bucket for reuse. */
  poolBytes = 0;
  private readonly free = new Map<number, number>();
  private readonly tape: SimNode[] = [];
  private noGradDepth = 0;
  private readonly scope = new Set<SimTensor>();

  alloc(shape: Shape): SimTensor {
    const bytes = sizeOf(shape) * 4;
    const b = bucketSize(bytes);
    const pooled = this.free.get(b) ?? 0;
    if (pooled > 0) this.free.set(b, pooled - 1);
    else this.poolBytes += b;
    this.inUse += bytes;
    this.peak = Math.max(this.peak, this.inUse);
    this.largest = Math.max(this.largest, bytes);
    const t: SimTensor = { shape: [...shape], bytes, refs: 1, userDisposed: false, freed: false, requiresGrad: false, node: null, kept: false };
    this.scope.add(t);
    return t;
  }

  private release(t: SimTensor): void {
    if (--t.refs === 0 && !t.freed) {
      t.freed = true;
      this.inUse -= t.bytes;
      const b = bucketSize(t.bytes);
      this.free.set(b, (this.free.get(b) ?? 0) + 1);
    }
  }

  dispose(t: SimTensor): void {
    if (t.userDisposed) return;
    t.userDisposed = true;
    this.release(t);
  }

  record(inputs: SimTensor[], output: SimTensor, saved: SimTensor[], backward: SimNode['backward']): void {
    if (this.noGradDepth > 0 || !inputs.some((t) => t.requiresGrad)) return;
    for (const s of saved) s.refs++;
    output.requiresGrad = true;
    output.node = { inputs, output, saved, backward };
    this.tape.push(output.node);
  }

  /** engine/tape.ts grad(), with an upstream tensor. */
  grad(root: SimTensor, wrt: SimTensor[], upstream: SimTensor, add: (a: SimTensor, b: SimTensor) => SimTensor): SimTensor[] {
    const wanted = new Set(wrt);
    const grads = new Map<SimTensor, SimTensor>([[root, upstream]]);
    const owned = (g: SimTensor) => g !== upstream;
    this.noGradDepth++;
    for (let i = this.tape.length - 1; i >= 0; i--) {
      const node = this.tape[i];
      const gy = grads.get(node.output);
      if (!gy) continue;
      const gin = node.backward(gy, node.inputs.map((t) => t.requiresGrad));
      node.inputs.forEach((input, j) => {
        const g = gin[j];
        if (!g) return;
        if (!input.requiresGrad) return this.dispose(g);
        const prev = grads.get(input);
        if (prev) {
          grads.set(input, add(prev, g));
          if (owned(prev)) this.dispose(prev);
          this.dispose(g);
        } else grads.set(input, g);
      });
      if (!wanted.has(node.output)) {
        grads.delete(node.output);
        if (owned(gy)) this.dispose(gy);
      }
    }
    this.noGradDepth--;
    const result = wrt.map((t) => grads.get(t) ?? this.alloc(t.shape));
    const returned = new Set(result);
    for (const g of grads.values()) if (!returned.has(g) && owned(g)) this.dispose(g);
    for (const node of this.tape.splice(0)) for (const s of node.saved) this.release(s);
    return result;
  }

  /** Closes the pass's scope: everything not kept is disposed. */
  closeScope(): void {
    for (const t of this.scope) if (!t.kept) this.dispose(t);
    this.scope.clear();
  }
}

const broadcast = (a: Shape, b: Shape): number[] => {
  const r = Math.max(a.length, b.length);
  return Array.from({ length: r }, (_, i) => Math.max(a[a.length - r + i] ?? 1, b[b.length - r + i] ?? 1));
};
const same = (a: Shape, b: Shape) => a.length === b.length && a.every((d, i) => d === b[i]);

/** The engine's ops as allocation patterns (see the file comment for the files they mirror). */
class SimOps {
  constructor(
    readonly m: Replay,
    readonly subgroupTiles = false,
  ) {}

  /** reduce.ts sumTo / reduceSumInto: one output, backward one broadcast-back. */
  sumTo(x: SimTensor, shape: Shape): SimTensor {
    const y = this.m.alloc(shape);
    this.m.record([x], y, [], () => [this.m.alloc(x.shape)]);
    return y;
  }
  private reduceTo(g: SimTensor, shape: Shape): SimTensor {
    if (same(g.shape, shape)) return g;
    const r = this.sumTo(g, shape);
    this.m.dispose(g);
    return r;
  }
  /**
   * elementwise.ts binary: out. Backward of add (constant derivatives): a copy of gy, or its sum_to,
   * per input that needs a gradient; of mul: ga and gb at the broadcast shape, each summed to its
   * input or dropped.
   */
  binary(a: SimTensor, b: SimTensor, op: 'add' | 'mul' = 'add'): SimTensor {
    const shape = broadcast(a.shape, b.shape);
    const out = this.m.alloc(shape);
    this.m.record([a, b], out, [a, b], (gy, needs) => {
      if (op === 'add') {
        const grad = (s: Shape) => (same(gy.shape, s) ? this.m.alloc(s) : this.sumTo(gy, s));
        return [needs[0] ? grad(a.shape) : null, needs[1] ? grad(b.shape) : null];
      }
      const ga = this.m.alloc(shape);
      const gb = this.m.alloc(shape);
      const ra = needs[0] ? this.reduceTo(ga, a.shape) : (this.m.dispose(ga), null);
      const rb = needs[1] ? this.reduceTo(gb, b.shape) : (this.m.dispose(gb), null);
      return [ra, rb];
    });
    return out;
  }
  unary(x: SimTensor): SimTensor {
    const y = this.m.alloc(x.shape);
    this.m.record([x], y, [x, y], () => [this.m.alloc(x.shape)]);
    return y;
  }
  /** matmul.ts, 2-D operands: out; backward both operand gradients. */
  matmul(a: SimTensor, b: SimTensor, outShape: Shape): SimTensor {
    const out = this.m.alloc(outShape);
    this.m.record([a, b], out, [a, b], (_gy, needs) => [needs[0] ? this.m.alloc(a.shape) : null, needs[1] ? this.m.alloc(b.shape) : null]);
    return out;
  }
  /** layout.ts reshape / slice (copy or gather; backward copy or pad into the input's shape). */
  copy(x: SimTensor, shape: Shape): SimTensor {
    const y = this.m.alloc(shape);
    this.m.record([x], y, [], () => [this.m.alloc(x.shape)]);
    return y;
  }
  broadcastTo(x: SimTensor, shape: Shape): SimTensor {
    const y = this.m.alloc(shape);
    this.m.record([x], y, [], (gy) => [this.sumTo(gy, x.shape)]);
    return y;
  }
  /** engine/ops/modulated_conv.ts. */
  modConv(x: SimTensor, w: SimTensor, s: SimTensor, demodulate: boolean, upsample: boolean): SimTensor {
    const pl = planModulatedConv(x.shape, w.shape, s.shape, { demodulate, upsample });
    const coef = this.m.alloc([pl.N, pl.Co]);
    const y = this.m.alloc([pl.N, pl.Co, pl.Ho, pl.Wo]);
    // Phase kernels: built by the forward unless the subgroup kernel (>= 8 output channels) builds them as it goes.
    const phasesInForward = pl.up === 2 && !(this.subgroupTiles && pl.Co >= 8);
    const keff = phasesInForward ? this.m.alloc(pl.kshape) : w;
    this.m.record([x, w, s], y, [x, w, s, coef, y, ...(keff !== w ? [keff] : [])], () => {
      const h = this.m.alloc([pl.N, pl.Co]);
      let gx: SimTensor | null = null;
      let gs: SimTensor | null = null;
      let gw: SimTensor | null = null;
      if (x.requiresGrad || s.requiresGrad) {
        gs = this.m.alloc([pl.N, pl.Ci]);
        gx = this.m.alloc(x.shape);
        const phases = pl.up === 2 && !phasesInForward ? this.m.alloc(pl.kshape) : null; // built for the input gradient
        const part = this.m.alloc([pl.N, pl.Ci, pl.H, Math.ceil(pl.W / 8)]); // pieces of the styles gradient
        this.m.dispose(part);
        if (phases) this.m.dispose(phases);
      }
      if (w.requiresGrad) {
        const gk = this.m.alloc(pl.kshape);
        gw = this.m.alloc(w.shape);
        this.m.dispose(gk);
      }
      this.m.dispose(h);
      if (gx && !x.requiresGrad) (this.m.dispose(gx), (gx = null));
      if (gs && !s.requiresGrad) (this.m.dispose(gs), (gs = null));
      return [gx, gw, gs];
    });
    this.m.dispose(coef);
    if (keff !== w) this.m.dispose(keff);
    return y;
  }
  /** bias_act.ts with a bias: y; backward gx, per-row partial sums, gbias. */
  biasAct(x: SimTensor, bias: SimTensor): SimTensor {
    const y = this.m.alloc(x.shape);
    this.m.record([x, bias], y, [x, bias], () => {
      const inner = x.shape.slice(2).reduce((p, d) => p * d, 1);
      const rows = sizeOf(x.shape) / inner;
      const gx = this.m.alloc(x.shape);
      const partial = this.m.alloc([rows * Math.min(inner, 64)]);
      const gb = this.m.alloc(bias.shape);
      this.m.dispose(partial);
      return [gx, gb];
    });
    return y;
  }
  /** upfirdn2d.ts (the FIR kernel is cached by the engine, not counted): out; backward one. */
  upsample2d(x: SimTensor): SimTensor {
    const [N, C, H, W] = x.shape;
    const y = this.m.alloc([N, C, 2 * H, 2 * W]);
    this.m.record([x], y, [], () => [this.m.alloc(x.shape)]);
    return y;
  }
}

/** nets/stylegan2.ts blocks(0, L-1) with given noise, as allocations. */
function replaySynthesis(o: SimOps, c: StyleGAN2Config, p: Map<string, SimTensor>, wplus: SimTensor, noise: SimTensor[]): SimTensor {
  const [N, , S] = wplus.shape;
  const P = (n: string) => p.get(n)!;
  const row = (i: number) => o.copy(o.copy(wplus, [N, 1, S]), [N, S]); // slice, then reshape
  const styles = (w: SimTensor, name: string) => {
    const mw = P(`${name}.conv.modulation.weight`);
    const y = o.unary(o.matmul(w, mw, [N, mw.shape[0]])); // matmul, affine(scale)
    return o.binary(y, o.unary(P(`${name}.conv.modulation.bias`))); // + affine(bias, lrMul)
  };
  const convWeight = (name: string) => o.copy(P(`${name}.conv.weight`), P(`${name}.conv.weight`).shape.slice(1));
  const styledConv = (x: SimTensor, w: SimTensor, name: string, nz: SimTensor, up: boolean) => {
    const weight = convWeight(name);
    let y = o.modConv(x, weight, styles(w, name), true, up);
    y = o.binary(y, o.binary(nz, P(`${name}.noise.weight`), 'mul'));
    return o.biasAct(y, P(`${name}.activate.bias`));
  };
  const toRgb = (x: SimTensor, w: SimTensor, name: string, skip: SimTensor | null) => {
    const weight = convWeight(name);
    const y = o.modConv(x, weight, styles(w, name), false, false);
    const rgb = o.binary(y, P(`${name}.bias`));
    return skip ? o.binary(rgb, o.upsample2d(skip)) : rgb;
  };
  const cst = P('input.input');
  let x = o.broadcastTo(cst, [N, ...cst.shape.slice(1)]);
  x = styledConv(x, row(0), 'conv1', noise[0], false);
  let rgb = toRgb(x, row(1), 'to_rgb1', null);
  for (let k = 1; k < numBlocks(c); k++) {
    x = styledConv(x, row(2 * k - 1), `convs.${2 * k - 2}`, noise[2 * k - 1], true);
    x = styledConv(x, row(2 * k), `convs.${2 * k - 1}`, noise[2 * k], false);
    rgb = toRgb(x, row(2 * k + 1), `to_rgbs.${k - 1}`, rgb);
  }
  return rgb;
}

export interface MemoryPlanOptions {
  /** Every parameter requires grad too (a training step); default false (ILO/SGILO: W+ and noise). */
  paramGrads?: boolean;
  /**
   * The engine uses its subgroup conv kernels (engine/device.ts subgroupTiles: CPU adapters with
   * 8-lane subgroups), whose upsampling forward builds no phase kernels (the backward builds them
   * for the input gradient). Default false, as on a GPU.
   */
  subgroupTiles?: boolean;
}

export interface MemoryPlan {
  config: StyleGAN2Config;
  batch: number;
  paramGrads: boolean;
  /** Parameters (state dict incl. noise buffers), alive before and after. */
  paramBytes: number;
  /** W+, the noise maps and the upstream gradient R. */
  inputBytes: number;
  /** Peak of the pool's bytesInUse during the pass, parameters included. */
  peakBytes: number;
  /** peakBytes - paramBytes: what the pass itself adds at its peak (what the test measures). */
  passPeakBytes: number;
  /** Largest single buffer (a WebGPU binding limit applies to it). */
  largestBufferBytes: number;
  /** GPU memory a fresh pool holds after the pass (bucket sizes, freed buffers reused), parameters included. */
  poolBytes: number;
}

/** Plans the peak bytes of synthesis(W+, noise) forward + backward at this batch (no device needed). */
export function planStyleGAN2Memory(c: StyleGAN2Config, batch: number, options: MemoryPlanOptions = {}): MemoryPlan {
  const m = new Replay();
  const o = new SimOps(m, options.subgroupTiles ?? false);
  const params = new Map<string, SimTensor>();
  for (const [name, shape] of parameterShapes(c)) {
    const t = m.alloc(shape);
    t.kept = true;
    t.requiresGrad = options.paramGrads ?? false;
    params.set(name, t);
  }
  const paramBytes = m.inUse;
  const wplus = m.alloc([batch, numLatents(c), c.styleDim]);
  const noise = Array.from({ length: numNoises(c) }, (_, i) => m.alloc([batch, 1, noiseSide(i), noiseSide(i)]));
  for (const t of [wplus, ...noise]) t.requiresGrad = true;
  const image = replaySynthesis(o, c, params, wplus, noise);
  const upstream = m.alloc(image.shape);
  const inputBytes = wplus.bytes + noise.reduce((s, t) => s + t.bytes, 0) + upstream.bytes;
  const wrt = options.paramGrads ? [wplus, ...noise, ...params.values()] : [wplus, ...noise];
  m.grad(image, wrt, upstream, (a, b) => o.binary(a, b));
  m.closeScope();
  return { config: c, batch, paramGrads: options.paramGrads ?? false, paramBytes, inputBytes, peakBytes: m.peak, passPeakBytes: m.peak - paramBytes, largestBufferBytes: m.largest, poolBytes: m.poolBytes };
}

/**
 * The scenario the plan models, run on the GPU: inside a scope, random W+ and noise maps (requiring
 * grad), image = synthesis, upstream R, grad(image, [W+, ...noise(, ...parameters)]), sync.
 */
export async function synthesisStep(gen: StyleGAN2, batch: number, options: MemoryPlanOptions = {}, seed = 7): Promise<void> {
  const c = gen.config;
  const rng = new HostRandom(seed);
  const randn = (shape: number[]) => tensor(Float32Array.from({ length: shape.reduce((a, b) => a * b, 1) }, () => rng.normal()), shape);
  if (options.paramGrads) gen.requireGrad(true);
  try {
    await scope(async () => {
      const wplus = randn([batch, numLatents(c), c.styleDim]).requireGrad();
      const noise = Array.from({ length: numNoises(c) }, (_, i) => randn([batch, 1, noiseSide(i), noiseSide(i)]).requireGrad());
      const image = gen.synthesis({ wplus, noise });
      const upstream = randn([...image.shape]);
      const wrt: Tensor[] = [wplus, ...noise, ...(options.paramGrads ? gen.params.values() : [])];
      grad(image, wrt, { upstream });
      await engine().sync();
    }).finally(clearTape);
  } finally {
    if (options.paramGrads) gen.requireGrad(false);
  }
}

/**
 * The engine's peak of bytesInUse while `fn` runs, above the level when it started. The pool keeps
 * only the current value, so this wraps the pool's `acquire` on the instance (bytesInUse only rises
 * there) and restores it afterwards. A core `peakBytesInUse` in PoolStats would make this a read.
 */
export async function measurePeakBytes(fn: () => Promise<unknown>): Promise<{ startBytes: number; peakBytes: number }> {
  const pool = engine().pool;
  const startBytes = pool.snapshot().bytesInUse;
  let peakBytes = startBytes;
  const original = pool.acquire;
  pool.acquire = function (bytes: number, what: string): GPUBuffer {
    const b = original.call(pool, bytes, what);
    peakBytes = Math.max(peakBytes, pool.snapshot().bytesInUse);
    return b;
  };
  try {
    await fn();
  } finally {
    delete (pool as { acquire?: unknown }).acquire; // back to the prototype's method
  }
  return { startBytes, peakBytes };
}

const GIB = 2 ** 30;
const MIB = 2 ** 20;
const fmt = (b: number) => (b >= GIB ? `${(b / GIB).toFixed(2)} GiB` : `${(b / MIB).toFixed(1)} MiB`);

export function formatMemoryPlans(plans: MemoryPlan[]): string {
  const head = ['model', 'batch', 'grads of', 'params', 'inputs', 'peak in use', 'pass adds', 'largest buffer', 'pool after'];
  const rows = plans.map((p) => [
    `${p.config.size}x${p.config.size}, C4=${p.config.channels[4]}`,
    String(p.batch),
    p.paramGrads ? 'W+, noise, params' : 'W+, noise',
    fmt(p.paramBytes),
    fmt(p.inputBytes),
    fmt(p.peakBytes),
    fmt(p.passPeakBytes),
    fmt(p.largestBufferBytes),
    fmt(p.poolBytes),
  ]);
  const all = [head, ...rows];
  const w = head.map((_, i) => Math.max(...all.map((r) => r[i].length)));
  const line = (r: string[]) => r.map((c, i) => c.padEnd(w[i])).join('  ').trimEnd();
  return [line(head), w.map((n) => '-'.repeat(n)).join('  '), ...rows.map(line)].join('\n');
}

/** The Fashion-MNIST model's config (models/fashion32). */
export const FASHION_CONFIG: StyleGAN2Config = { size: 32, styleDim: 128, nMlp: 4, lrMlp: 0.01, channels: { 4: 128, 8: 128, 16: 64, 32: 32 } };

/** 16 GB: config-f 1024 forward + backward at batch 1 must fit a 16 GB GPU. */
export const BUDGET_BYTES = 16e9;

/** `sgilo memory`: the planned peak of config-f 1024 (and the Fashion model) forward + backward. */
export function memoryPlanCommand(log: (line: string) => void = console.log): number {
  const plans = [
    planStyleGAN2Memory(configF(1024), 1),
    planStyleGAN2Memory(configF(1024), 1, { paramGrads: true }),
    planStyleGAN2Memory(FASHION_CONFIG, 1),
    planStyleGAN2Memory(FASHION_CONFIG, 8),
  ];
  log('StyleGAN2 synthesis forward + backward, planned peak of buffer bytes in use (float32; nothing run)\n');
  log(formatMemoryPlans(plans));
  const f = plans[1];
  const ok = plans.slice(0, 2).every((p) => p.peakBytes <= BUDGET_BYTES && p.poolBytes <= BUDGET_BYTES);
  log(`\nconfig-f 1024 at batch 1: peak ${fmt(f.peakBytes)} with parameter gradients, ${ok ? 'within' : 'OVER'} a 16 GB GPU (${(BUDGET_BYTES / GIB).toFixed(1)} GiB).`);
  log(`largest single buffer ${fmt(plans[0].largestBufferBytes)} (WebGPU's default maxStorageBufferBindingSize is 128 MiB; the engine requests the adapter's own limit).`);
  return ok ? 0 : 1;
}
