// CSGM, ILO and SGILO: reconstruction by optimizing (or sampling) a StyleGAN2's latent rows, noise
// maps and, from round 1 on, the features entering an intermediate block (docs/design.md, "CSGM, ILO and SGILO").
// long because the methods share one round loop, its state, the batch-invariant loss and noise,
// and the step helpers (projections, divergence); splitting them would spread one algorithm thin.
//
//   round 0 (CSGM):  variables z [N, 2L, S] (through MappingProxy) and noise maps 0..4
//   round k >= 1:    + the features entering block k [N, C, r, r], initialized from the previous
//                    round's result; noise maps used by blocks >= k, up to index 4 + 2k.
// Each round has a fresh Adam and ILO's learning-rate schedule (linear warm-up over the first 5%,
// cosine decay over the last 75%). CSGM and ILO keep each latent row and noise map at its starting
// norm after every step (spherical projection). SGILO adds the learned prior on the round's
// variable (the features; in round 0 the W+ rows, when a latent prior is given): after the
// likelihood step, v += temperature * delta + noise_t * N(0, I), with delta the score model's fixed-t
// reverse-SDE move (samplers/inverse/prior.ts), optionally repeated (priorSteps), and noise_t constant
// or annealed with the learning rate (noiseSchedule). `sgld` is the paper's pure form:
// v <- v - eta (grad ||A(G(v)) - y||^2 / (2 sigma^2) - lambda score(v)) + sqrt(2 eta / beta) u.
// ILO's optional l1 balls (`l1`): after every step (after the spherical projection and any prior
// move), the latent, each optimized noise map and the features are projected (Euclidean, Duchi's
// projection, engine/ops/l1_ball.ts) onto the l1 ball of the round's radius around their values at
// the start of the round, one ball per image/chain and per noise map, as in ILO's code. Off unless
// radii are given (the SGILO and SGLD presets never set them, but any method accepts them).
//
// N = images x chains: every image and chain shares each dispatch, yet each sample runs as it
// would alone: its random draws (start, Langevin and SGLD noise) come from its own row stream
// (options.streams; engine/random.ts, randomNormalRows), and the loss whose gradient is taken is
// the sum over samples of each sample's mean squared residual, so no sample's gradient depends on
// N or on the others. A queue worker can therefore batch any jobs of one setting and get each
// job's numbers exactly. Deterministic given the seed and the streams. The recorded loss is the
// mean over samples.

import { Tensor, empty, scope } from '../../engine/tensor.ts';
import { grad, noGrad, clearTape } from '../../engine/tape.ts';
import { add, affine, square, sub } from '../../engine/ops/elementwise.ts';
import { mean, sum } from '../../engine/ops/reduce.ts';
import { reshape } from '../../engine/ops/layout.ts';
import { projectL1Ball } from '../../engine/ops/l1_ball.ts';
import { Adam, rescaleRows } from '../../engine/optim.ts';
import { RandomStream, type RowStream } from '../../engine/random.ts';
import { engine } from '../../engine/engine.ts';
import { StyleGAN2, numBlocks, numLatents, numNoises, noiseSide } from '../../nets/stylegan2.ts';
import { MappingProxy, rowNorms } from './mapping_proxy.ts';
import type { FeaturePrior } from './prior.ts';
import { langevinTarget } from './langevin_move.ts';
import { iloLearningRate, noiseStdAt, type NoiseSchedule } from './schedule.ts';

export { iloLearningRate, noiseStdAt, NOISE_SCHEDULES, type NoiseSchedule } from './schedule.ts';

export type MethodName = 'csgm' | 'ilo' | 'sgilo' | 'sgld';

