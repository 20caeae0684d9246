// The full-size check: a config-f generator (style 512, 8 mapping layers, channel multiplier 2) with
// the engine's seeded random weights, one intermediate-layer step (nets/layer_step.ts: image from W+,
// backward to W+ and the features after a block), its memory against the planner, and its values
// against PyTorch running rosinality's model.py on the same weights (scripts/fullsize_reference.py).
// Outside `npm test`: the 1024x1024 checkpoint is 133 MB and its backward takes minutes on a CPU.
//
//   node --import ./scripts/register-ts.mjs scripts/fullsize.ts make [--size 1024] [--out DIR]
//       writes DIR/generator.safetensors (seed 1) and DIR/inputs.safetensors (W+, noise, upstream,
//       z: also the inputs of `sgilo replay generator`)
//   /usr/bin/python3 scripts/fullsize_reference.py DIR [expected.json]
//       the reference: statistics and sampled elements of every output and gradient
//   node --import ./scripts/register-ts.mjs scripts/fullsize.ts run [DIR] [--expected FILE] [--layer 4]
//       runs the step, prints the planned and measured memory (pool peak, process peak RSS), the
//       time, saves the outputs and gradients (DIR/engine.safetensors) and compares them with the
//       expected file; exit 1 on a mismatch
//   node --import ./scripts/register-ts.mjs scripts/fullsize.ts compare DIR --expected FILE
//       the comparison alone, of what a run saved
// DIR defaults to out/fullsize/<size>; the committed expected values of 1024 are
// test/fixtures/fullsize/expected-1024.json.

import { mkdir } from 'node:fs/promises';
import { init } from '../engine/engine.ts';
import { readFileBytes, writeFileBytes } from '../engine/io/files.ts';
import { readSafetensors, writeSafetensors, type HostTensor } from '../engine/io/index.ts';
import { HostRandom } from '../engine/reference/host.ts';
import { clearTape } from '../engine/tape.ts';
import { scope, tensor, type Tensor } from '../engine/tensor.ts';
import { layerStep } from '../nets/layer_step.ts';
import { StyleGAN2, configF, noiseSide, numLatents, numNoises } from '../nets/stylegan2.ts';
import { randomStateDict, readGeneratorCheckpoint, writeGeneratorModel } from '../nets/stylegan2_checkpoint.ts';
import { planStyleGAN2Memory } from '../nets/stylegan2_plan.ts';
import { compareSamples, loadAverage, peakRss, processMemory, resetPeakRss, type Expected } from './fullsize_util.ts';

const USAGE = 'usage: fullsize.ts make [--size 1024] [--out DIR] | run [DIR] [--size 1024] [--layer 4] [--expected FILE] | compare DIR --expected FILE';
const MIB = 2 ** 20;
const mib = (b: number) => `${(b / MIB).toFixed(0)} MiB`;

function options(args: string[], known: string[]): { pos: string[]; opt: Map<string, string> } {
  const pos: string[] = [];
  const opt = new Map<string, string>();
  for (let i = 0; i < args.length; i++) {
    const a = args[i];
    if (a === '--help') {
      console.log(USAGE);
      process.exit(0);
    }
    if (!a.startsWith('--')) pos.push(a);
    else if (known.includes(a) && args[i + 1] !== undefined) opt.set(a.slice(2), args[++i]);
    else throw new Error(`unknown option or missing value: ${a}\n${USAGE}`);
  }
  return { pos, opt };
}

function sizeOf(opt: Map<string, string>): number {
  const size = Number(opt.get('size') ?? '1024');
  if (![32, 64, 128, 256, 512, 1024].includes(size)) throw new RangeError(`--size must be a power of two in 32..1024, got ${opt.get('size')}`);
  return size;
}

async function make(args: string[]): Promise<void> {
  const { pos, opt } = options(args, ['--size', '--out']);
  if (pos.length) throw new Error(USAGE);
  const size = sizeOf(opt);
  const dir = opt.get('out') ?? `out/fullsize/${size}`;
  const c = configF(size);
  await mkdir(dir, { recursive: true });
  const rng = new HostRandom(2);
  const randn = (shape: number[], scale = 1, shift = 0) => {
    const n = shape.reduce((a, b) => a * b, 1);
    return { dtype: 'float32' as const, shape, data: Float32Array.from({ length: n }, () => rng.normal() * scale + shift) };
  };
  const latentAvg = randn([c.styleDim], 0.3);
  await writeFileBytes(`${dir}/generator.safetensors`, writeGeneratorModel({ config: c, stateDict: randomStateDict(c, 1), latentAvg, format: 'seeded random weights (randomStateDict, seed 1)', network: 'g_ema', networks: ['g_ema'] }));
  const inputs = new Map<string, HostTensor>();
  const wplus = randn([1, numLatents(c), c.styleDim], 0.5);
  for (let i = 0; i < wplus.data.length; i++) wplus.data[i] += latentAvg.data[i % c.styleDim];
  inputs.set('in.wplus', wplus);
  for (let i = 0; i < numNoises(c); i++) inputs.set(`in.noise.${i}`, randn([1, 1, noiseSide(i), noiseSide(i)]));
  inputs.set('in.upstream', randn([1, 3, size, size]));
  inputs.set('in.z', randn([1, c.styleDim])); // last, so the step's inputs do not depend on it; `replay generator` reads it
  await writeFileBytes(`${dir}/inputs.safetensors`, writeSafetensors(inputs));
  console.log(`wrote ${dir}/generator.safetensors and ${dir}/inputs.safetensors (config-f ${size})`);
}

