// Compressed sensing: a dense Gaussian matrix for small images, ILO's partial circulant for large.
//
// Legend: N = images, [C, H, W] = one image, n = C * H * W, m = max(1, round(ratio * n)).
//   x [N, C, H, W] -> [N, m]
//
// cs-gaussian:  y = A vec(x), A [m, n] with i.i.d. entries N(0, 1/m), drawn on the GPU by the
//               engine's Philox normals (seed, stream STREAM.gaussianMatrix). One matmul; the
//               adjoint is its backward. A is stored, so it is refused when m * n floats exceed
//               the device's storage binding limit (use cs-circulant there).
// cs-circulant: y = conv(vec(x) * s, f)[idx] (engine/ops/partial_circulant.ts): random signs s,
//               a Gaussian filter f ~ N(0, 1) of length n, the circular convolution
//               real(IFFT(FFT(x * s) FFT(f))), and m distinct indices drawn uniformly (ascending).
//               All from the seed: signs = low bit of Philox words (stream STREAM.signs), f =
//               Philox normals (STREAM.filter), indices = drawDistinct (STREAM.indices).
//               Stores only 2n + m numbers. The convolution is summed directly (O(n m) per image,
//               exact for every n, including n = 3 * 32 * 32 = 3072 which is not a power of two)
//               rather than by FFT; the kernel pair is checked against a float64 DFT of the
//               definition. Note the scale: with f ~ N(0, 1), E||y||^2 = m ||x||^2 (the Gaussian
//               matrix gives ||x||^2), as in the spec.

import { engine } from '../../../engine/engine.ts';
import { matmul } from '../../../engine/ops/matmul.ts';
import { reshape } from '../../../engine/ops/layout.ts';
import { partialCirculant } from '../../../engine/ops/partial_circulant.ts';
import { randomNormal, toWord64, type Value64 } from '../../../engine/random.ts';
import { tensor, type Tensor } from '../../../engine/tensor.ts';
import { host, type HostArray } from '../../../engine/reference/host.ts';
import { philoxBitsRef, philoxNormalF64 } from '../../../engine/reference/philox.ts';
import { partialCirculantForward, type CirculantParams } from '../../../engine/reference/partial_circulant.ts';
import { STREAM, checkImageShape, checkInput, drawDistinct, keepAll, type MeasurementOperator } from './common.ts';

/** m = max(1, round(ratio * n)). */
export function measurementCount(ratio: number, n: number): number {
  return Math.max(1, Math.round(ratio * n));
}

function checkRatio(name: string, ratio: number): void {
  if (!(ratio > 0 && ratio <= 1)) throw new RangeError(`operator ${name}: the measurement ratio m/n must be in (0, 1], got ${ratio}`);
}

/** x [N, C, H, W] -> [N, n] (recorded), for operators that work on flattened images. */
function flatten(x: Tensor, n: number): Tensor {
  return reshape(x, [x.shape[0], n]);
}

export interface GaussianOperator extends MeasurementOperator {
  /** [m, n], the measurement matrix. */
  matrix: Tensor;
}

export function gaussianCsOperator(inShape: readonly number[], ratio: number, seed: Value64, name = `cs-gaussian:${ratio}`): GaussianOperator {
  const [C, H, W] = checkImageShape(name, inShape);
  checkRatio(name, ratio);
  const n = C * H * W;
  const m = measurementCount(ratio, n);
  const limit = engine().gpu.limits.maxStorageBufferBindingSize;
  if (m * n * 4 > limit) {
    throw new RangeError(`operator ${name}: the ${m}x${n} Gaussian matrix needs ${((m * n * 4) / 2 ** 20).toFixed(0)} MiB, more than this device binds (${(limit / 2 ** 20).toFixed(0)} MiB); use cs-circulant:${ratio} for images this large`);
  }
  const std = 1 / Math.sqrt(m);
  const A = randomNormal([m, n], { seed, offset: STREAM.gaussianMatrix, std });
  const held = keepAll(A);
  let hostA: Float64Array | null = null; // the reference's copy, made on first use
  const op: GaussianOperator = {
    name,
    inShape: [C, H, W],
    outShape: [m],
    matrix: A,
    apply: (x) => {
      checkInput(op, x);
      const flat = flatten(x, n);
      const y = matmul(flat, A, { transposeB: true }); // [N, m]
      flat.dispose();
      return y;
    },
    reference: (x: HostArray) => {
      hostA ??= philoxNormalF64(m * n, toWord64(seed, 'seed'), toWord64(STREAM.gaussianMatrix, 'offset')).map((z) => z * std);
      const N = x.shape[0];
      const y = host([N, m]);
      for (let b = 0; b < N; b++) {
        for (let j = 0; j < m; j++) {
          let acc = 0;
          for (let k = 0; k < n; k++) acc += hostA[j * n + k] * x.data[b * n + k];
          y.data[b * m + j] = acc;
        }
      }
      return y;
    },
    dispose: held.dispose,
  };
  return op;
}

export interface CirculantOperator extends MeasurementOperator {
  /** Host copies of the constants: f [n], s [n], idx [m] (ascending). */
  params: { filt: Float32Array; signs: Float32Array; idx: Uint32Array };
}

/** The seed's signs, filter and indices (the same numbers on every machine). */
export function circulantDraws(n: number, m: number, seed: Value64): CirculantOperator['params'] {
  const key = toWord64(seed, 'seed');
  const bits = philoxBitsRef(n, key, toWord64(STREAM.signs, 'offset'));
  const signs = Float32Array.from(bits, (w) => (w & 1 ? 1 : -1));
  const filt = Float32Array.from(philoxNormalF64(n, key, toWord64(STREAM.filter, 'offset')));
  const idx = drawDistinct(m, n, seed, STREAM.indices);
  return { filt, signs, idx };
}

export function circulantCsOperator(inShape: readonly number[], ratio: number, seed: Value64, name = `cs-circulant:${ratio}`): CirculantOperator {
  const [C, H, W] = checkImageShape(name, inShape);
  checkRatio(name, ratio);
  const n = C * H * W;
  const m = measurementCount(ratio, n);
  const params = circulantDraws(n, m, seed);
  const filt = tensor(params.filt, [n]);
  const signs = tensor(params.signs, [n]);
  const idx = tensor(params.idx, [m], 'u32');
  const held = keepAll(filt, signs, idx);
  const refParams: CirculantParams = params;
  const op: CirculantOperator = {
    name,
    inShape: [C, H, W],
    outShape: [m],
    params,
    apply: (x) => {
      checkInput(op, x);
      const flat = flatten(x, n);
      const y = partialCirculant(flat, filt, signs, idx);
      flat.dispose();
      return y;
    },
    reference: (x: HostArray) => partialCirculantForward(host([x.shape[0], n], x.data), refParams),
    dispose: held.dispose,
  };
  return op;
}