export interface MethodConfig {
  method: MethodName;
  /** Intermediate blocks to visit after round 0, e.g. [1, 2] (CSGM: []). */
  blocks: number[];
  /** Optimization steps per round. */
  steps: number;
  /** Adam learning rate (ILO: 0.1 in round 0; SGILO authors: 0.05). */
  lr: number;
  /** SGILO: weight of the prior move and std of the added noise (raw units). */
  temperature?: number;
  noiseScale?: number;
  /**
   * SGILO: how the added noise follows the round. 'constant' (the authors' code): noiseScale every
   * step; 'annealed': noiseScale * sqrt(lr_t / lr), Langevin's sqrt(2 step) with the learning-rate
   * schedule as the step, so it fades to zero with the learning rate and each round ends noise-free.
   */
  noiseSchedule?: NoiseSchedule;
  /** SGILO: prior moves per likelihood step ("hot steps"), each recomputed at the moved iterate; default 1. */
  priorSteps?: number;
  /** sgld: step size, measurement noise sigma, prior weight lambda and inverse temperature beta. */
  eta?: number;
  sigma?: number;
  lambda?: number;
  beta?: number;
  /** ILO's optional l1 balls (absolute radii); absent or Infinity: unconstrained. */
  l1?: L1Radii;
}

/**
 * l1 radius per variable: one number for every round, or one per round (index 0 is round 0, the
 * CSGM round, where the features radius is unused). A ball keeps the variable within that l1
 * distance of its value at the start of the round (per image/chain; per noise map for the noise).
 */
export interface L1Radii {
  latent?: number | number[];
  noise?: number | number[];
  features?: number | number[];
}

/** What `onRound` sees at the start and at the end of each round (valid during the call only). */
export interface RoundInfo {
  round: number;
  block: number;
  when: 'start' | 'end';
  z: Tensor;
  noise: Tensor[];
  /** Indices of the noise maps this round optimizes. */
  noiseIdx: number[];
  features: Tensor | null;
}

export interface Problem {
  generator: StyleGAN2;
  proxy: MappingProxy;
  /** A(x) for images x [N, 3, size, size] (differentiable). */
  forward: (x: Tensor) => Tensor;
  /** The measurements, [N, ...] matching forward's output (already repeated per chain). */
  y: Tensor;
  /**
   * Score models keyed by round block k: for k >= 1 the prior of the features entering block k
   * (i.e. after block k-1); key 0 the prior of a W+ row (the mapped latent), which SGILO's round 0
   * applies to every row (the paper's latent variant).
   */
  priors?: Map<number, FeaturePrior>;
}

export interface StepInfo {
  round: number;
  block: number;
  step: number;
  loss: number;
}

export interface RunResult {
  /** Final images [N, 3, size, size]. */
  images: Float32Array;
  shape: number[];
  /** Loss after each step, per round. */
  losses: number[][];
  /** Final features entering the last block visited (for saving inversions), if any round >= 1. */
  features?: { data: Float32Array; shape: number[]; block: number };
  seconds: number;
}

export class DivergenceError extends Error {
  constructor(
    readonly step: number,
    readonly round: number,
    readonly variable: string,
  ) {
    super(`divergence at round ${round}, step ${step}: ${variable} is not finite (NaN or Inf); lower the learning rate or the step size`);
  }
}


/** Copies `src` into `dst` in place (optimizers hold `dst`). */
function assign(dst: Tensor, src: Tensor): void {
  engine().recordCopy(src.buffer, 0, dst.buffer, 0, dst.bytes);
}

async function isFinite(t: Tensor): Promise<boolean> {
  const d = await t.readF32();
  for (let i = 0; i < d.length; i++) if (!Number.isFinite(d[i])) return false;
  return true;
}

/** The radius of `which` in `round` (Infinity when unconstrained), validated. */
export function l1RadiusAt(radii: L1Radii | undefined, which: keyof L1Radii, round: number, rounds: number): number {
  const spec = radii?.[which];
  if (spec === undefined) return Infinity;
  const list = typeof spec === 'number' ? [spec] : spec;
  if (typeof spec !== 'number' && list.length < rounds) throw new RangeError(`l1.${which}: ${list.length} radii for ${rounds} rounds (give one per round, or one number for all)`);
  for (const r of list) if (typeof r !== 'number' || Number.isNaN(r) || r < 0) throw new RangeError(`l1.${which}: radii must be numbers >= 0 (or Infinity), got ${r}`);
  return typeof spec === 'number' ? spec : list[round];
}

