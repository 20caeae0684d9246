// A known Gaussian in R^4 for score-model statistics: data, the analytic score in the
// trainer's normalized coordinates, and the two checks. Shared by test/score_gaussian.test.ts and
// test/golden/train_gaussian_score.ts (which trains the committed 'vector' model on the same data).
//
// Problem: v ~ N(MU, SIGMA) in R^4 (non-isotropic, correlated), N = 4096 draws v_i = MU + chol(SIGMA) u_i
// with u from Philox (seed DATA_SEED). The trainer sees y = (v - min) / span, span = max - min (global
// scalar min/max of all 4 x 4096 values, as samplers/score/data.ts computes them), so y ~ N(mu_n, Sigma_n),
//   mu_n = (MU - min) / span,  Sigma_n = SIGMA / span^2.
// Representation: 4 channels on a 1 x 1 token grid ([N, 4, 1, 1]). One token: attention is a single
// value projection (no T x T work; the lavapipe cost of the attention and LayerNorm kernels grows
// with the number of token rows), and the linear map y -> eps that a Gaussian's score is has a direct
// path Linear(4, D) -> residual -> Linear(D, 4). On a 2 x 2 grid of 1 channel the coordinates could
// only mix through attention weights, with 4x the token rows per sample.
//
// Analytic score under the VP-SDE (vpsde.ts: m_t = meanCoeff(t), s_t = std(t), m_t^2 + s_t^2 = 1):
//   y_t ~ N(m_t mu_n, Sigma_t),  Sigma_t = m_t^2 Sigma_n + s_t^2 I,
//   score(y, t) = grad_y log p_t(y) = -Sigma_t^{-1} (y - m_t mu_n).
//   The network outputs eps with score = -eps / s_t (docs/design.md, "Score model"), so the eps it should
//   output is eps*(y, t) = -s_t score(y, t) = s_t Sigma_t^{-1} (y - m_t mu_n) (= E[z | y_t = y] for the
//   DSM noise z). In raw units: score_v(v, t) = score(y, t) / span with y = (v - min) / span.
//   Computed as Sigma_t^{-1} = Q diag(1 / (m_t^2 lam + s_t^2)) Q^T with Sigma_n = Q diag(lam) Q^T.
//
// Check 1, the learned score's error E_score (scale-free):
//   test points: at each of K = 16 times t_k = (k + 1/2) / K (the midpoint rule for the trainer's
//   t ~ U(0, 1)), P = 256 exact draws y ~ p_{t_k} (Philox seed POINT_SEED);
//   E_score = sqrt( sum |eps_theta(y, t) - eps*(y, t)|^2 / sum |eps*(y, t)|^2 )  over all K P points
//           = sqrt( E[s_t^2 |score_theta - score|^2] / E[s_t^2 |score|^2] ):
//   the relative L2 error of the score under the weighting lambda(t) = s_t^2 of the trainer's DSM loss
//   (the numerator is exactly the loss's excess over its irreducible part). It is the same in raw or
//   normalized units. Pooling in plain score units would be dominated by the smallest t, where
//   |score| ~ 1 / sqrt(lam) and the DSM signal (eps* against unit noise) is weakest; the price is
//   that E_score is lenient there (a Gaussian with 30% larger variances and a mean shifted by 0.1
//   scores 0.03), so the sample check below is the one that sees small-t errors. Pass: E_score < 0.05.
// Check 2, reverse-SDE samples: CHAINS chains of pcSample (Euler-Maruyama predictor, PC_STEPS steps
//   from t = 1 to 1e-3, no corrector, seed SAMPLE_SEED), mapped back to raw units v = min + span y;
//   E_mean = max_i |mean(v)_i - MU_i|, E_cov = ||cov(v) - SIGMA||_F / ||SIGMA||_F (unbiased cov).
//   Pass: E_mean < 0.05 and E_cov < 0.1. PC_STEPS = 300: Euler-Maruyama shrinks the variances by a
//   few percent per 1/PC_STEPS (exact eps, 10^5 float64 chains: E_cov 0.080 at 100 steps, 0.044 at
//   200, 0.027 at 300); CHAINS = 2048 keeps the Monte Carlo part of E_cov near 0.04.

