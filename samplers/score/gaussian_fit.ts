// Fitting the closed-form Gaussian prior (samplers/score/gaussian.ts) to normalized features.
//
//   mean      float64 on the host
//   full fit  (rank = n, the default up to FULL_RANK_MAX dimensions): C = Xc^T Xc / N, the products
//             on the GPU in row chunks (float32 products of centered data, summed in float64 on the
//             host), then symmetricEigen (float64, samplers/score/eigen.ts)
//   low rank  (above FULL_RANK_MAX, or when `rank` is given): subspace iteration for the top r
//             directions without forming C (C Y = Xc^T (Xc Y) / N on the GPU, r + OVERSAMPLE
//             columns, orthonormalized in float64 each round), then Rayleigh-Ritz on the k x k
//             projection; the remaining n - r directions get the mean remaining variance
//             (trace(C) - sum of the r eigenvalues) / (n - r), in float64 from the data
//
// The full fit of n = 2048 spends most of its time in the host eigendecomposition (about a
// minute on one core); the low-rank fit scales with N n k per round.

import { scope, tensor, type Tensor } from '../../engine/tensor.ts';
import { noGrad } from '../../engine/tape.ts';
import { matmul } from '../../engine/ops/matmul.ts';
import { philoxNormalF64 } from '../../engine/reference/philox.ts';
import { orthonormalizeColumns, symmetricEigen } from './eigen.ts';
import type { GaussianParams } from './gaussian.ts';

/** Largest dimension fitted with a full covariance by default (its eigenvector file is n^2 floats: 16 MiB). */
export const FULL_RANK_MAX = 2048;
/** Rank of the default low-rank fit above FULL_RANK_MAX. */
export const DEFAULT_LOW_RANK = 256;
const OVERSAMPLE = 16;

export interface FitOptions {
  /** Stored directions (default: n up to FULL_RANK_MAX, else DEFAULT_LOW_RANK). */
  rank?: number;
  /** Subspace iterations of a low-rank fit (default 8). */
  iterations?: number;
  /** Rows per GPU product (default 1024). */
  chunk?: number;
  /** Seed of the subspace iteration's random start. */
  seed?: number;
  onProgress?: (message: string) => void;
}

