// Random expansive ReLU generators and Gaussian measurements: the setting of Theorem 3.1 of the
// SGILO paper (Daras et al., ICML 2022) and of Hand and Voroninski; docs/design.md, "Theorem 3.1 experiment".
//
//   G(z) = ReLU(W_d ... ReLU(W_1 z)),  W_l entries N(0, 2 / n_l)  (n_l = the layer's output width,
//          so E ||G(z)||^2 = ||z||^2);  "linear" generators drop the ReLUs and use N(0, 1 / n_l)
//   A      entries N(0, 1 / m), m x n_d;   y = A G(z*);   L(z) = 0.5 ||A G(z) - y||^2
//
// Legend: I = instances (independent draws of W_1..W_d, A and z*, simulated side by side), C =
// chains per instance, k = latent dimension, widths = [n_1 .. n_d], m = measurements.
// Tensors: weights[l] [I, n_l, n_{l-1}] (n_0 = k), A [I, m, n_d], zStar [I, k], y [I, m];
// latents z [I, C, k], losses [I, C].
//
// Every random number comes from the engine's Philox stream of `seed`: offset l for W_{l+1}, then
// A, then z* (drawn with the CPU mirror of the same stream, engine/reference/philox.ts, and scaled
// to norm `zStarNorm`), so a problem is reproducible from its config alone.

import { randomNormal, toWord64 } from '../engine/random.ts';
import { Tensor, scope, tensor } from '../engine/tensor.ts';
import { grad, noGrad } from '../engine/tape.ts';
import { reshape } from '../engine/ops/layout.ts';
import { philoxNormalF64 } from '../engine/reference/philox.ts';
import { host, type HostArray } from '../engine/reference/host.ts';
import type { HostProblem } from '../engine/reference/relu_generator.ts';
import { dense, halfSqErr, type Activation } from '../engine/ops/relu_generator.ts';

export interface ReluProblemConfig {
  /** Independent problems (networks, measurements, z*) simulated side by side. */
  instances: number;
  /** Latent dimension. */
  k: number;
  /** Layer widths n_1..n_d (expansive: each larger than the one before). */
  widths: number[];
  /** Number of measurements (rows of A). */
  m: number;
  seed: number;
  /** 'relu' (default), or 'linear' (G = W_d ... W_1, used to test the Gaussian case). */
  act?: Activation;
  /** ||z*|| (default 1). */
  zStarNorm?: number;
}

function checkConfig(c: ReluProblemConfig): void {
  const posInt = (v: unknown) => Number.isInteger(v) && (v as number) > 0;
  if (!posInt(c.instances)) throw new RangeError(`ReluProblem: instances must be a positive integer, got ${c.instances}`);
  if (!posInt(c.k)) throw new RangeError(`ReluProblem: k must be a positive integer, got ${c.k}`);
  if (!posInt(c.m)) throw new RangeError(`ReluProblem: m must be a positive integer, got ${c.m}`);
  if (!Array.isArray(c.widths) || c.widths.length === 0 || !c.widths.every(posInt)) {
    throw new RangeError(`ReluProblem: widths must be a non-empty list of positive integers, got ${JSON.stringify(c.widths)}`);
  }
  if (!Number.isSafeInteger(c.seed) || c.seed < 0) throw new RangeError(`ReluProblem: seed must be a non-negative integer, got ${c.seed}`);
  if (c.act !== undefined && c.act !== 'relu' && c.act !== 'linear') throw new RangeError(`ReluProblem: act must be "relu" or "linear", got ${JSON.stringify(c.act)}`);
  if (c.zStarNorm !== undefined && !(c.zStarNorm > 0)) throw new RangeError(`ReluProblem: zStarNorm must be positive, got ${c.zStarNorm}`);
}

export class ReluProblem {
  readonly config: Required<ReluProblemConfig>;
  /** weights[l]: [I, n_{l+1}, n_l], n_0 = k. */
  readonly weights: Tensor[];
  /** [I, m, n_d] */
  readonly A: Tensor;
  /** [I, k] */
  readonly zStar: Tensor;
  /** [I, m] = A G(z*) */
  readonly y: Tensor;
  /** z* on the host, [I, k] (float32 values, as uploaded). */
  readonly zStarHost: Float64Array;