import { Tensor, scope, tensor } from '../engine/tensor.ts';
import { noGrad } from '../engine/tape.ts';
import { add, affine, div, exp, mul, sqrt, square, sub } from '../engine/ops/elementwise.ts';
import { matmul } from '../engine/ops/matmul.ts';
import { reshape } from '../engine/ops/layout.ts';
import { philoxNormalF64 } from '../engine/reference/philox.ts';
import { VPSDE } from '../samplers/score/vpsde.ts';
import type { ScoreViTConfig } from '../nets/score_vit.ts';
import { pcSample, type EpsModel } from '../samplers/score/sample.ts';
import { computeNormalization, normalizeInPlace, type Normalization } from '../samplers/score/data.ts';

export const MU = [0.5, -0.3, 0.2, 0.1];
// Eigenvalues 0.053, 0.073, 0.112, 0.221: correlated and anisotropic, but not so thin that the
// sampler's variance loss (largest, relatively, in the thinnest direction) needs more than PC_STEPS.
export const SIGMA = [
  [0.16, 0.06, 0.03, 0.0],
  [0.06, 0.12, 0.03, 0.02],
  [0.03, 0.03, 0.1, 0.03],
  [0.0, 0.02, 0.03, 0.08],
];
export const D4 = 4;
export const N = 4096;
export const DATA_SEED = 41;
export const POINT_SEED = 42;
export const SAMPLE_SEED = 43;
export const K_TIMES = 16;
export const POINTS_PER_TIME = 256;
export const CHAINS = 2048;
export const PC_STEPS = 300;
export const PASS = { score: 0.05, mean: 0.05, cov: 0.1 };
/** The committed model's configuration (trained by test/golden/train_gaussian_score.ts). */
export const GAUSSIAN_VIT: ScoreViTConfig = { channels: D4, height: 1, width: 1, dim: 32, depth: 1, heads: 1, dimHead: 16, mlp: 64, time: 'vector' };
export const GAUSSIAN_MODEL = new URL('./fixtures/score-gaussian-vector.safetensors', import.meta.url).pathname;

/** Sampler settings of check 2 (the seed defaults to SAMPLE_SEED). */
export interface Sampling {
  chains: number;
  steps: number;
  seed?: number;
}
export const SAMPLING: Sampling = { chains: CHAINS, steps: PC_STEPS };

export type Mat = number[][];

/** Lower Cholesky factor of a symmetric positive-definite matrix. */
export function cholesky(A: Mat): Mat {
  const n = A.length;
  const L = A.map(() => new Array<number>(n).fill(0));
  for (let i = 0; i < n; i++) {
    for (let j = 0; j <= i; j++) {
      let s = A[i][j];
      for (let k = 0; k < j; k++) s -= L[i][k] * L[j][k];
      if (i === j && !(s > 0)) throw new Error('cholesky: matrix is not positive definite');
      L[i][j] = i === j ? Math.sqrt(s) : s / L[j][j];
    }
  }
  return L;
}

/** Symmetric eigendecomposition A = Q diag(lam) Q^T by cyclic Jacobi rotations (Q's columns). */
export function eigenSym(A: Mat): { lam: number[]; Q: Mat } {
  const n = A.length;
  const a = A.map((r) => [...r]);
  const Q: Mat = A.map((_, i) => A.map((__, j) => (i === j ? 1 : 0)));
  for (let sweep = 0; sweep < 50; sweep++) {
    let off = 0;
    for (let p = 0; p < n; p++) for (let q = p + 1; q < n; q++) off += a[p][q] ** 2;
    if (off < 1e-30) break;
    for (let p = 0; p < n; p++) {
      for (let q = p + 1; q < n; q++) {
        if (a[p][q] === 0) continue;
        const theta = (a[q][q] - a[p][p]) / (2 * a[p][q]);
        const t = Math.sign(theta || 1) / (Math.abs(theta) + Math.sqrt(theta * theta + 1));
        const c = 1 / Math.sqrt(t * t + 1);
        const s = t * c;
        for (let k = 0; k < n; k++) {
          const [akp, akq] = [a[k][p], a[k][q]];
          a[k][p] = c * akp - s * akq;
          a[k][q] = s * akp + c * akq;
        }
        for (let k = 0; k < n; k++) {
          const [apk, aqk] = [a[p][k], a[q][k]];
          a[p][k] = c * apk - s * aqk;
          a[q][k] = s * apk + c * aqk;
        }
        for (let k = 0; k < n; k++) {
          const [qkp, qkq] = [Q[k][p], Q[k][q]];
          Q[k][p] = c * qkp - s * qkq;
          Q[k][q] = s * qkp + c * qkq;
        }
      }
    }
  }
  return { lam: a.map((r, i) => r[i]), Q };
}