export async function runMethod(
  problem: Problem,
  config: MethodConfig,
  options: {
    seed: number;
    /** Sample n's row stream (default [n, 0]); solve() gives [image id, chain]. */
    streams?: readonly RowStream[];
    onStep?: (s: StepInfo) => void;
    onRound?: (r: RoundInfo) => void | Promise<void>;
  },
): Promise<RunResult> {
  const t0 = performance.now();
  const g = problem.generator;
  const N = problem.y.shape[0];
  const L = numBlocks(g.config);
  const R = numLatents(g.config);
  const S = g.config.styleDim;
  const rng = new RandomStream(options.seed);
  const streams = options.streams ?? Array.from({ length: N }, (_, n): RowStream => [n, 0]);
  if (streams.length !== N) throw new RangeError(`${config.method}: ${streams.length} row streams for ${N} samples`);
  for (const k of config.blocks) if (!(k >= 1 && k < L)) throw new RangeError(`${config.method}: block ${k} outside 1..${L - 1}`);
  for (let i = 1; i < config.blocks.length; i++) {
    if (config.blocks[i] <= config.blocks[i - 1]) throw new RangeError(`${config.method}: blocks must increase, got ${config.blocks.join(', ')}`);
  }
  if (config.method === 'csgm' && config.blocks.length) throw new Error('csgm optimizes the latent and noise only: give no blocks');
  const rounds = [0, ...config.blocks];
  for (const which of ['latent', 'noise', 'features'] as const) l1RadiusAt(config.l1, which, 0, rounds.length); // validates

  // Persistent state (kept across rounds, freed at the end).
  // In a scope, so that the intermediates of rowNorms are freed (the caller may have no scope).
  const { z, noise, zNorms, noiseNorms } = scope(() => {
    const z = rng.normalRows([N, R, S], streams);
    const noise = Array.from({ length: numNoises(g.config) }, (_, i) => rng.normalRows([N, 1, noiseSide(i), noiseSide(i)], streams));
    return { z, noise, zNorms: rowNorms(z), noiseNorms: noise.map((n) => rowNorms(n)) };
  });
  for (const t of [z, zNorms, ...noise, ...noiseNorms]) t.keep();
  const losses: number[][] = [];
  let layerIn: Tensor | null = null;
  let block = 0;
  try {
    for (const [round, k] of rounds.entries()) {
      block = k;
      if (k >= 1) {
        // Features entering block k from the current state (previous round's result).
        const prev: Tensor | null = layerIn;
        const next: Tensor = scope(() =>
          noGrad((): Tensor => {
            const wplus = problem.proxy.apply(z);
            // From the previous round's features (entering block rounds[round - 1]), or from scratch.
            return prev ? g.blocks({ wplus, noise }, rounds[round - 1], k - 1, prev).features : g.featuresAfter({ wplus, noise }, k - 1);
          }),
        );
        prev?.dispose();
        layerIn = next.keep();
      }
      const noiseIdx = noise.map((_, i) => i).filter((i) => (k === 0 ? i <= 4 : i >= 2 * k - 1 && i <= 4 + 2 * k));
      const vars: Tensor[] = [z, ...noiseIdx.map((i) => noise[i]), ...(layerIn ? [layerIn] : [])];
      const info = (when: 'start' | 'end'): RoundInfo => ({ round, block: k, when, z, noise, noiseIdx, features: layerIn });
      await options.onRound?.(info('start'));
      const balls = l1Balls(config.l1, round, rounds.length, z, noiseIdx.map((i) => noise[i]), layerIn);
      try {
        const roundLosses = await optimizeRound(problem, config, { round, block: k, vars, z, noise, noiseIdx, zNorms, noiseNorms, layerIn, balls, rng, streams, onStep: options.onStep });
        losses.push(roundLosses);
      } finally {
        for (const b of balls) b.center.dispose();
      }
      await options.onRound?.(info('end'));
    }
    const [images, feat] = await scope(() =>
      noGrad(async () => {
        const wplus = problem.proxy.apply(z);
        const img = layerIn ? g.fromLayer({ wplus, noise }, block, layerIn) : g.synthesis({ wplus, noise });
        return [await img.readF32(), layerIn ? await layerIn.readF32() : null] as const;
      }),
    );
    return {
      images,
      shape: [N, 3, g.config.size, g.config.size],
      losses,
      features: feat && layerIn ? { data: feat, shape: [...layerIn.shape], block } : undefined,
      seconds: (performance.now() - t0) / 1000,
    };
  } finally {
    clearTape();
    for (const t of [z, zNorms, ...noise, ...noiseNorms]) t.dispose();
    (layerIn as Tensor | null)?.dispose();
  }
}