  constructor(config: ReluProblemConfig) {
    checkConfig(config);
    this.config = { act: 'relu', zStarNorm: 1, ...config, widths: [...config.widths] };
    const { instances: I, k, widths, m, seed, act, zStarNorm } = this.config;
    const dims = [k, ...widths];
    this.weights = widths.map((n, l) => {
      const std = Math.sqrt((act === 'relu' ? 2 : 1) / n);
      return randomNormal([I, n, dims[l]], { seed, offset: l, std }).keep();
    });
    this.A = randomNormal([I, m, widths[widths.length - 1]], { seed, offset: widths.length, std: 1 / Math.sqrt(m) }).keep();
    const raw = philoxNormalF64(I * k, toWord64(seed, 'ReluProblem: seed'), [widths.length + 1, 0]);
    this.zStarHost = new Float64Array(I * k);
    for (let i = 0; i < I; i++) {
      let n2 = 0;
      for (let j = 0; j < k; j++) n2 += raw[i * k + j] ** 2;
      for (let j = 0; j < k; j++) this.zStarHost[i * k + j] = Math.fround((zStarNorm * raw[i * k + j]) / Math.sqrt(n2));
    }
    this.zStar = tensor(this.zStarHost, [I, k]).keep();
    this.y = noGrad(() =>
      scope(() => {
        const pred = this.measure(this.generate(reshape(this.zStar, [I, 1, k])));
        return reshape(pred, [I, m]);
      }),
    ).keep();
  }

  get instances(): number {
    return this.config.instances;
  }
  get k(): number {
    return this.config.k;
  }
  get depth(): number {
    return this.config.widths.length;
  }

  /** G(z): z [I, C, k] -> [I, C, n_d]. Differentiable (recorded on the tape when z requires grad). */
  generate(z: Tensor): Tensor {
    if (z.rank !== 3 || z.shape[0] !== this.instances || z.shape[2] !== this.k) {
      throw new RangeError(`ReluProblem.generate: z must be [${this.instances}, chains, ${this.k}], got [${z.shape.join(', ')}]`);
    }
    let h = z;
    for (const w of this.weights) {
      const next = dense(h, w, this.config.act);
      if (h !== z) h.dispose(); // the tape holds its own reference where backward needs it
      h = next;
    }
    return h;
  }

  /** A x: x [I, C, n_d] -> [I, C, m]. */
  measure(x: Tensor): Tensor {
    return dense(x, this.A, 'linear');
  }

  /** L(z) = 0.5 ||A G(z) - y||^2 per chain: z [I, C, k] -> [I, C]. */
  loss(z: Tensor): Tensor {
    return scope(() => halfSqErr(this.measure(this.generate(z)), this.y));
  }

  /**
   * L(z) [I, C] and grad L(z) [I, C, k] through the tape. `ones` [I, C] (all 1) is the upstream
   * gradient; pass a long-lived one in loops to avoid an upload per step.
   */
  lossAndGrad(z: Tensor, ones?: Tensor): { loss: Tensor; grad: Tensor } {
    return scope(() => {
      const wasLeaf = z.requiresGrad;
      z.requireGrad();
      const loss = this.loss(z);
      const [g] = grad(loss, [z], ones ? { upstream: ones } : {});
      z.requireGrad(wasLeaf);
      return { loss, grad: g };
    });
  }

  /** The problem on the host (float64 copies of the float32 values), for references and analysis. */
  async toHost(): Promise<HostProblem & { zStar: HostArray }> {
    const weights: HostArray[] = [];
    for (const w of this.weights) weights.push(host(w.shape, await w.readF32()));
    return {
      weights,
      act: this.config.act,
      A: host(this.A.shape, await this.A.readF32()),
      y: host(this.y.shape, await this.y.readF32()),
      zStar: host(this.zStar.shape, this.zStarHost),
    };
  }

  dispose(): void {
    for (const w of this.weights) w.dispose();
    this.A.dispose();
    this.zStar.dispose();
    this.y.dispose();
  }
}

/** Widths n_l = k * expansion^l for l = 1..depth (the experiment's family of expansive nets). */
export function geometricWidths(k: number, expansion: number, depth: number): number[] {
  if (!(expansion > 1)) throw new RangeError(`geometricWidths: expansion must exceed 1, got ${expansion}`);
  return Array.from({ length: depth }, (_, l) => Math.round(k * expansion ** (l + 1)));
}
