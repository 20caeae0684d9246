// Whole-generator benchmark: StyleGAN2 synthesis forward, and forward + backward (gradients of W+
// and of the noise maps, the ILO/SGILO step), of the Fashion-MNIST model (models/fashion32) at
// batch 1 and 8, and with `full` of config-f 1024x1024 with random weights (minutes on a software
// adapter). No peer: tfjs has no StyleGAN2.
//
// Timing: bench/timing.ts `measure` (warm-up, calibration, GPU timestamps where available, engine
// sync around each batch of passes); config-f is timed over single passes after one warm-up pass.
// Each pass runs inside a scope, so its intermediates return to the pool before the next one.
//
// FLOPs counted: the modulated convolutions only, 2 * multiply-adds per forward (planModulatedConv);
// forward + backward counts them twice (the input gradient repeats the conv; no weight gradient is
// asked for). The "% of FMA peak" column uses bench/probes.ts's FMA probe.
//
// Per-kernel breakdown (`breakdown`, default on for the Fashion model): one extra pass in which
// every dispatch is submitted alone between two timestamp passes (the engine's `recordDispatch` is
// wrapped on the instance for that pass only). Serializing adds idle gaps, so the per-kernel times
// add up to more than the pipelined pass; the shares are what it is for.
//
// Wire-up for the CLI: `await runStyleGAN2Bench(eng, { full: args.includes('--full') })`
// (`sgilo bench stylegan2 [--full]`).

import { describeAdapter } from '../engine/device.ts';
import type { Engine } from '../engine/engine.ts';
import { readFileBytes } from '../engine/io/files.ts';
import { HostRandom } from '../engine/reference/host.ts';
import { planModulatedConv } from '../engine/ops/modulated_conv_plan.ts';
import { grad } from '../engine/tape.ts';
import { scope, tensor, type Tensor } from '../engine/tensor.ts';
import { StyleGAN2, blockResolution, configF, noiseSide, numBlocks, numLatents, numNoises, type StyleGAN2Config } from '../nets/stylegan2.ts';
import { randomStateDict, readGeneratorCheckpoint } from '../nets/stylegan2_checkpoint.ts';
import { runFmaPeak } from './probes.ts';
import { measure, timeBatch, type TimedTarget } from './timing.ts';

export interface StyleGAN2BenchOptions {
  /** Also config-f 1024x1024 (random weights). */
  full?: boolean;
  /** Image size of the `full` run (default 1024; smaller for a quick check of the path). */
  fullSize?: number;
  /** Fashion batches (default [1, 8]). */
  batches?: number[];
  /** Per-kernel breakdown of the Fashion passes (default true). */
  breakdown?: boolean;
  /** FMA peak probe for the last column (default true). */
  probes?: boolean;
  targetSeconds?: number;
  /** Checkpoint of the Fashion model (default models/fashion32/fashion32-stylegan2.pt). */
  model?: string;
  log?: (line: string) => void;
}

export interface StyleGAN2BenchRow {
  model: string;
  batch: number;
  pass: 'fwd' | 'fwd+bwd';
  msPerPass: number;
  convGflops: number;
  iterations: number;
}

/** Multiply-adds of every modulated conv of the synthesis network at batch N (of blocks fromBlock.. only). */
export function synthesisMacs(c: StyleGAN2Config, N: number, fromBlock = 0): number {
  let macs = 0;
  const conv = (ci: number, co: number, H: number, k: number, up: boolean) => (macs += planModulatedConv([N, ci, H, H], [co, ci, k, k], [N, ci], { upsample: up, demodulate: k === 3 }).macs);
  if (fromBlock === 0) {
    conv(c.channels[4], c.channels[4], 4, 3, false);
    conv(c.channels[4], 3, 4, 1, false);
  }
  for (let k = Math.max(1, fromBlock); k < numBlocks(c); k++) {
    const rin = blockResolution(k - 1);
    const r = blockResolution(k);
    conv(c.channels[rin], c.channels[r], rin, 3, true);
    conv(c.channels[r], c.channels[r], r, 3, false);
    conv(c.channels[r], 3, r, 1, false);
  }
  return macs;
}

function engineTarget(eng: Engine): TimedTarget {
  return { device: eng.device, timestamps: eng.gpu.hasTimestampQuery, flush: () => eng.submit(), idle: () => eng.sync() };
}

export interface Passes {
  fwd: () => void;
  fwdBwd: () => void;
  /** The image of one forward, for a finiteness check. */
  check: () => Promise<Float32Array>;
  dispose: () => void;
}

