// The Theorem 3.1 experiment's settings: the full protocol and the seconds-long --quick smoke run
// (the same pipeline at toy sizes). cli/theory.ts runs them and writes the report.

import { geometricWidths } from '../../nets/relu_generator.ts';
import type { DynamicsPlan, MixingPlan, Setting } from './runs.ts';

export interface TheoryConfig {
  quick: boolean;
  /** Width/depth scan of rho_ray: k, m, instances, and (depth, expansions) pairs. */
  ray: { k: number; m: number; instances: number; depths: { depth: number; expansions: number[] }[] };
  /** Method comparison settings; base (with the beta sweep) is the first. */
  settings: Setting[];
  /** k scan (Langevin hitting time vs k); settings with the same name as above are reused. */
  kScan: Setting[];
  plan: DynamicsPlan;
  /** Plan of the non-base settings (only the main beta). */
  lightPlan: DynamicsPlan;
  mixing: Omit<MixingPlan, 'rho'>;
}

export const SEED = 2022;

function setting(k: number, expansion: number, depth: number, mPerK: number, instances: number, name?: string): Setting {
  return { name: name ?? `k${k}-e${expansion}-d${depth}-m${mPerK * k}`, k, widths: geometricWidths(k, expansion, depth), m: mPerK * k, instances, seed: SEED + 100 * k + 10 * depth + expansion };
}

function logSteps(max: number, count: number): number[] {
  const s = new Set<number>();
  for (let i = 0; i < count; i++) s.add(Math.max(1, Math.round(Math.exp((Math.log(max) * i) / (count - 1)))));
  return [...s].sort((a, b) => a - b);
}

export function theoryConfig(quick: boolean): TheoryConfig {
  if (quick) {
    const plan: DynamicsPlan = { eta: 0.1, restSteps: 40, steps: 40, betaFactors: [100, 30], langevinMain: 2, langevinOther: 1, gd: 1, flip: 1, jitter: 0.02, radius: 0.1, seed: SEED };
    return {
      quick,
      ray: { k: 2, m: 16, instances: 2, depths: [{ depth: 1, expansions: [4] }, { depth: 2, expansions: [4] }] },
      settings: [setting(2, 4, 2, 8, 2, 'base')],
      kScan: [setting(2, 4, 2, 8, 2, 'base'), setting(3, 4, 2, 8, 2)],
      plan,
      lightPlan: { ...plan, betaFactors: [100] },
      mixing: { betaFactor: 100, chains: 8, steps: 30, snapshotSteps: [1, 10, 30], eta: 0.1, jitter: 0.02, seed: SEED, directions: 16 },
    };
  }
  const plan: DynamicsPlan = {
    eta: 0.1,
    restSteps: 1500,
    steps: 2000,
    betaFactors: [100, 10, 30, 300, 1000],
    langevinMain: 6,
    langevinOther: 3,
    gd: 1,
    flip: 1,
    jitter: 0.02,
    radius: 0.1,
    seed: SEED,
  };
  const base = setting(4, 8, 2, 8, 12, 'base');
  return {
    quick,
    ray: { k: 4, m: 128, instances: 16, depths: [{ depth: 1, expansions: [4, 16, 64, 256] }, { depth: 2, expansions: [4, 8, 16, 32] }, { depth: 3, expansions: [2, 4, 8] }] },
    settings: [base, setting(4, 8, 1, 8, 12), setting(4, 4, 2, 8, 12), setting(4, 4, 3, 8, 12)],
    kScan: [setting(2, 4, 2, 8, 12), setting(4, 4, 2, 8, 12), setting(8, 4, 2, 8, 12), setting(16, 4, 2, 8, 12)],
    plan,
    lightPlan: { ...plan, betaFactors: [100], langevinMain: 6 },
    mixing: { betaFactor: 100, chains: 96, steps: 2000, snapshotSteps: logSteps(2000, 24), eta: 0.1, jitter: 0.02, seed: SEED, directions: 256 },
  };
}
