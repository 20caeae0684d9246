// `sgilo bench paper-size [--quick]`: the paper-size workloads on this adapter, each with time and
// GFLOP/s: the StyleGAN2 config-f synthesis (random weights) at 1024x1024, forward and forward +
// backward (gradients of W+ and the noise maps) at batch 1 and 4, and SGILO steps at 1024x1024
// with the paper-size score ViT (D 1024, depth 8, 1 head of 64, MLP 4096) as the prior on the
// features after block 3 ([512, 32, 32], 1024 tokens). `--quick` runs the same code at 64x64 with a
// D 64, depth 1 ViT and batch 1 only: a check of the path on a CPU adapter, not a measurement.
//
// Timing: StyleGAN2 passes as bench/stylegan2.ts times config-f (one warm-up pass, then single
// passes, GPU timestamps where available). SGILO: runMethod (samplers/inverse/intermediate_layer.ts)
// with round 0 (W+ and noise) and one round at block 4; each step reads its loss back, so the wall
// time between two onStep callbacks is one step; the median over the block-4 round's steps after
// its first is reported.
//
// FLOPs counted: the modulated convolutions only for the generator (2 per multiply-add, twice for
// forward + backward, as bench/stylegan2.ts); for the SGILO step the convolutions of blocks 4 and
// up, forward and input gradient, plus the ViT forward's matmuls and attention products.

import { describeAdapter } from '../engine/device.ts';
import type { Engine } from '../engine/engine.ts';
import { HostRandom } from '../engine/reference/host.ts';
import { StyleGAN2, configF, type StyleGAN2Config } from '../nets/stylegan2.ts';
import { randomStateDict } from '../nets/stylegan2_checkpoint.ts';
import { ScoreViT, type ScoreViTConfig } from '../nets/score_vit.ts';
import { initScoreStateDict } from '../samplers/score/checkpoint.ts';
import { runMethod, type Problem } from '../samplers/inverse/intermediate_layer.ts';
import { MappingProxy } from '../samplers/inverse/mapping_proxy.ts';
import { FeaturePrior } from '../samplers/inverse/prior.ts';
import { methodConfig } from '../samplers/inverse/setup.ts';
import { takeMeasurements } from '../samplers/inverse/reconstruct.ts';
import { makeOperator } from '../samplers/inverse/operators/index.ts';
import { makePasses, synthesisMacs } from './stylegan2.ts';
import { timeBatch, type TimedTarget } from './timing.ts';

export interface PaperSizeOptions {
  quick?: boolean;
  log?: (line: string) => void;
}

export interface PaperSizeRow {
  workload: string;
  ms: number;
  gflops: number;
  note: string;
}

/** The block whose input features the prior models: the features after block 3. */
const PRIOR_BLOCK = 4;

/** Multiply-adds of the ViT forward at batch B: token embedding in and out, attention and MLP per layer. */
export function vitForwardMacs(c: ScoreViTConfig, B: number): number {
  const T = c.height * c.width;
  const inner = c.heads * c.dimHead;
  const perLayer = T * c.dim * 3 * inner + 2 * T * T * inner + T * inner * c.dim + 2 * T * c.dim * c.mlp;
  return B * (2 * T * c.channels * c.dim + c.depth * perLayer);
}

function engineTarget(eng: Engine): TimedTarget {
  return { device: eng.device, timestamps: eng.gpu.hasTimestampQuery, flush: () => eng.submit(), idle: () => eng.sync() };
}

async function generatorRows(eng: Engine, gen: StyleGAN2, batches: number[], log: (line: string) => void): Promise<PaperSizeRow[]> {
  const target = engineTarget(eng);
  const rows: PaperSizeRow[] = [];
  for (const N of batches) {
    const p = makePasses(gen, N);
    try {
      const img = await p.check();
      if (!img.every(Number.isFinite)) throw new Error(`config-f ${gen.config.size} N=${N}: the forward pass produced non-finite values`);
      const macs = synthesisMacs(gen.config, N);
      for (const [pass, fn, flops] of [['fwd', p.fwd, 2 * macs], ['fwd+bwd', p.fwdBwd, 4 * macs]] as const) {
        await timeBatch(target, 1, fn); // pipelines and pool buffers
        const t = await timeBatch(target, 1, fn);
        const row = { workload: `StyleGAN2 ${gen.config.channels[4] === 512 ? 'config-f' : 'reduced'} ${gen.config.size}^2 N=${N} ${pass}`, ms: t.ms, gflops: flops / (t.ms / 1000) / 1e9, note: `conv GFLOP/s; ${t.source}` };
        log(`  ${row.workload}: ${row.ms.toFixed(2)} ms, ${row.gflops.toFixed(1)} GFLOP/s`);
        rows.push(row);
      }
    } finally {
      p.dispose();
    }
  }
  return rows;
}

