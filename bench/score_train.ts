// `sgilo bench score-train`: the score model's training step (samplers/score/train.ts) at the
// shipped block-0 shape: where its GPU time goes (per-kernel profile of one step), steps/s and
// samples/s, its FLOP count, and that count against the adapter's matmul rate measured on the
// step's own matmul shapes (bench/matmul.ts), i.e. how far the step is from "all matmul at the
// measured rate".
//
// Model: C 128 channels on a 4 x 4 grid (16 tokens), D 128, depth 4, 8 heads of 16, MLP 256,
// 'vector' time conditioning (train-score's default), no Gaussian base; batch 32, Adam, gradient
// clipping and EMA as train-score runs them. Data and weights are seeded: every run does the same
// arithmetic.
//
// FLOPs (2 per multiply-add), counted from the shapes: every Linear forward 2 R I O (R rows, I in,
// O out); its backward the weight gradient 2 R I O and the input gradient 2 R I O unless the
// input needs none (the tokens of x_t); attention 4 B h T^2 dh forward and 8 B h T^2 dh backward
// (the flash backward's recomputed scores not counted). Elementwise work, LayerNorm, Adam and the
// EMA are left out: they are what the ratio measures against.

import { describeAdapter } from '../engine/device.ts';
import type { Engine } from '../engine/engine.ts';
import { formatProfile, type KernelTime } from '../engine/profiler.ts';
import { HostRandom } from '../engine/reference/host.ts';
import { ScoreViT, timeFeatureWidth, timeMode, type ScoreViTConfig } from '../nets/score_vit.ts';
import { initScoreStateDict, scoreModelConfig } from '../samplers/score/checkpoint.ts';
import { ScoreTrainer } from '../samplers/score/train.ts';
import { flopsOf, runMatmulBench, type MatmulShape } from './matmul.ts';

/** The shipped block-0 model's shape, trained with train-score's defaults for time and batch. */
export const BLOCK0_VIT: ScoreViTConfig = { channels: 128, height: 4, width: 4, dim: 128, depth: 4, heads: 8, dimHead: 16, mlp: 256, time: 'vector' };

export interface ScoreTrainBenchOptions {
  vit?: ScoreViTConfig;
  batch?: number;
  /** Steps before anything is timed (pipelines compiled, pool warm). Default 2. */
  warmup?: number;
  /** Timed steps per repeat (each step reads its loss back, as train-score does). Default 5. */
  steps?: number;
  /** Timed repeats; the median s/step is reported. Default 3. */
  repeats?: number;
  /** Measure the matmul rate on the step's shapes (default true). */
  matmulRate?: boolean;
  /** Seconds per matmul measurement (default 0.3). */
  matmulSeconds?: number;
  log?: (line: string) => void;
}

export interface ScoreTrainBenchResult {
  adapter: string;
  /** Median wall seconds per step, and each repeat's. */
  secondsPerStep: number;
  repeats: number[];
  samplesPerSecond: number;
  flops: number;
  /** Flop-weighted GFLOP/s of our matmul on the step's shapes (null when not measured). */
  matmulGflops: number | null;
  /** secondsPerStep / (flops / matmul rate): 1 would be every flop at the matmul rate. */
  ratio: number | null;
  dispatches: number | null;
  kernels: KernelTime[] | null;
  losses: number[];
}

/** One Linear of the step: rows R, in I, out O, and whether its input needs a gradient. */
interface LinearShape {
  name: string;
  R: number;
  I: number;
  O: number;
  inputGrad: boolean;
}

export function stepLinears(c: ScoreViTConfig, B: number): LinearShape[] {
  const T = c.height * c.width;
  const R = B * T;
  const E = timeFeatureWidth(c);
  const vector = timeMode(c) === 'vector';
  const inner = c.heads * c.dimHead;
  const out: LinearShape[] = [
    { name: 'time embed.1', R: B, I: E, O: E, inputGrad: false },
    { name: 'time dense', R: B, I: E, O: vector ? c.dim : E, inputGrad: true },
    { name: 'patch embedding', R, I: c.channels, O: c.dim, inputGrad: false },
  ];
  for (let i = 0; i < c.depth; i++) {
    if (vector) out.push({ name: 'time_mod', R: B, I: c.dim, O: 2 * c.dim, inputGrad: true }, { name: 'time_mod', R: B, I: c.dim, O: 2 * c.dim, inputGrad: true });
    out.push(
      { name: 'to_qkv', R, I: c.dim, O: T === 1 ? inner : 3 * inner, inputGrad: true },
      { name: 'to_out', R, I: inner, O: c.dim, inputGrad: true },
      { name: 'mlp in', R, I: c.dim, O: c.mlp, inputGrad: true },
      { name: 'mlp out', R, I: c.mlp, O: c.dim, inputGrad: true },
    );
  }
  out.push({ name: 'projector', R, I: c.dim, O: c.channels, inputGrad: true });
  return out;
}

/** FLOPs of one training step (forward and backward), as the header counts them. */
export function stepFlops(c: ScoreViTConfig, B: number): number {
  const T = c.height * c.width;
  let f = 0;
  for (const l of stepLinears(c, B)) f += 2 * l.R * l.I * l.O * (2 + (l.inputGrad ? 1 : 0));
  if (T > 1) f += c.depth * 12 * B * c.heads * T * T * c.dimHead;
  return f;
}

