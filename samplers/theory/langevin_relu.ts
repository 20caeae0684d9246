// Many chains at once on L(z) = 0.5 ||A G(z) - y||^2 for random ReLU generators (nets/relu_generator.ts):
//
//   gd        z <- z - eta grad L(z)
//   gd_flip   the same, but a step that finds L(-z) < L(z) flips z <- -z instead (Hand and
//             Voroninski's escape from the spurious critical point near -rho z*)
//   langevin  z <- z - eta grad L(z) + sqrt(2 eta / beta) u,  u ~ N(0, I_k)
//             (stationary density ~ exp(-beta L) up to the O(eta) discretization bias)
//
// Legend: I = instances, C = chains per instance (the same C chain specs in every instance),
// k = latent dimension, rows = I * C. One step is one batch of dispatches for all rows: forward and
// backward through G (the tape), L(-z) when any chain may flip, the noise, and the fused update
// (shaders/langevin_relu.wgsl), which also tracks each chain's distance to z* and its first
// hitting time of the ball ||z - z*|| <= radius ||z*||. Deterministic from `seed` (the noise is
// Philox stream `seed`, offset = step index).

import { defineKernel, grid1d } from '../../engine/kernel.ts';
import { RandomStream } from '../../engine/random.ts';
import { full, scope, tensor, zeros } from '../../engine/tensor.ts';
import { noGrad } from '../../engine/tape.ts';
import { neg } from '../../engine/ops/elementwise.ts';
import type { ReluProblem } from '../../nets/relu_generator.ts';

const stepKernel = defineKernel({
  shader: 'langevin_relu',
  entry: 'chain_step',
  bindings: {
    z: 'read_write',
    grad: 'read',
    noise: 'read',
    sigma: 'read',
    flip: 'read',
    loss: 'read',
    loss_neg: 'read',
    z_star: 'read',
    hit: 'read_write',
    dist: 'read_write',
    speed: 'read_write',
    flips: 'read_write',
    params: 'uniform',
  },
});

export type Method = 'gd' | 'gd_flip' | 'langevin';

export interface ChainSpec {
  method: Method;
  /** Inverse temperature (langevin only). */
  beta?: number;
}

export interface ChainRunOptions {
  /** One spec per chain slot; every instance runs the same C slots. */
  chains: readonly ChainSpec[];
  /** Starting points [I, C, k], row-major. */
  z0: ArrayLike<number>;
  steps: number;
  eta: number;
  seed: number;
  /** Ball radius as a fraction of ||z*|| (default 0.1). */
  radius?: number;
  /** Read every chain's z after these step counts (for trajectories and Wasserstein curves). */
  snapshotSteps?: readonly number[];
  /** Called after each snapshot is read (progress reports). */
  onSnapshot?: (step: number) => void;
}

export interface ChainRunResult {
  /** [rows] first step count t with ||z_t - z*|| <= radius ||z*|| (0: the start), -1: never. */
  hit: Int32Array;
  /** [rows] ||z - z*|| / ||z*|| at the end. */
  dist: Float32Array;
  /** [rows] ||z_T - z_{T-1}|| of the last step (how far from rest). */
  speed: Float32Array;
  /** [rows] number of sign flips taken. */
  flips: Float32Array;
  /** [rows, k] final states; [rows] final losses. */
  z: Float32Array;
  loss: Float32Array;
  /** step count -> [rows, k] states. */
  snapshots: Map<number, Float32Array>;
  seconds: number;
}

function checkOptions(problem: ReluProblem, o: ChainRunOptions): void {
  const C = o.chains.length;
  if (C === 0) throw new RangeError('runChains: at least one chain spec is needed');
  for (const [c, s] of o.chains.entries()) {
    if (s.method !== 'gd' && s.method !== 'gd_flip' && s.method !== 'langevin') throw new RangeError(`runChains: chain ${c} has unknown method ${JSON.stringify(s.method)}`);
    if (s.method === 'langevin' && !(typeof s.beta === 'number' && s.beta > 0 && Number.isFinite(s.beta))) {
      throw new RangeError(`runChains: langevin chain ${c} needs a finite beta > 0, got ${s.beta}`);
    }
  }
  const want = problem.instances * C * problem.k;
  if (o.z0.length !== want) throw new RangeError(`runChains: z0 has ${o.z0.length} values, expected [${problem.instances}, ${C}, ${problem.k}] = ${want}`);
  if (!Number.isInteger(o.steps) || o.steps < 0) throw new RangeError(`runChains: steps must be a non-negative integer, got ${o.steps}`);
  if (!(o.eta > 0)) throw new RangeError(`runChains: eta must be positive, got ${o.eta}`);
}

