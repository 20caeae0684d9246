// Float64 references of the random ReLU generator's ops (engine/ops/relu_generator.ts) and of the
// whole generator and compressed-sensing loss (nets/relu_generator.ts):
//
//   G(z) = act_d(W_d ... act_1(W_1 z)),   L(z) = 0.5 ||A G(z) - y||^2,
//   grad L(z) = W_1^T D_1 ... W_d^T D_d A^T (A G(z) - y),   D_l = diag(act_l'(pre-activation)).
//
// Legend: I = instances, C = chains per instance, n_in / n_out = layer widths, m = measurements.
// Layouts as on the GPU: x [I, C, n_in], w [I, n_out, n_in], pred [I, C, m], target [I, m].
// relu'(0) = 0, as on the GPU (the mask is taken from the output: y > 0).

import { host, type HostArray } from './host.ts';

export type RefActivation = 'relu' | 'linear';

/** act(x W^T) per instance. */
export function denseForward(x: HostArray, w: HostArray, act: RefActivation): HostArray {
  const [I, C, nIn] = x.shape;
  const nOut = w.shape[1];
  const y = host([I, C, nOut]);
  for (let i = 0; i < I; i++) {
    for (let c = 0; c < C; c++) {
      const xr = (i * C + c) * nIn;
      for (let o = 0; o < nOut; o++) {
        const wr = (i * nOut + o) * nIn;
        let s = 0;
        for (let j = 0; j < nIn; j++) s += x.data[xr + j] * w.data[wr + j];
        y.data[(i * C + c) * nOut + o] = act === 'relu' ? Math.max(s, 0) : s;
      }
    }
  }
  return y;
}

/** [dx, dw] of <gy, dense(x, w)>. */
export function denseVjp(x: HostArray, w: HostArray, act: RefActivation, gy: HostArray): [Float64Array, Float64Array] {
  const [I, C, nIn] = x.shape;
  const nOut = w.shape[1];
  const y = denseForward(x, w, act);
  const gx = new Float64Array(x.data.length);
  const gw = new Float64Array(w.data.length);
  for (let i = 0; i < I; i++) {
    for (let c = 0; c < C; c++) {
      const xr = (i * C + c) * nIn;
      for (let o = 0; o < nOut; o++) {
        const e = (i * C + c) * nOut + o;
        const g = act === 'relu' && !(y.data[e] > 0) ? 0 : gy.data[e];
        if (g === 0) continue;
        const wr = (i * nOut + o) * nIn;
        for (let j = 0; j < nIn; j++) {
          gx[xr + j] += g * w.data[wr + j];
          gw[wr + j] += g * x.data[xr + j];
        }
      }
    }
  }
  return [gx, gw];
}

/** 0.5 ||pred[i, c] - target[i]||^2 -> [I, C]. */
export function halfSqErrForward(pred: HostArray, target: HostArray): HostArray {
  const [I, C, m] = pred.shape;
  const loss = host([I, C]);
  for (let row = 0; row < I * C; row++) {
    const t0 = Math.floor(row / C) * m;
    let s = 0;
    for (let r = 0; r < m; r++) s += (pred.data[row * m + r] - target.data[t0 + r]) ** 2;
    loss.data[row] = 0.5 * s;
  }
  return loss;
}

/** d <gloss, halfSqErr(pred, target)> / d pred (target is a constant). */
export function halfSqErrVjp(pred: HostArray, target: HostArray, gloss: HostArray): Float64Array {
  const [, C, m] = pred.shape;
  const g = new Float64Array(pred.data.length);
  for (let e = 0; e < g.length; e++) {
    const row = Math.floor(e / m);
    g[e] = gloss.data[row] * (pred.data[e] - target.data[Math.floor(row / C) * m + (e % m)]);
  }
  return g;
}

/** A generator and its measurement on the host: weights [I, n_l, n_{l-1}], A [I, m, n_d], y [I, m]. */
export interface HostProblem {
  weights: HostArray[];
  act: RefActivation;
  A: HostArray;
  y: HostArray;
}

/** G(z) for z [I, C, k]: every layer's output (the last is G(z), [I, C, n_d]). */
export function generatorForward(weights: HostArray[], act: RefActivation, z: HostArray): HostArray[] {
  const outs: HostArray[] = [];
  let h = z;
  for (const w of weights) {
    h = denseForward(h, w, act);
    outs.push(h);
  }
  return outs;
}

/** L(z) [I, C] and grad L(z) [I, C, k] by explicit backpropagation in float64. */
export function lossAndGrad(p: HostProblem, z: HostArray): { loss: HostArray; grad: Float64Array } {
  const hs = generatorForward(p.weights, p.act, z);
  const pred = denseForward(hs[hs.length - 1], p.A, 'linear');
  const loss = halfSqErrForward(pred, p.y);
  const ones = host(loss.shape, new Float64Array(loss.data.length).fill(1));
  let g = host(pred.shape, halfSqErrVjp(pred, p.y, ones));
  g = host(hs[hs.length - 1].shape, denseVjp(hs[hs.length - 1], p.A, 'linear', g)[0]);
  for (let l = p.weights.length - 1; l >= 0; l--) {
    const input = l === 0 ? z : hs[l - 1];
    g = host(input.shape, denseVjp(input, p.weights[l], p.act, g)[0]);
  }
  return { loss, grad: g.data };
}

/** L(z) only. */
export function lossOnly(p: HostProblem, z: HostArray): HostArray {
  const hs = generatorForward(p.weights, p.act, z);
  return halfSqErrForward(denseForward(hs[hs.length - 1], p.A, 'linear'), p.y);
}
