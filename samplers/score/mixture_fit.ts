// Fitting the mixture of samplers/score/mixture.ts by expectation-maximization, in the top P
// principal coordinates of a fitted Gaussian.
//
//   coordinates  u = V_P (x - mu) for every row, on the GPU in row chunks, kept as [N, P]; EM runs on
//                an evenly spaced subset of `rows` of them (its cost is K P^2 per row and iteration)
//   start        k-means (Lloyd, float64 on the host) from K seeded distinct rows
//   E step       log p(u | k) = log pi_k - 1/2 |L_k^-1/2 Q_k (u - m_k)|^2 - 1/2 sum log L_k - P/2 log 2 pi,
//                the projections of all K components in one GPU matmul per row chunk
//   M step       pi_k, m_k on the host; S_k = sum_n R_nk (u_n - m_k)(u_n - m_k)^T / N_k + reg I as a
//                GPU product of the centered, sqrt(R)-weighted rows (centering first keeps float32's
//                digits), then S_k = Q_k^T diag(L_k) Q_k by symmetricEigen in float64
//
// reg (REG_FRACTION of the mean variance of the P coordinates) keeps every component's
// covariance invertible; a component left with fewer than P rows' weight restarts at a random row
// with the Gaussian's own variances.

import { scope, tensor, type Tensor } from '../../engine/tensor.ts';
import { noGrad } from '../../engine/tape.ts';
import { matmul } from '../../engine/ops/matmul.ts';
import { mul, square, sub } from '../../engine/ops/elementwise.ts';
import { reshape, slice as sliceImpl } from '../../engine/ops/layout.ts';
import { sum } from '../../engine/ops/reduce.ts';
import { philoxUniformRef } from '../../engine/reference/philox.ts';
import { symmetricEigen } from './eigen.ts';
import type { GaussianParams } from './gaussian.ts';
import { packComponents, type MixtureParams } from './mixture.ts';

const REG_FRACTION = 1e-4;

export interface MixtureFitOptions {
  components: number;
  /** Leading principal coordinates (default min(128, rank)). */
  subspace?: number;
  /** EM iterations (default 25). */
  iterations?: number;
  /** k-means iterations before EM (default 10). */
  kmeansIterations?: number;
  seed?: number;
  /** Rows EM runs on: every (N / rows)-th row, all when N is smaller (default 16384; EM costs K P^2 per row and iteration). */
  rows?: number;
  /** Rows per GPU product (default 4096). */
  chunk?: number;
  onProgress?: (message: string) => void;
}

export interface MixtureFit {
  mixture: MixtureParams;
  subspace: number;
  /** Mean log-likelihood per row of the P coordinates after each EM iteration. */
  logLikelihood: number[];
}

export const DEFAULT_SUBSPACE = 128;
export const DEFAULT_EM_ROWS = 16384;

/** Fits the mixture to `data` (N rows of n normalized values) in the top P coordinates of `base`. */
export async function fitMixture(data: Float32Array, count: number, base: GaussianParams, o: MixtureFitOptions): Promise<MixtureFit> {
  const n = base.mean.length;
  const r = base.values.length;
  let N = count;
  const K = o.components;
  const P = o.subspace ?? Math.min(DEFAULT_SUBSPACE, r);
  if (data.length !== N * n) throw new RangeError(`fitMixture: ${data.length} values are not ${N} rows of ${n}`);
  if (!(Number.isInteger(K) && K >= 1 && K * P <= N)) throw new RangeError(`fitMixture: need 1 <= K and K * P <= N rows, got K = ${K}, P = ${P}, N = ${N}`);
  if (!(Number.isInteger(P) && P >= 1 && P <= r)) throw new RangeError(`fitMixture: subspace must be in 1..${r} (the Gaussian's rank), got ${P}`);
  const chunk = o.chunk ?? 4096;
  const all = await projectRows(data, N, base, P, chunk);
  // An evenly spaced subset keeps the data's order-independent spread without a random draw.
  const rows = Math.min(N, o.rows ?? DEFAULT_EM_ROWS);
  const u = rows === N ? all : Float32Array.from({ length: rows * P }, (_, i) => all[Math.floor((Math.floor(i / P) * N) / rows) * P + (i % P)]);
  N = rows;
  const reg = (REG_FRACTION * base.values.subarray(0, P).reduce((s, v) => s + v, 0)) / P;
  const uGpu = tensor(u, [N, P]).keep();
  try {
    const resp = kMeans(u, N, P, K, o.kmeansIterations ?? 10, o.seed ?? 0);
    o.onProgress?.(`k-means start: ${K} components in ${P} coordinates of ${N} rows`);
    const logLikelihood: number[] = [];
    let mixture = await mStep(uGpu, u, resp, N, P, K, reg, base, o.seed ?? 0);
    const iterations = o.iterations ?? 25;
    for (let it = 0; it < iterations; it++) {
      const ll = await eStep(uGpu, N, P, mixture, chunk, resp);
      logLikelihood.push(ll);
      o.onProgress?.(`EM ${it + 1}/${iterations}: mean log-likelihood ${ll.toFixed(3)}`);
      mixture = await mStep(uGpu, u, resp, N, P, K, reg, base, o.seed ?? 0);
    }
    return { mixture, subspace: P, logLikelihood };
  } finally {
    uGpu.dispose();
  }
}

