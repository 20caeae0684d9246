// The engine side of the config-f layer step alone (the `sgilo bench goals --fullsize` row without
// PyTorch): a warm-up step on config-f 128² (the pipelines), then timed steps at the full size,
// each its wall time (forward + backward + sync, nothing read back), the pool peak and the process
// peak RSS, and with --profile the per-kernel GPU time of one more step. Each profiled row is one
// kernel at one grid (the dispatch size tells the layers apart), so a row's FLOPs can be set
// against the FMA peak.
//
//   XDG_RUNTIME_DIR=/tmp node --import ./scripts/register-ts.mjs scripts/fullsize_profile.ts \
//       [--size 1024] [--layer 4] [--steps 1] [--profile] [--limit 40]
//
// Weights and inputs are seeded (as in bench/torch_rows.ts), so runs compare with each other;
// the values themselves are checked by scripts/fullsize.ts against PyTorch's.

import { backend } from '../engine/backend.ts';
import { init, type Engine } from '../engine/engine.ts';
import { HostRandom } from '../engine/reference/host.ts';
import { formatProfile } from '../engine/profiler.ts';
import { clearTape } from '../engine/tape.ts';
import { scope, tensor } from '../engine/tensor.ts';
import { layerStep } from '../nets/layer_step.ts';
import { StyleGAN2, configF, noiseSide, numLatents, numNoises } from '../nets/stylegan2.ts';
import { randomStateDict } from '../nets/stylegan2_checkpoint.ts';
import { loadAverage, peakRss, resetPeakRss } from './fullsize_util.ts';

const USAGE = 'usage: fullsize_profile.ts [--size 1024] [--layer 4] [--steps 1] [--profile] [--limit 40]';
const GIB = 2 ** 30;

function parse(args: string[]): { size: number; layer: number; steps: number; profile: boolean; limit: number } {
  const o = { size: 1024, layer: 4, steps: 1, profile: false, limit: 40 };
  for (let i = 0; i < args.length; i++) {
    const a = args[i];
    if (a === '--help') {
      console.log(USAGE);
      process.exit(0);
    } else if (a === '--profile') o.profile = true;
    else if (['--size', '--layer', '--steps', '--limit'].includes(a) && args[i + 1] !== undefined) {
      const v = Number(args[++i]);
      if (!Number.isInteger(v) || v < 0) throw new RangeError(`${a} must be a non-negative integer, got ${args[i]}`);
      o[a.slice(2) as 'size' | 'layer' | 'steps' | 'limit'] = v;
    } else throw new Error(`unknown option or missing value: ${a}\n${USAGE}`);
  }
  if (![128, 256, 512, 1024].includes(o.size)) throw new RangeError(`--size must be 128, 256, 512 or 1024, got ${o.size}`);
  if (o.steps < 1) throw new RangeError('--steps must be at least 1');
  return o;
}

/** One layer step of a seeded config-f generator; resolves to its wall ms. */
async function step(gen: StyleGAN2, layer: number, seed: number): Promise<number> {
  const c = gen.config;
  const rng = new HostRandom(seed);
  const randn = (shape: number[]) => tensor(Float32Array.from({ length: shape.reduce((a, b) => a * b, 1) }, () => rng.normal()), shape);
  const wplus = randn([1, numLatents(c), c.styleDim]);
  const upstream = randn([1, 3, c.size, c.size]);
  const noise = Array.from({ length: numNoises(c) }, (_, i) => randn([1, 1, noiseSide(i), noiseSide(i)]));
  return scope(async () => {
    const t0 = performance.now();
    const r = layerStep(gen, { wplus, noise, upstream }, layer);
    await backend().sync();
    const ms = performance.now() - t0;
    for (const [name, t] of [['grad.wplus', r.gradWplus], ['grad.features', r.gradFeatures]] as const) {
      const d = await t.readF32();
      const bad = d.findIndex((v) => !Number.isFinite(v));
      if (bad >= 0) throw new Error(`layer step: ${name}[${bad}] is ${d[bad]}`);
    }
    return ms;
  }).finally(() => {
    clearTape();
    for (const t of [wplus, upstream, ...noise]) t.dispose();
  });
}

/** Labels each profiled dispatch with its grid, so one kernel's layers get rows of their own. */
function labelGrids(eng: Engine): void {
  const record = eng.recordDispatch.bind(eng);
  eng.recordDispatch = (pipeline, bindGroup, x, y, z, label = 'dispatch') => record(pipeline, bindGroup, x, y, z, `${label} [${x},${y},${z}]`);
}

async function main(): Promise<void> {
  const o = parse(process.argv.slice(2));
  const eng = await init();
  const small = configF(128);
  const gs = StyleGAN2.fromStateDict(small, randomStateDict(small, 1));
  await step(gs, Math.min(o.layer, 3), 7);
  gs.dispose();
  const c = configF(o.size);
  const gen = StyleGAN2.fromStateDict(c, randomStateDict(c, 1));
  await eng.sync();
  console.log(`config-f ${o.size}² N=1 layer step (block ${o.layer}), ${eng.gpu.adapter.description}`);
  resetPeakRss();
  for (let s = 0; s < o.steps; s++) {
    eng.resetPeak();
    const cpu0 = process.cpuUsage();
    const ms = await step(gen, o.layer, 7);
    const cpu = process.cpuUsage(cpu0);
    console.log(`step ${s + 1}: ${(ms / 1000).toFixed(2)} s wall, ${((cpu.user + cpu.system) / 1e6).toFixed(1)} s CPU (all threads, reading back included), pool peak ${(eng.memory().peakBytesInUse / GIB).toFixed(3)} GiB, process peak RSS ${(peakRss() / GIB).toFixed(2)} GiB (load average ${loadAverage()})`);
  }
  if (o.profile) {
    labelGrids(eng);
    eng.startProfile();
    await step(gen, o.layer, 7);
    const p = await eng.stopProfile();
    const total = p.kernels.reduce((s, k) => s + k.ns, 0);
    console.log(`\nper-kernel GPU time, one profiled step: ${(total / 1e9).toFixed(2)} s summed, ${p.dispatches} dispatches, ${p.submits} submits (load average ${loadAverage()})\n`);
    console.log(formatProfile(p.kernels, 1, o.limit));
  }
  gen.dispose();
}

try {
  await main();
} catch (e) {
  console.error((e as Error).message);
  process.exitCode = 1;
}
process.exit(process.exitCode ?? 0);
