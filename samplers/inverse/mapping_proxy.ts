// MappingProxy (ILO/SGILO): instead of running the mapping network, each of the 2L latent rows is
// lrelu_0.2(std * z_row + mean), with per-channel mean and std of LeakyReLU(5)(mapping(z)) over
// Gaussian z (LeakyReLU(5) undoes the last layer's slope 0.2, giving a near-Gaussian variable).
//
//   z      [N, 2L, S]  Gaussian latent rows (the optimized variable of CSGM/ILO/SGILO)
//   mean   [S], std [S]
//   W+     [N, 2L, S]

import { Tensor, scope, tensor } from '../../engine/tensor.ts';
import { add, leakyRelu, mul, square, sqrt } from '../../engine/ops/elementwise.ts';
import { mean as meanOp, sum } from '../../engine/ops/reduce.ts';
import { randomNormal } from '../../engine/random.ts';
import { noGrad } from '../../engine/tape.ts';
import type { StyleGAN2 } from '../../nets/stylegan2.ts';

export interface ProxyStats {
  mean: Float32Array;
  std: Float32Array;
  samples: number;
}

/** Estimates the proxy's statistics from `samples` Gaussian z (in chunks), seeded. */
export async function computeProxyStats(g: StyleGAN2, samples = 20_000, seed = 123, chunk = 2_000): Promise<ProxyStats> {
  const S = g.config.styleDim;
  const sum = new Float64Array(S);
  const sumSq = new Float64Array(S);
  let n = 0;
  for (let start = 0; start < samples; start += chunk) {
    const count = Math.min(chunk, samples - start);
    const [m1, m2] = await scope(() =>
      noGrad(async () => {
        const z = randomNormal([count, S], { seed, offset: start * S });
        const h = leakyRelu(g.mapping(z), 5, 1);
        return [await meanOp(h, [0]).readF32(), await meanOp(square(h), [0]).readF32()];
      }),
    );
    for (let i = 0; i < S; i++) {
      sum[i] += m1[i] * count;
      sumSq[i] += m2[i] * count;
    }
    n += count;
  }
  const mean = Float32Array.from(sum, (s) => s / n);
  const std = Float32Array.from(sumSq, (s, i) => Math.sqrt(Math.max(s / n - mean[i] * mean[i], 0)));
  return { mean, std, samples: n };
}

export class MappingProxy {
  readonly mean: Tensor;
  readonly std: Tensor;

  constructor(stats: ProxyStats) {
    this.mean = tensor(stats.mean, [stats.mean.length]).keep();
    this.std = tensor(stats.std, [stats.std.length]).keep();
  }

  /** z [N, R, S] -> W+ rows [N, R, S]. */
  apply(z: Tensor): Tensor {
    return leakyRelu(add(mul(z, this.std), this.mean), 0.2, 1);
  }

  dispose(): void {
    this.mean.dispose();
    this.std.dispose();
  }
}

/** L2 norms over the last axis, as [..., 1] (spherical projection keeps them fixed). */
export function rowNorms(x: Tensor): Tensor {
  return sqrt(sum(square(x), [x.rank - 1], { keepdims: true }));
}