async function sgiloRow(gen: StyleGAN2, vit: ScoreViTConfig, steps: number, log: (line: string) => void): Promise<PaperSizeRow> {
  const c: StyleGAN2Config = gen.config;
  const N = 1;
  const S = c.size;
  const proxy = new MappingProxy({ mean: new Float32Array(c.styleDim), std: new Float32Array(c.styleDim).fill(1), samples: 0 });
  const net = ScoreViT.fromStateDict(vit, initScoreStateDict(vit, 0));
  const priors = new Map([[PRIOR_BLOCK, new FeaturePrior(net, -1, 1)]]);
  const { operator, noiseStd } = makeOperator('inpaint-random:0.05', [3, S, S], { seed: 0 });
  const rng = new HostRandom(3);
  const images = Float32Array.from({ length: N * 3 * S * S }, () => 2 * rng.uniform() - 1);
  const y = takeMeasurements(operator, images, N, noiseStd, 0).keep();
  try {
    const problem: Problem = { generator: gen, proxy, forward: (x) => operator.apply(x), y, priors };
    const times: number[] = [];
    let last = 0;
    await runMethod(problem, methodConfig('sgilo', steps, [PRIOR_BLOCK]), {
      seed: 0,
      onRound: (r) => {
        if (r.when === 'start') last = performance.now();
      },
      onStep: (s) => {
        const now = performance.now();
        if (s.round === 1) {
          if (!Number.isFinite(s.loss)) throw new Error(`SGILO step ${s.step} (block ${s.block}): loss is ${s.loss}`);
          times.push(now - last);
        }
        last = now;
      },
    });
    const kept = times.length > 1 ? times.slice(1) : times;
    const ms = [...kept].sort((a, b) => a - b)[Math.floor((kept.length - 1) / 2)];
    const flops = 4 * synthesisMacs(c, N, PRIOR_BLOCK) + 2 * vitForwardMacs(vit, N);
    const row = {
      workload: `SGILO step ${S}^2 N=${N}, prior ViT D ${vit.dim} depth ${vit.depth} on [${vit.channels}, ${vit.height}, ${vit.width}]`,
      ms,
      gflops: flops / (ms / 1000) / 1e9,
      note: `wall per step (reads its loss), median of ${kept.length}; ${(flops / 1e9).toFixed(1)} GFLOP counted`,
    };
    log(`  ${row.workload}: ${row.ms.toFixed(2)} ms, ${row.gflops.toFixed(1)} GFLOP/s`);
    return row;
  } finally {
    y.dispose();
    operator.dispose?.();
    proxy.dispose();
    net.dispose();
  }
}

export async function runPaperSizeBench(eng: Engine, options: PaperSizeOptions = {}): Promise<PaperSizeRow[]> {
  const log = options.log ?? ((line: string) => console.log(line));
  const quick = options.quick ?? false;
  // --quick: 64x64 with 32 channels at every resolution (config-f's 512 take minutes on a CPU adapter).
  const c: StyleGAN2Config = quick ? { ...configF(64), channels: { 4: 32, 8: 32, 16: 32, 32: 32, 64: 32 } } : configF(1024);
  const vit: ScoreViTConfig = quick
    ? { channels: 32, height: 32, width: 32, dim: 64, depth: 1, heads: 1, dimHead: 64, mlp: 128 }
    : { channels: 512, height: 32, width: 32, dim: 1024, depth: 8, heads: 1, dimHead: 64, mlp: 4096 };
  log(`paper-size workloads${quick ? ' (--quick: 64x64, 32 channels, a small ViT; a path check, not a measurement)' : ''} on ${describeAdapter(eng.gpu.adapter)}`);
  const gen = StyleGAN2.fromStateDict(c, randomStateDict(c));
  const rows: PaperSizeRow[] = [];
  try {
    rows.push(...(await generatorRows(eng, gen, quick ? [1] : [1, 4], log)));
    rows.push(await sgiloRow(gen, vit, quick ? 2 : 4, log));
  } finally {
    gen.dispose();
  }
  const head = ['workload', 'ms', 'GFLOP/s', 'note'];
  const body = rows.map((r) => [r.workload, r.ms.toFixed(2), r.gflops.toFixed(1), r.note]);
  const w = head.map((_, i) => Math.max(...[head, ...body].map((r) => r[i].length)));
  const line = (r: string[]) => r.map((s, i) => (i === 1 || i === 2 ? s.padStart(w[i]) : i === 3 ? s : s.padEnd(w[i]))).join(' | ');
  log('');
  log([line(head), w.map((n) => '-'.repeat(n)).join('-|-'), ...body.map(line)].join('\n'));
  return rows;
}
