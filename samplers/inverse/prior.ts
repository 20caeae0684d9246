// The prior on an intermediate variable v (features entering block k, or latent rows): a noise
// predictor on v normalized to [0, 1] with global scalar min/max (x = (v - min) / (max - min)): a
// ScoreViT, the closed-form Gaussian, or the two as a residual model (samplers/score/prior_model.ts).
//
// delta(v): SGILO's prior move, one Euler-Maruyama reverse-SDE step at fixed t = 0.01, dt = -1/N,
//   without its noise term: x' = x + (-(1/2) beta x - beta score) dt, score = -eps / std(t),
//   i.e. x' = x * 1.0001495 - 0.0066976 * eps(x, 0.01); returned in raw units: (x' - x) (max - min).
// score(v): the raw-unit score, -eps(x, t) / (std(t) (max - min)), for the pure SGLD form.

import { Tensor, full } from '../../engine/tensor.ts';
import { affine, sub } from '../../engine/ops/elementwise.ts';
import type { EpsModel } from '../score/sample.ts';
import { VPSDE } from '../score/vpsde.ts';
import { hotStepCoefficients as reverseStepCoefficients } from '../score/sample.ts';

const sde = new VPSDE();

/** x' = a x - b eps for the noise-free reverse step at t (dt = -1/N), from the VP-SDE. */
export function hotStepCoefficients(t = 0.01): { a: number; b: number } {
  const { a, b } = reverseStepCoefficients({ sde, t });
  return { a, b: -b };
}

export class FeaturePrior {
  constructor(
    readonly net: EpsModel & { dispose(): void },
    /** Global scalar normalization of the training data. */
    readonly min: number,
    readonly max: number,
    readonly t = 0.01,
  ) {
    if (!(max > min)) throw new RangeError(`FeaturePrior: max (${max}) must exceed min (${min})`);
  }

  private eps(v: Tensor): { x: Tensor; eps: Tensor } {
    const range = this.max - this.min;
    const x = affine(v, 1 / range, -this.min / range);
    return { x, eps: this.net.forward(x, full([v.shape[0]], this.t)) };
  }

  /** SGILO's prior move in raw units, [N, C, H, W]. */
  delta(v: Tensor): Tensor {
    const { a, b } = hotStepCoefficients(this.t);
    const { x, eps } = this.eps(v);
    // (x' - x) (max - min) = ((a - 1) x - b eps) (max - min)
    const range = this.max - this.min;
    return sub(affine(x, (a - 1) * range), affine(eps, b * range));
  }

  /** grad_v log p(v) in raw units. */
  score(v: Tensor): Tensor {
    return affine(this.eps(v).eps, -1 / (sde.std(this.t) * (this.max - this.min)));
  }
}
