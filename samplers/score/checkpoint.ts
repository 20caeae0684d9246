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
// its eps, eps = eps_gaussian + eps_vit (samplers/score/prior_model.ts).
// A training checkpoint is the same file plus `train.*` tensors (raw weights, Adam moments) and
// `__metadata__.train` (step, RNG offset, options, loss history); see train_score.ts. Loading a model
// ignores `train.*`, so a checkpoint is also a usable model file, and stripping `train.*` ships it.

import { flattenTensors, isSafetensors, loadCheckpoint, loadModel, saveModel, type HostTensor as IoTensor } from '../../engine/io/index.ts';
import { philoxNormalF64, philoxUniformRef } from '../../engine/reference/philox.ts';
import { toWord64 } from '../../engine/random.ts';
import { ScoreViT, inferScoreConfig, parameterShapes, type ScoreViTConfig } from '../../nets/score_vit.ts';
import type { HostTensor } from '../../nets/stylegan2.ts';
import { DEFAULT_VPSDE, type VPSDEConfig } from './vpsde.ts';
import type { Normalization } from './data.ts';
import { GAUSSIAN_MODEL_KIND, GaussianScore, checkGaussianConfig, gaussianFromTensors, type GaussianConfig } from './gaussian.ts';

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
}

export interface LoadedScoreModel {
  net: ScoreViT;
  config: ScoreModelConfig;
  /** The residual model's base (config.gaussian); the caller disposes it with the net. */
  gaussian?: GaussianScore;
  /** Every tensor of the file by name (train.* included), for resuming. */
  tensors: Map<string, HostTensor>;
  metadata: Record<string, string>;
}

/**
 * PyTorch-default initialization, drawn from the Philox mirror (seed, offset = parameter index):
 * Linear weight and bias U(-1/sqrt(fan_in), 1/sqrt(fan_in)), LayerNorm 1 / 0, position embedding
 * N(0, 1), Fourier features N(0, 1) * 30 (SGILO's GaussianFourierProjection scale).
 */
export function initScoreStateDict(c: ScoreViTConfig, seed: number): Map<string, HostTensor> {
  const key = toWord64(seed, 'initScoreStateDict: seed');
  const sd = new Map<string, HostTensor>();
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
    sd.set(name, { shape: [...shape], data });
  });
  return sd;
}

export function scoreModelConfig(vit: ScoreViTConfig, normalization: Normalization | null, data: Record<string, string> = {}, sde: VPSDEConfig = DEFAULT_VPSDE): ScoreModelConfig {
  return { kind: SCORE_MODEL_KIND, vit, normalization, sde, data };
}

/** Serializes weights (state-dict names), optional extra tensors (e.g. train.*) and metadata. */
export function writeScoreModel(
  config: ScoreModelConfig,
  weights: Map<string, HostTensor>,
  extra: Map<string, HostTensor> = new Map(),
  metadata: Record<string, string> = {},
): Uint8Array {
  const all = new Map<string, IoTensor>();
  for (const [k, t] of [...weights, ...extra]) all.set(k, { dtype: 'float32', shape: t.shape, data: t.data });
  return saveModel(all, config, metadata);
}

/** Host copies of a network's parameters (all of them, the fixed Fourier features included). */
export async function hostWeights(net: ScoreViT): Promise<Map<string, HostTensor>> {
  const out = new Map<string, HostTensor>();
  for (const [k, t] of net.params) out.set(k, { shape: [...t.shape], data: await t.readF32() });
  return out;
}

function asF32(t: IoTensor, name: string): HostTensor {
  if (t.dtype === 'float32') return { shape: t.shape, data: t.data as Float32Array };
  if (t.dtype === 'float64') return { shape: t.shape, data: Float32Array.from(t.data as Float64Array) };
  throw new Error(`score model: tensor "${name}" has dtype ${t.dtype}, expected float32`);
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
  }
  return out;
}

/** The full Gaussian config of a residual model's base (checked). */
export function baseConfig(c: ScoreModelConfig, g: unknown = c.gaussian): GaussianConfig {
  return checkGaussianConfig({ ...(g as object), kind: GAUSSIAN_MODEL_KIND, normalization: c.normalization, sde: c.sde, data: c.data });
}

/**
 * Loads a score model from our safetensors format or from a SGILO PyTorch file (a state dict, or a
 * dict holding one under `model`/`state_dict`; `module.` prefixes are stripped). PyTorch files do not
 * store the head count: pass `heads` (default 1, the paper's setting).
 */
export async function loadScoreModel(bytes: Uint8Array, options: { heads?: number } = {}): Promise<LoadedScoreModel> {
  const tensors = new Map<string, HostTensor>();
  let config: ScoreModelConfig;
  let metadata: Record<string, string> = {};
  if (isSafetensors(bytes)) {
    const file = loadModel(bytes);
    config = checkConfig(file.config);
    metadata = file.metadata;
    for (const [k, t] of file.tensors) tensors.set(k, asF32(t, k));
  } else {
    const root = (await loadCheckpoint(bytes)) as Record<string, unknown>;
    const sd = (root?.model ?? root?.state_dict ?? root) as Record<string, unknown>;
    for (const [k, t] of flattenTensors(sd)) tensors.set(k.replace(/^module\./, ''), asF32(t, k));
    config = scoreModelConfig(inferScoreConfig(tensors, options.heads ?? 1), null);
  }
  const weights = new Map([...tensors].filter(([k]) => !k.startsWith('train.') && !k.startsWith('gaussian.')));
  const net = ScoreViT.fromStateDict(config.vit, weights);
  if (!config.gaussian) return { net, config, tensors, metadata };
  const base = baseConfig(config);
  return { net, config, tensors, metadata, gaussian: new GaussianScore(base, gaussianFromTensors(tensors, base, 'gaussian.', 'score model')) };
}

/** A model file from a checkpoint: the same weights (EMA) and config, without train.* and the training state. */
export function stripTraining(bytes: Uint8Array): Uint8Array {
  const file = loadModel(bytes);
  const config = checkConfig(file.config);
  const weights = new Map<string, HostTensor>();
  for (const [k, t] of file.tensors) if (!k.startsWith('train.')) weights.set(k, asF32(t, k));
  const { config: _c, train: _t, ...rest } = file.metadata;
  return writeScoreModel(config, weights, new Map(), rest);
}
