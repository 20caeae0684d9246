// Loading a StyleGAN2 generator from the files researchers have, and inferring its configuration:
//   rosinality generator checkpoint   torch.save({"g_ema": sd, "latent_avg": t, ...}) (zip or legacy)
//   rosinality train.py checkpoint    {g, d, g_ema, g_optim, d_optim, args (argparse.Namespace), ada_aug_p}:
//                                     no latent_avg (see withLatentAvg)
//   state dict                        a bare rosinality generator state dict
//   NVlabs pickle                     stylegan2-ada-pytorch's network pickle (nets/stylegan2_nvlabs.ts)
//   sgilo safetensors                 our own format (`sgilo convert`): rosinality names, `latent_avg`,
//                                     `__metadata__.config` = {kind: "sgilo-stylegan2", stylegan2, source}
// Files with a training and an EMA generator give the EMA one by default (`network: 'g'` for the
// training weights). The configuration comes from the state dict: size from the number of ToRGB
// layers, style dim and mapping depth from `style.*`, the channel table from the conv weights;
// `args.lr_mlp` when the file carries training args.

import { asFloat32, flattenTensors, isHostTensor, isSafetensors, loadCheckpoint, loadModel, saveModel, type HostTensor } from '../engine/io/index.ts';
import { HostRandom } from '../engine/reference/host.ts';
import { randomNormal } from '../engine/random.ts';
import { scope } from '../engine/tensor.ts';
import { mean } from '../engine/ops/reduce.ts';
import { isNVlabsPickle, readNVlabsGenerator } from './stylegan2_nvlabs.ts';
import type { GeneratorLoadOptions, LoadedGenerator } from './generator_source.ts';
import { StyleGAN2, blockResolution, parameterShapes, type StateDict, type StyleGAN2Config } from './stylegan2.ts';

export type { GeneratorLoadOptions, LoadedGenerator } from './generator_source.ts';

export const GENERATOR_MODEL_KIND = 'sgilo-stylegan2';

function asF32(t: HostTensor, name: string): HostTensor<Float32Array> {
  const f = asFloat32(t, true);
  if (!f) throw new Error(`StyleGAN2 checkpoint: tensor "${name}" has dtype ${t.dtype}, expected floats`);
  return f;
}

/** Infers the configuration from rosinality state-dict names and shapes. */
export function inferConfig(sd: StateDict, lrMlp = 0.01): StyleGAN2Config {
  const need = (name: string) => {
    const t = sd.get(name);
    if (!t) throw new Error(`StyleGAN2 checkpoint: missing "${name}" (is this a rosinality generator state dict?)`);
    return t;
  };
  let nMlp = 0;
  while (sd.has(`style.${nMlp + 1}.weight`)) nMlp++;
  if (nMlp === 0) throw new Error('StyleGAN2 checkpoint: no mapping layers (style.1.weight missing)');
  const styleDim = need('style.1.weight').shape[1];
  let toRgbs = 0;
  while (sd.has(`to_rgbs.${toRgbs}.conv.weight`)) toRgbs++;
  const L = toRgbs + 1;
  const size = blockResolution(L - 1);
  const channels: Record<number, number> = { 4: need('conv1.conv.weight').shape[1] };
  for (let k = 1; k < L; k++) channels[blockResolution(k)] = need(`convs.${2 * k - 1}.conv.weight`).shape[1];
  return { size, styleDim, nMlp, lrMlp, channels };
}

const isTraining = (network: string | undefined) => network !== undefined && network.toLowerCase() === 'g';

function checkNetworkName(network: string | undefined): void {
  if (network !== undefined && !['g', 'g_ema'].includes(network.toLowerCase())) throw new RangeError(`--network must be G_ema or G (g_ema or g), got "${network}"`);
}

/** Reads a generator from checkpoint bytes (any format in the header). */
export async function readGeneratorCheckpoint(bytes: Uint8Array, options: GeneratorLoadOptions = {}): Promise<LoadedGenerator> {
  checkNetworkName(options.network);
  if (isNVlabsPickle(bytes)) return readNVlabsGenerator(bytes, { training: isTraining(options.network), clamp: options.clamp ?? true });
  if (options.clamp === false) throw new Error('--no-clamp applies to NVlabs pickles (rosinality networks do not clamp)');
  if (isSafetensors(bytes) && readSafetensorsConfig(bytes)) return readOwnFormat(bytes, options);
  const root = (await loadCheckpoint(bytes)) as Record<string, unknown>;
  if (!root || typeof root !== 'object') throw new Error('StyleGAN2 checkpoint: the file does not hold a dictionary');
  let format: string;
  let network: string;
  let networks: string[];
  let sdRoot: unknown;
  if (root.g_ema && typeof root.g_ema === 'object') {
    const train = root.g && typeof root.g === 'object';
    format = train ? 'rosinality train.py checkpoint' : 'rosinality generator checkpoint';
    networks = train ? ['g_ema', 'g'] : ['g_ema'];
    network = isTraining(options.network) ? 'g' : 'g_ema';
    if (!networks.includes(network)) throw new Error(`StyleGAN2 checkpoint: --network ${options.network}: this ${format} holds only ${networks.join(', ')}`);
    sdRoot = root[network];
  } else {
    if (isTraining(options.network)) throw new Error('StyleGAN2 checkpoint: --network g: a bare state dict holds one network');
    format = 'state dict';
    networks = ['state dict'];
    network = 'state dict';
    sdRoot = root;
  }
  const stateDict: StateDict = new Map();
  for (const [name, t] of flattenTensors(sdRoot)) stateDict.set(name, asF32(t, name));
  const avg = root.latent_avg;
  const latentAvg = isHostTensor(avg) ? asF32(avg, 'latent_avg') : null;
  const args = root.args as Record<string, unknown> | undefined;
  const lrMlp = typeof args?.lr_mlp === 'number' ? args.lr_mlp : 0.01;
  return { config: inferConfig(stateDict, lrMlp), stateDict, latentAvg, format, network, networks };
}

