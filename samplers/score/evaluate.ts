// Evaluating a score model against the closed-form Gaussian baseline on held-out features
// (`sgilo eval-score`), all on normalized data:
//
//   dsmBins      held-out DSM loss per t: for each t and held-out x0, the same noise z for both models
//                (Philox stream (seed, ti * N * n + start * n) per batch from `start`, so the seed and
//                the batch size reproduce it), x_t = a x0 + s z,
//                loss_j = mean((eps(x_t, t) - z)^2) over the sample's n values; per t the mean of each
//                model and the standard error of the paired per-sample difference model - gaussian
//                (std of the differences / sqrt(N)): the noise is shared, so the difference is far
//                more precise than either mean.
//   sampleStats  distance of a sample set to held-out real features: unbiased MMD^2 with a Gaussian
//                kernel exp(-|x - y|^2 / (2 h^2)), h fixed from the reference set (median pairwise
//                distance), and the mean nearest-neighbour distance to the reference set, as RMS per
//                value (|x - y| / sqrt(n)).
//
// Dimensions: N held-out samples, n = C H W values per sample, B evaluation batch.

import { scope, tensor } from '../../engine/tensor.ts';
import { noGrad } from '../../engine/tape.ts';
import { add, affine, square, sub } from '../../engine/ops/elementwise.ts';
import { mean } from '../../engine/ops/reduce.ts';
import { randomNormal } from '../../engine/random.ts';
import { engine } from '../../engine/engine.ts';
import { epsAt, type EpsModel } from './sample.ts';
import { VPSDE } from './vpsde.ts';

export const DEFAULT_EVAL_TIMES = [0.001, 0.003, 0.01, 0.03, 0.1, 0.3, 1];

export interface DsmBin {
  t: number;
  model: number;
  gaussian: number;
  /** Standard error of mean(model - gaussian). */
  se: number;
}

export interface DsmOptions {
  times?: number[];
  seed?: number;
  batch?: number;
  sde?: VPSDE;
  onBin?: (bin: DsmBin) => void;
}

/** Held-out DSM loss per t of `model` beside `gaussian`, on the same noise (see the header). */
export async function dsmBins(model: EpsModel, gaussian: EpsModel, x0: Float32Array, shape: readonly [number, number, number, number], o: DsmOptions = {}): Promise<DsmBin[]> {
  const [N, C, H, W] = shape;
  const n = C * H * W;
  if (x0.length !== N * n || N < 2) throw new RangeError(`dsmBins: need at least 2 samples of [${C}, ${H}, ${W}], got ${x0.length} values for N = ${N}`);
  const times = o.times ?? DEFAULT_EVAL_TIMES;
  const sde = o.sde ?? new VPSDE();
  const B = o.batch ?? 64;
  const bins: DsmBin[] = [];
  for (const [ti, t] of times.entries()) {
    if (!(t > 0 && t <= 1)) throw new RangeError(`dsmBins: t must be in (0, 1], got ${t}`);
    const a = sde.meanCoeff(t);
    const s = sde.std(t);
    const lm = new Float64Array(N);
    const lg = new Float64Array(N);
    for (let start = 0; start < N; start += B) {
      const b = Math.min(B, N - start);
      const [pm, pg] = await scope(() =>
        noGrad(async () => {
          const z = randomNormal([b, C, H, W], { seed: o.seed ?? 0, offset: ti * N * n + start * n });
          const xt = add(affine(tensor(x0.subarray(start * n, (start + b) * n), [b, C, H, W]), a), affine(z, s));
          const per = (m: EpsModel) => mean(square(sub(epsAt(m, xt, t), z)), [1, 2, 3]).readF32();
          return Promise.all([per(model), per(gaussian)]);
        }),
      );
      lm.set(pm, start);
      lg.set(pg, start);
      await engine().sync();
    }
    for (let j = 0; j < N; j++) if (!Number.isFinite(lm[j]) || !Number.isFinite(lg[j])) throw new Error(`dsmBins: t = ${t}: the ${Number.isFinite(lm[j]) ? 'gaussian' : 'model'} loss of sample ${j} is ${Number.isFinite(lm[j]) ? lg[j] : lm[j]}`);
    const avg = (v: Float64Array) => v.reduce((acc, x) => acc + x, 0) / v.length;
    const d = lm.map((v, j) => v - lg[j]);
    const md = avg(d);
    const se = Math.sqrt(d.reduce((acc, v) => acc + (v - md) ** 2, 0) / (N - 1) / N);
    const bin = { t, model: avg(lm), gaussian: avg(lg), se };
    o.onBin?.(bin);
    bins.push(bin);
  }
  return bins;
}

/** Squared distances between rows of a [p, n] and b [q, n], float64, [p, q] row-major. */
export function squaredDistances(a: ArrayLike<number>, b: ArrayLike<number>, n: number): Float64Array {
  const p = a.length / n;
  const q = b.length / n;
  const out = new Float64Array(p * q);
  for (let i = 0; i < p; i++) {
    for (let j = 0; j < q; j++) {
      let s = 0;
      for (let k = 0; k < n; k++) {
        const d = a[i * n + k] - b[j * n + k];
        s += d * d;
      }
      out[i * q + j] = s;
    }
  }
  return out;
}

/** The kernel bandwidth h: the median distance between distinct rows of the reference set. */
export function medianBandwidth(ref: ArrayLike<number>, n: number): number {
  const d = squaredDistances(ref, ref, n);
  const q = ref.length / n;
  const vals: number[] = [];
  for (let i = 0; i < q; i++) for (let j = i + 1; j < q; j++) vals.push(Math.sqrt(d[i * q + j]));
  vals.sort((x, y) => x - y);
  const h = vals[Math.floor(vals.length / 2)];
  if (!(h > 0)) throw new RangeError('medianBandwidth: the reference rows coincide');
  return h;
}

export interface SetDistance {
  /** Unbiased MMD^2 with the fixed Gaussian kernel. */
  mmd2: number;
  /** Mean over the set of the distance to its nearest reference row, RMS per value. */
  nn: number;
}

/** Distance of `x` [p, n] to the reference [q, n] (see the header); h from medianBandwidth(ref). */
export function setDistance(x: ArrayLike<number>, ref: ArrayLike<number>, n: number, h: number): SetDistance {
  const p = x.length / n;
  const q = ref.length / n;
  if (p < 2 || q < 2) throw new RangeError(`setDistance: need at least 2 rows on each side, got ${p} and ${q}`);
  const k = (d2: number) => Math.exp(-d2 / (2 * h * h));
  const offDiagonalMean = (d: Float64Array, m: number) => {
    let s = 0;
    for (let i = 0; i < m; i++) for (let j = 0; j < m; j++) if (i !== j) s += k(d[i * m + j]);
    return s / (m * (m - 1));
  };
  const xr = squaredDistances(x, ref, n);
  let cross = 0;
  let nn = 0;
  for (let i = 0; i < p; i++) {
    let best = Infinity;
    for (let j = 0; j < q; j++) {
      cross += k(xr[i * q + j]);
      best = Math.min(best, xr[i * q + j]);
    }
    nn += Math.sqrt(best / n);
  }
  const mmd2 = offDiagonalMean(squaredDistances(x, x, n), p) + offDiagonalMean(squaredDistances(ref, ref, n), q) - (2 * cross) / (p * q);
  return { mmd2, nn: nn / p };
}
