// ILO's l1-ball radii as command-line options (--l1-latent, --l1-noise, --l1-features).

import type { L1Radii } from '../samplers/inverse/intermediate_layer.ts';

/**
 * A radius list for ILO's l1 balls from the command line: "R" (every round) or "R0,R1,..." (one per
 * round, round 0 first); "inf" means unconstrained.
 */
export function parseL1Radius(option: string, text: string): number | number[] {
  const list = text.split(',').map((t) => t.trim());
  const values = list.map((t) => (/^\+?inf(inity)?$/i.test(t) ? Infinity : t === '' ? NaN : Number(t)));
  const bad = list.find((_, i) => Number.isNaN(values[i]) || values[i] < 0);
  if (bad !== undefined) throw new RangeError(`${option}: radii must be numbers >= 0 or "inf", got "${bad}" in "${text}"`);
  return values.length === 1 ? values[0] : values;
}

/** The l1 radii given by --l1-latent / --l1-noise / --l1-features (undefined when none is). */
export function l1RadiiFromOptions(get: (name: string) => string | undefined): L1Radii | undefined {
  const out: L1Radii = {};
  for (const which of ['latent', 'noise', 'features'] as const) {
    const v = get(`l1-${which}`);
    if (v !== undefined) out[which] = parseL1Radius(`--l1-${which}`, v);
  }
  return Object.keys(out).length ? out : undefined;
}