function readSafetensorsConfig(bytes: Uint8Array): { kind?: unknown } | null {
  try {
    const c = loadModel(bytes).config as { kind?: unknown };
    return c && c.kind === GENERATOR_MODEL_KIND ? c : null;
  } catch {
    return null;
  }
}

function readOwnFormat(bytes: Uint8Array, options: GeneratorLoadOptions): LoadedGenerator {
  if (isTraining(options.network)) throw new Error('StyleGAN2 model file: --network g: a converted file holds one network');
  const file = loadModel(bytes);
  const c = file.config as { stylegan2: StyleGAN2Config; source?: { format?: string; network?: string } };
  const stateDict: StateDict = new Map();
  let latentAvg: HostTensor<Float32Array> | null = null;
  for (const [name, t] of file.tensors) {
    if (name === 'latent_avg') latentAvg = asF32(t, name);
    else stateDict.set(name, asF32(t, name));
  }
  const from = c.source?.format ? ` (converted from ${c.source.format}, ${c.source.network})` : '';
  return { config: c.stylegan2, stateDict, latentAvg, format: `sgilo safetensors${from}`, network: c.source?.network ?? 'g_ema', networks: [c.source?.network ?? 'g_ema'] };
}

/** Our own format: the state dict, latent_avg, and the config with where it came from in the metadata. */
export function writeGeneratorModel(g: LoadedGenerator): Uint8Array {
  const tensors = new Map<string, HostTensor>();
  for (const [k, t] of g.stateDict) tensors.set(k, { dtype: 'float32', shape: t.shape, data: t.data });
  if (g.latentAvg) tensors.set('latent_avg', { dtype: 'float32', shape: g.latentAvg.shape, data: g.latentAvg.data });
  return saveModel(tensors, { kind: GENERATOR_MODEL_KIND, stylegan2: g.config, source: { format: g.format, network: g.network } });
}

/** Number of z and the seed of the latent_avg a file without one gets (rosinality's mean_latent(4096)). */
export const MEAN_LATENT = { n: 4096, seed: 0 };

/**
 * A generator with latent_avg: the file's, or, when it has none (rosinality's train.py saves none),
 * the mean of mapping(z) over MEAN_LATENT.n Gaussian z drawn with the engine's seeded generator, as
 * rosinality's `mean_latent(4096)` computes it; deterministic, and said so on stderr.
 */
export async function withLatentAvg(g: LoadedGenerator, log: (line: string) => void = (l) => console.error(l)): Promise<LoadedGenerator> {
  if (g.latentAvg) return g;
  const net = StyleGAN2.fromStateDict(g.config, g.stateDict, null);
  try {
    const data = await scope(() => mean(net.mapping(randomNormal([MEAN_LATENT.n, g.config.styleDim], { seed: MEAN_LATENT.seed })), [0]).readF32());
    log(`latent_avg: not in the file (${g.format}); computed as mean_latent(${MEAN_LATENT.n}): the mean of mapping(z) over ${MEAN_LATENT.n} z from seed ${MEAN_LATENT.seed} (deterministic)`);
    return { ...g, latentAvg: { dtype: 'float32', shape: [g.config.styleDim], data } };
  } finally {
    net.dispose();
  }
}

export async function loadGenerator(bytes: Uint8Array, options: GeneratorLoadOptions = {}): Promise<StyleGAN2> {
  const g = await withLatentAvg(await readGeneratorCheckpoint(bytes, options));
  return StyleGAN2.fromStateDict(g.config, g.stateDict, g.latentAvg);
}

/** Random parameters of a config (rosinality's init scales: modulation bias 1, unit conv weights). */
export function randomStateDict(c: StyleGAN2Config, seed = 1): StateDict {
  const rng = new HostRandom(seed);
  const sd: StateDict = new Map();
  for (const [name, shape] of parameterShapes(c)) {
    const n = shape.reduce((a, b) => a * b, 1);
    const data = new Float32Array(n);
    if (name.endsWith('modulation.bias')) data.fill(1);
    else if (!name.endsWith('.bias') && !name.endsWith('noise.weight')) for (let i = 0; i < n; i++) data[i] = rng.normal() / (name.startsWith('style.') ? c.lrMlp : 1);
    sd.set(name, { dtype: 'float32', shape, data });
  }
  return sd;
}
