// Measurement operators: the registry of operator families and the spec parser.
//
// A spec is `name[:level][,noise=<std>]`, e.g.
//   identity                 A(x) = x
//   denoise:0.1              identity, Gaussian noise of std 0.1
//   inpaint-random:0.05      keep 5% of the pixel positions (also `inpaint-random:0.75%`)
//   inpaint-box:0.5          remove a centered box of half the side (the level may be omitted)
//   sr-bicubic:4             ILO's bicubic downsampler, factor 4 (1 to 16)
//   sr-avgpool:4             average pooling, factor 4
//   colorize                 gray = 0.2989 R + 0.5870 G + 0.1140 B, on three channels
//   cs-gaussian:0.1          compressed sensing, m/n = 0.1, dense Gaussian matrix
//   cs-circulant:0.1         compressed sensing, m/n = 0.1, ILO's partial circulant
//   sr-bicubic:4,noise=0.01  any operator plus measurement noise
// Fractions and ratios may be written as percentages ("5%").
//
// makeOperator(spec, [C, H, W], {seed}) builds the operator (a MeasurementOperator, see
// common.ts) and returns it with the noise std of the spec; `measure(op, x, {noiseStd, seed})`
// then makes the measurement. User-supplied operators: implement MeasurementOperator and call
// registerOperator({name, summary, level?, make}) to make them available by spec (the CLI and
// the experiments take specs).

import type { Value64 } from '../../../engine/random.ts';
import type { MeasurementOperator } from './common.ts';
import { identityOperator } from './identity.ts';
import { boxOperator, randomPixelOperator } from './inpaint.ts';
import { MAX_FACTOR, avgPoolOperator, bicubicOperator } from './downsample.ts';
import { colorizeOperator } from './colorize.ts';
import { circulantCsOperator, gaussianCsOperator } from './compressed_sensing.ts';

export * from './common.ts';
export { identityOperator } from './identity.ts';
export { boxOperator, keptPixelCount, maskOperator, randomPixelOperator, type MaskOperator } from './inpaint.ts';
export { avgPoolOperator, bicubicMatrix, bicubicOperator, bicubicPadding, bicubicTaps } from './downsample.ts';
export { colorizeOperator } from './colorize.ts';
export { circulantCsOperator, gaussianCsOperator, measurementCount } from './compressed_sensing.ts';

export interface LevelSpec {
  /** What the level means, e.g. "kept fraction of pixel positions". */
  meaning: string;
  /** The valid values in words, e.g. "(0, 1]". */
  range: string;
  valid: (v: number) => boolean;
  /** Used when the spec gives no level; without it the level is required. */
  default?: number;
  /** Allow "5%" for 0.05. */
  percent?: boolean;
  example: string;
}

export interface OperatorFamily {
  /** Lowercase letters, digits and dashes. */
  name: string;
  summary: string;
  /** Absent: the spec takes no level. */
  level?: LevelSpec;
  /** The level is the measurement noise std (denoise), not an operator parameter. */
  levelIsNoise?: boolean;
  make(level: number | undefined, inShape: number[], seed: Value64, name: string): MeasurementOperator;
}

const fraction = (meaning: string, example: string, extra: Partial<LevelSpec> = {}): LevelSpec => ({
  meaning,
  range: '(0, 1]',
  valid: (v) => v > 0 && v <= 1,
  percent: true,
  example,
  ...extra,
});
const factor: LevelSpec = { meaning: 'downsampling factor', range: `an integer from 1 to ${MAX_FACTOR}`, valid: (v) => Number.isInteger(v) && v >= 1 && v <= MAX_FACTOR, example: '4' };

const families = new Map<string, OperatorFamily>();

export function registerOperator(family: OperatorFamily): void {
  if (!/^[a-z][a-z0-9-]*$/.test(family.name)) throw new Error(`registerOperator: name "${family.name}" must be lowercase letters, digits and dashes, starting with a letter`);
  if (families.has(family.name)) throw new Error(`registerOperator: an operator named "${family.name}" is already registered`);
  families.set(family.name, family);
}

for (const f of [
  { name: 'identity', summary: 'A(x) = x', make: (_l, s, _seed, n) => identityOperator(s, n) },
  {
    name: 'denoise',
    summary: 'identity with Gaussian noise of the given std',
    level: { meaning: 'noise standard deviation', range: '>= 0', valid: (v) => v >= 0, example: '0.1' },
    levelIsNoise: true,
    make: (_l, s, _seed, n) => identityOperator(s, n),
  },
  {
    name: 'inpaint-random',
    summary: 'keep a random fraction of the pixel positions (all channels)',
    level: fraction('kept fraction of pixel positions', '0.05'),
    make: (l, s, seed, n) => randomPixelOperator(s, l!, seed, n),
  },
  {
    name: 'inpaint-box',
    summary: 'remove a centered box (side as a fraction of the image side)',
    level: fraction('box side as a fraction of the image side', '0.5', { range: '(0, 1)', valid: (v) => v > 0 && v < 1, default: 0.5 }),
    make: (l, s, _seed, n) => boxOperator(s, l!, n),
  },
  { name: 'sr-bicubic', summary: "ILO's bicubic downsampler", level: factor, make: (l, s, _seed, n) => bicubicOperator(s, l!, n) },
  { name: 'sr-avgpool', summary: 'average pooling', level: factor, make: (l, s, _seed, n) => avgPoolOperator(s, l!, n) },
  { name: 'colorize', summary: 'grayscale of an RGB image, on three channels', make: (_l, s, _seed, n) => colorizeOperator(s, n) },
  {
    name: 'cs-gaussian',
    summary: 'compressed sensing with a dense Gaussian matrix (small images)',
    level: fraction('measurement ratio m/n', '0.1'),
    make: (l, s, seed, n) => gaussianCsOperator(s, l!, seed, n),
  },
  {
    name: 'cs-circulant',
    summary: "compressed sensing with ILO's partial circulant matrix (large images)",
    level: fraction('measurement ratio m/n', '0.1'),
    make: (l, s, seed, n) => circulantCsOperator(s, l!, seed, n),
  },
] satisfies OperatorFamily[]) {
  registerOperator(f);
}