interface RoundState {
  round: number;
  block: number;
  vars: Tensor[];
  z: Tensor;
  noise: Tensor[];
  noiseIdx: number[];
  zNorms: Tensor;
  noiseNorms: Tensor[];
  layerIn: Tensor | null;
  balls: L1Ball[];
  rng: RandomStream;
  /** One per sample: its row stream for every draw. */
  streams: readonly RowStream[];
  onStep?: (s: StepInfo) => void;
}

/** A variable constrained to ||target - center||_1 <= radius (center: its value at the round's start). */
interface L1Ball {
  target: Tensor;
  center: Tensor;
  radius: number;
}

function snapshot(t: Tensor): Tensor {
  const c = empty(t.shape).keep();
  engine().recordCopy(t.buffer, 0, c.buffer, 0, t.bytes);
  return c;
}

function l1Balls(radii: L1Radii | undefined, round: number, rounds: number, z: Tensor, noise: Tensor[], layerIn: Tensor | null): L1Ball[] {
  const balls: L1Ball[] = [];
  const constrain = (target: Tensor, radius: number) => {
    if (radius !== Infinity) balls.push({ target, center: snapshot(target), radius });
  };
  constrain(z, l1RadiusAt(radii, 'latent', round, rounds));
  for (const n of noise) constrain(n, l1RadiusAt(radii, 'noise', round, rounds));
  if (layerIn) constrain(layerIn, l1RadiusAt(radii, 'features', round, rounds));
  return balls;
}

/** Projects each constrained variable back into its ball (after the step's update). */
function projectBalls(s: RoundState): void {
  for (const b of s.balls) assign(b.target, projectL1Ball(b.target, b.radius, b.center));
}

/**
 * Standard normals shaped like a variable whose leading rows are sample-major (N samples, or the
 * latent prior's N x rows view), each sample's share from its own row stream.
 */
function sampleNoise(s: RoundState, shape: readonly number[]): Tensor {
  const N = s.streams.length;
  const size = shape.reduce((a, b) => a * b, 1);
  return reshape(s.rng.normalRows([N, size / N], s.streams), [...shape]);
}

/** The sum over samples of each sample's mean squared residual (see the header: batch-invariant gradients). */
function measurementLoss(problem: Problem, s: RoundState): Tensor {
  const g = problem.generator;
  const wplus = problem.proxy.apply(s.z);
  const img = s.layerIn ? g.fromLayer({ wplus, noise: s.noise }, s.block, s.layerIn) : g.synthesis({ wplus, noise: s.noise });
  const r = square(sub(problem.forward(img), problem.y));
  return sum(mean(r, Array.from({ length: r.rank - 1 }, (_, i) => i + 1)));
}