/** The matmul products of the step's token Linears (forward, input and weight gradients), deduplicated, with their flops per step. */
function stepMatmuls(c: ScoreViTConfig, B: number): { shape: MatmulShape; flops: number }[] {
  const byKey = new Map<string, { shape: MatmulShape; flops: number }>();
  const add = (M: number, N: number, K: number) => {
    const shape = { batch: 1, M, N, K };
    const key = `${M}x${N}x${K}`;
    const e = byKey.get(key) ?? { shape, flops: 0 };
    e.flops += flopsOf(shape);
    byKey.set(key, e);
  };
  const R = B * c.height * c.width;
  for (const l of stepLinears(c, B)) {
    if (l.R !== R) continue; // the [B]-row time products: a few percent of the flops
    add(l.R, l.O, l.I); // y = x W^T
    add(l.O, l.I, l.R); // gW = gy^T x
    if (l.inputGrad) add(l.R, l.I, l.O); // gx = gy W
  }
  return [...byKey.values()];
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

export async function runScoreTrainBench(eng: Engine, options: ScoreTrainBenchOptions = {}): Promise<ScoreTrainBenchResult> {
  const log = options.log ?? ((line: string) => console.log(line));
  const vit = options.vit ?? BLOCK0_VIT;
  const B = options.batch ?? 32;
  const warmup = options.warmup ?? 2;
  const steps = options.steps ?? 5;
  const repeatCount = options.repeats ?? 3;
  const adapter = describeAdapter(eng.gpu.adapter);
  const flops = stepFlops(vit, B);
  log(`score-train bench on ${adapter}: ${JSON.stringify(vit)}, batch ${B}; ${(flops / 1e9).toFixed(3)} GFLOP per step`);

  // Seeded data in [0, 1] (the normalized range train-score feeds), 8 batches' worth.
  const N = 8 * B;
  const item = vit.channels * vit.height * vit.width;
  const rng = new HostRandom(2024);
  const data = Float32Array.from({ length: N * item }, () => rng.uniform());
  const config = scoreModelConfig(vit, { min: 0, max: 1 }, { source: 'bench' });
  const net = ScoreViT.fromStateDict(vit, initScoreStateDict(vit, 0));
  const trainer = new ScoreTrainer(net, config, { data, shape: [N, vit.channels, vit.height, vit.width] }, { seed: 0, batch: B });
  const losses: number[] = [];
  let kernels: KernelTime[] | null = null;
  let dispatches: number | null = null;
  const repeats: number[] = [];
  try {
    for (let i = 0; i < warmup; i++) losses.push(await trainer.trainStep());
    if (eng.gpu.hasTimestampQuery) {
      eng.startProfile();
      losses.push(await trainer.trainStep());
      const p = await eng.stopProfile();
      kernels = p.kernels;
      dispatches = p.dispatches;
      log(`profile of one step: ${p.dispatches} dispatches, ${p.submits} submits; GPU time summed over dispatches ${(p.kernels.reduce((s, k) => s + k.ns, 0) / 1e6).toFixed(1)} ms`);
      log(formatProfile(p.kernels, 1, 30));
    } else log('no timestamp-query: no per-kernel profile');
    for (let r = 0; r < repeatCount; r++) {
      const t0 = performance.now();
      for (let i = 0; i < steps; i++) losses.push(await trainer.trainStep());
      repeats.push((performance.now() - t0) / 1000 / steps);
    }
  } finally {
    trainer.dispose();
    net.dispose();
  }
  const secondsPerStep = median(repeats);
  log(`step: ${(secondsPerStep * 1000).toFixed(1)} ms (median of ${repeatCount} x ${steps} steps: ${repeats.map((s) => (s * 1000).toFixed(1)).join(', ')} ms), ${(1 / secondsPerStep).toFixed(2)} steps/s, ${(B / secondsPerStep).toFixed(1)} samples/s`);

  let matmulGflops: number | null = null;
  if (options.matmulRate ?? true) {
    const products = stepMatmuls(vit, B);
    const rows = await runMatmulBench(eng, { sizes: [], batched: null, probes: false, tfjs: false, shapes: products.map((p) => p.shape), targetSeconds: options.matmulSeconds ?? 0.3, repeats: 2, log });
    // Flop-weighted: the time all of the step's products take at their measured rates.
    let seconds = 0;
    let total = 0;
    rows.forEach((row, i) => {
      if ('error' in row.ours) throw new Error(`matmul ${row.shape}: ${row.ours.error}`);
      seconds += products[i].flops / (row.ours.gflops * 1e9);
      total += products[i].flops;
    });
    matmulGflops = total / seconds / 1e9;
  }
  const ratio = matmulGflops === null ? null : secondsPerStep / (flops / (matmulGflops * 1e9));
  if (matmulGflops !== null) {
    log(`matmul rate on the step's shapes (flop-weighted): ${matmulGflops.toFixed(2)} GFLOP/s; the step's ${(flops / 1e9).toFixed(3)} GFLOP at that rate: ${((flops / (matmulGflops * 1e9)) * 1000).toFixed(1)} ms`);
    log(`step / (FLOPs at the matmul rate): ${ratio!.toFixed(2)}x; the step runs at ${(flops / secondsPerStep / 1e9).toFixed(2)} GFLOP/s`);
  }
  return { adapter, secondsPerStep, repeats, samplesPerSecond: B / secondsPerStep, flops, matmulGflops, ratio, dispatches, kernels, losses };
}
