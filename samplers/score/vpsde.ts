// The variance-preserving SDE of Song et al. (docs/design.md, "VP-SDE") as plain numbers, plus the few
// tensor helpers the trainer and samplers share. Everything here is closed-form; no kernels.
//
// Legend: t in [0, T], T = 1; beta0 = 0.1, beta1 = 20; N = 1000 discretization steps.
//   beta(t)        = beta0 + t (beta1 - beta0)
//   log m(t)       = -t^2 (beta1 - beta0) / 4 - t beta0 / 2      (marginal mean coefficient)
//   std(t)         = sqrt(1 - m(t)^2)                            (marginal std)
//   forward SDE    dx = -(1/2) beta(t) x dt + sqrt(beta(t)) dw
//   reverse drift  -(1/2) beta(t) x - beta(t) score(x, t),  score = -eps(x, t) / std(t)
//   discrete       betas_i = beta0/N + i (beta1 - beta0) / (N (N - 1)), alphas_i = 1 - betas_i
//                  (score_sde's VPSDE.discretize: t maps to index floor(t (N - 1) / T))
//
// Tensor shapes: x [B, ...]; per-sample coefficients are computed in float64 on the host (1 - m^2
// loses its digits in float32 at small t) and uploaded as [B], reshaped to [B, 1, ..., 1].

import type { Tensor } from '../../engine/tensor.ts';
import { reshape } from '../../engine/ops/layout.ts';

export interface VPSDEConfig {
  beta0: number;
  beta1: number;
  N: number;
}

export const DEFAULT_VPSDE: VPSDEConfig = { beta0: 0.1, beta1: 20, N: 1000 };

export class VPSDE {
  readonly beta0: number;
  readonly beta1: number;
  readonly N: number;
  readonly T = 1;

  constructor(config: Partial<VPSDEConfig> = {}) {
    const c = { ...DEFAULT_VPSDE, ...config };
    if (!(c.beta0 > 0 && c.beta1 > c.beta0)) throw new RangeError(`VPSDE: need 0 < beta0 < beta1, got beta0 ${c.beta0}, beta1 ${c.beta1}`);
    if (!(Number.isInteger(c.N) && c.N >= 2)) throw new RangeError(`VPSDE: N must be an integer >= 2, got ${c.N}`);
    this.beta0 = c.beta0;
    this.beta1 = c.beta1;
    this.N = c.N;
  }

  get config(): VPSDEConfig {
    return { beta0: this.beta0, beta1: this.beta1, N: this.N };
  }

  beta(t: number): number {
    return this.beta0 + t * (this.beta1 - this.beta0);
  }

  logMeanCoeff(t: number): number {
    return (-t * t * (this.beta1 - this.beta0)) / 4 - (t * this.beta0) / 2;
  }

  /** m(t): E[x_t | x_0] = m(t) x_0. */
  meanCoeff(t: number): number {
    return Math.exp(this.logMeanCoeff(t));
  }

  /** sqrt(1 - m(t)^2), computed with expm1 so small t keeps its digits. */
  std(t: number): number {
    return Math.sqrt(-Math.expm1(2 * this.logMeanCoeff(t)));
  }

  /** Forward drift coefficient: f(x, t) = driftCoeff(t) * x. */
  driftCoeff(t: number): number {
    return -0.5 * this.beta(t);
  }

  diffusion(t: number): number {
    return Math.sqrt(this.beta(t));
  }

  /**
   * One reverse-time Euler-Maruyama step without its noise term, written on eps:
   * x + (-(1/2) beta x - beta score) dt = a x + b eps with a = 1 - beta dt / 2, b = beta dt / std
   * (dt < 0 runs backwards). SGILO's "hot" step is this at t = 0.01, dt = -1/N.
   */
  reverseStepCoefficients(t: number, dt: number): { a: number; b: number } {
    const beta = this.beta(t);
    return { a: 1 - (beta * dt) / 2, b: (beta * dt) / this.std(t) };
  }

  /** score_sde's discrete betas: linspace(beta0 / N, beta1 / N, N). */
  discreteBeta(i: number): number {
    if (!(Number.isInteger(i) && i >= 0 && i < this.N)) throw new RangeError(`VPSDE: discrete index ${i} outside 0..${this.N - 1}`);
    return this.beta0 / this.N + (i * (this.beta1 - this.beta0)) / (this.N * (this.N - 1));
  }

  /** Index of the discretization step holding t (score_sde: floor(t (N - 1) / T)). */
  discreteIndex(t: number): number {
    return Math.min(this.N - 1, Math.max(0, Math.floor((t * (this.N - 1)) / this.T)));
  }

  /** alpha_i = 1 - beta_i at the step holding t (the Langevin corrector's step-size factor). */
  discreteAlpha(t: number): number {
    return 1 - this.discreteBeta(this.discreteIndex(t));
  }
}

/** [B] -> [B, 1, ..., 1] so it broadcasts against x of rank `rank`. */
export function perSample(v: Tensor, rank: number): Tensor {
  return reshape(v, [v.shape[0], ...new Array<number>(rank - 1).fill(1)]);
}
