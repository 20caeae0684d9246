// Where SGILO's Langevin move, v += temperature * delta(v) + noise_t * N(0, I), acts
// (docs/design.md, "CSGM, ILO and SGILO"): the features entering a block, or in round 0 the W+ rows,
// read through MappingProxy and written back to the latent through its inverse.

import type { Tensor } from '../../engine/tensor.ts';
import { div, leakyRelu, sub } from '../../engine/ops/elementwise.ts';
import { reshape } from '../../engine/ops/layout.ts';
import { engine } from '../../engine/engine.ts';
import type { MappingProxy } from './mapping_proxy.ts';
import type { FeaturePrior } from './prior.ts';

export interface LangevinTarget {
  prior: FeaturePrior;
  /** The variable in the prior's units. */
  read: () => Tensor;
  /** Stores a moved value back into the optimized variable. */
  write: (v: Tensor) => void;
}

function assign(dst: Tensor, src: Tensor): void {
  engine().recordCopy(src.buffer, 0, dst.buffer, 0, dst.bytes);
}

/**
 * The variable SGILO's Langevin move acts on in this round, in the prior's units: the features
 * entering the block (rounds >= 1), or in round 0 the W+ rows as [N * 2L, S, 1, 1], read through
 * MappingProxy and written back through its inverse (z = (lrelu_5(w) - mean) / std).
 */
export function langevinTarget(prior: FeaturePrior, proxy: MappingProxy, z: Tensor, features: Tensor | null): LangevinTarget {
  if (features) {
    const feats = features;
    return { prior, read: () => feats, write: (v) => assign(feats, v) };
  }
  const [N, R, S] = z.shape;
  return {
    prior,
    read: () => reshape(proxy.apply(z), [N * R, S, 1, 1]),
    write: (w) => assign(z, div(sub(leakyRelu(reshape(w, [N, R, S]), 5, 1), proxy.mean), proxy.std)),
  };
}
