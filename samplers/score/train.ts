// Denoising score matching for the ViT score model on the VP-SDE (docs/design.md, "VP-SDE").
//
// One step, batch B of normalized activations x0 [B, C, H, W] in [0, 1]:
//   t ~ U(tEps, 1) [B]        (host: the CPU mirror of the engine's Philox, bit-identical to the GPU's;
//                              optionally skewed to small t, t = tEps + (1 - tEps) u^tPower)
//   z ~ N(0, I) [B, C, H, W]  (GPU Philox)
//   x_t = m(t) x0 + std(t) z  (m, std in float64 on the host, uploaded as [B, 1, 1, 1])
//   loss = mean((eps(x_t, t) - z)^2), or with likelihood weighting
//          mean_b(beta(t_b) / std(t_b)^2 * mean((eps - z)^2))  (= beta * mean((score + z/std)^2))
//   optional global-norm gradient clipping (on the GPU, no read-back), Adam (linear warm-up of lr),
//   EMA of the weights with decay min(decay, (1 + step) / (10 + step)).
// Minibatches: sample position p = step * B + j is item perm_e[p mod N] of epoch e = floor(p / N), with
// perm_e a Fisher-Yates shuffle driven by Philox (seed, stream 2^32 + e): reproducible from the seed and
// the step alone. Random draws use stream offsets counted by `rngOffset` (saved in checkpoints).
//
// Residual models (a GaussianScore `base`, config.gaussian): the network's output is added to the
// base's closed-form eps (no gradient flows into the base), eps = eps_gaussian + eps_vit, and the
// checkpoint carries the base's tensors as gaussian.* (samplers/score/checkpoint.ts).
//
// Checkpoints (checkpoint.ts): EMA weights under their names (the file loads as a model),
// train.param.<name> (raw weights), train.adam_m.<name>, train.adam_v.<name>, and metadata.train =
// JSON { step, rngOffset, adamStep, seed, options, losses }. Resuming restores all of it, so a resumed
// run continues with the same losses as an uninterrupted one.

import { Tensor, scope, tensor } from '../../engine/tensor.ts';
import { grad, noGrad, clearTape } from '../../engine/tape.ts';
import { add, affine, clamp, mul, rsqrt, square, sub } from '../../engine/ops/elementwise.ts';
import { mean } from '../../engine/ops/reduce.ts';
import { Adam, emaUpdate, sumOfSquares } from '../../engine/optim.ts';
import { randomNormal, toWord64 } from '../../engine/random.ts';
import { philoxUniformRef, type Word64 } from '../../engine/reference/philox.ts';
import { ScoreViT } from '../../nets/score_vit.ts';
import type { HostTensor } from '../../engine/host_tensor.ts';
import { VPSDE, perSample } from './vpsde.ts';
import { writeScoreModel, type LoadedScoreModel, type ScoreModelConfig } from './checkpoint.ts';
import { baseRecord, type ClosedFormBase } from './mixture.ts';

export interface TrainOptions {
  lr: number;
  batch: number;
  seed: number;
  emaDecay: number;
  /** Linear learning-rate warm-up over this many steps (0: none). */
  warmup: number;
  /** Clip the global gradient norm to this (0: no clipping). */
  gradClip: number;
  likelihoodWeighting: boolean;
  /** Smallest training time. */
  tEps: number;
  /**
   * t = tEps + (1 - tEps) u^tPower, u ~ U(0, 1): 1 (the default) is the uniform t of docs/design.md, "VP-SDE"; larger
   * powers put more of each batch at small t (a fraction (x / (1 - tEps))^(1/tPower) below tEps + x),
   * where the denoiser's target is small against the unit noise and few-dimensional data need many
   * draws to learn it (test/score_gaussian.test.ts). Every t keeps a positive density, so the
   * optimum, eps*(y, t) at each t, is the same; only the emphasis of the fit changes.
   */
  tPower: number;
}

