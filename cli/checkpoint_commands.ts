// Reading model files as the CLI's flags say (--network, --no-clamp for generators; --heads, --grid,
// --weights and the sidecar <checkpoint>.json for PyTorch score files), and the two commands about
// the files themselves: `inspect` (format, network, config, weights used, tensors) and `convert`
// (a generator in the engine's own .safetensors format, so a pickle is parsed once).

import { existsSync } from 'node:fs';
import { readFileBytes } from '../engine/io/files.ts';
import { flattenTensors, loadCheckpoint, type HostTensor } from '../engine/io/index.ts';
import { numLatents, numNoises } from '../nets/stylegan2.ts';
import { readGeneratorCheckpoint, withLatentAvg, writeGeneratorModel, type GeneratorLoadOptions, type LoadedGenerator } from '../nets/stylegan2_checkpoint.ts';
import { loadScoreModel, parseGrid, parseScoreSidecar, type LoadedScoreModel, type ScoreLoadOptions, type ScoreWeights } from '../samplers/score/checkpoint.ts';
import type { Parsed } from './args.ts';
import { writeAtomic, type Output } from './outputs.ts';
import { assertFinite, loadAs } from './checks.ts';

/** --network and --no-clamp as loader options. */
export function generatorLoadOptions(p: Parsed): GeneratorLoadOptions {
  return { ...(p.given.has('network') ? { network: String(p.values.network) } : {}), ...(p.values['no-clamp'] === true ? { clamp: false } : {}) };
}

/**
 * A loader whose error is about a flag's choice (the file is of the right kind, but holds no such
 * network or weights, or disagrees with --heads / --grid): the error names the file and the flag
 * as it is, instead of "not a generator".
 */
function choiceErrorsAsIs<T>(file: string, load: () => Promise<T>): Promise<T> {
  return load().catch((e: Error) => {
    throw /--(network|no-clamp|heads|grid|weights)\b/.test(e.message) ? new Error(`${file}: ${e.message}`) : e;
  });
}

/** One line naming the generator's source (stderr). */
export function describeGenerator(file: string, g: LoadedGenerator): string {
  const clamp = g.config.convClamp !== undefined ? `, conv_clamp ${g.config.convClamp}` : '';
  return `generator: ${file}: ${g.format}, network ${g.network}${g.networks.length > 1 ? ` (of ${g.networks.join(', ')})` : ''}${clamp}`;
}

/** Every tensor of a loaded generator finite (any format: pickles are checked after reading). */
function assertFiniteGenerator(g: LoadedGenerator, file: string): void {
  for (const [name, t] of g.stateDict) assertFinite(t.data, `tensor "${name}"`, file);
  if (g.latentAvg) assertFinite(g.latentAvg.data, 'latent_avg', file);
}

/**
 * A generator as the flags say, its weights checked finite, with latent_avg (computed, with a note on
 * stderr, when the file has none); the stderr line says which file, format and network were loaded.
 */
export async function readGeneratorFile(file: string, p: Parsed): Promise<LoadedGenerator> {
  const raw = await loadAs(file, 'generator', (b) => choiceErrorsAsIs(file, () => readGeneratorCheckpoint(b, generatorLoadOptions(p))));
  assertFiniteGenerator(raw, file);
  console.error(describeGenerator(file, raw));
  return withLatentAvg(raw);
}

/**
 * Heads, token grid and weight choice for a score file: the flags, else the sidecar
 * `<checkpoint>.json`, else the loader's defaults (1 head, a square grid, the EMA weights when present).
 */
export async function scoreLoadOptions(p: Parsed, file: string): Promise<ScoreLoadOptions> {
  const sidecarPath = `${file}.json`;
  const sidecar = existsSync(sidecarPath) ? parseScoreSidecar(new TextDecoder().decode(await readFileBytes(sidecarPath)), sidecarPath) : {};
  const heads = p.given.has('heads') ? Number(p.values.heads) : sidecar.heads;
  const grid = p.given.has('grid') ? parseGrid(String(p.values.grid)) : sidecar.grid;
  const weights = p.given.has('weights') ? (String(p.values.weights) as ScoreWeights) : undefined;
  return { ...(heads !== undefined ? { heads } : {}), ...(grid ? { grid } : {}), ...(weights ? { weights } : {}) };
}

