// Partial circulant measurement: y[b, j] = conv(x[b] * s, f)[idx[j]] with a circular convolution
// of length n, and its adjoint as the backward pass. Kernels: shaders/partial_circulant.wgsl;
// float64 reference: engine/reference/partial_circulant.ts. Used by ILO's compressed sensing for
// large images (samplers/inverse/operators/compressed_sensing.ts).
//
// Legend: B = rows, n = signal length, m = kept measurements.
//   x [B, n] (differentiable)   filt [n] f32   signs [n] f32 (+-1)   idx [m] u32   ->   y [B, m]
// filt, signs and idx are constants of the measurement (no gradient flows into them).
//
// Cost: O(n) per output, O(n m) per row in both passes (see the shader for why not an FFT).

import { defineKernel, grid1d } from '../kernel.ts';
import { record } from '../tape.ts';
import { Tensor, empty } from '../tensor.ts';
import { shapeString } from '../shape.ts';

const WG = 64; // workgroup size of both kernels

const K = {
  forward: defineKernel({
    shader: 'partial_circulant',
    entry: 'circulant_forward',
    bindings: { x: 'read', filt: 'read', signs: 'read', idx: 'read', y: 'read_write', params: 'uniform' },
  }),
  backward: defineKernel({
    shader: 'partial_circulant',
    entry: 'circulant_backward',
    bindings: { gy: 'read', filt: 'read', signs: 'read', idx: 'read', gx: 'read_write', params: 'uniform' },
  }),
};

function expectShape(what: string, t: Tensor, shape: number[], dtype: Tensor['dtype']): void {
  if (t.dtype !== dtype) throw new TypeError(`partialCirculant: ${what} must be ${dtype}, got ${t.dtype}${shapeString(t.shape)}`);
  if (t.shape.length !== shape.length || t.shape.some((d, i) => d !== shape[i])) {
    throw new RangeError(`partialCirculant: ${what} has shape ${shapeString(t.shape)}, expected ${shapeString(shape)}`);
  }
}

/**
 * y[b, j] = sum_k f[(idx[j] - k) mod n] s[k] x[b, k]. The indices must lie in [0, n) (the caller
 * draws them; they are not re-checked on the GPU).
 */
export function partialCirculant(x: Tensor, filt: Tensor, signs: Tensor, idx: Tensor): Tensor {
  if (x.rank !== 2) throw new RangeError(`partialCirculant: x must be [rows, n], got ${shapeString(x.shape)}`);
  const [rows, n] = x.shape;
  expectShape('x', x, [rows, n], 'f32');
  expectShape('filt', filt, [n], 'f32');
  expectShape('signs', signs, [n], 'f32');
  if (idx.rank !== 1) throw new RangeError(`partialCirculant: idx must be [m], got ${shapeString(idx.shape)}`);
  const m = idx.shape[0];
  expectShape('idx', idx, [m], 'u32');
  if (rows * Math.max(n, m) > 0xffffffff) throw new RangeError(`partialCirculant: ${rows} x ${Math.max(n, m)} elements exceed the 2^32 the kernels can index`);

  const params = { rows, n, m };
  const y = empty([rows, m]);
  K.forward.dispatch({ x, filt, signs, idx, y, params }, grid1d(Math.ceil((rows * m) / WG)));
  record('partial_circulant', [x], y, [filt, signs, idx], (gy) => {
    const gx = empty([rows, n]);
    K.backward.dispatch({ gy, filt, signs, idx, gx, params }, grid1d(Math.ceil((rows * n) / WG)));
    return [gx];
  });
  return y;
}
