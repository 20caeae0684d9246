// The measurements of the Theorem 3.1 experiment (cli/theory.ts): each function runs chains on
// the GPU (samplers/theory/langevin_relu.ts) and returns plain, JSON-able numbers for the report.
//
// Legend: I = instances (independent W, A, z*), C = chain slots per instance, k = latent dim,
// rho = the spurious critical point's scale (-rho z*), ball = ‖z - z*‖ <= radius ‖z*‖.

import { noGrad } from '../../engine/tape.ts';
import { scope } from '../../engine/tensor.ts';
import { neg } from '../../engine/ops/elementwise.ts';
import { reshape } from '../../engine/ops/layout.ts';
import { philoxNormalF64 } from '../../engine/reference/philox.ts';
import { ReluProblem } from '../../nets/relu_generator.ts';
import { runChains, type ChainSpec, type Method } from './langevin_relu.ts';
import { hessianAtOptimum, quantile, slicedW2, symmetricEigen } from './stats.ts';

export interface Setting {
  name: string;
  k: number;
  widths: number[];
  m: number;
  instances: number;
  seed: number;
}

export interface DynamicsPlan {
  eta: number;
  /** Gradient-descent steps from -z* to find where it comes to rest. */
  restSteps: number;
  /** Steps of the method comparison. */
  steps: number;
  /** beta = factor * k; betaFactors[0] is the main one. */
  betaFactors: number[];
  /** Langevin chains per start at the main beta, and at each other beta. */
  langevinMain: number;
  langevinOther: number;
  /** Gradient-descent and sign-flip chains per start. */
  gd: number;
  flip: number;
  /** Scale of the random offset of the starts near -rho z* (relative to ‖z*‖). */
  jitter: number;
  radius: number;
  seed: number;
}

export type StartKind = 'near_rho' | 'random';

export interface GroupResult {
  start: StartKind;
  method: Method;
  betaFactor: number | null;
  /** Hitting step of every chain (all instances), -1 if it never reached the ball. */
  hits: number[];
  finalDist: number[];
}

export interface SettingResult {
  setting: Setting;
  /** Per instance: argmin_t L(-t z*) = <A G(-z*), y> / ‖A G(-z*)‖^2 (G is positively homogeneous). */
  rhoRay: number[];
  /** Per instance, after `restSteps` of GD from -z*: -<z, z*> / ‖z*‖^2, cos(z, -z*), ‖z‖ / ‖z*‖, ‖z_T - z_{T-200}‖, ‖z - z*‖ / ‖z*‖. */
  rest: { rho: number[]; cosNeg: number[]; norm: number[]; drift: number[]; dist: number[]; kind: ('spurious' | 'reached' | 'other')[] };
  /** Median of rest.rho over the instances resting near the negative ray (NaN if none). */
  rho: number;
  /** Hessian of L at z* per instance: smallest and largest eigenvalue, tr(H^-1). */
  hessian: { lmin: number[]; lmax: number[]; trInv: number[] };
  groups: GroupResult[];
  seconds: number;
}

export type Log = (line: string) => void;

/** Random starts: N(0, I_k / k) scaled by ‖z*‖ (so ||z0|| ~ ‖z*‖), Philox stream `seed`. */
function randomStarts(n: number, k: number, seed: number, offset: number): Float64Array {
  const u = philoxNormalF64(n * k, [seed, 0], [offset, 0]);
  return u.map((v) => v / Math.sqrt(k));
}

/** rho_ray per instance, from one forward pass at -z*. */
async function rayRho(problem: ReluProblem): Promise<number[]> {
  const { instances: I, k, m } = problem.config;
  const a = await noGrad(() => scope(async () => problem.measure(problem.generate(reshape(neg(problem.zStar), [I, 1, k]))).readF32()));
  const y = await problem.y.readF32();
  return Array.from({ length: I }, (_, i) => {
    let ay = 0;
    let aa = 0;
    for (let r = 0; r < m; r++) {
      ay += a[i * m + r] * y[i * m + r];
      aa += a[i * m + r] ** 2;
    }
    return aa > 0 ? ay / aa : 0;
  });
}

/** Only rho_ray, for the width/depth scan (cheap: one forward pass). */
export async function rayScan(setting: Setting): Promise<number[]> {
  const problem = new ReluProblem(setting);
  try {
    return await rayRho(problem);
  } finally {
    problem.dispose();
  }
}

