// Score-model files: random initialization, our model format, and loading SGILO's `.pt` files.
//
// Model file = safetensors (engine/io saveModel): the ViT weights under their SGILO state-dict names
// (the EMA weights when the file comes from training), `__metadata__.config` =
//   { kind: "sgilo-score-vit", vit: ScoreViTConfig (its optional `time`, "token" | "vector", is
//     the time conditioning of nets/score_vit.ts; absent = "token"), normalization: {min, max} | null,
//     sde: {beta0, beta1, N}, data: {generator, block, source, samples, ...},
//     gaussian?: {shape, rank, residualVariance} }
// With `gaussian` the file is a residual model: tensors gaussian.{mean, eigvecs, eigvals} hold a
// closed-form Gaussian (samplers/score/gaussian.ts) and the network predicts a correction on top of
// its eps, eps = eps_gaussian + eps_vit (samplers/score/prior_model.ts); with `mixture` as well the
// base is the Gaussian mixture of samplers/score/mixture.ts (tensors gaussian.mixture.*).
// A training checkpoint is the same file plus `train.*` tensors (raw weights, Adam moments) and
// `__metadata__.train` (step, RNG offset, options, loss history); see train.ts. Loading a model
// ignores `train.*`, so a checkpoint is also a usable model file, and stripping `train.*` ships it.
// PyTorch files (SGILO state dicts, score_sde training checkpoints) store neither the heads nor the
// token grid: they come from options, or from a sidecar `<file>.json` (parseScoreSidecar).

import { asFloat32, flattenTensors, isHostTensor, isSafetensors, loadCheckpoint, loadModel, saveModel, type HostTensor } from '../../engine/io/index.ts';
import { shapeString } from '../../engine/shape.ts';
import { philoxNormalF64, philoxUniformRef } from '../../engine/reference/philox.ts';
import { toWord64 } from '../../engine/random.ts';
import { ScoreViT, inferScoreConfig, parameterShapes, type ScoreViTConfig } from '../../nets/score_vit.ts';
import { DEFAULT_VPSDE, type VPSDEConfig } from './vpsde.ts';
import type { Normalization } from './data.ts';
import { GAUSSIAN_MODEL_KIND, GaussianScore, checkGaussianConfig, gaussianFromTensors, type GaussianConfig } from './gaussian.ts';
import { MIXTURE_MODEL_KIND, MixtureScore, checkMixtureConfig, mixtureFromTensors, type ClosedFormBase, type MixtureConfig } from './mixture.ts';

export const SCORE_MODEL_KIND = 'sgilo-score-vit';

export interface ScoreModelConfig {
  kind: typeof SCORE_MODEL_KIND;
  vit: ScoreViTConfig;
  /** Global scalar min/max of the training data; null for models without one (e.g. fixtures). */
  normalization: Normalization | null;
  sde: VPSDEConfig;
  data: Record<string, string>;
  /** The Gaussian base of a residual model (its tensors are gaussian.*). */
  gaussian?: Pick<GaussianConfig, 'shape' | 'rank' | 'residualVariance'>;
  /** A mixture on that Gaussian (samplers/score/mixture.ts; its tensors are gaussian.mixture.*). */
  mixture?: { components: number; subspace: number };
}

export interface LoadedScoreModel {
  net: ScoreViT;
  config: ScoreModelConfig;
  /** The residual model's closed-form base (config.gaussian, config.mixture); the caller disposes it with the net. */
  base?: ClosedFormBase;
  /** Every tensor of the file by name (train.* included), for resuming. */
  tensors: Map<string, HostTensor<Float32Array>>;
  metadata: Record<string, string>;
  /** The file's format and which of its weights were loaded, for the commands to print. */
  source: string;
}

/**
 * PyTorch-default initialization, drawn from the Philox mirror (seed, offset = parameter index):
 * Linear weight and bias U(-1/sqrt(fan_in), 1/sqrt(fan_in)), LayerNorm 1 / 0, position embedding
 * N(0, 1), Fourier features N(0, 1) * 30 (SGILO's GaussianFourierProjection scale).
 */
