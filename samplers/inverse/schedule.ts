// The schedules of a round, as functions of the fraction t of the round done: ILO's learning rate
// (linear warm-up over the first 5%, cosine decay over the last 75%) and SGILO's noise, constant as
// in the authors' code or annealed with the learning rate (docs/design.md, "CSGM, ILO and SGILO").

export const NOISE_SCHEDULES = ['constant', 'annealed'] as const;
export type NoiseSchedule = (typeof NOISE_SCHEDULES)[number];

/** ILO's learning-rate schedule at fraction t of a round. */
export function iloLearningRate(t: number, base: number, rampdown = 0.75, rampup = 0.05): number {
  let ramp = Math.min(1, (1 - t) / rampdown);
  ramp = 0.5 - 0.5 * Math.cos(ramp * Math.PI);
  ramp *= Math.min(1, t / rampup);
  return base * ramp;
}

/** The std of SGILO's added noise at fraction t of a round (see MethodConfig.noiseSchedule). */
export function noiseStdAt(t: number, config: { lr: number; noiseScale?: number; noiseSchedule?: NoiseSchedule }): number {
  const scale = config.noiseScale ?? 0.025;
  if ((config.noiseSchedule ?? 'constant') === 'constant' || !(config.lr > 0)) return scale;
  return scale * Math.sqrt(iloLearningRate(t, config.lr) / config.lr);
}