export async function runSetting(setting: Setting, plan: DynamicsPlan, log: Log): Promise<SettingResult> {
  const started = performance.now();
  const problem = new ReluProblem(setting);
  const { instances: I, k } = setting;
  const zs = problem.zStarHost;
  try {
    const hostProblem = await problem.toHost();
    const hessian = { lmin: [] as number[], lmax: [] as number[], trInv: [] as number[] };
    for (let i = 0; i < I; i++) {
      const { values } = symmetricEigen(hessianAtOptimum(hostProblem, i), k);
      hessian.lmin.push(Math.min(...values));
      hessian.lmax.push(Math.max(...values));
      hessian.trInv.push(values.reduce((s, v) => s + 1 / v, 0));
    }
    const rhoRay = await rayRho(problem);

    // Phase 1: gradient descent from -z*, where does it come to rest?
    const minus = Float64Array.from(zs, (v) => -v);
    const T = plan.restSteps;
    const r1 = await runChains(problem, { chains: [{ method: 'gd' }], z0: minus, steps: T, eta: plan.eta, seed: plan.seed, radius: plan.radius, snapshotSteps: [Math.max(0, T - 200), T] });
    const before = r1.snapshots.get(Math.max(0, T - 200))!;
    const rest: SettingResult['rest'] = { rho: [], cosNeg: [], norm: [], drift: [], dist: [], kind: [] };
    for (let i = 0; i < I; i++) {
      let dot = 0, nz = 0, ns = 0, drift = 0;
      for (let j = 0; j < k; j++) {
        const v = r1.z[i * k + j];
        dot += v * zs[i * k + j];
        nz += v * v;
        ns += zs[i * k + j] ** 2;
        drift += (v - before[i * k + j]) ** 2;
      }
      const cosNeg = -dot / Math.sqrt(nz * ns);
      rest.rho.push(-dot / ns);
      rest.cosNeg.push(cosNeg);
      rest.norm.push(Math.sqrt(nz / ns));
      rest.drift.push(Math.sqrt(drift));
      rest.dist.push(r1.dist[i]);
      rest.kind.push(r1.dist[i] <= plan.radius ? 'reached' : cosNeg >= 0.9 ? 'spurious' : 'other');
    }
    const spuriousRho = rest.rho.filter((_, i) => rest.kind[i] === 'spurious');
    const rho = spuriousRho.length ? quantile(spuriousRho, 0.5) : NaN;
    log(`  ${setting.name}: GD from -z* rests near -rho z* in ${spuriousRho.length}/${I} instances (median rho ${rho.toFixed(3)}), reaches z* in ${rest.kind.filter((x) => x === 'reached').length}/${I}`);

    // Phase 2: the methods from starts near -rho z* and from random starts.
    const slots: { start: StartKind; spec: ChainSpec; betaFactor: number | null }[] = [];
    for (const start of ['near_rho', 'random'] as StartKind[]) {
      for (let c = 0; c < plan.gd; c++) slots.push({ start, spec: { method: 'gd' }, betaFactor: null });
      for (let c = 0; c < plan.flip; c++) slots.push({ start, spec: { method: 'gd_flip' }, betaFactor: null });
      plan.betaFactors.forEach((f, bi) => {
        const n = bi === 0 ? plan.langevinMain : plan.langevinOther;
        for (let c = 0; c < n; c++) slots.push({ start, spec: { method: 'langevin', beta: f * k }, betaFactor: f });
      });
    }
    const C = slots.length;
    const jitter = randomStarts(I * C, k, plan.seed + 1, 0);
    const rnd = randomStarts(I * C, k, plan.seed + 2, 0);
    const z0 = new Float64Array(I * C * k);
    for (let i = 0; i < I; i++) {
      // Each instance starts near its own rest point's scale when GD rested near the ray there.
      const r = rest.kind[i] === 'spurious' ? rest.rho[i] : Number.isFinite(rho) ? rho : rhoRay[i];
      for (let c = 0; c < C; c++) {
        for (let j = 0; j < k; j++) {
          const e = (i * C + c) * k + j;
          z0[e] = slots[c].start === 'near_rho' ? -r * zs[i * k + j] + plan.jitter * jitter[e] : rnd[e];
        }
      }
    }
    const r2 = await runChains(problem, { chains: slots.map((s) => s.spec), z0, steps: plan.steps, eta: plan.eta, seed: plan.seed + 3, radius: plan.radius });
    const groups: GroupResult[] = [];
    for (const [c, s] of slots.entries()) {
      let g = groups.find((x) => x.start === s.start && x.method === s.spec.method && x.betaFactor === s.betaFactor);
      if (!g) groups.push((g = { start: s.start, method: s.spec.method, betaFactor: s.betaFactor, hits: [], finalDist: [] }));
      for (let i = 0; i < I; i++) {
        g.hits.push(r2.hit[i * C + c]);
        g.finalDist.push(r2.dist[i * C + c]);
      }
    }
    const seconds = (performance.now() - started) / 1000;
    log(`  ${setting.name}: ${I} instances x ${C} chains x ${plan.steps} steps in ${seconds.toFixed(1)} s`);
    return { setting, rhoRay, rest, rho, hessian, groups, seconds };
  } finally {
    problem.dispose();
  }
}

