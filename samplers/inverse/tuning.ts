// Tuning the methods' free values on tuning images (`sgilo tune`), and the file of tuned values that
// `reconstruct`, `experiment`, the demo and the web page read. Runtime-neutral (no file system): the
// CLI reads and writes the file, the page fetches it.
//
// The search: each parameter is a ladder of values; from the start point, always evaluate the
// unevaluated point nearest to the best point so far (L1 distance in ladder steps; ties: parameters
// in order, the larger value first), until the budget of evaluations is spent or the ladders are
// exhausted. It is a greedy pattern search: it walks downhill one ladder step at a time and, when
// every neighbour is worse, widens to two steps. Every method gets the same budget, so no method
// wins by being searched more.

import type { MethodConfig, MethodName, NoiseSchedule } from './intermediate_layer.ts';
import { parseOperatorSpec } from './operators/index.ts';
import { methodConfig } from './setup.ts';

/** A point of the search: one value per parameter. */
export type Candidate = Record<string, number | string>;

export interface Ladder {
  name: string;
  values: (number | string)[];
  /** Index of the starting value. */
  start: number;
}

export interface Trial {
  candidate: Candidate;
  /** Mean MSE on the tuning images (lower is better; NaN or Infinity: diverged). */
  score: number;
}

const pointOf = (ladders: Ladder[], idx: number[]): Candidate => Object.fromEntries(ladders.map((l, i) => [l.name, l.values[idx[i]]]));
const keyOf = (idx: number[]) => idx.join(',');

/** The next point to evaluate: the unevaluated point nearest the incumbent (null: none left). */
export function nextPoint(ladders: Ladder[], incumbent: number[], evaluated: Set<string>): number[] | null {
  const maxRadius = ladders.reduce((a, l) => a + l.values.length - 1, 0);
  for (let r = 1; r <= maxRadius; r++) {
    // Points at L1 distance r, enumerated in a fixed order: larger moves on earlier parameters first.
    const found = walk(ladders, incumbent, r, 0, [], evaluated);
    if (found) return found;
  }
  return null;
}

function walk(ladders: Ladder[], center: number[], left: number, i: number, prefix: number[], evaluated: Set<string>): number[] | null {
  if (i === ladders.length) return left === 0 && !evaluated.has(keyOf(prefix)) ? prefix : null;
  const n = ladders[i].values.length;
  for (let d = left; d >= 0; d--) {
    for (const sign of d === 0 ? [0] : [1, -1]) {
      const j = center[i] + sign * d;
      if (j < 0 || j >= n) continue;
      const found = walk(ladders, center, left - d, i + 1, [...prefix, j], evaluated);
      if (found) return found;
    }
  }
  return null;
}

/**
 * Runs the search with at most `budget` evaluations. `evaluate` may return a cached score (the CLI
 * resumes from its log). A non-finite score counts as an evaluation and never wins.
 */
export async function patternSearch(ladders: Ladder[], budget: number, evaluate: (c: Candidate) => Promise<number>): Promise<{ best: Candidate; bestScore: number; trials: Trial[] }> {
  for (const l of ladders) if (!(l.values.length >= 1 && l.start >= 0 && l.start < l.values.length)) throw new RangeError(`ladder ${l.name}: start ${l.start} outside its ${l.values.length} values`);
  let incumbent = ladders.map((l) => l.start);
  const evaluated = new Set<string>();
  const trials: Trial[] = [];
  let bestScore = Infinity;
  let next: number[] | null = incumbent;
  while (next && trials.length < budget) {
    const candidate = pointOf(ladders, next);
    const score = await evaluate(candidate);
    evaluated.add(keyOf(next));
    trials.push({ candidate, score });
    if (Number.isFinite(score) && score < bestScore) [bestScore, incumbent] = [score, next];
    next = nextPoint(ladders, incumbent, evaluated);
  }
  return { best: pointOf(ladders, incumbent), bestScore, trials };
}

/**
 * What the experiment compares: a method with a choice of priors. `sgilo` uses the learned priors
 * (the Gaussian mixtures), `sgilo-gaussian` the single Gaussians, `sgilo-off` the learned priors'
 * rounds with the score term off (temperature 0: the Langevin noise alone).
 */
export const VARIANTS = ['csgm', 'ilo', 'sgilo', 'sgilo-gaussian', 'sgilo-off'] as const;
export type Variant = (typeof VARIANTS)[number];

export const variantMethod = (v: Variant): MethodName => (v.startsWith('sgilo') ? 'sgilo' : (v as MethodName));

/**
 * ILO's l1-ball radii on the features entering blocks 1 and 2 of the shipped Fashion model (2,048
 * and 8,192 values), before radiusScale. Without balls ILO overfits the measured pixels and ends
 * worse than CSGM; the radii were found on test images 0-3 (bench/results/2026-11-notes-from-code.md,
 * "ILO's l1 balls for the Fashion model").
 */
export const ILO_FEATURE_RADII: Record<number, number> = { 1: 100, 2: 200 };

