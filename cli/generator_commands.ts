// CLI commands around checkpoints: `inspect` (generators and score models), `convert`, `generate`,
// `replay generator`.

import { readFileBytes, writeFileBytes } from '../engine/io/files.ts';
import { flattenTensors, loadCheckpoint, readSafetensors, writeSafetensors, type HostTensor } from '../engine/io/index.ts';
import { scope } from '../engine/tensor.ts';
import { randomNormal } from '../engine/random.ts';
import { StyleGAN2, numLatents, numNoises } from '../nets/stylegan2.ts';
import { readGeneratorCheckpoint, withLatentAvg, writeGeneratorModel, type GeneratorLoadOptions, type LoadedGenerator } from '../nets/stylegan2_checkpoint.ts';
import { loadScoreModel } from '../samplers/score/checkpoint.ts';
import { parseArgs, scoreLoadOptions } from './score_commands.ts';
import { replayGenerator, type TensorMap } from '../nets/replay_generator.ts';
import { writeImageGrid } from '../engine/io/png.ts';

const INSPECT_USAGE = 'usage: sgilo inspect <checkpoint.pt|.pkl|.pth|.safetensors> [--network G_ema|G] [--no-clamp] [--heads h] [--grid HxW] [--weights ema|raw]';

/** Options shared by the generator commands: --network g_ema|g (G_ema|G) and --no-clamp. */
function generatorOptions(args: string[], known: string[], usage: string): { pos: string[]; options: GeneratorLoadOptions; rest: Map<string, string> } {
  const pos: string[] = [];
  const options: GeneratorLoadOptions = {};
  const rest = new Map<string, string>();
  for (let i = 0; i < args.length; i++) {
    const a = args[i];
    if (!a.startsWith('--')) pos.push(a);
    else if (a === '--no-clamp') options.clamp = false;
    else if (a === '--network' || known.includes(a)) {
      const v = args[++i];
      if (v === undefined) throw new Error(`${a} needs a value\n${usage}`);
      if (a === '--network') options.network = v;
      else rest.set(a.slice(2), v);
    } else throw new Error(`unknown option ${a}\n${usage}`);
  }
  return { pos, options, rest };
}

/** One line naming the generator's source, for stderr. */
export function describeGenerator(file: string, g: LoadedGenerator): string {
  const clamp = g.config.convClamp !== undefined ? `, conv_clamp ${g.config.convClamp}` : '';
  return `generator: ${file}: ${g.format}, network ${g.network}${g.networks.length > 1 ? ` (of ${g.networks.join(', ')})` : ''}${clamp}`;
}

