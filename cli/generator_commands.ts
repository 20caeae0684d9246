// CLI commands around StyleGAN2 checkpoints: `inspect`, `generate`, `replay generator`.

import { readFileBytes, writeFileBytes } from '../engine/io/files.ts';
import { flattenTensors, loadCheckpoint, readSafetensors, writeSafetensors, type HostTensor } from '../engine/io/index.ts';
import { scope } from '../engine/tensor.ts';
import { randomNormal } from '../engine/random.ts';
import { numLatents, numNoises } from '../nets/stylegan2.ts';
import { loadGenerator, readGeneratorCheckpoint } from '../nets/stylegan2_checkpoint.ts';
import { replayGenerator, type TensorMap } from '../nets/replay_generator.ts';
import { writeImageGrid } from '../engine/io/png.ts';

/** `sgilo inspect <checkpoint>`: the inferred generator config (if any) and every tensor. */
export async function inspectCommand(args: string[]): Promise<number> {
  const [file] = args;
  if (!file) throw new Error('usage: sgilo inspect <checkpoint.pt|.safetensors>');
  const bytes = await readFileBytes(file);
  const root = await loadCheckpoint(bytes);
  const tensors = flattenTensors(root);
  try {
    const g = await readGeneratorCheckpoint(bytes);
    console.log(`StyleGAN2 generator: ${JSON.stringify(g.config)}`);
    console.log(`  W+ rows: ${numLatents(g.config)}, noise maps: ${numNoises(g.config)}, latent_avg: ${g.latentAvg ? 'yes' : 'no'}`);
  } catch (e) {
    console.log(`not a rosinality StyleGAN2 generator (${(e as Error).message})`);
  }
  let total = 0;
  console.log(`\n${tensors.size} tensors:`);
  for (const [name, t] of tensors) {
    const n = t.shape.reduce((a, b) => a * b, 1);
    total += n;
    console.log(`  ${name.padEnd(48)} ${t.dtype.padEnd(8)} [${t.shape.join(', ')}]`);
  }
  console.log(`${total.toLocaleString('en-US')} values`);
  return 0;
}

function flag(args: string[], name: string, fallback: string): string {
  const i = args.indexOf(`--${name}`);
  return i >= 0 && args[i + 1] !== undefined ? args[i + 1] : fallback;
}

/** `sgilo generate <checkpoint> [--seeds 0-15] [--psi 1] [--out out/generate.png]`. */
export async function generateCommand(args: string[]): Promise<number> {
  const file = args[0];
  if (!file || file.startsWith('--')) throw new Error('usage: sgilo generate <checkpoint> [--seeds 0-15] [--psi 0.7] [--out out/generate.png] [--cols 8]');
  const seeds = parseSeeds(flag(args, 'seeds', '0-15'));
  const psi = Number(flag(args, 'psi', '1'));
  if (!(psi >= 0 && psi <= 1)) throw new RangeError(`--psi must be in [0, 1], got ${flag(args, 'psi', '1')}`);
  const out = flag(args, 'out', 'out/generate.png');
  const cols = Number(flag(args, 'cols', String(Math.min(8, seeds.length))));
  const g = await loadGenerator(await readFileBytes(file));
  const t0 = performance.now();
  const images = await scope(async () => {
    const list: Float32Array[] = [];
    for (const seed of seeds) {
      const z = randomNormal([1, g.config.styleDim], { seed });
      list.push(await g.generate(z, { psi }).readF32());
    }
    return list;
  });
  g.dispose();
  await writeImageGrid(out, images, g.config.size, cols);
  console.log(`wrote ${out}: ${seeds.length} images (seeds ${seeds[0]}..${seeds[seeds.length - 1]}, psi ${psi}) in ${((performance.now() - t0) / 1000).toFixed(2)} s`);
  return 0;
}

function parseSeeds(spec: string): number[] {
  const seeds: number[] = [];
  for (const part of spec.split(',')) {
    const m = /^(\d+)(?:-(\d+))?$/.exec(part.trim());
    if (!m) throw new RangeError(`--seeds: cannot parse "${part}" (use e.g. 0-15 or 1,5,9)`);
    const a = Number(m[1]);
    const b = m[2] === undefined ? a : Number(m[2]);
    if (b < a || b - a > 4096) throw new RangeError(`--seeds: bad range "${part}"`);
    for (let s = a; s <= b; s++) seeds.push(s);
  }
  return seeds;
}

/** `sgilo replay generator <checkpoint> <inputs.safetensors> <out.safetensors>`. */
export async function replayCommand(args: string[]): Promise<number> {
  const [what, ckptPath, inputsPath, outPath] = args;
  if (what !== 'generator' || !ckptPath || !inputsPath || !outPath) {
    throw new Error('usage: sgilo replay generator <checkpoint> <inputs.safetensors> <out.safetensors>');
  }
  const g = await loadGenerator(await readFileBytes(ckptPath));
  const file = readSafetensors(await readFileBytes(inputsPath));
  const inputs: TensorMap = new Map();
  for (const [name, t] of file.tensors) {
    if (!name.startsWith('in.')) continue; // only inputs: outputs in the file are never read
    if (t.dtype !== 'float32') throw new Error(`${inputsPath}: "${name}" is ${t.dtype}, expected float32`);
    inputs.set(name, { dtype: 'float32', shape: t.shape, data: t.data as Float32Array });
  }
  const out = await replayGenerator(g, inputs);
  g.dispose();
  const tensors: Map<string, HostTensor> = out;
  await writeFileBytes(outPath, writeSafetensors(tensors));
  console.log(`wrote ${outPath}: ${tensors.size} tensors (${[...tensors.keys()].join(', ')})`);
  return 0;
}
