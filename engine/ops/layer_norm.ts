// Layer normalization over the last axis with a per-feature scale and shift (PyTorch semantics:
// biased variance, eps inside the square root). Kernels: shaders/layer_norm.wgsl; reference:
// engine/reference/layer_norm.ts.
//
// Dimensions: x [..., D], weight [D], bias [D] -> y [..., D]; rows = size / D.
// The forward also writes mean and rstd [rows], saved for the backward so it does not recompute
// the row statistics; the backward computes gx (one workgroup per row) and, only when asked,
// the weight and bias gradients (one workgroup per feature, summing over the rows).

import { defineKernel, grid1d } from '../kernel.ts';
import { record } from '../tape.ts';
import { Tensor, empty } from '../tensor.ts';
import { shapeString } from '../shape.ts';

const K = {
  forward: defineKernel({
    shader: 'layer_norm',
    entry: 'layer_norm_forward',
    bindings: { x: 'read', weight: 'read', bias: 'read', y: 'read_write', mean: 'read_write', rstd: 'read_write', params: 'uniform' },
  }),
  backward: defineKernel({
    shader: 'layer_norm',
    entry: 'layer_norm_backward',
    bindings: { x: 'read', weight: 'read', mean_saved: 'read', rstd_saved: 'read', gy: 'read', gx: 'read_write', params: 'uniform' },
  }),
  backwardParams: defineKernel({
    shader: 'layer_norm',
    entry: 'layer_norm_backward_params',
    bindings: { x: 'read', mean_saved: 'read', rstd_saved: 'read', gy: 'read', gw: 'read_write', gb: 'read_write', params: 'uniform' },
  }),
};

export function layerNorm(x: Tensor, weight: Tensor, bias: Tensor, eps = 1e-5): Tensor {
  for (const [t, n] of [[x, 'x'], [weight, 'weight'], [bias, 'bias']] as const) {
    if (t.dtype !== 'f32') throw new TypeError(`layer_norm: ${n} must be f32, got ${t.dtype}${shapeString(t.shape)}`);
  }
  if (x.rank < 1) throw new RangeError('layer_norm: x needs rank >= 1 (it normalizes the last axis), got a scalar');
  const d = x.shape[x.rank - 1];
  for (const [t, n] of [[weight, 'weight'], [bias, 'bias']] as const) {
    if (t.rank !== 1 || t.shape[0] !== d) {
      throw new RangeError(`layer_norm: ${n} has shape ${shapeString(t.shape)}, expected [${d}] (the last dimension of x ${shapeString(x.shape)})`);
    }
  }
  if (!(typeof eps === 'number' && eps >= 0 && Number.isFinite(eps))) throw new RangeError(`layer_norm: eps must be a finite number >= 0, got ${eps}`);
  const rows = x.size / d;
  const params = { rows, d, eps };
  const y = empty(x.shape);
  const mean = empty([rows]);
  const rstd = empty([rows]);
  K.forward.dispatch({ x, weight, bias, y, mean, rstd, params }, grid1d(rows) /* one workgroup per row */);

  record('layer_norm', [x, weight, bias], y, [x, weight, mean, rstd], (gy) => {
    let gx: Tensor | null = null;
    if (x.requiresGrad) {
      gx = empty(x.shape);
      K.backward.dispatch({ x, weight, mean_saved: mean, rstd_saved: rstd, gy, gx, params }, grid1d(rows));
    }
    let gw: Tensor | null = null;
    let gb: Tensor | null = null;
    if (weight.requiresGrad || bias.requiresGrad) {
      // One kernel gives both; the tape disposes the one whose input needs no gradient.
      gw = empty([d]);
      gb = empty([d]);
      K.backwardParams.dispatch({ x, mean_saved: mean, rstd_saved: rstd, gy, gw, gb, params }, grid1d(d) /* one workgroup per feature */);
    }
    return [gx, gw, gb];
  });
  // The tape retains them when backward needs them.
  mean.dispose();
  rstd.dispose();
  return y;
}