export const DEFAULT_TRAIN: TrainOptions = { lr: 2e-4, batch: 32, seed: 0, emaDecay: 0.999, warmup: 0, gradClip: 1, likelihoodWeighting: false, tEps: 1e-5, tPower: 1 };

/** Normalized training data: [N, C, H, W] values in [0, 1]. */
export interface TrainingData {
  data: Float32Array;
  shape: readonly [number, number, number, number];
}

interface TrainState {
  step: number;
  rngOffset: number;
  adamStep: number;
  seed: number;
  options: TrainOptions;
  losses: number[];
}

export class ScoreTrainer {
  readonly net: ScoreViT;
  readonly sde: VPSDE;
  readonly options: TrainOptions;
  readonly ema = new Map<string, Tensor>();
  readonly losses: number[] = [];
  step = 0;
  rngOffset = 0;
  private readonly opt: Adam;
  private readonly trainable: [string, Tensor][];
  private readonly seedWords: Word64;
  private perm: { epoch: number; order: Uint32Array } | null = null;

  /** A fresh run on `net` (the EMA starts at its weights). To continue a checkpoint, use `resume`. */
  constructor(
    net: ScoreViT,
    readonly config: ScoreModelConfig,
    readonly data: TrainingData,
    options: Partial<TrainOptions> = {},
    /** The residual model's Gaussian (required exactly when config.gaussian is set; owned by the caller). */
    readonly base: ClosedFormBase | null = null,
  ) {
    if (!config.gaussian !== !base) throw new RangeError(`train: ${base ? 'a Gaussian base needs config.gaussian' : 'config.gaussian needs its Gaussian base'}`);
    this.options = { ...DEFAULT_TRAIN, ...options };
    const o = this.options;
    if (!(Number.isInteger(o.batch) && o.batch >= 1)) throw new RangeError(`train: batch must be a positive integer, got ${o.batch}`);
    if (!(o.emaDecay >= 0 && o.emaDecay < 1)) throw new RangeError(`train: emaDecay must be in [0, 1), got ${o.emaDecay}`);
    if (!(o.lr > 0)) throw new RangeError(`train: lr must be > 0, got ${o.lr}`);
    if (!(o.tPower > 0 && Number.isFinite(o.tPower))) throw new RangeError(`train: tPower must be a positive number, got ${o.tPower}`);
    const [, C, H, W] = data.shape;
    const v = config.vit;
    if (C !== v.channels || H !== v.height || W !== v.width) throw new RangeError(`train: data [${data.shape.join(', ')}] does not match the model's [N, ${v.channels}, ${v.height}, ${v.width}]`);
    if (data.data.length !== data.shape.reduce((a, b) => a * b, 1)) throw new RangeError('train: data length does not match its shape');
    this.net = net;
    this.sde = new VPSDE(config.sde);
    this.seedWords = toWord64(o.seed, 'train: seed');
    this.trainable = net.trainable();
    for (const [, p] of this.trainable) p.requireGrad();
    this.opt = new Adam(this.trainable.map(([, p]) => p), { lr: o.lr });
    for (const [name, p] of net.params) this.ema.set(name, noGrad(() => affine(p, 1)).keep());
  }

  /**
   * Continues a checkpoint: the network gets the raw weights (train.param.*), the EMA the file's
   * model weights, Adam its moments and step, the run its step, RNG offset and loss history.
   * `overrides` may change options (e.g. lr); the seed is always the checkpoint's.
   */
  static resume(from: LoadedScoreModel, data: TrainingData, overrides: Partial<TrainOptions> = {}): ScoreTrainer {
    const s = readTrainState(from);
    const need = (name: string): HostTensor<Float32Array> => {
      const t = from.tensors.get(name);
      if (!t) throw new Error(`resume: the checkpoint has no "${name}"`);
      return t;
    };
    const raw = new Map<string, HostTensor<Float32Array>>();
    for (const name of from.net.params.keys()) raw.set(name, name === 'embed.0.W' ? need(name) : need(`train.param.${name}`));
    const net = ScoreViT.fromStateDict(from.config.vit, raw);
    const trainer = new ScoreTrainer(net, from.config, data, { ...s.options, ...overrides, seed: s.seed }, from.base ?? null);
    for (const [name, old] of trainer.ema) {
      trainer.ema.set(name, tensor(need(name).data, old.shape).keep());
      old.dispose();
    }
    for (const [name, p] of trainer.trainable) {
      const moment = (kind: string) => {
        const t = need(`train.adam_${kind}.${name}`);
        if (t.data.length !== p.size) throw new Error(`resume: "train.adam_${kind}.${name}" has ${t.data.length} values, expected ${p.size}`);
        return tensor(t.data, p.shape).keep();
      };
      if (s.adamStep > 0) trainer.opt.loadState(p, { step: s.adamStep, m: moment('m'), v: moment('v') });
    }
    trainer.step = s.step;
    trainer.rngOffset = s.rngOffset;
    trainer.losses.push(...s.losses);
    return trainer;
  }

