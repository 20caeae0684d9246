// Posterior sampling for one batch of images and one operator: measure (or take given
// measurements), run a method with several chains per image, and summarize each image's chains as
// samples, mean and a per-pixel standard-deviation map, with MSE/PSNR against the reference.
//
//   B images, K chains: the method runs N = B*K problems in the same dispatches, n = b*K + k.
//   images [B, 3, H, W] in [-1, 1]; measurements y [B, ...outShape], repeated K times.

import { Tensor, scope, tensor } from '../../engine/tensor.ts';
import type { RowStream } from '../../engine/random.ts';
import { broadcastTo } from '../../engine/ops/reduce.ts';
import { reshape } from '../../engine/ops/layout.ts';
import { measure, type MeasurementOperator } from './operators/index.ts';
import { runMethod, type MethodConfig, type Problem, type StepInfo } from './intermediate_layer.ts';
import type { StyleGAN2 } from '../../nets/stylegan2.ts';
import type { MappingProxy } from './mapping_proxy.ts';
import type { FeaturePrior } from './prior.ts';

export interface ImageSummary {
  samples: Float32Array[];
  mean: Float32Array;
  /** Per-pixel standard deviation over chains, averaged over channels: [H, W]. */
  std: Float32Array;
  /** Mean over chains of each final iterate's MSE against the reference (images in [-1, 1]). */
  mse?: number;
  /** PSNR of that MSE on the [0, 1] scale (peak 1): 10 log10(4 / mse). */
  psnr?: number;
  /** MSE of the posterior mean (labelled as such in reports). */
  meanMse?: number;
}

export interface MethodRun {
  method: string;
  config: MethodConfig;
  images: ImageSummary[];
  losses: number[][];
  seconds: number;
  /** Features entering the last block visited, per chain (for the score model's training data). */
  features?: { data: Float32Array; shape: number[]; block: number };
}

export const psnrOf = (mse: number) => 10 * Math.log10(4 / mse);

function repeatChains(y: Tensor, chains: number): Tensor {
  if (chains === 1) return y;
  const [B, ...rest] = y.shape;
  return reshape(broadcastTo(reshape(y, [B, 1, ...rest]), [B, chains, ...rest]), [B * chains, ...rest]);
}

export interface SolveOptions {
  generator: StyleGAN2;
  proxy: MappingProxy;
  operator: MeasurementOperator;
  priors?: Map<number, FeaturePrior>;
  chains: number;
  seed: number;
  /**
   * The images' ids (default 0..B-1): image b's chain k draws from row stream [imageIds[b], k], so
   * an image's result depends on its id, not on which other images share the batch.
   */
  imageIds?: readonly number[];
  onStep?: (s: StepInfo) => void;
}

/** Row streams [image id, chain], image-major like the samples of a solve(). */
export function sampleStreams(imageIds: readonly number[], chains: number): RowStream[] {
  return imageIds.flatMap((id) => Array.from({ length: chains }, (_, k): RowStream => [id, k]));
}

const defaultIds = (B: number, ids?: readonly number[]): readonly number[] => {
  if (ids && ids.length !== B) throw new RangeError(`${ids.length} image ids for ${B} images`);
  return ids ?? Array.from({ length: B }, (_, b) => b);
};

/** y = A(x) + noise for the reference images x [B, 3, H, W] (noise seeded; image b's from row stream [imageIds[b], 0]). */
export function takeMeasurements(op: MeasurementOperator, images: Float32Array, B: number, noiseStd: number, seed: number, imageIds?: readonly number[]): Tensor {
  return scope(() => measure(op, tensor(images, [B, ...op.inShape]), { noiseStd, seed, offset: 7, rows: sampleStreams(defaultIds(B, imageIds), 1) }));
}

export async function solve(y: Tensor, config: MethodConfig, o: SolveOptions, reference?: Float32Array): Promise<MethodRun> {
  const B = y.shape[0];
  const K = o.chains;
  if (!(Number.isInteger(K) && K >= 1)) throw new RangeError(`chains must be a positive integer, got ${K}`);
  const yRep = K === 1 ? y : repeatChains(y, K).keep();
  try {
    const problem: Problem = { generator: o.generator, proxy: o.proxy, forward: (x) => o.operator.apply(x), y: yRep, priors: o.priors };
    const run = await runMethod(problem, config, { seed: o.seed, streams: sampleStreams(defaultIds(B, o.imageIds), K), onStep: o.onStep });
    const per = run.images.length / (B * K);
    const hw = per / 3;
    const images: ImageSummary[] = [];
    for (let b = 0; b < B; b++) {
      const samples = Array.from({ length: K }, (_, k) => run.images.slice((b * K + k) * per, (b * K + k + 1) * per));
      const mean = new Float32Array(per);
      for (const s of samples) for (let i = 0; i < per; i++) mean[i] += s[i] / K;
      const std = new Float32Array(hw);
      for (let i = 0; i < per; i++) {
        let v = 0;
        for (const s of samples) v += (s[i] - mean[i]) ** 2;
        std[i % hw] += Math.sqrt(v / K) / 3;
      }
      const summary: ImageSummary = { samples, mean, std };
      if (reference) {
        const ref = reference.subarray(b * per, (b + 1) * per);
        const mseOf = (x: Float32Array) => x.reduce((acc, v, i) => acc + (v - ref[i]) ** 2, 0) / per;
        summary.mse = samples.reduce((a, s) => a + mseOf(s), 0) / K;
        summary.psnr = psnrOf(summary.mse);
        summary.meanMse = mseOf(mean);
      }
      images.push(summary);
    }
    return { method: config.method, config, images, losses: run.losses, seconds: run.seconds, features: run.features };
  } finally {
    if (yRep !== y) yRep.dispose();
  }
}
