// Loading a rosinality StyleGAN2 checkpoint (`torch.save({"g_ema": state_dict, "latent_avg": ...})`,
// zip or legacy format, or our safetensors) and inferring its configuration from the state dict:
// size from the number of ToRGB layers, style dim and mapping depth from `style.*`, the channel
// table from the conv weights. `args.lr_mlp` is used when the checkpoint carries training args.

import { flattenTensors, isHostTensor, loadCheckpoint, toFloat64, type HostTensor } from '../engine/io/index.ts';
import { HostRandom } from '../engine/reference/host.ts';
import { StyleGAN2, blockResolution, parameterShapes, type StateDict, type StyleGAN2Config } from './stylegan2.ts';

export interface LoadedGenerator {
  config: StyleGAN2Config;
  stateDict: StateDict;
  latentAvg: HostTensor<Float32Array> | null;
}

function asF32(t: HostTensor, name: string): HostTensor<Float32Array> {
  if (t.dtype === 'float32') return { dtype: 'float32', shape: t.shape, data: t.data as Float32Array };
  if (t.dtype === 'float64') return { dtype: 'float32', shape: t.shape, data: Float32Array.from(t.data as Float64Array) };
  if (t.dtype === 'int64') return { dtype: 'float32', shape: t.shape, data: Float32Array.from(toFloat64(t)) };
  throw new Error(`StyleGAN2 checkpoint: tensor "${name}" has dtype ${t.dtype}, expected floats`);
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

/** Reads a generator from checkpoint bytes (torch zip, torch legacy, or safetensors). */
export async function readGeneratorCheckpoint(bytes: Uint8Array): Promise<LoadedGenerator> {
  const root = (await loadCheckpoint(bytes)) as Record<string, unknown>;
  if (!root || typeof root !== 'object') throw new Error('StyleGAN2 checkpoint: the file does not hold a dictionary');
  // rosinality files hold {"g_ema": sd, "latent_avg": t, ...}; a bare state dict is accepted too.
  const gEma = (root.g_ema ?? root) as Record<string, unknown>;
  const stateDict: StateDict = new Map();
  for (const [name, t] of flattenTensors(gEma)) stateDict.set(name, asF32(t, name));
  const avg = root.latent_avg;
  const latentAvg = isHostTensor(avg) ? asF32(avg, 'latent_avg') : null;
  const args = root.args as Record<string, unknown> | undefined;
  const lrMlp = typeof args?.lr_mlp === 'number' ? args.lr_mlp : 0.01;
  return { config: inferConfig(stateDict, lrMlp), stateDict, latentAvg };
}

export async function loadGenerator(bytes: Uint8Array): Promise<StyleGAN2> {
  const g = await readGeneratorCheckpoint(bytes);
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
