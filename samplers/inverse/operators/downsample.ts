// Super-resolution operators: ILO's bicubic downsampler and average pooling, both separable, both
// applied as x -> A_h x A_w^T with precomputed per-axis matrices (padding folded in). That is
// exact, two matmuls, and its adjoint comes from the matmul's backward.
//
// Legend: N = images, [C, H, W] = one image, f = factor, Ho = floor(H / f), Wo = floor(W / f).
//   x [N, C, H, W] -> [N, C, Ho, Wo]   A_h [Ho, H]   A_w [Wo, W]
//
// Bicubic (ILO's BicubicDownSample, from PULSE): a cubic kernel with a = -0.5 sampled at the 4f
// offsets (i - 2f + 0.5) / f, i = 0..4f-1, normalized to sum 1; the image is reflect-padded
// (PyTorch F.pad mode 'reflect': mirrored without repeating the edge) by 4f - f in total per axis,
// floor half before (top/left) and ceil half after, then convolved with stride f: vertical pass,
// then horizontal. Output size floor((H + 3f - 4f) / f) + 1 = floor(H / f). Like PyTorch, reflect
// padding needs each pad < the axis length. Factor 2 taps: -0.01171875, -0.03515625, 0.11328125,
// 0.43359375 and mirrored; factor 1 is [-0.0625, 0.5625, 0.5625, -0.0625] with padding 1 / 2 (a
// slight sharpening, not the identity).
//
// Average pooling: mean of each f x f block (stride f, no padding; rows/columns past Ho * f,
// Wo * f are dropped, like PyTorch's avg_pool2d).

import { matmul } from '../../../engine/ops/matmul.ts';
import { reshape } from '../../../engine/ops/layout.ts';
import { tensor } from '../../../engine/tensor.ts';
import { host, type HostArray } from '../../../engine/reference/host.ts';
import { checkImageShape, checkInput, keepAll, type MeasurementOperator } from './common.ts';

export const MAX_FACTOR = 16;

/** The cubic convolution kernel (Keys), a = -0.5. */
export function cubic(x: number, a = -0.5): number {
  const t = Math.abs(x);
  if (t <= 1) return (a + 2) * t ** 3 - (a + 3) * t ** 2 + 1;
  if (t < 2) return a * t ** 3 - 5 * a * t ** 2 + 8 * a * t - 4 * a;
  return 0;
}

/** ILO's 4f normalized bicubic taps for factor f. */
export function bicubicTaps(f: number): Float64Array {
  const k = Float64Array.from({ length: 4 * f }, (_, i) => cubic((i - 2 * f + 0.5) / f));
  const s = k.reduce((p, v) => p + v, 0);
  return k.map((v) => v / s);
}

/** [before, after] reflect padding of one axis: 3f in total, the smaller half first. */
export function bicubicPadding(f: number): [number, number] {
  const total = 4 * f - f;
  return [Math.floor(total / 2), total - Math.floor(total / 2)];
}

/** PyTorch 'reflect' index of padded position r (r may be negative or >= size; |overhang| < size). */
function reflect(r: number, size: number): number {
  if (r < 0) return -r;
  if (r >= size) return 2 * (size - 1) - r;
  return r;
}

function checkFactor(name: string, f: number, H: number, W: number): void {
  if (!Number.isInteger(f) || f < 1 || f > MAX_FACTOR) throw new RangeError(`operator ${name}: the factor must be an integer from 1 to ${MAX_FACTOR}, got ${f}`);
  if (H < f || W < f) throw new RangeError(`operator ${name}: a ${H}x${W} image is smaller than the factor ${f}`);
}

/** [size / f, size] (row-major): output row o = sum_t taps[t] * x[reflect(o f + t - padBefore)]. */
export function bicubicMatrix(size: number, f: number): Float64Array {
  const taps = bicubicTaps(f);
  const [before] = bicubicPadding(f);
  const out = Math.floor(size / f);
  const A = new Float64Array(out * size);
  for (let o = 0; o < out; o++) for (let t = 0; t < 4 * f; t++) A[o * size + reflect(o * f + t - before, size)] += taps[t];
  return A;
}

/** [size / f, size]: 1/f on each block of f inputs. */
export function avgPoolMatrix(size: number, f: number): Float64Array {
  const out = Math.floor(size / f);
  const A = new Float64Array(out * size);
  for (let o = 0; o < out; o++) for (let t = 0; t < f; t++) A[o * size + o * f + t] = 1 / f;
  return A;
}