/** u = (x - mu) V_P^T for every row, float32 [N, P]. */
async function projectRows(data: Float32Array, N: number, base: GaussianParams, P: number, chunk: number): Promise<Float32Array> {
  const n = base.mean.length;
  const out = new Float32Array(N * P);
  const vp = tensor(Float32Array.from(base.vectors.subarray(0, P * n)), [P, n]).keep();
  try {
    for (let start = 0; start < N; start += chunk) {
      const count = Math.min(chunk, N - start);
      const rows = new Float32Array(count * n);
      for (let j = 0; j < count; j++) for (let i = 0; i < n; i++) rows[j * n + i] = data[(start + j) * n + i] - base.mean[i];
      out.set(await scope(() => noGrad(() => matmul(tensor(rows, [count, n]), vp, { transposeB: true }).readF32())), start * P);
    }
  } finally {
    vp.dispose();
  }
  return out;
}

/** Hard k-means responsibilities [N, K] (one-hot) from K seeded distinct rows. */
function kMeans(u: Float32Array, N: number, P: number, K: number, iterations: number, seed: number): Float64Array {
  const centers = new Float64Array(K * P);
  const picks = new Set<number>();
  const draws = philoxUniformRef(8 * K + 64, [seed, 0], [0, 13]);
  for (let d = 0; picks.size < K && d < draws.length; d++) picks.add(Math.min(N - 1, Math.floor(draws[d] * N)));
  for (let j = 0; picks.size < K; j++) picks.add(j);
  [...picks].forEach((row, k) => centers.set(u.subarray(row * P, row * P + P), k * P));
  const label = new Int32Array(N);
  for (let it = 0; it <= iterations; it++) {
    for (let j = 0; j < N; j++) {
      let best = Infinity;
      for (let k = 0; k < K; k++) {
        let d = 0;
        for (let i = 0; i < P; i++) d += (u[j * P + i] - centers[k * P + i]) ** 2;
        if (d < best) (best = d), (label[j] = k);
      }
    }
    if (it === iterations) break;
    const count = new Float64Array(K);
    const acc = new Float64Array(K * P);
    for (let j = 0; j < N; j++) {
      count[label[j]]++;
      for (let i = 0; i < P; i++) acc[label[j] * P + i] += u[j * P + i];
    }
    for (let k = 0; k < K; k++) if (count[k] > 0) for (let i = 0; i < P; i++) centers[k * P + i] = acc[k * P + i] / count[k];
  }
  const resp = new Float64Array(N * K);
  for (let j = 0; j < N; j++) resp[j * K + label[j]] = 1;
  return resp;
}

