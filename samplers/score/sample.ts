// Samplers driven by a noise-predicting score model on the VP-SDE (docs/design.md, "VP-SDE"):
//   pcSample          reverse-time SDE, Euler-Maruyama predictor + optional Langevin corrector (snr),
//                     from t = 1 (or a given state at a chosen t, SDEdit-style) down to eps = 1e-3,
//                     returning the noise-free mean of the last predictor step;
//   annealedLangevin  Langevin dynamics at a decreasing sequence of noise levels (NCSN-style step
//                     sizes alpha_l = epsilon * std(t_l)^2 / std(t_last)^2), noise-free mean at the end;
//   hotStep / priorDelta   SGILO's fixed-t prior move: one noise-free reverse Euler-Maruyama step at
//                     t = 0.01, dt = -1/N on data normalized to [0, 1]:
//                     x' = x * 1.0001495 - 0.0066976 * eps(x, 0.01), delta = (x' - x) * (max - min).
//
// Legend: B batch; x [B, ...] in the model's normalized space ([0, 1] data, see train.ts);
// eps(x, t) the model output (same shape), score = -eps / std(t). Time t is the same for the whole
// batch in these samplers. Random numbers come from a RandomStream (Philox, seed + counted offset),
// so a sampler call is reproducible from its seed.
//
// Memory: each step runs in a scope that keeps only the new state; the caller owns the result.
// Everything runs under noGrad (sampling never records on the tape).

import { engine } from '../../engine/engine.ts';
import { Tensor, full, scope } from '../../engine/tensor.ts';
import { noGrad } from '../../engine/tape.ts';
import { add, affine, div, mul, sqrt, square } from '../../engine/ops/elementwise.ts';
import { mean, sum } from '../../engine/ops/reduce.ts';
import { RandomStream, type Value64 } from '../../engine/random.ts';
import { VPSDE } from './vpsde.ts';

/** Anything that predicts the noise: ScoreViT, or a closed-form model in tests. */
export interface EpsModel {
  forward(x: Tensor, t: Tensor): Tensor;
}

/** A state to start from instead of pure noise (SDEdit): x at data level, diffused to time t. */
export interface StartState {
  x: Tensor;
  t: number;
  /** Diffuse x to time t first (x_t = m(t) x + std(t) z). false: x is already a sample at time t. */
  diffuse?: boolean;
}

export interface SamplerCommon {
  seed: Value64;
  /** First Philox stream offset (default 0). */
  offset?: number;
  sde?: VPSDE;
  /** Shape of the samples (required without `start`). */
  shape?: readonly number[];
  start?: StartState;
  /** Last time (default 1e-3). */
  eps?: number;
  /** Wait for the GPU every this many steps so recording never runs far ahead (default 10). */
  syncEvery?: number;
  onStep?: (step: number, total: number, t: number) => void;
}

export interface PCOptions extends SamplerCommon {
  /** Predictor steps from t = 1 (default sde.N; a start at t0 uses round(steps * t0)). */
  steps?: number;
  /** Langevin corrector steps per predictor step (default 0: predictor only). */
  correctorSteps?: number;
  /** Corrector signal-to-noise ratio (default 0.16, score_sde's VP setting). */
  snr?: number;
}

export interface AnnealedOptions extends SamplerCommon {
  /** Noise levels from t = 1 (or the start's t) to eps (default 100). */
  levels?: number;
  stepsPerLevel?: number;
  /** Step size at the last level (default 2e-5, as in NCSN). */
  epsilon?: number;
}

/** eps(x, t) with the same t for every sample. */
export function epsAt(model: EpsModel, x: Tensor, t: number): Tensor {
  return model.forward(x, full([x.shape[0]], t));
}

/** score(x, t) = -eps(x, t) / std(t). */
export function scoreAt(model: EpsModel, sde: VPSDE, x: Tensor, t: number): Tensor {
  return affine(epsAt(model, x, t), -1 / sde.std(t));
}