export function makePasses(gen: StyleGAN2, N: number, seed = 5): Passes {
  const c = gen.config;
  const rng = new HostRandom(seed);
  const randn = (shape: number[], s = 1) => tensor(Float32Array.from({ length: shape.reduce((a, b) => a * b, 1) }, () => s * rng.normal()), shape).keep();
  const wplus = randn([N, numLatents(c), c.styleDim]);
  const noise = Array.from({ length: numNoises(c) }, (_, i) => randn([N, 1, noiseSide(i), noiseSide(i)]));
  const R = randn([N, 3, c.size, c.size]);
  const leaves: Tensor[] = [wplus, ...noise];
  return {
    fwd: () => scope(() => void gen.synthesis({ wplus, noise })),
    fwdBwd: () =>
      scope(() => {
        for (const t of leaves) t.requireGrad();
        try {
          grad(gen.synthesis({ wplus, noise }), leaves, { upstream: R });
        } finally {
          for (const t of leaves) t.requireGrad(false);
        }
      }),
    check: () => scope(() => gen.synthesis({ wplus, noise }).readF32()),
    dispose: () => [...leaves, R].forEach((t) => t.dispose()),
  };
}

/** One pass with every dispatch timed alone (see the file comment): ms per kernel, dispatch counts. */
async function kernelBreakdown(eng: Engine, pass: () => void): Promise<Map<string, { ms: number; count: number }>> {
  const MAX = 2048; // dispatches stamped (4096 timestamps, Dawn's query-set limit)
  const qs = eng.device.createQuerySet({ type: 'timestamp', count: 2 * MAX });
  const resolve = eng.device.createBuffer({ size: 16 * MAX, usage: GPUBufferUsage.QUERY_RESOLVE | GPUBufferUsage.COPY_SRC });
  const readback = eng.device.createBuffer({ size: 16 * MAX, usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST });
  const labels: string[] = [];
  const stamp = (index: number) => {
    const enc = eng.device.createCommandEncoder();
    const writes: GPUComputePassTimestampWrites = index % 2 ? { querySet: qs, endOfPassWriteIndex: index } : { querySet: qs, beginningOfPassWriteIndex: index };
    enc.beginComputePass({ timestampWrites: writes }).end();
    eng.device.queue.submit([enc.finish()]);
  };
  const original = eng.recordDispatch;
  eng.recordDispatch = function (pipeline, bindGroup, x, y, z) {
    if (labels.length >= MAX) return original.call(eng, pipeline, bindGroup, x, y, z);
    eng.submit();
    stamp(2 * labels.length);
    original.call(eng, pipeline, bindGroup, x, y, z);
    eng.submit();
    stamp(2 * labels.length + 1);
    labels.push(pipeline.label || '?');
  };
  try {
    pass();
  } finally {
    delete (eng as { recordDispatch?: unknown }).recordDispatch; // back to the prototype's method
  }
  await eng.sync();
  const enc = eng.device.createCommandEncoder();
  enc.resolveQuerySet(qs, 0, 2 * labels.length, resolve, 0);
  enc.copyBufferToBuffer(resolve, 0, readback, 0, 16 * labels.length);
  eng.device.queue.submit([enc.finish()]);
  await readback.mapAsync(GPUMapMode.READ);
  const t = new BigUint64Array(readback.getMappedRange().slice(0, 16 * labels.length));
  readback.unmap();
  const out = new Map<string, { ms: number; count: number }>();
  labels.forEach((label, i) => {
    const e = out.get(label) ?? { ms: 0, count: 0 };
    e.ms += Math.max(0, Number(t[2 * i + 1] - t[2 * i])) / 1e6;
    e.count++;
    out.set(label, e);
  });
  qs.destroy();
  resolve.destroy();
  readback.destroy();
  return out;
}

function formatBreakdown(title: string, b: Map<string, { ms: number; count: number }>): string[] {
  const total = [...b.values()].reduce((s, e) => s + e.ms, 0);
  const rows = [...b].sort((x, y) => y[1].ms - x[1].ms);
  const w = Math.max(6, ...rows.map(([k]) => k.length));
  const lines = [`${title} (serialized, sum ${total.toFixed(2)} ms)`, `  ${'kernel'.padEnd(w)}  dispatches        ms   share`];
  for (const [k, e] of rows) lines.push(`  ${k.padEnd(w)}  ${String(e.count).padStart(10)}  ${e.ms.toFixed(3).padStart(8)}  ${((100 * e.ms) / total).toFixed(1).padStart(5)}%`);
  return lines;
}

