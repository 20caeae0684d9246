// What `sgilo tune` and `sgilo experiment` share: one variant (a method with its priors and values)
// run on a batch of images under one operator, its per-image MSE, and the statistics the reports
// give (mean and standard error, paired differences, posterior calibration).
//
//   images [B, 3, size, size] in [-1, 1]; one chain per image unless `chains` (calibration runs)

import type { StyleGAN2 } from '../../nets/stylegan2.ts';
import type { MappingProxy } from './mapping_proxy.ts';
import type { FeaturePrior } from './prior.ts';
import { makeOperator } from './operators/index.ts';
import { solve, takeMeasurements, type MethodRun } from './reconstruct.ts';
import { configFromValues, type Candidate, type Variant } from './tuning.ts';

export interface ProtocolModels {
  generator: StyleGAN2;
  proxy: MappingProxy;
  /** The learned priors (the mixtures) and the single-Gaussian control, keyed by round block. */
  learned: Map<number, FeaturePrior>;
  gaussian: Map<number, FeaturePrior>;
}

/** The priors a variant runs with (none for CSGM and ILO; sgilo-off keeps the learned ones at temperature 0). */
export function priorsOf(m: ProtocolModels, v: Variant): Map<number, FeaturePrior> | undefined {
  if (v === 'sgilo' || v === 'sgilo-off') return m.learned;
  if (v === 'sgilo-gaussian') return m.gaussian;
  return undefined;
}

export interface VariantRun {
  /** Mean over chains of each image's final-iterate MSE against its reference. */
  perImage: number[];
  seconds: number;
  run: MethodRun;
}

export interface RunSpec {
  steps: number;
  blocks: number[];
  images: Float32Array;
  count: number;
  seed: number;
  chains?: number;
  /** The images' ids (their random streams; default 0..count-1): the shipped test-image indices. */
  imageIds?: readonly number[];
}

/** Measures the images with `spec` (seeded) and runs the variant; throws on a non-finite MSE. */
export async function runVariant(m: ProtocolModels, variant: Variant, spec: string, values: Candidate, r: RunSpec): Promise<VariantRun> {
  const size = m.generator.config.size;
  const { operator, noiseStd } = makeOperator(spec, [3, size, size], { seed: r.seed });
  try {
    const y = takeMeasurements(operator, r.images, r.count, noiseStd, r.seed, r.imageIds).keep();
    try {
      const config = configFromValues(variant, values, r.steps, r.blocks);
      const run = await solve(y, config, { generator: m.generator, proxy: m.proxy, operator, priors: priorsOf(m, variant), chains: r.chains ?? 1, seed: r.seed, imageIds: r.imageIds }, r.images);
      const perImage = run.images.map((im) => im.mse!);
      perImage.forEach((v, i) => {
        if (!Number.isFinite(v)) throw new Error(`${variant} on ${spec}: the MSE of image ${i} is not finite (NaN or Inf) after ${r.steps} steps per round`);
      });
      return { perImage, seconds: run.seconds, run };
    } finally {
      y.dispose();
    }
  } finally {
    operator.dispose?.();
  }
}

/** Mean and standard error of the mean. */
export function meanSem(xs: number[]): { mean: number; sem: number } {
  const n = xs.length;
  const mean = xs.reduce((a, b) => a + b, 0) / n;
  const sd = Math.sqrt(xs.reduce((a, b) => a + (b - mean) ** 2, 0) / Math.max(1, n - 1));
  return { mean, sem: sd / Math.sqrt(n) };
}

/** The per-image difference a - b, as mean and standard error (the paired comparison). */
export function pairedDifference(a: number[], b: number[]): { mean: number; sem: number } {
  if (a.length !== b.length) throw new RangeError(`paired difference of ${a.length} and ${b.length} values`);
  return meanSem(a.map((x, i) => x - b[i]));
}

export function pearson(x: ArrayLike<number>, y: ArrayLike<number>): number {
  const n = x.length;
  let mx = 0;
  let my = 0;
  for (let i = 0; i < n; i++) [mx, my] = [mx + x[i] / n, my + y[i] / n];
  let sxy = 0;
  let sxx = 0;
  let syy = 0;
  for (let i = 0; i < n; i++) {
    sxy += (x[i] - mx) * (y[i] - my);
    sxx += (x[i] - mx) ** 2;
    syy += (y[i] - my) ** 2;
  }
  return sxx > 0 && syy > 0 ? sxy / Math.sqrt(sxx * syy) : 0;
}

export interface Calibration {
  /** Pearson correlation of the per-pixel std with the posterior mean's absolute error, per image, averaged. */
  stdErrorCorrelation: number;
  stdErrorCorrelationSem: number;
  /** Fraction of pixel values whose reference lies within mean +- 2 std (all images). */
  coverage2sigma: number;
  /** Root mean square distance between two chains' images, averaged over pairs and images. */
  pairwiseRms: number;
  /** MSE of the posterior mean, averaged over images. */
  meanMse: number;
}

/**
 * Posterior quality of a run with K >= 2 chains per image: where the chains disagree (std map,
 * averaged over channels) against where the posterior mean is wrong (absolute error, averaged over
 * channels), the 2-sigma coverage of the reference, and the chains' spread.
 */
export function calibration(run: MethodRun, reference: Float32Array): Calibration {
  const corr: number[] = [];
  let covered = 0;
  let total = 0;
  let rms = 0;
  let meanMse = 0;
  const B = run.images.length;
  run.images.forEach((im, b) => {
    const per = im.mean.length;
    const hw = im.std.length;
    const channels = per / hw;
    const ref = reference.subarray(b * per, (b + 1) * per);
    const err = new Float64Array(hw);
    for (let i = 0; i < per; i++) {
      const e = Math.abs(im.mean[i] - ref[i]);
      err[i % hw] += e / channels;
      if (e <= 2 * im.std[i % hw]) covered++;
      total++;
      meanMse += (im.mean[i] - ref[i]) ** 2 / per / B;
    }
    corr.push(pearson(im.std, err));
    const K = im.samples.length;
    let pairs = 0;
    let dist = 0;
    for (let i = 0; i < K; i++)
      for (let j = i + 1; j < K; j++) {
        let d = 0;
        for (let p = 0; p < per; p++) d += (im.samples[i][p] - im.samples[j][p]) ** 2;
        dist += Math.sqrt(d / per);
        pairs++;
      }
    rms += (pairs ? dist / pairs : 0) / B;
  });
  const c = meanSem(corr);
  return { stdErrorCorrelation: c.mean, stdErrorCorrelationSem: c.sem, coverage2sigma: covered / total, pairwiseRms: rms, meanMse };
}