function initialState(o: SamplerCommon, sde: VPSDE, rng: RandomStream, t0: number): Tensor {
  if (!o.start) {
    if (!o.shape) throw new Error('sampler: give either `shape` (start from noise) or `start` (start from a state)');
    return rng.normal(o.shape); // the VP prior N(0, I)
  }
  const { x, diffuse = true } = o.start;
  if (!diffuse) return affine(x, 1); // a copy the loop may dispose
  return scope(() => add(affine(x, sde.meanCoeff(t0)), affine(rng.normal(x.shape), sde.std(t0))));
}

function startTime(o: SamplerCommon, eps: number): number {
  const t0 = o.start?.t ?? 1;
  if (!(t0 > eps && t0 <= 1)) throw new RangeError(`sampler: start time ${t0} must be in (${eps}, 1]`);
  return t0;
}

/** n times from t0 down to eps, both included (torch.linspace). */
function linspace(t0: number, eps: number, n: number): number[] {
  return n === 1 ? [t0] : Array.from({ length: n }, (_, i) => t0 + ((eps - t0) * i) / (n - 1));
}

/** Runs `step` n times, each in its own scope; keeps the latest {x, mean}; syncs now and then. */
async function iterate(n: number, x0: Tensor, o: SamplerCommon, step: (x: Tensor, i: number) => { x: Tensor; mean: Tensor }): Promise<Tensor> {
  let x = x0;
  let last: Tensor | null = null;
  const every = o.syncEvery ?? 10;
  for (let i = 0; i < n; i++) {
    const next = scope(() => noGrad(() => step(x, i)));
    x.dispose();
    last?.dispose();
    x = next.x;
    last = next.mean;
    if ((i + 1) % every === 0) await engine().sync();
  }
  x.dispose();
  return last ?? x0;
}

/** One Langevin corrector step (score_sde's LangevinCorrector for the VP-SDE). */
function langevinCorrect(model: EpsModel, sde: VPSDE, rng: RandomStream, x: Tensor, t: number, snr: number): { x: Tensor; mean: Tensor } {
  const axes = x.shape.map((_, i) => i).slice(1);
  const g = scoreAt(model, sde, x, t);
  const noise = rng.normal(x.shape);
  const norm = (v: Tensor) => mean(sqrt(sum(square(v), axes))); // mean over the batch of per-sample norms, []
  // step = 2 alpha (snr |noise| / |grad|)^2, all on the GPU (no read-back).
  const step = affine(square(div(norm(noise), norm(g))), 2 * sde.discreteAlpha(t) * snr * snr);
  const xMean = add(x, mul(g, step));
  return { x: add(xMean, mul(noise, sqrt(affine(step, 2)))), mean: xMean };
}

/**
 * Reverse-time SDE sampling: per step (optional corrector, then) the Euler-Maruyama predictor
 * x_mean = x + (-(1/2) beta x - beta score) dt, x = x_mean + sqrt(beta |dt|) z, with dt = -1/N as in
 * score_sde, at times linspace(t0, eps, steps). Returns the last x_mean (noise-free).
 */
export async function pcSample(model: EpsModel, o: PCOptions): Promise<Tensor> {
  const sde = o.sde ?? new VPSDE();
  const eps = o.eps ?? 1e-3;
  const t0 = startTime(o, eps);
  const total = o.steps ?? sde.N;
  if (!(Number.isInteger(total) && total >= 1)) throw new RangeError(`pcSample: steps must be a positive integer, got ${o.steps}`);
  const n = Math.max(1, Math.round(total * t0));
  const dt = -1 / total;
  const snr = o.snr ?? 0.16;
  const corrector = o.correctorSteps ?? 0;
  const rng = new RandomStream(o.seed, o.offset ?? 0);
  const times = linspace(t0, eps, n);
  const x0 = noGrad(() => initialState(o, sde, rng, t0));
  return iterate(n, x0, o, (x, i) => {
    const t = times[i];
    o.onStep?.(i, n, t);
    let cur = x;
    for (let j = 0; j < corrector; j++) cur = langevinCorrect(model, sde, rng, cur, t, snr).x;
    const beta = sde.beta(t);
    // x + (-(1/2) beta x + beta eps / std) dt  (score = -eps / std)
    const xMean = add(affine(cur, 1 - (beta * dt) / 2), affine(epsAt(model, cur, t), (beta * dt) / sde.std(t)));
    return { x: add(xMean, affine(rng.normal(x.shape), Math.sqrt(beta * -dt))), mean: xMean };
  });
}