export function initScoreStateDict(c: ScoreViTConfig, seed: number): Map<string, HostTensor<Float32Array>> {
  const key = toWord64(seed, 'initScoreStateDict: seed');
  const sd = new Map<string, HostTensor<Float32Array>>();
  const shapes = parameterShapes(c);
  [...shapes].forEach(([name, shape], i) => {
    const n = shape.reduce((a, b) => a * b, 1);
    let data: Float32Array;
    if (name.endsWith('norm.weight')) data = new Float32Array(n).fill(1);
    else if (name.endsWith('norm.bias')) data = new Float32Array(n);
    else if (name === 'pos_embedding') data = Float32Array.from(philoxNormalF64(n, key, [i, 0]));
    else if (name === 'embed.0.W') data = Float32Array.from(philoxNormalF64(n, key, [i, 0]), (v) => v * 30);
    else {
      // Linear: the fan-in is the weight's second dimension; a bias shares its weight's fan-in.
      const weight = name.endsWith('.bias') ? shapes.get(name.replace(/\.bias$/, '.weight'))! : shape;
      const bound = 1 / Math.sqrt(weight[1]);
      data = Float32Array.from(philoxUniformRef(n, key, [i, 0]), (u) => (2 * u - 1) * bound);
    }
    sd.set(name, { dtype: 'float32', shape: [...shape], data });
  });
  return sd;
}

export function scoreModelConfig(vit: ScoreViTConfig, normalization: Normalization | null, data: Record<string, string> = {}, sde: VPSDEConfig = DEFAULT_VPSDE): ScoreModelConfig {
  return { kind: SCORE_MODEL_KIND, vit, normalization, sde, data };
}

/** Serializes weights (state-dict names), optional extra tensors (e.g. train.*) and metadata. */
export function writeScoreModel(
  config: ScoreModelConfig,
  weights: Map<string, HostTensor<Float32Array>>,
  extra: Map<string, HostTensor<Float32Array>> = new Map(),
  metadata: Record<string, string> = {},
): Uint8Array {
  return saveModel(new Map<string, HostTensor>([...weights, ...extra]), config, metadata);
}

/** Host copies of a network's parameters (all of them, the fixed Fourier features included). */
export async function hostWeights(net: ScoreViT): Promise<Map<string, HostTensor<Float32Array>>> {
  const out = new Map<string, HostTensor<Float32Array>>();
  for (const [k, t] of net.params) out.set(k, { dtype: 'float32', shape: [...t.shape], data: await t.readF32() });
  return out;
}

function asF32(t: HostTensor, name: string): HostTensor<Float32Array> {
  const f = asFloat32(t);
  if (!f) throw new Error(`score model: tensor "${name}" has dtype ${t.dtype}, expected float32`);
  return f;
}

function checkConfig(c: unknown): ScoreModelConfig {
  const cfg = c as Partial<ScoreModelConfig>;
  if (!cfg || cfg.kind !== SCORE_MODEL_KIND) throw new Error(`score model: __metadata__.config.kind is ${JSON.stringify(cfg?.kind)}, expected "${SCORE_MODEL_KIND}"`);
  const v = cfg.vit as unknown as Record<string, unknown> | undefined;
  for (const k of ['channels', 'height', 'width', 'dim', 'depth', 'heads', 'dimHead', 'mlp']) {
    if (!v || !(Number.isInteger(v[k]) && (v[k] as number) > 0)) throw new Error(`score model: config.vit.${k} must be a positive integer, got ${JSON.stringify(v?.[k])}`);
  }
  if (v!.time !== undefined && v!.time !== 'token' && v!.time !== 'vector') throw new Error(`score model: config.vit.time must be "token" or "vector" (absent: "token"), got ${JSON.stringify(v!.time)}`);
  const n = cfg.normalization;
  if (n !== null && !(n && Number.isFinite(n.min) && Number.isFinite(n.max) && n.max > n.min)) throw new Error(`score model: config.normalization must be {min, max} with max > min, got ${JSON.stringify(n)}`);
  const out: ScoreModelConfig = { kind: SCORE_MODEL_KIND, vit: cfg.vit!, normalization: n ?? null, sde: { ...DEFAULT_VPSDE, ...cfg.sde }, data: cfg.data ?? {} };
  if (cfg.gaussian !== undefined) {
    const g = baseConfig(out, cfg.gaussian);
    const c = out.vit;
    if (g.shape.join() !== [c.channels, c.height, c.width].join()) throw new Error(`score model: config.gaussian.shape [${g.shape.join(', ')}] differs from the network's [${c.channels}, ${c.height}, ${c.width}]`);
    out.gaussian = { shape: g.shape, rank: g.rank, residualVariance: g.residualVariance };
    if (cfg.mixture !== undefined) out.mixture = checkMixtureConfig({ ...g, kind: MIXTURE_MODEL_KIND, ...cfg.mixture }) && { components: cfg.mixture.components, subspace: cfg.mixture.subspace };
  } else if (cfg.mixture !== undefined) throw new Error('score model: config.mixture needs config.gaussian');
  return out;
}