async function optimizeRound(problem: Problem, config: MethodConfig, s: RoundState): Promise<number[]> {
  const prior = problem.priors?.get(s.block);
  if (config.method === 'sgld') return sgldRound(problem, config, s, s.block >= 1 ? prior : undefined);
  const adam = new Adam(s.vars, { lr: config.lr });
  const spherical = config.method !== 'sgilo';
  const langevin = config.method === 'sgilo' && prior ? langevinTarget(prior, problem.proxy, s.z, s.layerIn) : null;
  const temperature = config.temperature ?? 0.1;
  const priorSteps = config.priorSteps ?? 1;
  if (!(Number.isInteger(priorSteps) && priorSteps >= 1)) throw new RangeError(`priorSteps must be a positive integer, got ${priorSteps}`);
  try {
    return await runSteps(s, config.steps, (step) => {
      const t = (step + 1) / config.steps;
      adam.lr = Math.max(iloLearningRate(t, config.lr), 1e-12);
      // SGILO: the prior's move is computed at the current iterate, before the likelihood step.
      const delta = langevin && temperature > 0 ? noGrad(() => langevin.prior.delta(langevin.read())) : null;
      const l = measurementLoss(problem, s);
      const grads = grad(l, s.vars);
      adam.step(grads);
      noGrad(() => {
        if (spherical) project(s);
        const std = langevin ? noiseStdAt(t, config) : 0;
        if (langevin && (delta || std > 0)) {
          let v = langevin.read();
          if (delta) v = add(v, affine(delta, temperature));
          for (let k = 1; k < priorSteps && delta; k++) v = add(v, affine(langevin.prior.delta(v), temperature));
          if (std > 0) v = add(v, affine(sampleNoise(s, v.shape), std));
          langevin.write(v);
        }
        projectBalls(s);
      });
      return l;
    });
  } finally {
    adam.dispose();
  }
}

/**
 * The step loop every method's round shares: the round's variables require gradients while it
 * runs; each step, inside a tensor scope, updates them and returns the measurement loss it
 * computed, which is read back, checked (a non-finite loss names the variable that diverged),
 * recorded and reported. Returns the losses.
 */
async function runSteps(s: RoundState, steps: number, step: (step: number) => Tensor): Promise<number[]> {
  const losses: number[] = [];
  for (const v of s.vars) v.requireGrad();
  try {
    for (let i = 0; i < steps; i++) {
      const loss = (await scope(async () => (await step(i).readF32())[0])) / s.streams.length;
      if (!Number.isFinite(loss)) throw await locateDivergence(s, i);
      losses.push(loss);
      s.onStep?.({ round: s.round, block: s.block, step: i, loss });
    }
  } finally {
    for (const v of s.vars) v.requireGrad(false);
  }
  return losses;
}

/** Rescales each latent row and optimized noise map to the norm it started with. */
function project(s: RoundState): void {
  rescaleRows(s.z, s.zNorms);
  for (const i of s.noiseIdx) rescaleRows(s.noise[i], s.noiseNorms[i]);
}

async function locateDivergence(s: RoundState, step: number): Promise<DivergenceError> {
  if (!(await isFinite(s.z))) return new DivergenceError(step, s.round, 'the latent z');
  for (const i of s.noiseIdx) if (!(await isFinite(s.noise[i]))) return new DivergenceError(step, s.round, `noise map ${i}`);
  if (s.layerIn && !(await isFinite(s.layerIn))) return new DivergenceError(step, s.round, `the features entering block ${s.block}`);
  return new DivergenceError(step, s.round, 'the measurement loss');
}

/**
 * The paper's pure SGLD on every variable of the round: v <- v - eta grad U + sqrt(2 eta / beta) u,
 * U = ||A(G(v)) - y||^2 / (2 sigma^2) - lambda log p(v) (the prior term on the features only).
 */
async function sgldRound(problem: Problem, config: MethodConfig, s: RoundState, prior: FeaturePrior | undefined): Promise<number[]> {
  const eta = config.eta ?? 1e-4;
  const sigma = config.sigma ?? 0.05;
  const lambda = config.lambda ?? 1;
  const beta = config.beta ?? 1;
  const n = problem.y.size / problem.y.shape[0];
  return runSteps(s, config.steps, () => {
    const score = prior && s.layerIn ? noGrad(() => prior.score(s.layerIn!)) : null;
    const l = measurementLoss(problem, s);
    // each sample's mean over its n elements -> its sum / (2 sigma^2): scale the gradient by n / (2 sigma^2)
    const scale = n / (2 * sigma * sigma);
    const grads = grad(l, s.vars);
    noGrad(() => {
      s.vars.forEach((v, i) => {
        let drift = affine(grads[i], -eta * scale);
        if (score && v === s.layerIn) drift = add(drift, affine(score, eta * lambda));
        assign(v, add(v, add(drift, affine(sampleNoise(s, v.shape), Math.sqrt((2 * eta) / beta)))));
      });
      projectBalls(s);
    });
    return l;
  });
}