/** Weights, means and eigendecomposed covariances from responsibilities [N, K]. */
async function mStep(uGpu: Tensor, u: Float32Array, resp: Float64Array, N: number, P: number, K: number, reg: number, base: GaussianParams, seed: number): Promise<MixtureParams> {
  const weights = new Float64Array(K);
  const means = new Float64Array(K * P);
  const vectors = new Float64Array(K * P * P);
  const values = new Float64Array(K * P);
  for (let k = 0; k < K; k++) {
    let nk = 0;
    for (let j = 0; j < N; j++) nk += resp[j * K + k];
    const m = means.subarray(k * P, k * P + P);
    if (nk < P) {
      // Restart: a random row, the Gaussian's variances along the coordinate axes.
      const row = Math.min(N - 1, Math.floor(philoxUniformRef(1, [seed, k + 1], [0, 17])[0] * N));
      m.set(u.subarray(row * P, row * P + P));
      weights[k] = Math.max(nk, 1) / N;
      for (let i = 0; i < P; i++) (vectors[(k * P + i) * P + i] = 1), (values[k * P + i] = base.values[i] + reg);
      continue;
    }
    for (let j = 0; j < N; j++) {
      const w = resp[j * K + k];
      if (w) for (let i = 0; i < P; i++) m[i] += w * u[j * P + i];
    }
    for (let i = 0; i < P; i++) m[i] /= nk;
    weights[k] = nk / N;
    const sqrtR = Float32Array.from({ length: N }, (_, j) => Math.sqrt(resp[j * K + k]));
    const cov = await scope(() =>
      noGrad(() => {
        const x = mul(sub(uGpu, tensor(Float32Array.from(m), [1, P])), tensor(sqrtR, [N, 1]));
        return matmul(x, x, { transposeA: true }).readF32();
      }),
    );
    const c = new Float64Array(P * P);
    for (let i = 0; i < P; i++) for (let j = 0; j < P; j++) c[i * P + j] = (cov[i * P + j] + cov[j * P + i]) / (2 * nk) + (i === j ? reg : 0);
    const eig = symmetricEigen(c, P);
    vectors.set(eig.vectors, k * P * P);
    values.set(eig.values.map((v) => Math.max(v, reg)), k * P);
  }
  const total = weights.reduce((s, w) => s + w, 0);
  return { weights: weights.map((w) => w / total), means, vectors, values };
}

/** Responsibilities into `resp` [N, K]; returns the mean log-likelihood per row. */
async function eStep(uGpu: Tensor, N: number, P: number, m: MixtureParams, chunk: number, resp: Float64Array): Promise<number> {
  const K = m.weights.length;
  const { q, mq } = packComponents(m, K, P);
  // 1 / L [1, K P] and each component's constant log pi_k - 1/2 sum log L_k - P/2 log 2 pi.
  const inv = Float32Array.from(m.values, (v) => 1 / v);
  const constant = new Float64Array(K);
  for (let k = 0; k < K; k++) {
    let logDet = 0;
    for (let j = 0; j < P; j++) logDet += Math.log(m.values[k * P + j]);
    constant[k] = Math.log(m.weights[k]) - 0.5 * logDet - 0.5 * P * Math.log(2 * Math.PI);
  }
  let total = 0;
  const qT = tensor(q, [P, K * P]).keep();
  const mqT = tensor(mq, [1, K * P]).keep();
  const invT = tensor(inv, [1, K * P]).keep();
  try {
    for (let start = 0; start < N; start += chunk) {
      const count = Math.min(chunk, N - start);
      const quad = await scope(() =>
        noGrad(() => {
          const rows = reshape(sliceRows(uGpu, start, count, P), [count, P]);
          const p = sub(matmul(rows, qT), mqT);
          return sum(reshape(mul(square(p), invT), [count, K, P]), 2).readF32();
        }),
      );
      for (let j = 0; j < count; j++) {
        let top = -Infinity;
        const row = resp.subarray((start + j) * K, (start + j) * K + K);
        for (let k = 0; k < K; k++) top = Math.max(top, (row[k] = constant[k] - 0.5 * quad[j * K + k]));
        let z = 0;
        for (let k = 0; k < K; k++) z += row[k] = Math.exp(row[k] - top);
        for (let k = 0; k < K; k++) row[k] /= z;
        total += top + Math.log(z);
      }
    }
  } finally {
    qT.dispose();
    mqT.dispose();
    invT.dispose();
  }
  return total / N;
}

function sliceRows(x: Tensor, start: number, count: number, P: number): Tensor {
  return start === 0 && count === x.shape[0] ? x : sliceImpl(x, [start, 0], [count, P]);
}