/** Fits N(mean, C) to `data` (N rows of n normalized values). */
export async function fitGaussian(data: Float32Array, N: number, o: FitOptions = {}): Promise<GaussianParams> {
  if (!(Number.isInteger(N) && N >= 2) || data.length % N !== 0) throw new RangeError(`fitGaussian: need N >= 2 rows, got ${data.length} values for N = ${N}`);
  const n = data.length / N;
  const rank = o.rank ?? (n <= FULL_RANK_MAX ? n : DEFAULT_LOW_RANK);
  if (!(Number.isInteger(rank) && rank >= 1 && rank <= n)) throw new RangeError(`fitGaussian: rank must be an integer in 1..${n}, got ${rank}`);
  const chunk = o.chunk ?? 1024;
  const mean = new Float64Array(n);
  for (let j = 0; j < N; j++) for (let i = 0; i < n; i++) mean[i] += data[j * n + i];
  for (let i = 0; i < n; i++) mean[i] /= N;
  let trace = 0;
  for (let j = 0; j < N; j++) for (let i = 0; i < n; i++) trace += (data[j * n + i] - mean[i]) ** 2;
  trace /= N;
  for (const v of mean) if (!Number.isFinite(v)) throw new RangeError('fitGaussian: the data hold NaN or Inf');
  // Centered rows start..start+count as a float32 tensor [count, n].
  const centered = (start: number, count: number) => {
    const out = new Float32Array(count * n);
    for (let j = 0; j < count; j++) for (let i = 0; i < n; i++) out[j * n + i] = data[(start + j) * n + i] - mean[i];
    return tensor(out, [count, n]);
  };
  // C Y for Y [n, k] (row-major, float64): sum over chunks of Xc^T (Xc Y), divided by N.
  const applyCov = async (y: Float64Array | null, k: number): Promise<Float64Array> => {
    const acc = new Float64Array(n * k);
    for (let start = 0; start < N; start += chunk) {
      const count = Math.min(chunk, N - start);
      const part = await scope(() =>
        noGrad(() => {
          const xc = centered(start, count);
          const right: Tensor = y ? matmul(xc, tensor(Float32Array.from(y), [n, k])) : xc; // [count, k]
          return matmul(xc, right, { transposeA: true }).readF32(); // [n, k]
        }),
      );
      for (let i = 0; i < acc.length; i++) acc[i] += part[i];
    }
    for (let i = 0; i < acc.length; i++) acc[i] /= N;
    return acc;
  };

  if (rank === n) {
    o.onProgress?.(`covariance ${n} x ${n} from ${N} rows`);
    const cov = await applyCov(null, n);
    for (let i = 0; i < n; i++) for (let j = 0; j < i; j++) cov[i * n + j] = cov[j * n + i] = (cov[i * n + j] + cov[j * n + i]) / 2;
    o.onProgress?.(`eigendecomposition of ${n} x ${n} (float64)`);
    const { values, vectors } = symmetricEigen(cov, n);
    return { mean, vectors, values: values.map((v) => Math.max(v, 0)), residualVariance: 0 };
  }

  const k = Math.min(n, rank + OVERSAMPLE);
  const y = Float64Array.from(philoxNormalF64(n * k, [o.seed ?? 0, 0], [0, 7]));
  orthonormalizeColumns(y, n, k);
  const iterations = o.iterations ?? 8;
  for (let it = 0; it < iterations; it++) {
    o.onProgress?.(`subspace iteration ${it + 1}/${iterations} (rank ${rank} of ${n}, ${k} columns)`);
    const z = await applyCov(y, k);
    y.set(z);
    orthonormalizeColumns(y, n, k);
  }
  // Rayleigh-Ritz: B = Y^T C Y [k, k]; its eigenvectors rotate Y's columns onto C's top directions.
  const cy = await applyCov(y, k);
  const b = new Float64Array(k * k);
  for (let p = 0; p < k; p++) {
    for (let q = 0; q <= p; q++) {
      let s = 0;
      for (let i = 0; i < n; i++) s += y[i * k + p] * cy[i * k + q];
      b[p * k + q] = s;
    }
  }
  for (let p = 0; p < k; p++) for (let q = 0; q < p; q++) b[q * k + p] = b[p * k + q];
  const eig = symmetricEigen(b, k);
  const vectors = new Float64Array(rank * n);
  for (let r = 0; r < rank; r++) {
    const u = eig.vectors.subarray(r * k, r * k + k);
    for (let i = 0; i < n; i++) {
      let s = 0;
      for (let p = 0; p < k; p++) s += y[i * k + p] * u[p];
      vectors[r * n + i] = s;
    }
  }
  const values = eig.values.slice(0, rank).map((v) => Math.max(v, 0));
  const kept = values.reduce((s, v) => s + v, 0);
  const residualVariance = Math.max((trace - kept) / (n - rank), trace * 1e-12, 1e-30);
  return { mean, vectors, values, residualVariance };
}

/** Fraction of the total variance in the top j directions, for j = 1..r (what a rank would keep). */
export function explainedVariance(p: GaussianParams): number[] {
  const n = p.mean.length;
  const total = p.values.reduce((s, v) => s + v, 0) + (n - p.values.length) * p.residualVariance;
  let acc = 0;
  return Array.from(p.values, (v) => (acc += v) / total);
}

/** Draws `count` samples x = mean + V^T (sqrt(lam) * z_r) + sqrt(sigma2) (I - V^T V) z, float64 on the host (tests, baselines). */
export function sampleGaussianHost(p: GaussianParams, count: number, seed: number): Float64Array {
  const n = p.mean.length;
  const r = p.values.length;
  const z = philoxNormalF64(count * n, [seed, 0], [0, 11]);
  const out = new Float64Array(count * n);
  const sr = Math.sqrt(p.residualVariance);
  for (let j = 0; j < count; j++) {
    const zj = z.subarray(j * n, j * n + n);
    const xj = out.subarray(j * n, j * n + n);
    for (let i = 0; i < n; i++) xj[i] = p.mean[i] + sr * zj[i];
    for (let k = 0; k < r; k++) {
      const row = p.vectors.subarray(k * n, k * n + n);
      // Along row k: replace the residual's component (sr * <row, z>) by sqrt(lam_k) * <row, z>.
      let w = 0;
      for (let i = 0; i < n; i++) w += row[i] * zj[i];
      const coef = (Math.sqrt(p.values[k]) - sr) * w;
      for (let i = 0; i < n; i++) xj[i] += coef * row[i];
    }
  }
  return out;
}