/** `sgilo inspect <checkpoint>`: the format, the network and its inferred config (or the score model's), and every tensor. */
export async function inspectCommand(args: string[]): Promise<number> {
  if (args.includes('--help')) {
    console.log(`${INSPECT_USAGE}\n  names the format (NVlabs pickle, rosinality train/generator checkpoint, score_sde checkpoint, state dict, safetensors),\n  the network, its inferred config and which weights are used, then every tensor of the file`);
    return 0;
  }
  const { pos, options, rest } = generatorOptions(args, ['--heads', '--grid', '--weights'], INSPECT_USAGE);
  const [file] = pos;
  if (!file || pos.length > 1) throw new Error(INSPECT_USAGE);
  const bytes = await readFileBytes(file);
  let generatorError = '';
  try {
    const g = await readGeneratorCheckpoint(bytes, options);
    console.log(`format: ${g.format}`);
    console.log(`network: StyleGAN2 generator ${g.network}${g.networks.length > 1 ? ` (the file holds ${g.networks.join(', ')}; --network picks)` : ''}`);
    console.log(`config: ${JSON.stringify(g.config)}`);
    console.log(`  W+ rows: ${numLatents(g.config)}, noise maps: ${numNoises(g.config)}, latent_avg: ${g.latentAvg ? 'yes' : 'no (computed as mean_latent(4096) when needed)'}`);
    printTensors([...g.stateDict].map(([k, t]) => [k, { dtype: 'float32', shape: t.shape, data: t.data }]), 'engine state dict (rosinality names)');
    return 0;
  } catch (e) {
    if (options.network !== undefined || options.clamp === false) throw e;
    generatorError = (e as Error).message;
  }
  try {
    const a = parseArgs([...rest].flatMap(([k, v]) => [`--${k}`, v]));
    const m = await loadScoreModel(bytes, await scoreLoadOptions(a, file));
    m.net.dispose();
    console.log(`format: ${m.source}`);
    console.log('network: SGILO score ViT');
    console.log(`config: ${JSON.stringify(m.config.vit)}`);
    printTensors([...m.tensors].map(([k, t]) => [k, { dtype: 'float32', shape: t.shape, data: t.data }]), 'weights used');
    return 0;
  } catch (e) {
    console.log(`not a StyleGAN2 generator (${generatorError})`);
    console.log(`not a score model (${(e as Error).message})`);
  }
  printTensors([...flattenTensors(await loadCheckpoint(bytes))], 'every tensor of the file');
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

const CONVERT_USAGE = 'usage: sgilo convert <checkpoint> <out.safetensors> [--network G_ema|G] [--no-clamp]';

/** `sgilo convert <in> <out.safetensors>`: a generator in our own format, so a pickle is parsed once. */
export async function convertCommand(args: string[]): Promise<number> {
  if (args.includes('--help')) {
    console.log(`${CONVERT_USAGE}\n  writes the generator (rosinality names, latent_avg, the config and its source in __metadata__)`);
    return 0;
  }
  const { pos, options } = generatorOptions(args, [], CONVERT_USAGE);
  const [inPath, outPath] = pos;
  if (!inPath || !outPath || pos.length > 2) throw new Error(CONVERT_USAGE);
  if (!outPath.endsWith('.safetensors')) throw new Error(`convert: the output must be a .safetensors file, got ${outPath}`);
  const g = await withLatentAvg(await readGeneratorCheckpoint(await readFileBytes(inPath), options));
  console.error(describeGenerator(inPath, g));
  await writeFileBytes(outPath, writeGeneratorModel(g));
  console.log(`wrote ${outPath}: ${g.stateDict.size} tensors + latent_avg, config ${JSON.stringify(g.config)}`);
  return 0;
}

function flag(args: string[], name: string, fallback: string): string {
  const i = args.indexOf(`--${name}`);
  return i >= 0 && args[i + 1] !== undefined ? args[i + 1] : fallback;
}

/** `sgilo generate <checkpoint> [--seeds 0-15] [--psi 1] [--out out/generate.png] [--network G_ema|G] [--no-clamp]`. */
export async function generateCommand(args: string[]): Promise<number> {
  const file = args[0];
  if (!file || file.startsWith('--')) throw new Error('usage: sgilo generate <checkpoint> [--seeds 0-15] [--psi 0.7] [--out out/generate.png] [--cols 8]');
  const seeds = parseSeeds(flag(args, 'seeds', '0-15'));
  const psi = Number(flag(args, 'psi', '1'));
  if (!(psi >= 0 && psi <= 1)) throw new RangeError(`--psi must be in [0, 1], got ${flag(args, 'psi', '1')}`);
  const out = flag(args, 'out', 'out/generate.png');
  const cols = Number(flag(args, 'cols', String(Math.min(8, seeds.length))));
  const network = args.includes('--network') ? flag(args, 'network', '') : undefined;
  const loaded = await withLatentAvg(await readGeneratorCheckpoint(await readFileBytes(file), { network, clamp: args.includes('--no-clamp') ? false : undefined }));
  console.error(describeGenerator(file, loaded));
  const g = StyleGAN2.fromStateDict(loaded.config, loaded.stateDict, loaded.latentAvg);
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

const REPLAY_USAGE = 'usage: sgilo replay generator <checkpoint> <inputs.safetensors> <out.safetensors> [--network G_ema|G] [--no-clamp] [--targets name,prefix*,...]';

/** `sgilo replay generator <checkpoint> <inputs.safetensors> <out.safetensors> [--network G_ema|G] [--no-clamp] [--targets ...]`. */
export async function replayCommand(args: string[]): Promise<number> {
  if (args.includes('--help')) {
    console.log(`${REPLAY_USAGE}\n  --network: the EMA generator (default) or the training one; --no-clamp: NVlabs pickles without conv_clamp, as SGILO runs them\n  --targets: only these out.*/grad.* quantities (a trailing * takes a prefix), e.g. out.image_from_wplus,grad.wplus:\n    on a full-size generator each from-layer quantity costs a backward pass of its own`);
    return 0;
  }
  const { pos, options, rest } = generatorOptions(args, ['--targets'], REPLAY_USAGE);
  const targets = rest.get('targets')?.split(',').map((t) => t.trim());
  if (targets && !targets.every((t) => /^(out|grad)\.[\w.]*\*?$/.test(t))) throw new Error(`--targets: names of out.* or grad.* quantities, got "${rest.get('targets')}"\n${REPLAY_USAGE}`);
  const [what, ckptPath, inputsPath, outPath] = pos;
  if (what !== 'generator' || !ckptPath || !inputsPath || !outPath || pos.length > 4) throw new Error(REPLAY_USAGE);
  // The file's bytes and the host state dict are garbage once uploaded: nothing keeps them past this call.
  const g = await (async () => {
    const loaded = await withLatentAvg(await readGeneratorCheckpoint(await readFileBytes(ckptPath), options));
    console.error(describeGenerator(ckptPath, loaded));
    return StyleGAN2.fromStateDict(loaded.config, loaded.stateDict, loaded.latentAvg);
  })();
  const file = readSafetensors(await readFileBytes(inputsPath));
  const inputs: TensorMap = new Map();
  for (const [name, t] of file.tensors) {
    if (!name.startsWith('in.')) continue; // only inputs: outputs in the file are never read
    if (t.dtype !== 'float32') throw new Error(`${inputsPath}: "${name}" is ${t.dtype}, expected float32`);
    inputs.set(name, { dtype: 'float32', shape: t.shape, data: t.data as Float32Array });
  }
  const out = await replayGenerator(g, inputs, targets);
  if (targets && out.size === 0) throw new Error(`--targets ${targets.join(',')}: names no quantity of this generator`);
  g.dispose();
  const tensors: Map<string, HostTensor> = out;
  await writeFileBytes(outPath, writeSafetensors(tensors));
  console.log(`wrote ${outPath}: ${tensors.size} tensors (${[...tensors.keys()].join(', ')})`);
  return 0;
}