/** x -> A_h x A_w^T per channel, with A_h [Ho, H], A_w [Wo, W] uploaded once. */
function separableOperator(name: string, inShape: readonly number[], f: number, Ah: Float64Array, Aw: Float64Array, reference: (x: HostArray) => HostArray): MeasurementOperator {
  const [C, H, W] = checkImageShape(name, inShape);
  const Ho = Math.floor(H / f);
  const Wo = Math.floor(W / f);
  const ah = tensor(Ah, [Ho, H]);
  const aw = tensor(Aw, [Wo, W]);
  const held = keepAll(ah, aw);
  const op: MeasurementOperator = {
    name,
    inShape: [C, H, W],
    outShape: [C, Ho, Wo],
    apply: (x) => {
      const N = checkInput(op, x);
      const planes = reshape(x, [N * C, H, W]);
      const vertical = matmul(ah, planes); // [N C, Ho, W]: the vertical pass first, as ILO
      const both = matmul(vertical, aw, { transposeB: true }); // [N C, Ho, Wo]
      const y = reshape(both, [N, C, Ho, Wo]);
      for (const t of [planes, vertical, both]) t.dispose(); // the tape keeps what backward needs
      return y;
    },
    reference,
    dispose: held.dispose,
  };
  return op;
}

export function bicubicOperator(inShape: readonly number[], f: number, name = `sr-bicubic:${f}`): MeasurementOperator {
  const [, H, W] = checkImageShape(name, inShape);
  checkFactor(name, f, H, W);
  const [before, after] = bicubicPadding(f);
  if (after >= H || after >= W) {
    throw new RangeError(`operator ${name}: reflect padding of ${before}/${after} needs H and W > ${after} (as PyTorch's), got ${H}x${W}`);
  }
  return separableOperator(name, inShape, f, bicubicMatrix(H, f), bicubicMatrix(W, f), (x) => bicubicReference(x, f));
}

export function avgPoolOperator(inShape: readonly number[], f: number, name = `sr-avgpool:${f}`): MeasurementOperator {
  const [, H, W] = checkImageShape(name, inShape);
  checkFactor(name, f, H, W);
  return separableOperator(name, inShape, f, avgPoolMatrix(H, f), avgPoolMatrix(W, f), (x) => avgPoolReference(x, f));
}

// ---- float64 references, written as the spec reads (pad, then strided convolution) -------------

/** Reflect-pads axis `axis` (2 = H, 3 = W) of x [N, C, H, W]. */
function reflectPad(x: HostArray, axis: 2 | 3, before: number, after: number): HostArray {
  const [N, C, H, W] = x.shape;
  const shape = [N, C, H, W];
  shape[axis] += before + after;
  const y = host(shape);
  for (let p = 0; p < N * C; p++) {
    for (let r = 0; r < shape[2]; r++) {
      for (let c = 0; c < shape[3]; c++) {
        const sr = axis === 2 ? reflect(r - before, H) : r;
        const sc = axis === 3 ? reflect(c - before, W) : c;
        y.data[(p * shape[2] + r) * shape[3] + c] = x.data[(p * H + sr) * W + sc];
      }
    }
  }
  return y;
}

/** Valid correlation with a 1D kernel along `axis`, stride f. */
function strided(x: HostArray, axis: 2 | 3, k: Float64Array, f: number): HostArray {
  const [N, C, H, W] = x.shape;
  const shape = [N, C, H, W];
  shape[axis] = Math.floor((shape[axis] - k.length) / f) + 1;
  const y = host(shape);
  for (let p = 0; p < N * C; p++) {
    for (let r = 0; r < shape[2]; r++) {
      for (let c = 0; c < shape[3]; c++) {
        let acc = 0;
        for (let t = 0; t < k.length; t++) {
          const sr = axis === 2 ? r * f + t : r;
          const sc = axis === 3 ? c * f + t : c;
          acc += k[t] * x.data[(p * H + sr) * W + sc];
        }
        y.data[(p * shape[2] + r) * shape[3] + c] = acc;
      }
    }
  }
  return y;
}

export function bicubicReference(x: HostArray, f: number): HostArray {
  const taps = bicubicTaps(f);
  const [before, after] = bicubicPadding(f);
  const v = strided(reflectPad(x, 2, before, after), 2, taps, f);
  return strided(reflectPad(v, 3, before, after), 3, taps, f);
}

export function avgPoolReference(x: HostArray, f: number): HostArray {
  const box = new Float64Array(f).fill(1 / f);
  return strided(strided(x, 2, box, f), 3, box, f);
}