/** One line per operator: `name:<level>  summary`. */
export function operatorHelp(): string {
  return [...families.values()].map((f) => `${usage(f).padEnd(40)} ${f.summary}`).join('\n');
}

export function operatorNames(): string[] {
  return [...families.keys()];
}

function usage(f: OperatorFamily): string {
  if (!f.level) return f.name;
  const l = `${f.name}:<${f.level.meaning}>`;
  return f.level.default === undefined ? l : `${f.name}[:<${f.level.meaning}>, default ${f.level.default}]`;
}

function validList(): string {
  return [...families.values()].map((f) => (f.level ? `${f.name}:${f.level.example}` : f.name)).join(', ');
}

export interface ParsedSpec {
  /** The spec as given (trimmed). */
  text: string;
  family: string;
  /** The operator's level (undefined for operators without one; the noise std for denoise). */
  level?: number;
  noiseStd: number;
}

const NUMBER = /^[+-]?(\d+\.?\d*|\.\d+)(e[+-]?\d+)?%?$/i;

function parseNumber(raw: string, percentOk: boolean): number | null {
  if (!NUMBER.test(raw)) return null;
  if (raw.endsWith('%')) return percentOk ? Number(raw.slice(0, -1)) / 100 : null;
  return Number(raw);
}

export function parseOperatorSpec(spec: string): ParsedSpec {
  if (typeof spec !== 'string' || !spec.trim()) throw new Error(`empty operator spec; valid operators: ${validList()}`);
  const text = spec.trim();
  const [head, ...options] = text.split(',').map((s) => s.trim());
  const colon = head.indexOf(':');
  const name = (colon < 0 ? head : head.slice(0, colon)).trim();
  const rawLevel = colon < 0 ? undefined : head.slice(colon + 1).trim();
  const family = families.get(name);
  if (!family) throw new Error(`unknown operator "${name}" in spec "${text}"; valid operators: ${validList()}`);

  let level: number | undefined;
  const l = family.level;
  if (!l) {
    if (rawLevel !== undefined) throw new Error(`operator "${name}" takes no level, but spec "${text}" gives "${rawLevel}"; write just "${name}"`);
  } else if (rawLevel === undefined || rawLevel === '') {
    if (l.default === undefined) throw new Error(`operator "${name}" needs a level (${l.meaning}, ${l.range}), e.g. "${name}:${l.example}"`);
    level = l.default;
  } else {
    const v = parseNumber(rawLevel, l.percent ?? false);
    if (v === null || !Number.isFinite(v)) throw new Error(`operator "${name}": level "${rawLevel}" is not a number; expected the ${l.meaning}, ${l.range}, e.g. "${name}:${l.example}"`);
    if (!l.valid(v)) throw new Error(`operator "${name}": level ${rawLevel} is out of range; the ${l.meaning} must be ${l.range}, e.g. "${name}:${l.example}"`);
    level = v;
  }

  let noiseStd = family.levelIsNoise ? level! : 0;
  for (const o of options) {
    const m = /^noise\s*=\s*(.+)$/.exec(o);
    if (!m) throw new Error(`spec "${text}": unknown option "${o}"; the only option is noise=<std>, e.g. "${name}${family.level ? `:${family.level.example}` : ''},noise=0.01"`);
    if (family.levelIsNoise) throw new Error(`spec "${text}": "${name}" already sets the noise std through its level; drop ",${o}"`);
    const v = parseNumber(m[1].trim(), false);
    if (v === null || !(v >= 0)) throw new Error(`spec "${text}": noise std "${m[1].trim()}" must be a number >= 0`);
    noiseStd = v;
  }
  return { text, family: name, level, noiseStd };
}

export interface MadeOperator {
  operator: MeasurementOperator;
  /** The measurement noise std the spec asks for (0 unless denoise or ,noise=). */
  noiseStd: number;
  spec: ParsedSpec;
}

/** Parses `spec` and builds its operator for images of shape [C, H, W]; draws come from `seed`. */
export function makeOperator(spec: string | ParsedSpec, inShape: readonly number[], options: { seed?: Value64 } = {}): MadeOperator {
  const parsed = typeof spec === 'string' ? parseOperatorSpec(spec) : spec;
  const family = families.get(parsed.family);
  if (!family) throw new Error(`unknown operator "${parsed.family}"; valid operators: ${validList()}`);
  const name = parsed.text.split(',')[0].trim(); // the operator proper, without the noise option
  const operator = family.make(family.levelIsNoise ? undefined : parsed.level, [...inShape], options.seed ?? 0, name);
  return { operator, noiseStd: parsed.noiseStd, spec: parsed };
}