export async function runStyleGAN2Bench(eng: Engine, options: StyleGAN2BenchOptions = {}): Promise<StyleGAN2BenchRow[]> {
  const log = options.log ?? ((line: string) => console.log(line));
  const target = engineTarget(eng);
  const targetSeconds = options.targetSeconds ?? 0.5;
  log(`StyleGAN2 generator bench on ${describeAdapter(eng.gpu.adapter)}; timer: ${eng.gpu.hasTimestampQuery ? 'GPU timestamps' : 'wall clock'}`);
  const peak = options.probes === false ? null : (await runFmaPeak({ targetSeconds: 0.3, repeats: 2 })).value;
  if (peak) log(`FMA peak probe: ${peak.toFixed(1)} GFLOP/s`);

  const rows: StyleGAN2BenchRow[] = [];
  const breakdowns: string[] = [];
  const bench = async (label: string, gen: StyleGAN2, N: number, single: boolean, breakdown: boolean) => {
    const p = makePasses(gen, N);
    try {
      const img = await p.check();
      if (!img.every(Number.isFinite)) throw new Error(`${label}: the forward pass produced non-finite values`);
      const macs = synthesisMacs(gen.config, N);
      for (const [pass, fn, flops] of [['fwd', p.fwd, 2 * macs], ['fwd+bwd', p.fwdBwd, 4 * macs]] as const) {
        let ms: number;
        let iterations: number;
        if (single) {
          // One pass each: the pipelines are warm from the Fashion model; one untimed forward
          // first creates the pool's buffers (the backward's come from the forward's leftovers or new).
          if (pass === 'fwd') await timeBatch(target, 1, fn);
          const t = await timeBatch(target, 1, fn);
          [ms, iterations] = [t.ms, 1];
        } else {
          const t = await measure(target, fn, { targetSeconds, repeats: 2, maxIterations: 200 });
          [ms, iterations] = [t.ms / t.iterations, t.iterations];
        }
        rows.push({ model: label, batch: N, pass, msPerPass: ms, convGflops: flops / (ms / 1000) / 1e9, iterations });
        log(`  ${label} N=${N} ${pass}: ${ms.toFixed(2)} ms per pass (x${iterations})`);
        if (breakdown) breakdowns.push(...formatBreakdown(`${label} N=${N} ${pass}`, await kernelBreakdown(eng, fn)), '');
      }
    } finally {
      p.dispose();
    }
  };

  const path = options.model ?? new URL('../models/fashion32/fashion32-stylegan2.pt', import.meta.url).pathname;
  const ckpt = await readGeneratorCheckpoint(await readFileBytes(path));
  const fashion = StyleGAN2.fromStateDict(ckpt.config, ckpt.stateDict, ckpt.latentAvg);
  try {
    for (const N of options.batches ?? [1, 8]) await bench('fashion32', fashion, N, false, options.breakdown ?? true);
  } finally {
    fashion.dispose();
  }
  if (options.full) {
    const c = configF(options.fullSize ?? 1024);
    const gen = StyleGAN2.fromStateDict(c, randomStateDict(c));
    try {
      await bench(`config-f ${c.size}`, gen, 1, true, false);
    } finally {
      gen.dispose();
    }
  }

  log('');
  log(formatStyleGAN2Table(rows, peak));
  if (!options.full) log('\n(config-f 1024x1024: pass `full`; minutes on a software adapter)');
  if (breakdowns.length) log(['', ...breakdowns].join('\n'));
  return rows;
}

export function formatStyleGAN2Table(rows: StyleGAN2BenchRow[], fmaPeak: number | null): string {
  const head = ['model', 'batch', 'pass', 'ms / pass', 'images/s', 'conv GFLOP/s', '% of FMA peak'];
  const body = rows.map((r) => [
    r.model,
    String(r.batch),
    r.pass,
    r.msPerPass.toFixed(2),
    ((1000 * r.batch) / r.msPerPass).toPrecision(3),
    r.convGflops.toFixed(2),
    fmaPeak ? `${((100 * r.convGflops) / fmaPeak).toFixed(1)}%` : '-',
  ]);
  const all = [head, ...body];
  const w = head.map((_, i) => Math.max(...all.map((r) => r[i].length)));
  const line = (r: string[]) => r.map((s, i) => (i < 3 ? s.padEnd(w[i]) : s.padStart(w[i]))).join(' | ');
  return [line(head), w.map((n) => '-'.repeat(n)).join('-|-'), ...body.map(line)].join('\n');
}
