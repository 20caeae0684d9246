// Float64 references of the optimizer updates in engine/optim.ts (shaders/optim.wgsl), written to
// follow PyTorch's torch.optim.SGD and torch.optim.Adam / AdamW (single-tensor, non-fused path)
// line by line. Each function updates `p` and the state in place, like the GPU kernels.
//
// Legend: p = parameter, g = its gradient, buf = momentum buffer, m / v = Adam's first / second
// moment estimates, t = 1-based step count of this parameter; all arrays have p's length.

export interface SgdHyper {
  lr: number;
  momentum: number;
  dampening: number;
  weightDecay: number;
  nesterov: boolean;
}

export interface SgdStateRef {
  /** null until the first step with momentum > 0. */
  buf: Float64Array | null;
}

/**
 *   d = g + weightDecay * p
 *   if momentum > 0: buf = first step ? d : momentum * buf + (1 - dampening) * d
 *                    d = nesterov ? d + momentum * buf : buf
 *   p = p - lr * d
 */
export function sgdReference(p: Float64Array, g: Float64Array, state: SgdStateRef, h: SgdHyper): void {
  const first = state.buf === null;
  if (h.momentum !== 0 && first) state.buf = new Float64Array(p.length);
  for (let i = 0; i < p.length; i++) {
    let d = g[i] + h.weightDecay * p[i];
    if (h.momentum !== 0) {
      const buf = state.buf!;
      buf[i] = first ? d : h.momentum * buf[i] + (1 - h.dampening) * d;
      d = h.nesterov ? d + h.momentum * buf[i] : buf[i];
    }
    p[i] -= h.lr * d;
  }
}

export interface AdamHyper {
  lr: number;
  beta1: number;
  beta2: number;
  eps: number;
  weightDecay: number;
  /** AdamW: decay p by (1 - lr * weightDecay) instead of adding weightDecay * p to g. */
  decoupled: boolean;
}

export interface AdamStateRef {
  step: number;
  m: Float64Array;
  v: Float64Array;
}

export function adamStateRef(n: number): AdamStateRef {
  return { step: 0, m: new Float64Array(n), v: new Float64Array(n) };
}

/**
 *   t += 1
 *   AdamW: p = p * (1 - lr * wd)        Adam: g = g + wd * p
 *   m = beta1 m + (1 - beta1) g;  v = beta2 v + (1 - beta2) g^2
 *   p = p - (lr / (1 - beta1^t)) * m / (sqrt(v) / sqrt(1 - beta2^t) + eps)
 * (PyTorch's grouping: eps is added to sqrt(vhat), not to sqrt(v).)
 */
export function adamReference(p: Float64Array, g: Float64Array, state: AdamStateRef, h: AdamHyper): void {
  const t = ++state.step;
  const stepSize = h.lr / (1 - h.beta1 ** t);
  const bc2Sqrt = Math.sqrt(1 - h.beta2 ** t);
  for (let i = 0; i < p.length; i++) {
    let gi = g[i];
    if (h.decoupled) p[i] *= 1 - h.lr * h.weightDecay;
    else gi += h.weightDecay * p[i];
    state.m[i] = h.beta1 * state.m[i] + (1 - h.beta1) * gi;
    state.v[i] = h.beta2 * state.v[i] + (1 - h.beta2) * gi * gi;
    p[i] -= (stepSize * state.m[i]) / (Math.sqrt(state.v[i]) / bc2Sqrt + h.eps);
  }
}

/** sum over the arrays of sum x^2 (the squared global norm of gradients). */
export function sumOfSquaresReference(arrays: readonly ArrayLike<number>[]): number {
  let s = 0;
  for (const a of arrays) for (let i = 0; i < a.length; i++) s += a[i] * a[i];
  return s;
}

/** avg = decay avg + (1 - decay) src, in place. */
export function emaReference(avg: Float64Array, src: ArrayLike<number>, decay: number): void {
  for (let i = 0; i < avg.length; i++) avg[i] = decay * avg[i] + (1 - decay) * src[i];
}

/** x[r, :] *= norms[r] / ||x[r, :]|| in place, rows of `len` elements (engine/optim.ts rescaleRows). */
export function rescaleRowsReference(x: Float64Array, norms: ArrayLike<number>, len: number): void {
  for (let r = 0; r < norms.length; r++) {
    let s = 0;
    for (let j = 0; j < len; j++) s += x[r * len + j] ** 2;
    const f = norms[r] / Math.sqrt(s);
    for (let j = 0; j < len; j++) x[r * len + j] *= f;
  }
}
