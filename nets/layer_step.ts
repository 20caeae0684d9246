// One intermediate-layer step, the unit of work ILO and SGILO repeat on a full-size generator: the
// image from W+ (noise maps given, not optimized), the features after block `layer` kept on the tape,
// and one backward pass with upstream R to W+ and to those features (d sum(image * R) / d features
// is the gradient the score model's guidance meets in that layer). One forward and one backward,
// nothing recomputed; the memory planner (nets/stylegan2_plan.ts) plans this step as it runs it.

import { grad } from '../engine/tape.ts';
import type { Tensor } from '../engine/tensor.ts';
import { numBlocks, type StyleGAN2 } from './stylegan2.ts';

export interface LayerStepInputs {
  /** W+ [N, 2L, S]; made to require grad here. */
  wplus: Tensor;
  /** Noise maps [N, 1, r, r], one per index. */
  noise: Tensor[];
  /** Upstream gradient R, the image's shape. */
  upstream: Tensor;
}

export interface LayerStepResult {
  image: Tensor;
  features: Tensor;
  gradWplus: Tensor;
  gradFeatures: Tensor;
}

/** Runs inside the caller's scope; the caller clears the tape if the step throws. */
export function layerStep(gen: StyleGAN2, inputs: LayerStepInputs, layer: number): LayerStepResult {
  const L = numBlocks(gen.config);
  if (!(Number.isInteger(layer) && layer >= 0 && layer < L - 1)) throw new RangeError(`layer step: layer ${layer} outside 0..${L - 2}`);
  const wplus = inputs.wplus.requireGrad();
  const features = gen.blocks({ wplus, noise: inputs.noise }, 0, layer).features;
  const image = gen.fromLayer({ wplus, noise: inputs.noise }, layer + 1, features);
  const [gradWplus, gradFeatures] = grad(image, [wplus, features], { upstream: inputs.upstream });
  wplus.requireGrad(false);
  return { image, features, gradWplus, gradFeatures };
}