  /** Item indices of the current minibatch. */
  private batchIndices(): Uint32Array {
    const N = this.data.shape[0];
    const B = this.options.batch;
    const out = new Uint32Array(B);
    for (let j = 0; j < B; j++) {
      const p = this.step * B + j;
      const epoch = Math.floor(p / N);
      if (this.perm?.epoch !== epoch) this.perm = { epoch, order: shuffle(N, this.seedWords, epoch) };
      out[j] = this.perm.order[p % N];
    }
    return out;
  }

  private nextOffset(): number {
    return this.rngOffset++;
  }

  /** One optimization step; resolves to its loss. */
  async trainStep(): Promise<number> {
    const o = this.options;
    const B = o.batch;
    const [, C, H, W] = this.data.shape;
    const item = C * H * W;
    const batch = new Float32Array(B * item);
    this.batchIndices().forEach((idx, j) => batch.set(this.data.data.subarray(idx * item, (idx + 1) * item), j * item));
    const u = philoxUniformRef(B, this.seedWords, toWord64(this.nextOffset(), 'offset'));
    const ts = Float64Array.from(u, (v) => o.tEps + (o.tPower === 1 ? v : v ** o.tPower) * (1 - o.tEps));
    const zOffset = this.nextOffset();
    this.opt.lr = o.warmup > 0 ? o.lr * Math.min(1, (this.step + 1) / o.warmup) : o.lr;

    const loss = await scope(async () => {
      const x0 = tensor(batch, [B, C, H, W]);
      const z = randomNormal([B, C, H, W], { seed: this.seedWords, offset: zOffset });
      const m = perSample(tensor(Array.from(ts, (t) => this.sde.meanCoeff(t)), [B]), 4);
      const s = perSample(tensor(Array.from(ts, (t) => this.sde.std(t)), [B]), 4);
      const xt = add(mul(x0, m), mul(z, s));
      const params = this.trainable.map(([, p]) => p);
      const tT = tensor(ts, [B]);
      const base = this.base;
      const eps = base ? add(noGrad(() => base.forward(xt, tT)), this.net.forward(xt, tT)) : this.net.forward(xt, tT);
      const sq = square(sub(eps, z));
      let lossT: Tensor;
      if (o.likelihoodWeighting) {
        const w = tensor(Array.from(ts, (t) => this.sde.beta(t) / this.sde.std(t) ** 2), [B]);
        lossT = mean(mul(mean(sq, [1, 2, 3]), w));
      } else lossT = mean(sq);
      let grads: Tensor[];
      try {
        grads = grad(lossT, params);
      } finally {
        clearTape();
      }
      noGrad(() => {
        // Clipping scales the gradients inside Adam's kernel (no scaled copy of each), and the same
        // pass updates the EMA from the new weights.
        if (o.gradClip > 0) {
          const average = { tensors: this.trainable.map(([name]) => this.ema.get(name)!), decay: this.emaDecay() };
          this.opt.stepScaled(grads, clipFactor(grads, o.gradClip), average);
        } else {
          this.opt.step(grads);
          this.updateEma();
        }
      });
      return (await lossT.readF32())[0];
    });
    this.step++;
    this.losses.push(loss);
    return loss;
  }