/** A score model as the flags and the sidecar say, its weights checked finite; stderr says which weights. */
export async function readScoreFile(file: string, p: Parsed): Promise<LoadedScoreModel> {
  const options = await scoreLoadOptions(p, file);
  const m = await loadAs(file, 'score', (b) => choiceErrorsAsIs(file, () => loadScoreModel(b, options)));
  try {
    for (const [name, t] of m.tensors) assertFinite(t.data, `tensor "${name}"`, file);
  } catch (e) {
    m.net.dispose();
    throw e;
  }
  const v = m.config.vit;
  console.error(`score model: ${file}: ${m.source}; ${v.heads} head(s), grid ${v.height}x${v.width}`);
  return m;
}

const GENERATOR_FLAGS = ['network', 'no-clamp'];
const SCORE_FLAGS = ['heads', 'grid', 'weights'];

/** `sgilo inspect <checkpoint>`: the format, the network and its inferred config (or the score model's), and every tensor. */
export async function inspectCommand(p: Parsed): Promise<number> {
  const file = p.positionals[0];
  const asGenerator = GENERATOR_FLAGS.some((f) => p.given.has(f));
  const asScore = SCORE_FLAGS.some((f) => p.given.has(f));
  let generatorError = '';
  if (!asScore) {
    try {
      const g = await loadAs(file, 'generator', (b) => choiceErrorsAsIs(file, () => readGeneratorCheckpoint(b, generatorLoadOptions(p))));
      console.log(`format: ${g.format}`);
      console.log(`network: StyleGAN2 generator ${g.network}${g.networks.length > 1 ? ` (the file holds ${g.networks.join(', ')}; --network picks)` : ''}`);
      console.log(`config: ${JSON.stringify(g.config)}`);
      console.log(`  W+ rows: ${numLatents(g.config)}, noise maps: ${numNoises(g.config)}, latent_avg: ${g.latentAvg ? 'yes' : 'no (computed as mean_latent(4096) when needed)'}`);
      printTensors([...g.stateDict].map(([k, t]) => [k, { dtype: 'float32', shape: t.shape, data: t.data }]), 'engine state dict (rosinality names)');
      return 0;
    } catch (e) {
      if (asGenerator) throw e;
      generatorError = (e as Error).message;
    }
  }
  let scoreError = '';
  try {
    const options = await scoreLoadOptions(p, file);
    const m = await loadAs(file, 'score', (b) => choiceErrorsAsIs(file, () => loadScoreModel(b, options)));
    m.net.dispose();
    console.log(`format: ${m.source}`);
    console.log('network: SGILO score ViT');
    console.log(`config: ${JSON.stringify(m.config.vit)}`);
    printTensors([...m.tensors].map(([k, t]) => [k, { dtype: 'float32', shape: t.shape, data: t.data }]), 'weights used');
    return 0;
  } catch (e) {
    if (asScore) throw e;
    scoreError = (e as Error).message;
  }
  const root = await loadAs(file, 'checkpoint', (b) => loadCheckpoint(b));
  console.log(`not a StyleGAN2 generator (${generatorError})`);
  console.log(`not a score model (${scoreError})`);
  printTensors([...flattenTensors(root)], 'every tensor of the file');
  return 0;
}

function printTensors(tensors: [string, HostTensor][], title: string): void {
  let total = 0;
  console.log(`\n${tensors.length} tensors (${title}):`);
  for (const [name, t] of tensors) {
    total += t.shape.reduce((a, b) => a * b, 1);
    console.log(`  ${name.padEnd(48)} ${t.dtype.padEnd(8)} [${t.shape.join(', ')}]`);
  }
  console.log(`${total.toLocaleString('en-US')} values`);
}

/** `sgilo convert <checkpoint> [--out g.safetensors]`: the generator in the engine's own format. */
export async function convertCommand(p: Parsed, out: Output): Promise<number> {
  const file = p.positionals[0];
  const g = await readGeneratorFile(file, p);
  writeAtomic(out.path, writeGeneratorModel(g));
  console.log(`wrote ${out.final}: ${g.stateDict.size} tensors + latent_avg, config ${JSON.stringify(g.config)}`);
  return 0;
}