/** The full Gaussian config of a residual model's base (checked). */
export function baseConfig(c: ScoreModelConfig, g: unknown = c.gaussian): GaussianConfig {
  return checkGaussianConfig({ ...(g as object), kind: GAUSSIAN_MODEL_KIND, normalization: c.normalization, sde: c.sde, data: c.data });
}

/** Which weights a training checkpoint gives: the EMA average (what SGILO samples with) or the raw ones. */
export type ScoreWeights = 'ema' | 'raw';

export interface ScoreLoadOptions {
  /** Attention heads (PyTorch files do not store them; default 1, the paper's setting). */
  heads?: number;
  /** Token grid [height, width] (not stored either; default: square when the count is a square, else [T, 1]). */
  grid?: [number, number];
  /** Default: 'ema' when the file holds EMA weights. */
  weights?: ScoreWeights;
}

/**
 * Loads a score model from our safetensors format or from a PyTorch file: a SGILO state dict, a dict
 * holding one under `model`/`state_dict`, or a score_sde training checkpoint
 * `{model, ema: {shadow_params}, optimizer, step}` (`module.` prefixes are stripped). `source` says
 * which format and which weights were loaded.
 */
export async function loadScoreModel(bytes: Uint8Array, options: ScoreLoadOptions = {}): Promise<LoadedScoreModel> {
  let tensors = new Map<string, HostTensor<Float32Array>>();
  let config: ScoreModelConfig;
  let metadata: Record<string, string> = {};
  let source: string;
  if (isSafetensors(bytes)) {
    const file = loadModel(bytes);
    config = checkConfig(file.config);
    metadata = file.metadata;
    for (const [k, t] of file.tensors) tensors.set(k, asF32(t, k));
    if (options.weights === 'raw') throw new Error('score model: --weights raw: a model file holds one set of weights (the EMA ones when it comes from training)');
    const v = config.vit;
    if (options.heads !== undefined && options.heads !== v.heads) throw new Error(`score model: the file's config says ${v.heads} heads, --heads says ${options.heads}`);
    if (options.grid && (options.grid[0] !== v.height || options.grid[1] !== v.width)) throw new Error(`score model: the file's config says grid ${v.height}x${v.width}, --grid says ${options.grid.join('x')}`);
    source = 'sgilo safetensors model';
  } else {
    const picked = pickScoreWeights(await loadCheckpoint(bytes), options.weights);
    tensors = new Map([...picked.tensors].map(([k, t]) => [k, asF32(t, k)]));
    source = picked.source;
    const vit = inferScoreConfig(tensors, options.heads ?? 1);
    if (options.grid) {
      const [h, w] = options.grid;
      const T = vit.height * vit.width;
      if (h * w !== T) throw new Error(`score checkpoint: grid ${h}x${w} has ${h * w} tokens, but pos_embedding ${shapeString(tensors.get('pos_embedding')!.shape)} holds ${T}`);
      [vit.height, vit.width] = [h, w];
    }
    config = scoreModelConfig(vit, null);
  }
  const weights = new Map([...tensors].filter(([k]) => !k.startsWith('train.') && !k.startsWith('gaussian.')));
  const net = ScoreViT.fromStateDict(config.vit, weights);
  if (!config.gaussian) return { net, config, tensors, metadata, source };
  const g = baseConfig(config);
  if (config.mixture) {
    const mc: MixtureConfig = { ...g, ...config.mixture, kind: MIXTURE_MODEL_KIND };
    const { base, mixture } = mixtureFromTensors(tensors, mc, 'gaussian.', 'score model');
    return { net, config, tensors, metadata, source, base: new MixtureScore(mc, base, mixture) };
  }
  return { net, config, tensors, metadata, source, base: new GaussianScore(g, gaussianFromTensors(tensors, g, 'gaussian.', 'score model')) };
}

/** The fixed Fourier features: not trainable, so score_sde's EMA leaves them out. */
const FIXED = new Set(['embed.0.W']);

