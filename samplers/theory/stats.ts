// Host-side (float64) analysis for the Theorem 3.1 experiment (cli/theory.ts) and its tests:
// Hand and Voroninski's rho_d, the Hessian of L at z*, a symmetric eigensolver, sliced
// Wasserstein-2 distances between samples, power-law fits and quantiles.
//
// Legend: k = latent dimension, N = sample size, L = number of slicing directions.

import { host, type HostArray } from '../../engine/reference/host.ts';
import { generatorForward, type HostProblem } from '../../engine/reference/relu_generator.ts';
import { philoxNormalF64 } from '../../engine/reference/philox.ts';

/**
 * Hand and Voroninski's rho_d: in the infinite-width limit L(-t z*) ~ (t^2 - 2 t rho_d + 1) ||z*||^2 / 2,
 * and -rho_d z* is the spurious critical point. rho_d = cos(theta_d), theta_0 = pi,
 * theta_i = g(theta_{i-1}), g(theta) = acos(((pi - theta) cos theta + sin theta) / pi)
 * (the arc-cosine kernel of a ReLU layer with weight variance 2 / n). rho_1 = 0, rho_2 = 1/pi.
 */
export function hvRho(depth: number): number {
  let theta = Math.PI;
  for (let i = 0; i < depth; i++) theta = Math.acos(Math.min(1, ((Math.PI - theta) * Math.cos(theta) + Math.sin(theta)) / Math.PI));
  return Math.cos(theta);
}

/** Jacobi eigenvalue iteration for a symmetric k x k matrix (row-major): eigenvalues and column eigenvectors. */
export function symmetricEigen(a: ArrayLike<number>, k: number): { values: number[]; vectors: Float64Array } {
  const m = Float64Array.from(a);
  const v = new Float64Array(k * k);
  for (let i = 0; i < k; i++) v[i * k + i] = 1;
  for (let sweep = 0; sweep < 100; sweep++) {
    let off = 0;
    for (let p = 0; p < k; p++) for (let q = p + 1; q < k; q++) off += m[p * k + q] ** 2;
    if (off < 1e-26) break;
    for (let p = 0; p < k; p++) {
      for (let q = p + 1; q < k; q++) {
        const apq = m[p * k + q];
        if (Math.abs(apq) < 1e-300) continue;
        const tau = (m[q * k + q] - m[p * k + p]) / (2 * apq);
        const t = Math.sign(tau || 1) / (Math.abs(tau) + Math.sqrt(1 + tau * tau));
        const c = 1 / Math.sqrt(1 + t * t);
        const s = t * c;
        for (let r = 0; r < k; r++) {
          const arp = m[r * k + p];
          const arq = m[r * k + q];
          m[r * k + p] = c * arp - s * arq;
          m[r * k + q] = s * arp + c * arq;
        }
        for (let r = 0; r < k; r++) {
          const apr = m[p * k + r];
          const aqr = m[q * k + r];
          m[p * k + r] = c * apr - s * aqr;
          m[q * k + r] = s * apr + c * aqr;
        }
        for (let r = 0; r < k; r++) {
          const vrp = v[r * k + p];
          const vrq = v[r * k + q];
          v[r * k + p] = c * vrp - s * vrq;
          v[r * k + q] = s * vrp + c * vrq;
        }
      }
    }
  }
  return { values: Array.from({ length: k }, (_, i) => m[i * k + i]), vectors: v };
}

/**
 * Hessian of L at z* for instance `inst`: H = J^T A^T A J with J = dG/dz at z* (L is piecewise
 * quadratic and its residual vanishes at z*, so this is the exact Hessian of the active piece).
 */
export function hessianAtOptimum(p: HostProblem & { zStar: HostArray }, inst: number): Float64Array {
  const k = p.zStar.shape[1];
  const one = (a: HostArray, rows: number, cols: number, i: number) => host([1, rows, cols], a.data.subarray(i * rows * cols, (i + 1) * rows * cols));
  const weights = p.weights.map((w) => one(w, w.shape[1], w.shape[2], inst));
  const outs = generatorForward(weights, p.act, host([1, 1, k], p.zStar.data.subarray(inst * k, (inst + 1) * k)));
  // J = D_d W_d ... D_1 W_1, built column by column as rows of J^T ([k, n]).
  let jt = new Float64Array(k * k);
  for (let i = 0; i < k; i++) jt[i * k + i] = 1;
  let n = k;
  weights.forEach((w, l) => {
    const nOut = w.shape[1];
    const next = new Float64Array(k * nOut);
    for (let c = 0; c < k; c++) {
      for (let o = 0; o < nOut; o++) {
        if (p.act === 'relu' && !(outs[l].data[o] > 0)) continue;
        let s = 0;
        for (let j = 0; j < n; j++) s += w.data[o * n + j] * jt[c * n + j];
        next[c * nOut + o] = s;
      }
    }
    jt = next;
    n = nOut;
  });
  const m = p.A.shape[1];
  const A = p.A.data.subarray(inst * m * n, (inst + 1) * m * n);
  const aj = new Float64Array(k * m); // (A J)^T, [k, m]
  for (let c = 0; c < k; c++) for (let r = 0; r < m; r++) {
    let s = 0;
    for (let j = 0; j < n; j++) s += A[r * n + j] * jt[c * n + j];
    aj[c * m + r] = s;
  }
  const h = new Float64Array(k * k);
  for (let a = 0; a < k; a++) for (let b = 0; b < k; b++) {
    let s = 0;
    for (let r = 0; r < m; r++) s += aj[a * m + r] * aj[b * m + r];
    h[a * k + b] = s;
  }
  return h;
}

