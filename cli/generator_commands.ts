// CLI commands that run checkpoints: `generate` and `replay generator|score` (reading the files as
// the flags say: cli/checkpoint_commands.ts).

import { readSafetensors, writeSafetensors, type HostTensor } from '../engine/io/index.ts';
import { scope } from '../engine/tensor.ts';
import { randomNormal } from '../engine/random.ts';
import { StyleGAN2 } from '../nets/stylegan2.ts';
import { replayGenerator, type TensorMap } from '../nets/replay_generator.ts';
import { writeFigure } from '../engine/io/png.ts';
import type { FigureSpec } from '../engine/io/figure.ts';
import { replayScore } from '../nets/replay_score.ts';
import type { Parsed } from './args.ts';
import { writeAtomic, type Output } from './outputs.ts';
import { assertFinite, loadAs } from './checks.ts';
import { readGeneratorFile, readScoreFile } from './checkpoint_commands.ts';

/** `sgilo generate <checkpoint> [--seeds 0-15] [--psi 1] [--cols C] [--network G_ema|G] [--no-clamp]`: a labelled grid (one seed per panel). */
export async function generateCommand(p: Parsed, out: Output): Promise<number> {
  const file = p.positionals[0];
  const seeds = parseSeeds(String(p.values.seeds));
  const psi = Number(p.values.psi);
  const cols = p.values.cols === undefined ? Math.min(8, seeds.length) : Number(p.values.cols);
  const loaded = await readGeneratorFile(file, p);
  const g = StyleGAN2.fromStateDict(loaded.config, loaded.stateDict, loaded.latentAvg);
  const t0 = performance.now();
  const images = await scope(async () => {
    const list: Float32Array[] = [];
    for (const seed of seeds) {
      const z = randomNormal([1, g.config.styleDim], { seed });
      const img = await g.generate(z, { psi }).readF32();
      assertFinite(img, 'the image', `seed ${seed}`);
      list.push(img);
    }
    return list;
  });
  g.dispose();
  const rows: FigureSpec['rows'] = [];
  for (let i = 0; i < images.length; i += cols) {
    const row = seeds.slice(i, i + cols);
    rows.push({ label: `seed ${row.length > 3 ? `${row[0]}..${row[row.length - 1]}` : row.join(',')}`, panels: images.slice(i, i + cols).map((image) => ({ image })) });
  }
  const labelled = { size: g.config.size, rows, title: `psi ${psi}, seeds left to right` };
  await writeFigure(`${out.path}/grid.png`, labelled);
  console.log(`wrote ${out.final}/grid.png: ${seeds.length} images (seeds ${seeds[0]}..${seeds[seeds.length - 1]}, psi ${psi}) in ${((performance.now() - t0) / 1000).toFixed(2)} s`);
  return 0;
}

export function parseSeeds(spec: string): number[] {
  const seeds: number[] = [];
  for (const part of spec.split(',')) {
    const m = /^(\d+)(?:-(\d+))?$/.exec(part.trim());
    if (!m) throw new RangeError(`--seeds: cannot parse "${part}" (use e.g. 0-15 or 1,5,9)`);
    const a = Number(m[1]);
    const b = m[2] === undefined ? a : Number(m[2]);
    if (b < a) throw new RangeError(`--seeds: a range runs upwards, got "${part}"`);
    if (seeds.length + b - a + 1 > 1024) throw new RangeError(`--seeds: at most 1024 images, "${spec}" asks for more`);
    for (let s = a; s <= b; s++) seeds.push(s);
  }
  return seeds;
}

/** `sgilo replay generator|score <checkpoint> <inputs.safetensors> [--out out.safetensors]`. */
export async function replayCommand(p: Parsed, out: Output): Promise<number> {
  const [what, ckptPath, inputsPath] = p.positionals;
  const file = await loadAs(inputsPath, 'inputs', (b) => readSafetensors(b));
  const inputs: TensorMap = new Map();
  for (const [name, t] of file.tensors) {
    if (!name.startsWith('in.')) continue; // only inputs: outputs in the file are never read
    if (t.dtype !== 'float32') throw new Error(`${inputsPath}: "${name}" is ${t.dtype}, expected float32`);
    inputs.set(name, { dtype: 'float32', shape: t.shape, data: t.data as Float32Array });
  }
  if (!inputs.size) throw new Error(`${inputsPath}: no in.* tensors (expected a replay fixture)`);
  const result = what === 'score' ? await replayScoreFile(ckptPath, inputs, p) : await replayGeneratorFile(ckptPath, inputs, p);
  for (const [k, v] of result) assertFinite(v.data, `"${k}"`, `replay ${what}`);
  const tensors = new Map<string, HostTensor>([...result].map(([k, v]) => [k, { dtype: 'float32', shape: v.shape, data: v.data }]));
  writeAtomic(out.path, writeSafetensors(tensors));
  console.log(`wrote ${out.final}: ${tensors.size} tensors (${[...tensors.keys()].join(', ')})`);
  return 0;
}

async function replayGeneratorFile(ckptPath: string, inputs: TensorMap, p: Parsed): Promise<TensorMap> {
  const loaded = await readGeneratorFile(ckptPath, p);
  const g = StyleGAN2.fromStateDict(loaded.config, loaded.stateDict, loaded.latentAvg);
  try {
    return await replayGenerator(g, inputs);
  } finally {
    g.dispose();
  }
}

async function replayScoreFile(ckptPath: string, inputs: TensorMap, p: Parsed): Promise<TensorMap> {
  const { net } = await readScoreFile(ckptPath, p);
  try {
    return await replayScore(net, inputs);
  } finally {
    net.dispose();
  }
}