/**
 * Annealed Langevin dynamics: at each level t_l (linspace(t0, eps, levels)),
 * `stepsPerLevel` steps x_mean = x + alpha_l score(x, t_l), x = x_mean + sqrt(2 alpha_l) z with
 * alpha_l = epsilon * std(t_l)^2 / std(eps)^2. Returns the last x_mean.
 */
export async function annealedLangevin(model: EpsModel, o: AnnealedOptions): Promise<Tensor> {
  const sde = o.sde ?? new VPSDE();
  const eps = o.eps ?? 1e-3;
  const t0 = startTime(o, eps);
  const levels = o.levels ?? 100;
  const per = o.stepsPerLevel ?? 5;
  const epsilon = o.epsilon ?? 2e-5;
  if (!(Number.isInteger(levels) && levels >= 1 && Number.isInteger(per) && per >= 1)) throw new RangeError(`annealedLangevin: levels and stepsPerLevel must be positive integers, got ${levels}, ${per}`);
  if (!(epsilon > 0)) throw new RangeError(`annealedLangevin: epsilon must be > 0, got ${epsilon}`);
  const rng = new RandomStream(o.seed, o.offset ?? 0);
  const times = linspace(t0, eps, levels);
  const sLast = sde.std(eps);
  const x0 = noGrad(() => initialState(o, sde, rng, t0));
  return iterate(levels * per, x0, o, (x, i) => {
    const t = times[Math.floor(i / per)];
    o.onStep?.(i, levels * per, t);
    const alpha = (epsilon * sde.std(t) ** 2) / sLast ** 2;
    const xMean = add(x, affine(scoreAt(model, sde, x, t), alpha));
    return { x: add(xMean, affine(rng.normal(x.shape), Math.sqrt(2 * alpha))), mean: xMean };
  });
}

export interface HotStepOptions {
  sde?: VPSDE;
  /** Default 0.01. */
  t?: number;
  /** Default -1/N. */
  dt?: number;
}

/** The coefficients (a, b) of x' = a x + b eps(x, t) for SGILO's fixed-t step. */
export function hotStepCoefficients(o: HotStepOptions = {}): { a: number; b: number } {
  const sde = o.sde ?? new VPSDE();
  return sde.reverseStepCoefficients(o.t ?? 0.01, o.dt ?? -1 / sde.N);
}

/** x' = a x + b eps(x, t) on normalized data x (default t = 0.01, dt = -1/N: a = 1.0001495, b = -0.0066976). */
export function hotStep(model: EpsModel, x: Tensor, o: HotStepOptions = {}): Tensor {
  const { a, b } = hotStepCoefficients(o);
  return noGrad(() => scope(() => add(affine(x, a), affine(epsAt(model, x, o.t ?? 0.01), b))));
}

/**
 * SGILO's prior move in raw units: x = (v - min) / (max - min), x' = hotStep(x),
 * delta = (x' - x) (max - min) = ((a - 1) x + b eps(x)) (max - min).
 */
export function priorDelta(model: EpsModel, v: Tensor, range: { min: number; max: number }, o: HotStepOptions = {}): Tensor {
  const span = range.max - range.min;
  if (!(span > 0)) throw new RangeError(`priorDelta: max (${range.max}) must exceed min (${range.min})`);
  const { a, b } = hotStepCoefficients(o);
  return noGrad(() =>
    scope(() => {
      const x = affine(v, 1 / span, -range.min / span);
      return add(affine(x, (a - 1) * span), affine(epsAt(model, x, o.t ?? 0.01), b * span));
    }),
  );
}