const sgiloLadders = (withPrior: boolean): Ladder[] => [
  { name: 'lr', values: [0.0125, 0.025, 0.05, 0.1, 0.2], start: 2 },
  ...(withPrior ? [{ name: 'temperature', values: [0.1, 0.3, 1, 3, 10, 30], start: 2 }] : []),
  { name: 'noiseScale', values: [0, 0.003, 0.006, 0.0125, 0.025, 0.05, 0.1], start: 4 },
  { name: 'noiseSchedule', values: ['constant', 'annealed'], start: 1 },
  ...(withPrior ? [{ name: 'priorSteps', values: [1, 2, 4], start: 0 }] : []),
];

/** The search space of each variant (the start points are the presets, SGILO's at temperature 1). */
export function searchSpace(v: Variant): Ladder[] {
  switch (v) {
    case 'csgm':
      return [{ name: 'lr', values: [0.00625, 0.0125, 0.025, 0.05, 0.1, 0.2, 0.4, 0.8], start: 4 }];
    case 'ilo':
      return [
        { name: 'lr', values: [0.0125, 0.025, 0.05, 0.1, 0.2, 0.4], start: 3 },
        { name: 'radiusScale', values: [0.125, 0.25, 0.5, 1, 2, 4, 8], start: 3 },
      ];
    case 'sgilo':
    case 'sgilo-gaussian':
      return sgiloLadders(true);
    case 'sgilo-off':
      return sgiloLadders(false);
  }
}

/** The start point of a variant's search. */
export const startValues = (v: Variant): Candidate => pointOf(searchSpace(v), searchSpace(v).map((l) => l.start));

/**
 * A method configuration from tuned values; a value not given is the preset's (methodConfig in
 * samplers/inverse/setup.ts), so {} gives the presets. ILO always has its l1 balls on the features,
 * the Fashion model's radii (ILO_FEATURE_RADII) times radiusScale (default 1).
 */
export function configFromValues(v: Variant, values: Candidate, steps: number, blocks: number[]): MethodConfig {
  const method = variantMethod(v);
  const num = (k: string, def: number) => (values[k] === undefined ? def : Number(values[k]));
  const preset = methodConfig(method, steps, method === 'csgm' ? [] : blocks);
  const base: MethodConfig = { ...preset, lr: num('lr', preset.lr) };
  if (v === 'ilo') {
    const s = num('radiusScale', 1);
    return { ...base, l1: { features: [Infinity, ...blocks.map((k) => (ILO_FEATURE_RADII[k] ?? Infinity) * s)] } };
  }
  if (method === 'sgilo') {
    return {
      ...base,
      temperature: v === 'sgilo-off' ? 0 : num('temperature', preset.temperature!),
      noiseScale: num('noiseScale', preset.noiseScale!),
      noiseSchedule: (values.noiseSchedule as NoiseSchedule | undefined) ?? preset.noiseSchedule,
      priorSteps: v === 'sgilo-off' ? 1 : num('priorSteps', preset.priorSteps!),
    };
  }
  return base;
}

/** The file `sgilo tune` writes (tuned.json). */
export interface TunedFile {
  kind: 'sgilo-tuned';
  /** Steps per round and blocks the values were tuned at. */
  steps: number;
  blocks: number[];
  /** Which images, seed, budget: for the record. */
  about: Record<string, unknown>;
  /** Operator spec (e.g. "inpaint-random:0.02") -> variant -> values. */
  settings: Record<string, Partial<Record<Variant, Candidate>>>;
}

export function parseTunedFile(text: string, name: string): TunedFile {
  let f: TunedFile;
  try {
    f = JSON.parse(text);
  } catch (e) {
    throw new Error(`${name}: not JSON (${(e as Error).message})`);
  }
  if (f?.kind !== 'sgilo-tuned' || typeof f.settings !== 'object') throw new Error(`${name}: not a tuned-values file (kind "sgilo-tuned", made by sgilo tune)`);
  return f;
}

/** The operator and level of a spec; operators outside the spec grammar (inpaint-mask) by name only. */
function familyAndLevel(spec: string): { family: string; level?: number } {
  try {
    return parseOperatorSpec(spec);
  } catch {
    return { family: spec.split(/[:,]/)[0].trim() };
  }
}

export interface TunedLookup {
  values: Candidate;
  /** Where the values come from, for logs and reports. */
  source: string;
}

/**
 * Tuned values for `variant` under operator `spec`: the same spec's, else the nearest tuned level
 * (in log scale) of the same operator, else the presets. `source` says which.
 */
export function lookupTuned(file: TunedFile | null, variant: Variant, spec: string): TunedLookup {
  const want = familyAndLevel(spec);
  let best: { spec: string; distance: number } | null = null;
  for (const [s, byVariant] of Object.entries(file?.settings ?? {})) {
    if (!byVariant[variant]) continue;
    const p = familyAndLevel(s);
    if (p.family !== want.family) continue;
    const distance = p.level === undefined || want.level === undefined ? 0 : Math.abs(Math.log(p.level) - Math.log(want.level));
    if (!best || distance < best.distance) best = { spec: s, distance };
  }
  if (!best) return { values: {}, source: `presets (no tuned ${variant} values for ${want.family})` };
  const values = file!.settings[best.spec][variant]!;
  return { values, source: best.distance === 0 ? `tuned at ${best.spec}` : `tuned at ${best.spec}, the nearest tuned level` };
}