/** The Gaussian as the trainer sees it: normalized data and the analytic quantities in those coordinates. */
export interface Problem {
  mu: number[];
  sigma: Mat;
  /** Normalized draws [N, 4, 1, 1]. */
  data: Float32Array;
  norm: Normalization;
  span: number;
  muN: number[];
  /** Sigma_n = Q diag(lam) Q^T. */
  lam: number[];
  Q: Mat;
}

/** N draws of N(mu, sigma), normalized with their own min/max (the data's, like samplers/score/data.ts). */
export function makeProblem(mu = MU, sigma = SIGMA): Problem {
  const L = cholesky(sigma);
  const u = philoxNormalF64(N * D4, [DATA_SEED, 0], [0, 0]);
  const data = new Float32Array(N * D4);
  for (let i = 0; i < N; i++) {
    for (let a = 0; a < D4; a++) {
      let v = mu[a];
      for (let b = 0; b <= a; b++) v += L[a][b] * u[i * D4 + b];
      data[i * D4 + a] = v;
    }
  }
  const norm = computeNormalization(data);
  normalizeInPlace(data, norm);
  const span = norm.max - norm.min;
  const { lam, Q } = eigenSym(sigma.map((r) => r.map((v) => v / span ** 2)));
  return { mu, sigma, data, norm, span, muN: mu.map((m) => (m - norm.min) / span), lam, Q };
}

/** The same Gaussian family's analytic quantities in another problem's coordinates (min/max kept). */
export function sameCoordinates(p: Problem, mu: number[], sigma: Mat): Problem {
  const { lam, Q } = eigenSym(sigma.map((r) => r.map((v) => v / p.span ** 2)));
  return { ...p, mu, sigma, muN: mu.map((m) => (m - p.norm.min) / p.span), lam, Q };
}

export const sde = new VPSDE();

/** eps*(y, t) = s_t Q diag(1 / (m_t^2 lam + s_t^2)) Q^T (y - m_t mu_n) for one point, in float64. */
export function exactEps(p: Problem, y: ArrayLike<number>, t: number): number[] {
  const m = sde.meanCoeff(t);
  const s = sde.std(t);
  const c = p.muN.map((mu, i) => y[i] - m * mu);
  const w = p.lam.map((l, k) => (s * p.Q.reduce((acc, row, i) => acc + row[k] * c[i], 0)) / (m * m * l + s * s));
  return p.Q.map((row) => row.reduce((acc, q, k) => acc + q * w[k], 0));
}

/** The exact eps as a GPU model (per-sample t): what a perfect network would output. */
export function exactModel(p: Problem): EpsModel & { dispose(): void } {
  const Q = tensor(p.Q.flat(), [D4, D4]).keep(); // [4, 4], eigenvectors as columns
  const lam = tensor(p.lam, [1, D4]).keep(); // [1, 4]
  const mu = tensor(p.muN, [1, D4]).keep(); // [1, 4]
  const d = sde.beta1 - sde.beta0;
  return {
    dispose: () => [Q, lam, mu].forEach((c) => c.dispose()),
    forward: (x: Tensor, t: Tensor) => {
      const B = x.shape[0];
      const tt = reshape(t, [B, 1]);
      const m = exp(mul(affine(tt, -d / 4, -sde.beta0 / 2), tt)); // m_t [B, 1]
      const m2 = square(m);
      const var0 = affine(m2, -1, 1); // s_t^2 [B, 1]
      const w = matmul(sub(reshape(x, [B, D4]), mul(m, mu)), Q); // Q^T (y - m mu) per row [B, 4]
      const scaled = mul(w, div(sqrt(var0), add(mul(m2, lam), var0)));
      return reshape(matmul(scaled, Q, { transposeB: true }), [B, D4, 1, 1]);
    },
  };
}

/** t_k = (k + 1/2) / K: the midpoint rule for the trainer's t ~ U(0, 1). */
export const testTime = (k: number) => (k + 0.5) / K_TIMES;

/** The K test times. */
export const TEST_TIMES = Array.from({ length: K_TIMES }, (_, k) => testTime(k));