export interface MixingPlan {
  betaFactor: number;
  /** Chains per group (tracked from near -rho z*, tracked from random starts, two reference groups). */
  chains: number;
  steps: number;
  /** Steps at which the tracked chains are compared with the reference. */
  snapshotSteps: number[];
  eta: number;
  rho: number;
  jitter: number;
  seed: number;
  directions: number;
}

export interface MixingResult {
  t: number[];
  sw2Near: number[];
  sw2Random: number[];
  /** SW2 between the two independent reference groups: the estimator's floor at this sample size. */
  floor: number;
  /** RMS ‖z - z*‖ of the reference sample. */
  referenceRms: number;
  seconds: number;
}

/**
 * Sliced W2 between chains at step t and a long-run reference sample, on instance 0 of `setting`.
 * The reference chains start at z* (the stationary law at beta ~ k concentrates there) and run
 * all `steps`; the tracked chains start near -rho z* or at random.
 */
export async function runMixing(setting: Setting, plan: MixingPlan, log: Log): Promise<MixingResult> {
  const started = performance.now();
  const one = { ...setting, instances: 1 }; // instance 0 of `setting` (Philox streams are prefix-stable)
  const problem = new ReluProblem(one);
  const k = setting.k;
  const N = plan.chains;
  try {
    const zs = problem.zStarHost;
    const jitter = randomStarts(N, k, plan.seed + 1, 0);
    const rnd = randomStarts(N, k, plan.seed + 2, 0);
    const z0 = new Float64Array(4 * N * k);
    for (let c = 0; c < N; c++) for (let j = 0; j < k; j++) {
      z0[c * k + j] = -plan.rho * zs[j] + plan.jitter * jitter[c * k + j];
      z0[(N + c) * k + j] = rnd[c * k + j];
      z0[(2 * N + c) * k + j] = zs[j];
      z0[(3 * N + c) * k + j] = zs[j];
    }
    const spec: ChainSpec = { method: 'langevin', beta: plan.betaFactor * k };
    const r = await runChains(problem, { chains: Array(4 * N).fill(spec), z0, steps: plan.steps, eta: plan.eta, seed: plan.seed + 3, snapshotSteps: plan.snapshotSteps });
    const refA = r.z.subarray(2 * N * k, 3 * N * k);
    const refB = r.z.subarray(3 * N * k, 4 * N * k);
    const t: number[] = [];
    const sw2Near: number[] = [];
    const sw2Random: number[] = [];
    for (const s of [...plan.snapshotSteps].sort((a, b) => a - b)) {
      const z = r.snapshots.get(s);
      if (!z) continue;
      t.push(s);
      sw2Near.push(slicedW2(z.subarray(0, N * k), refA, k, plan.directions));
      sw2Random.push(slicedW2(z.subarray(N * k, 2 * N * k), refA, k, plan.directions));
    }
    let ms = 0;
    for (let c = 0; c < N; c++) for (let j = 0; j < k; j++) ms += (refA[c * k + j] - zs[j]) ** 2;
    const result = { t, sw2Near, sw2Random, floor: slicedW2(refB, refA, k, plan.directions), referenceRms: Math.sqrt(ms / N), seconds: (performance.now() - started) / 1000 };
    log(`  mixing: ${4 * N} chains x ${plan.steps} steps in ${result.seconds.toFixed(1)} s`);
    return result;
  } finally {
    problem.dispose();
  }
}