/** Squared 1D Wasserstein-2 distance between two equal-size samples (sorted matching). */
function w2Squared1d(a: Float64Array, b: Float64Array): number {
  a.sort();
  b.sort();
  let s = 0;
  for (let i = 0; i < a.length; i++) s += (a[i] - b[i]) ** 2;
  return s / a.length;
}

/**
 * Sliced Wasserstein-2 between samples x and y ([N, k] row-major each, same N):
 * sqrt(mean over L directions theta of W2^2(<x, theta>, <y, theta>)). The directions are uniform
 * on the sphere, from Philox stream `seed` (the CPU mirror), so estimates at different times use
 * the same slices.
 */
export function slicedW2(x: ArrayLike<number>, y: ArrayLike<number>, k: number, directions = 256, seed = 7): number {
  const N = x.length / k;
  if (!Number.isInteger(N) || y.length !== x.length) throw new RangeError(`slicedW2: samples must both be [N, ${k}] of the same N, got ${x.length} and ${y.length} values`);
  const dirs = philoxNormalF64(directions * k, [seed, 0], [0, 0]);
  let total = 0;
  const px = new Float64Array(N);
  const py = new Float64Array(N);
  for (let l = 0; l < directions; l++) {
    const th = dirs.subarray(l * k, (l + 1) * k);
    const norm = Math.hypot(...th);
    for (let i = 0; i < N; i++) {
      let sx = 0;
      let sy = 0;
      for (let j = 0; j < k; j++) {
        sx += x[i * k + j] * th[j];
        sy += y[i * k + j] * th[j];
      }
      px[i] = sx / norm;
      py[i] = sy / norm;
    }
    total += w2Squared1d(px, py);
  }
  return Math.sqrt(total / directions);
}

/** Least-squares fit log y = log c + p log x; returns the exponent p, c and R^2. */
export function powerLawFit(xs: number[], ys: number[]): { exponent: number; coefficient: number; r2: number } {
  const pts = xs.map((x, i) => [Math.log(x), Math.log(ys[i])]).filter(([a, b]) => Number.isFinite(a) && Number.isFinite(b));
  if (pts.length < 2) return { exponent: NaN, coefficient: NaN, r2: NaN };
  const mx = pts.reduce((s, [a]) => s + a, 0) / pts.length;
  const my = pts.reduce((s, [, b]) => s + b, 0) / pts.length;
  let sxy = 0;
  let sxx = 0;
  let syy = 0;
  for (const [a, b] of pts) {
    sxy += (a - mx) * (b - my);
    sxx += (a - mx) ** 2;
    syy += (b - my) ** 2;
  }
  const p = sxy / sxx;
  return { exponent: p, coefficient: Math.exp(my - p * mx), r2: syy > 0 ? (sxy * sxy) / (sxx * syy) : 1 };
}

/** The q-quantile (0..1) of values, linear interpolation; NaN for an empty list. */
export function quantile(values: readonly number[], q: number): number {
  if (values.length === 0) return NaN;
  const s = [...values].sort((a, b) => a - b);
  const pos = q * (s.length - 1);
  const lo = Math.floor(pos);
  return s[lo] + (s[Math.min(lo + 1, s.length - 1)] - s[lo]) * (pos - lo);
}

/**
 * Median hitting time with misses (-1) counted as never (+infinity): finite only when at least
 * half of the runs hit; this is the statistic the power-law fit uses.
 */
export function censoredMedian(hits: readonly number[]): number {
  const t = hits.map((h) => (h < 0 ? Infinity : h)).sort((a, b) => a - b);
  if (t.length === 0) return NaN;
  const mid = (t.length - 1) / 2;
  const v = (t[Math.floor(mid)] + t[Math.ceil(mid)]) / 2;
  return Number.isFinite(v) ? v : NaN;
}