/** Runs every chain for `steps` steps; see the file comment. */
export async function runChains(problem: ReluProblem, o: ChainRunOptions): Promise<ChainRunResult> {
  checkOptions(problem, o);
  const started = performance.now();
  const I = problem.instances;
  const C = o.chains.length;
  const k = problem.k;
  const rows = I * C;
  const radius = o.radius ?? 0.1;
  const perRow = <T>(f: (s: ChainSpec) => T) => Array.from({ length: rows }, (_, r) => f(o.chains[r % C]));
  const sigmas = perRow((s) => (s.method === 'langevin' ? Math.sqrt((2 * o.eta) / s.beta!) : 0));
  const anyFlip = o.chains.some((s) => s.method === 'gd_flip');
  const anyNoise = o.chains.some((s) => s.method === 'langevin');
  const snapshotAt = new Set(o.snapshotSteps ?? []);
  const snapshots = new Map<number, Float32Array>();

  // Distances of the starts; a start inside the ball counts as hitting at step 0.
  const z0 = Float32Array.from(o.z0);
  const dist0 = new Float32Array(rows);
  const hit0 = new Float32Array(rows).fill(-1);
  for (let r = 0; r < rows; r++) {
    const i = Math.floor(r / C);
    let d2 = 0;
    let n2 = 0;
    for (let j = 0; j < k; j++) {
      d2 += (z0[r * k + j] - problem.zStarHost[i * k + j]) ** 2;
      n2 += problem.zStarHost[i * k + j] ** 2;
    }
    dist0[r] = Math.sqrt(d2 / n2);
    if (dist0[r] <= radius) hit0[r] = 0;
  }
  if (snapshotAt.has(0)) snapshots.set(0, z0);

  const state = {
    z: tensor(z0, [I, C, k]).keep(), // [I, C, k]
    sigma: tensor(sigmas, [rows]).keep(),
    flip: tensor(perRow((s) => (s.method === 'gd_flip' ? 1 : 0)), [rows]).keep(),
    hit: tensor(hit0, [rows]).keep(),
    dist: tensor(dist0, [rows]).keep(),
    speed: zeros([rows]).keep(),
    flips: zeros([rows]).keep(),
    ones: full([I, C], 1).keep(), // upstream gradient of the per-chain losses
    zeroNoise: anyNoise ? null : zeros([I, C, k]).keep(),
  };
  try {
    const noise = new RandomStream(o.seed);
    for (let t = 0; t < o.steps; t++) {
      scope(() => {
        const { loss, grad } = problem.lossAndGrad(state.z, state.ones);
        const lossNeg = anyFlip ? noGrad(() => scope(() => problem.loss(neg(state.z)))) : loss;
        const u = anyNoise ? noise.normal([I, C, k]) : state.zeroNoise!;
        const params = { rows, chains: C, k, t: t + 1, eta: o.eta, radius };
        stepKernel.dispatch(
          { z: state.z, grad, noise: u, sigma: state.sigma, flip: state.flip, loss, loss_neg: lossNeg, z_star: problem.zStar, hit: state.hit, dist: state.dist, speed: state.speed, flips: state.flips, params },
          grid1d(Math.ceil(rows / 64)),
        );
      });
      if (snapshotAt.has(t + 1)) {
        snapshots.set(t + 1, await state.z.readF32());
        o.onSnapshot?.(t + 1);
      }
    }
    const hit = await state.hit.readF32();
    const finalLoss = await noGrad(() => scope(async () => problem.loss(state.z).readF32()));
    return {
      hit: Int32Array.from(hit, (h) => Math.round(h)),
      dist: await state.dist.readF32(),
      speed: await state.speed.readF32(),
      flips: await state.flips.readF32(),
      z: await state.z.readF32(),
      loss: finalLoss,
      snapshots,
      seconds: (performance.now() - started) / 1000,
    };
  } finally {
    for (const t of Object.values(state)) t?.dispose();
  }
}
