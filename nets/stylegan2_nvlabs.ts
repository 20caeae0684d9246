// NVlabs stylegan2-ada-pytorch generators (network pickles, engine/io/network_pickle.ts) onto the
// engine's generator, which uses rosinality's layout (nets/stylegan2.ts). Per layer, NVlabs ->
// rosinality (docs/design.md, StyleGAN2 section):
//   mapping.fc{i}.weight / .bias       style.{i+1}.weight / .bias  (both scale at runtime by
//                                      lr_multiplier / sqrt(in) and lr_multiplier: same numbers)
//   mapping.w_avg                      latent_avg (truncation: w_avg.lerp(w, psi) = avg + psi (w - avg))
//   synthesis.b4.const [C, 4, 4]       input.input [1, C, 4, 4]
//   b{r}.conv0 / conv1 (SynthesisLayer) convs.{2k-2} / convs.{2k-1} (b4.conv1: conv1):
//     affine.weight / .bias            conv.modulation.weight / .bias (bias_init 1 is in the stored bias)
//     weight [O, I, 3, 3]              conv.weight [1, O, I, 3, 3] * sqrt(I * 9): NVlabs demodulates
//                                      the raw weight, rosinality scales by 1 / sqrt(fan_in) first
//     noise_strength []                noise.weight [1]
//     bias                             activate.bias (lrelu(0.2) * sqrt(2) after it in both)
//     noise_const [r, r]               noises.noise_{i} [1, 1, r, r]
//   b{r}.torgb (ToRGBLayer)            to_rgb1 / to_rgbs.{k-1}: weight as is (NVlabs multiplies the
//                                      styles by 1 / sqrt(I), rosinality the weight: same product);
//                                      bias [3] -> [1, 3, 1, 1]
// The up-sampling conv (transposed, stride 2, then the [1,3,3,1] filter with gain 4) and the skip
// upsample are the same operations in both; neither flips the kernel. conv_clamp clamps every conv
// layer's activation and every ToRGB output (config.convClamp); fp16 blocks are computed in fp32.
// Refused by name: conditional generators (c_dim > 0), StyleGAN3, architectures other than 'skip',
// other resample filters or activations, z_dim != w_dim.

import { asFloat32, flattenTensors, toFloat64, type HostTensor } from '../engine/io/index.ts';
import { isPlainPickle, loadNetworkPickle, persistentRecord } from '../engine/io/network_pickle.ts';
import type { LoadedGenerator } from './generator_source.ts';
import { numNoises, type StateDict, type StyleGAN2Config } from './stylegan2.ts';

type Obj = Record<string, unknown>;

export const isNVlabsPickle = isPlainPickle;

const fail = (msg: string): never => {
  throw new Error(`NVlabs pickle: ${msg}`);
};

function f32(t: HostTensor, name: string): Float32Array {
  return (asFloat32(t, true) ?? fail(`tensor "${name}" has dtype ${t.dtype}, expected floats`)).data;
}

/** An nn.Module's state-dict tensors (parameters and buffers, dotted names), as PyTorch names them. */
export function moduleStateDict(m: unknown): Map<string, HostTensor<Float32Array>> {
  const out = new Map<string, HostTensor<Float32Array>>();
  const walk = (x: Obj, prefix: string) => {
    for (const part of ['_parameters', '_buffers']) {
      for (const [k, t] of flattenTensors(x[part] ?? {})) out.set(prefix + k, { dtype: 'float32', shape: t.shape, data: f32(t, prefix + k) });
    }
    for (const [k, child] of Object.entries((x._modules ?? {}) as Obj)) if (child) walk(child as Obj, `${prefix}${k}.`);
  };
  walk(m as Obj, '');
  return out;
}

const child = (m: Obj, name: string, where: string): Obj => {
  const c = (m._modules as Obj | undefined)?.[name];
  if (!c || typeof c !== 'object') return fail(`${where} has no submodule "${name}"`);
  return c as Obj;
};

const num = (m: Obj, key: string, where: string): number => {
  const v = m[key];
  return typeof v === 'number' ? v : fail(`${where}.${key} is ${JSON.stringify(v)}, expected a number`);
};