/** P exact draws y ~ p_t at each of `times` (default: the K test times), with their t. */
export function testPoints(p: Problem, times: readonly number[] = TEST_TIMES, P = POINTS_PER_TIME): { y: Float32Array; t: Float32Array } {
  const M = times.length * P;
  const u = philoxNormalF64(M * D4, [POINT_SEED, 0], [0, 0]);
  const y = new Float32Array(M * D4);
  const t = new Float32Array(M);
  for (let j = 0; j < M; j++) {
    t[j] = times[Math.floor(j / P)];
    const m = sde.meanCoeff(t[j]);
    const s = sde.std(t[j]);
    // y = m mu_n + Q diag(sqrt(m^2 lam + s^2)) u
    const r = p.lam.map((l, k) => Math.sqrt(m * m * l + s * s) * u[j * D4 + k]);
    for (let i = 0; i < D4; i++) y[j * D4 + i] = m * p.muN[i] + p.Q[i].reduce((acc, q, k) => acc + q * r[k], 0);
  }
  return { y, t };
}

/**
 * Check 1 (see the header) at the K test times; other `times` give the same relative error pooled
 * over those times instead (e.g. the small t that check 1 weights lightly, as a diagnostic).
 */
export async function scoreError(model: EpsModel, p: Problem, times: readonly number[] = TEST_TIMES): Promise<number> {
  const { y, t } = testPoints(p, times);
  const M = t.length;
  const eps = await scope(() => noGrad(() => model.forward(tensor(y, [M, D4, 1, 1]), tensor(t, [M])).readF32()));
  let num = 0;
  let den = 0;
  for (let j = 0; j < M; j++) {
    const e = exactEps(p, y.subarray(j * D4, (j + 1) * D4), t[j]);
    for (let i = 0; i < D4; i++) {
      num += (eps[j * D4 + i] - e[i]) ** 2;
      den += e[i] ** 2;
    }
  }
  return Math.sqrt(num / den);
}

/** Check 2 (see the header): sample moments in raw units against the true (MU, SIGMA), whatever p's model. */
export async function sampleError(model: EpsModel, p: Problem, o: Sampling = SAMPLING): Promise<{ mean: number; cov: number }> {
  const y = await scope(async () => (await pcSample(model, { shape: [o.chains, D4, 1, 1], seed: o.seed ?? SAMPLE_SEED, steps: o.steps })).readF32());
  const v = Float64Array.from(y, (x) => p.norm.min + p.span * x);
  const { mean, cov } = moments(v, o.chains);
  // NaN (a diverged sampler) must fail the check: Math.max keeps it, and `NaN < x` is false.
  return { mean: Math.max(...mean.map((m, i) => Math.abs(m - MU[i]))), cov: relFrobenius(cov, SIGMA) };
}

/** ||a - b||_F / ||b||_F. */
export function relFrobenius(a: Mat, b: Mat): number {
  let num = 0;
  let den = 0;
  for (let i = 0; i < D4; i++) for (let j = 0; j < D4; j++) (num += (a[i][j] - b[i][j]) ** 2), (den += b[i][j] ** 2);
  return Math.sqrt(num / den);
}

export function moments(v: ArrayLike<number>, n: number): { mean: number[]; cov: Mat } {
  const mean = new Array<number>(D4).fill(0);
  for (let j = 0; j < n; j++) for (let i = 0; i < D4; i++) mean[i] += v[j * D4 + i] / n;
  const cov = mean.map(() => new Array<number>(D4).fill(0));
  for (let j = 0; j < n; j++) {
    for (let a = 0; a < D4; a++) {
      for (let b = 0; b < D4; b++) cov[a][b] += ((v[j * D4 + a] - mean[a]) * (v[j * D4 + b] - mean[b])) / (n - 1);
    }
  }
  return { mean, cov };
}

export interface Verdict {
  score: number;
  mean: number;
  cov: number;
  passes: { score: boolean; samples: boolean };
}

export async function check(model: EpsModel, p: Problem, o: Sampling = SAMPLING): Promise<Verdict> {
  const score = await scoreError(model, p);
  const s = await sampleError(model, p, o);
  return { score, ...s, passes: { score: score < PASS.score, samples: s.mean < PASS.mean && s.cov < PASS.cov } };
}

export const show = (v: Verdict) => `E_score ${v.score.toPrecision(3)}, E_mean ${v.mean.toPrecision(3)}, E_cov ${v.cov.toPrecision(3)}`;