async function run(args: string[]): Promise<number> {
  const { pos, opt } = options(args, ['--size', '--layer', '--expected']);
  if (pos.length > 1) throw new Error(USAGE);
  const dir = pos[0] ?? `out/fullsize/${sizeOf(opt)}`;
  const layer = Number(opt.get('layer') ?? '4');
  const t0 = performance.now();
  const eng = await init();
  const mem = [`process after engine init: ${processMemory()}`];
  let gen: StyleGAN2;
  {
    // The checkpoint's host copies live only in this block: once uploaded they are garbage.
    const loaded = await readGeneratorCheckpoint(await readFileBytes(`${dir}/generator.safetensors`));
    gen = StyleGAN2.fromStateDict(loaded.config, loaded.stateDict, loaded.latentAvg);
  }
  await eng.sync();
  const c = gen.config;
  if (!(layer >= 0 && layer < Math.log2(c.size) - 2)) throw new RangeError(`--layer ${layer} outside 0..${Math.log2(c.size) - 3}`);
  mem.push(`process after loading the generator: ${processMemory()}`);
  const file = readSafetensors(await readFileBytes(`${dir}/inputs.safetensors`)).tensors;
  const input = (name: string): Tensor => {
    const t = file.get(name);
    if (!t || t.dtype !== 'float32') throw new Error(`${dir}/inputs.safetensors: no float32 "${name}"`);
    return tensor(t.data as Float32Array, t.shape);
  };
  const plan = await planStyleGAN2Memory(c, 1, { layer, device: eng.gpu });
  const tLoad = performance.now();
  const rssBefore = resetPeakRss();
  const poolBefore = eng.memory();
  const cpuBefore = process.cpuUsage();
  eng.resetPeak();
  const got = new Map<string, Float32Array>();
  await scope(async () => {
    const noise = Array.from({ length: numNoises(c) }, (_, i) => input(`in.noise.${i}`));
    const r = layerStep(gen, { wplus: input('in.wplus'), noise, upstream: input('in.upstream') }, layer);
    got.set('out.image', await r.image.readF32());
    got.set(`out.features.${layer}`, await r.features.readF32());
    got.set('grad.wplus', await r.gradWplus.readF32());
    got.set(`grad.features.${layer}`, await r.gradFeatures.readF32());
  }).finally(clearTape);
  for (const [name, data] of got) {
    const bad = data.findIndex((v) => !Number.isFinite(v));
    if (bad >= 0) throw new Error(`layer step: ${name}[${bad}] is ${data[bad]}`);
  }
  const tStep = performance.now();
  const cpu = process.cpuUsage(cpuBefore);
  const pool = eng.memory();
  const proc = processMemory();
  const peak = peakRss();
  gen.dispose();
  console.log(`config-f ${c.size}, batch 1, image from W+, backward to W+ and the features after block ${layer}`);
  console.log(`time: load ${((tLoad - t0) / 1000).toFixed(1)} s, step ${((tStep - tLoad) / 1000).toFixed(1)} s wall, ${((cpu.user + cpu.system) / 1e6).toFixed(1)} s CPU (all threads; load average ${loadAverage()})`);
  console.log(mem.join('\n'));
  console.log(`process during the step: ${proc} (peak RSS measured from ${mib(rssBefore)})`);
  console.log(`pool peak in use: planned ${mib(plan.peakBytes)}, measured ${mib(pool.peakBytesInUse)}; pool held: planned ${mib(plan.poolBytes)}, measured ${mib(pool.bytesAllocated)} (before the step ${mib(poolBefore.bytesAllocated)})`);
  // What the process holds outside the pool (Node, V8, Dawn, the driver, pipelines) is measured
  // before the step: RSS then minus the pool then. The prediction adds the planned pool to it.
  const overhead = rssBefore - poolBefore.bytesAllocated;
  const predicted = overhead + plan.poolBytes;
  console.log(`process peak RSS: predicted ${mib(predicted)} (planned pool ${mib(plan.poolBytes)} + ${mib(overhead)} outside the pool before the step), measured ${mib(peak)} (${(((peak - predicted) / predicted) * 100).toFixed(1)}%)`);
  const saved = new Map<string, HostTensor>();
  for (const [name, data] of got) saved.set(name, { dtype: 'float32', shape: [data.length], data });
  await writeFileBytes(`${dir}/engine.safetensors`, writeSafetensors(saved));
  const expectedPath = opt.get('expected');
  return expectedPath ? compare(got, expectedPath) : 0;
}

async function compare(got: Map<string, Float32Array>, expectedPath: string): Promise<number> {
  const expected = JSON.parse(new TextDecoder().decode(await readFileBytes(expectedPath))) as Expected;
  return compareSamples(got, expected, console.log) ? 0 : 1;
}

/** `compare DIR --expected FILE`: the values a `run` saved in DIR/engine.safetensors against the reference. */
async function compareSaved(args: string[]): Promise<number> {
  const { pos, opt } = options(args, ['--expected']);
  const expectedPath = opt.get('expected');
  if (pos.length !== 1 || !expectedPath) throw new Error(USAGE);
  const got = new Map<string, Float32Array>();
  for (const [name, t] of readSafetensors(await readFileBytes(`${pos[0]}/engine.safetensors`)).tensors) got.set(name, t.data as Float32Array);
  return compare(got, expectedPath);
}


const [cmd, ...rest] = process.argv.slice(2);
try {
  if (cmd === 'make') await make(rest);
  else if (cmd === 'run') process.exitCode = await run(rest);
  else if (cmd === 'compare') process.exitCode = await compareSaved(rest);
  else throw new Error(USAGE);
} catch (e) {
  console.error((e as Error).message);
  process.exitCode = 1;
}
process.exit(process.exitCode ?? 0);