/** Reads G_ema (default) or G from an NVlabs network pickle as an engine generator. */
export async function readNVlabsGenerator(bytes: Uint8Array, options: { training: boolean; clamp: boolean }): Promise<LoadedGenerator> {
  const root = loadNetworkPickle(bytes) as Obj;
  if (!root || typeof root !== 'object') return fail('the pickle does not hold a dict');
  const networks = ['G_ema', 'G'].filter((k) => root[k]);
  const network = options.training ? 'G' : 'G_ema';
  if (!root[network]) return fail(`no "${network}" network (the pickle holds ${Object.keys(root).join(', ') || 'nothing'})`);
  const G = root[network] as Obj;
  const rec = persistentRecord(G);
  if (!rec) return fail(`"${network}" is not a persistent network object`);
  const mappingObj = child(G, 'mapping', network);
  const synthesis = child(G, 'synthesis', network);
  const synRec = persistentRecord(synthesis);
  if (rec.moduleSrc.includes('class SynthesisInput') || (synthesis._modules as Obj | undefined)?.input) {
    fail(`"${network}" is a StyleGAN3 (alias-free) generator, which is not supported: the engine runs StyleGAN2 synthesis networks`);
  }
  if (rec.className !== 'Generator' || synRec?.className !== 'SynthesisNetwork') fail(`"${network}" is a ${rec.className} with a ${synRec?.className ?? 'missing'} synthesis network, not a StyleGAN2 Generator`);
  const cDim = num(G, 'c_dim', network);
  if (cDim > 0) fail(`"${network}" is a conditional generator (c_dim = ${cDim}), which is not supported: the engine's mapping network takes no class label`);
  const zDim = num(G, 'z_dim', network);
  const wDim = num(G, 'w_dim', network);
  if (zDim !== wDim) fail(`z_dim ${zDim} differs from w_dim ${wDim}, which the engine's mapping network does not support`);
  if (num(G, 'img_channels', network) !== 3) fail(`img_channels ${String(G.img_channels)} (the engine renders RGB)`);

  const sd = moduleStateDict(G);
  const get = (name: string) => sd.get(name) ?? fail(`missing tensor "${name}"`);
  const out: StateDict = new Map();

  // Mapping network.
  const nMlp = num(mappingObj, 'num_layers', 'mapping');
  let lrMlp = NaN;
  for (let i = 0; i < nMlp; i++) {
    const fc = child(mappingObj, `fc${i}`, 'mapping');
    if (fc.activation !== 'lrelu') fail(`mapping.fc${i} activation ${JSON.stringify(fc.activation)} (expected lrelu)`);
    const lr = num(fc, 'bias_gain', `mapping.fc${i}`);
    if (i > 0 && lr !== lrMlp) fail(`mapping layers with different lr multipliers (${lrMlp}, ${lr})`);
    lrMlp = lr;
    out.set(`style.${i + 1}.weight`, get(`mapping.fc${i}.weight`));
    out.set(`style.${i + 1}.bias`, get(`mapping.fc${i}.bias`));
  }
  const wAvg = get('mapping.w_avg');

  // Synthesis network.
  const res = synthesis.block_resolutions;
  if (!Array.isArray(res) || res[0] !== 4) return fail(`synthesis.block_resolutions is ${JSON.stringify(res)}`);
  const size = res[res.length - 1] as number;
  const channels: Record<number, number> = {};
  const clamps = new Set<number | null>();
  let noise = 0;
  const filter = [1, 3, 3, 1];
  const expectFilter = filter.flatMap((a) => filter.map((b) => (a * b) / 64));
  const layer = (blockName: string, name: string, to: string, up: boolean) => {
    const where = `synthesis.${blockName}.${name}`;
    const l = child(child(synthesis, blockName, 'synthesis'), name, `synthesis.${blockName}`);
    if (l.activation !== 'lrelu' || l.use_noise !== true) fail(`${where}: activation ${JSON.stringify(l.activation)}, use_noise ${String(l.use_noise)} (expected lrelu with noise)`);
    if (num(l, 'up', where) !== (up ? 2 : 1)) fail(`${where}: up ${String(l.up)}`);
    clamps.add((l.conv_clamp as number | null) ?? null);
    const w = get(`${where}.weight`);
    const [o, i, kh, kw] = w.shape;
    if (kh !== 3 || kw !== 3) fail(`${where}: a ${kh}x${kw} kernel (expected 3x3)`);
    const gain = Math.sqrt(i * kh * kw);
    out.set(`${to}.conv.weight`, { dtype: 'float32', shape: [1, o, i, kh, kw], data: w.data.map((v) => v * gain) });
    out.set(`${to}.conv.modulation.weight`, get(`${where}.affine.weight`));
    out.set(`${to}.conv.modulation.bias`, get(`${where}.affine.bias`));
    out.set(`${to}.noise.weight`, { dtype: 'float32', shape: [1], data: get(`${where}.noise_strength`).data });
    out.set(`${to}.activate.bias`, get(`${where}.bias`));
    const nc = get(`${where}.noise_const`);
    out.set(`noises.noise_${noise++}`, { dtype: 'float32', shape: [1, 1, ...nc.shape], data: nc.data });
    checkFilter(get(`${where}.resample_filter`), expectFilter, where);
    return o;
  };
  const toRgb = (blockName: string, to: string) => {
    const where = `synthesis.${blockName}.torgb`;
    clamps.add((child(child(synthesis, blockName, 'synthesis'), 'torgb', `synthesis.${blockName}`).conv_clamp as number | null) ?? null);
    const w = get(`${where}.weight`);
    if (w.shape[0] !== 3 || w.shape[2] !== 1) fail(`${where}: weight ${JSON.stringify(w.shape)} (expected [3, C, 1, 1])`);
    out.set(`${to}.conv.weight`, { dtype: 'float32', shape: [1, ...w.shape], data: w.data });
    out.set(`${to}.conv.modulation.weight`, get(`${where}.affine.weight`));
    out.set(`${to}.conv.modulation.bias`, get(`${where}.affine.bias`));
    out.set(`${to}.bias`, { dtype: 'float32', shape: [1, 3, 1, 1], data: get(`${where}.bias`).data });
  };
  for (const [k, r] of (res as number[]).entries()) {
    const b = `b${r}`;
    const block = child(synthesis, b, 'synthesis');
    if (block.architecture !== 'skip') fail(`synthesis.${b}: architecture ${JSON.stringify(block.architecture)} (only 'skip', StyleGAN2's config-e/f generator, is supported)`);
    checkFilter(get(`synthesis.${b}.resample_filter`), expectFilter, `synthesis.${b}`);
    if (k === 0) {
      const c = get('synthesis.b4.const');
      out.set('input.input', { dtype: 'float32', shape: [1, ...c.shape], data: c.data });
      channels[4] = layer(b, 'conv1', 'conv1', false);
      toRgb(b, 'to_rgb1');
    } else {
      layer(b, 'conv0', `convs.${2 * k - 2}`, true);
      channels[r] = layer(b, 'conv1', `convs.${2 * k - 1}`, false);
      toRgb(b, `to_rgbs.${k - 1}`);
    }
  }
  if (clamps.size > 1) fail(`layers clamp at different values (${[...clamps].join(', ')}); the engine has one conv_clamp`);
  const clamp = [...clamps][0];
  const config: StyleGAN2Config = { size, styleDim: wDim, nMlp, lrMlp, channels };
  if (options.clamp && clamp !== null && clamp !== undefined) config.convClamp = clamp;
  if (noise !== numNoises(config)) fail(`${noise} noise layers for a ${size}x${size} generator`);
  const clampNote = clamp === null || clamp === undefined ? '' : options.clamp ? '' : `, conv_clamp ${clamp} dropped (--no-clamp)`;
  return { config, stateDict: out, latentAvg: { dtype: 'float32', shape: [wDim], data: wAvg.data }, format: `NVlabs pickle${clampNote}`, network, networks };
}

function checkFilter(t: HostTensor, want: number[], where: string): void {
  const d = toFloat64(t);
  if (d.length !== want.length || want.some((v, i) => Math.abs(d[i] - v) > 1e-7)) {
    fail(`${where}: resample filter [${[...d].map((v) => +v.toFixed(4)).join(', ')}] (only the [1,3,3,1] filter is supported)`);
  }
}
