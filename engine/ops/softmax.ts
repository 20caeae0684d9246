// Softmax over the last axis, numerically stable (the row max is subtracted before exp).
// Kernels: shaders/softmax.wgsl; reference: engine/reference/softmax.ts.
//
// Dimensions: x [..., D] -> y [..., D], rows = size / D; one workgroup per row.
// Backward saves only y: gx = y * (gy - sum(gy * y)) along the row.

import { defineKernel, grid1d } from '../kernel.ts';
import { record } from '../tape.ts';
import { Tensor, empty } from '../tensor.ts';
import { shapeString } from '../shape.ts';

const K = {
  forward: defineKernel({ shader: 'softmax', entry: 'softmax_forward', bindings: { x: 'read', y: 'read_write', params: 'uniform' } }),
  backward: defineKernel({ shader: 'softmax', entry: 'softmax_backward', bindings: { y_saved: 'read', gy: 'read', gx: 'read_write', params: 'uniform' } }),
};

export function softmax(x: Tensor): Tensor {
  if (x.dtype !== 'f32') throw new TypeError(`softmax: expects an f32 tensor, got ${x.dtype}${shapeString(x.shape)}`);
  if (x.rank < 1) throw new RangeError(`softmax: needs rank >= 1 (it normalizes the last axis), got a scalar`);
  const d = x.shape[x.rank - 1];
  const params = { rows: x.size / d, d };
  const y = empty(x.shape);
  K.forward.dispatch({ x, y, params }, grid1d(params.rows) /* one workgroup per row */);
  record('softmax', [x], y, [y], (gy) => {
    const gx = empty(x.shape);
    K.backward.dispatch({ y_saved: y, gy, gx, params }, grid1d(params.rows));
    return [gx];
  });
  return y;
}