/** The state dict a PyTorch score file holds, and a description of which one it is. */
export function pickScoreWeights(root: unknown, choice?: ScoreWeights): { tensors: Map<string, HostTensor>; source: string } {
  const r = (root ?? {}) as Record<string, unknown>;
  const strip = (sd: unknown) => {
    const m = new Map<string, HostTensor>();
    for (const [k, t] of flattenTensors(sd)) m.set(k.replace(/^module\./, ''), asF32(t, k));
    return m;
  };
  const ema = r.ema as Record<string, unknown> | undefined;
  if (r.model && ema && typeof ema === 'object' && 'shadow_params' in ema) {
    const model = strip(r.model);
    if (choice === 'raw') return { tensors: model, source: 'score_sde checkpoint, raw weights (`model`)' };
    const shadow = ema.shadow_params;
    if (!Array.isArray(shadow) || !shadow.every(isHostTensor)) throw new Error('score_sde checkpoint: ema.shadow_params is not a list of tensors');
    // shadow_params follow model.parameters() with requires_grad: the state-dict order without the fixed features.
    const trainable = [...model.keys()].filter((k) => !FIXED.has(k));
    if (trainable.length !== shadow.length) {
      throw new Error(`score_sde checkpoint: ema.shadow_params holds ${shadow.length} tensors, the model has ${trainable.length} trainable parameters (all but ${[...FIXED].join(', ')})`);
    }
    const out = new Map(model);
    trainable.forEach((name, i) => {
      const t = asF32(shadow[i], `ema.shadow_params[${i}]`);
      const want = model.get(name)!.shape;
      if (t.shape.join() !== want.join()) throw new Error(`score_sde checkpoint: ema.shadow_params[${i}] is ${shapeString(t.shape)}, but parameter ${i}, "${name}", is ${shapeString(want)}`);
      out.set(name, t);
    });
    return { tensors: out, source: `score_sde checkpoint (step ${String(r.step)}), EMA weights (\`ema.shadow_params\`)` };
  }
  if (choice === 'ema') throw new Error('score checkpoint: --weights ema, but the file holds no EMA weights (no ema.shadow_params)');
  const key = r.model ? 'model' : r.state_dict ? 'state_dict' : null;
  return { tensors: strip(key ? r[key] : r), source: key ? `PyTorch checkpoint, \`${key}\` state dict` : 'PyTorch state dict' };
}

/** `HxW` (e.g. 6x2) -> [height, width]. */
export function parseGrid(spec: string): [number, number] {
  const m = /^(\d+)x(\d+)$/.exec(spec.trim());
  const g = m ? ([Number(m[1]), Number(m[2])] as [number, number]) : null;
  if (!g || !(g[0] > 0 && g[1] > 0)) throw new RangeError(`--grid must be HxW with positive integers (e.g. 6x2), got "${spec}"`);
  return g;
}

/**
 * The sidecar of a PyTorch score file (`<file>.json`, read by the CLI and the web page): what the file
 * does not store, `{"heads": h, "grid": [H, W]}` (both optional).
 */
export function parseScoreSidecar(text: string, where = 'sidecar'): Pick<ScoreLoadOptions, 'heads' | 'grid'> {
  let j: unknown;
  try {
    j = JSON.parse(text);
  } catch (e) {
    throw new Error(`${where}: not JSON (${(e as Error).message})`);
  }
  const o = j as { heads?: unknown; grid?: unknown };
  if (!o || typeof o !== 'object' || Array.isArray(o)) throw new Error(`${where}: expected an object {"heads": h, "grid": [H, W]}`);
  const out: Pick<ScoreLoadOptions, 'heads' | 'grid'> = {};
  for (const k of Object.keys(o)) if (k !== 'heads' && k !== 'grid') throw new Error(`${where}: unknown key "${k}" (known: heads, grid)`);
  if (o.heads !== undefined) {
    if (!(Number.isInteger(o.heads) && (o.heads as number) > 0)) throw new Error(`${where}: heads must be a positive integer, got ${JSON.stringify(o.heads)}`);
    out.heads = o.heads as number;
  }
  if (o.grid !== undefined) {
    const g = o.grid;
    if (!Array.isArray(g) || g.length !== 2 || !g.every((d) => Number.isInteger(d) && d > 0)) throw new Error(`${where}: grid must be [H, W] with positive integers, got ${JSON.stringify(g)}`);
    out.grid = [g[0], g[1]];
  }
  return out;
}

/** A model file from a checkpoint: the same weights (EMA) and config, without train.* and the training state. */
export function stripTraining(bytes: Uint8Array): Uint8Array {
  const file = loadModel(bytes);
  const config = checkConfig(file.config);
  const weights = new Map<string, HostTensor<Float32Array>>();
  for (const [k, t] of file.tensors) if (!k.startsWith('train.')) weights.set(k, asF32(t, k));
  const { config: _c, train: _t, ...rest } = file.metadata;
  return writeScoreModel(config, weights, new Map(), rest);
}