  /** The EMA decay of this step: min(decay, (1 + step) / (10 + step)). */
  private emaDecay(): number {
    return Math.min(this.options.emaDecay, (1 + this.step) / (10 + this.step));
  }

  private updateEma(): void {
    const d = this.emaDecay();
    for (const [name, p] of this.trainable) emaUpdate(this.ema.get(name)!, p, d);
  }

  /** The EMA weights as a ScoreViT (a separate copy; the caller disposes it). */
  async emaNet(): Promise<ScoreViT> {
    const sd = new Map<string, HostTensor<Float32Array>>();
    for (const [k, t] of this.ema) sd.set(k, { dtype: 'float32', shape: [...t.shape], data: await t.readF32() });
    return ScoreViT.fromStateDict(this.config.vit, sd);
  }

  /** The checkpoint bytes (a model file of the EMA weights plus the training state). */
  async checkpoint(): Promise<Uint8Array> {
    const read = async (t: Tensor): Promise<HostTensor<Float32Array>> => ({ dtype: 'float32', shape: [...t.shape], data: await t.readF32() });
    const weights = new Map<string, HostTensor<Float32Array>>();
    for (const [k, t] of this.ema) weights.set(k, await read(t));
    const extra = new Map<string, HostTensor<Float32Array>>();
    let adamStep = 0;
    for (const [name, p] of this.trainable) {
      extra.set(`train.param.${name}`, await read(p));
      const s = this.opt.stateOf(p);
      extra.set(`train.adam_m.${name}`, s ? await read(s.m) : { dtype: 'float32', shape: [...p.shape], data: new Float32Array(p.size) });
      extra.set(`train.adam_v.${name}`, s ? await read(s.v) : { dtype: 'float32', shape: [...p.shape], data: new Float32Array(p.size) });
      adamStep = s?.step ?? 0;
    }
    if (this.base) for (const [k, t] of baseRecord(this.base, 'gaussian.').tensors) extra.set(k, { dtype: 'float32', shape: t.shape, data: t.data as Float32Array });
    const state: TrainState = { step: this.step, rngOffset: this.rngOffset, adamStep, seed: this.options.seed, options: this.options, losses: this.losses };
    return writeScoreModel(this.config, weights, extra, { train: JSON.stringify(state) });
  }

  /** Frees the optimizer state and the EMA copies (the network stays with its owner: `trainer.net`). */
  dispose(): void {
    this.opt.dispose();
    for (const t of this.ema.values()) t.dispose();
    this.ema.clear();
    for (const [, p] of this.trainable) p.requireGrad(false);
  }
}

function readTrainState(from: LoadedScoreModel): TrainState {
  const text = from.metadata.train;
  if (!text) throw new Error('resume: the file has no training state (__metadata__.train); it is a model file, not a checkpoint');
  const s = JSON.parse(text) as TrainState;
  if (!(Number.isInteger(s.step) && Number.isInteger(s.rngOffset) && Array.isArray(s.losses))) throw new Error('resume: __metadata__.train is malformed');
  return s;
}

/** clip / max(|g|, clip) [1], with |g| the global norm over all gradients: the factor that clips them. */
function clipFactor(grads: Tensor[], clip: number): Tensor {
  return affine(rsqrt(clamp(sumOfSquares(grads), clip * clip, 3e38)), clip);
}

/** Fisher-Yates shuffle of 0..N-1 driven by Philox stream (seed, [epoch, 1]). */
export function shuffle(N: number, seed: Word64, epoch: number): Uint32Array {
  const order = Uint32Array.from({ length: N }, (_, i) => i);
  const u = philoxUniformRef(N, seed, [epoch >>> 0, 1]);
  for (let i = N - 1; i > 0; i--) {
    const j = Math.floor(u[i] * (i + 1));
    const tmp = order[i];
    order[i] = order[j];
    order[j] = tmp;
  }
  return order;
}
