// float64 reference of the fused bias + activation (engine/ops/bias_act.ts), StyleGAN2's
// `fused_leaky_relu` / NVlabs `bias_act`:
//
//   z = (x * scale + w * noise) + bias[c] (c = the index along `dim`; no bias: z = x; no noise: w = 0;
//                                          scale 1 unless given)
//   y = clamp(act(z) * gain, -clamp, clamp) + residual   (residual optional, x's shape; its gradient is gy)
//   y = clamp(act(z) * gain, -clamp, clamp)
//   act = lrelu: z > 0 ? z : alpha * z;  linear: z
//
// Derivative: dy/dz = gain * (z > 0 ? 1 : alpha) where |act(z) * gain| <= clamp, else 0 (a clamped
// output does not move). The gradient at z = 0 takes the alpha branch, like torch's leaky_relu.
// Bias gradient: dz/dbias[c] = 1, so gbias[c] = sum of gz over every element with that channel.
// Noise (StyleGAN2's injection): noise map [outer / group, inner] broadcast over the channels and
// over `group` consecutive samples, w a scalar: gnoise = w * sum of gz over the elements that read
// it, gw = sum of gz * noise.
//
// Dimensions: x any rank, viewed as [outer, C, inner] around `dim`; bias [C].

import { host, type HostArray } from './host.ts';

export interface BiasActConfig {
  /** Slope for z <= 0: alpha for lrelu, 1 for linear. */
  alpha: number;
  gain: number;
  /** Infinity for no clamp. */
  clamp: number;
  /** Already normalized (non-negative). */
  dim: number;
  /** x's factor in z (default 1): z = x * scale + w * noise + bias. */
  scale?: number;
}

function layout(x: HostArray, dim: number): { C: number; inner: number } {
  const C = x.shape[dim];
  const inner = x.shape.slice(dim + 1).reduce((p, d) => p * d, 1);
  return { C, inner };
}

/** The noise input: map [outer / group, 1, inner] as a flat array, weight [1]. */
export interface NoiseInput {
  map: HostArray;
  weight: HostArray;
  /** Consecutive samples (indices before `dim`) that share one map. */
  group: number;
}

/** Index into the noise maps of element i. */
function noiseIndex(i: number, C: number, inner: number, group: number): number {
  const o = Math.floor(i / (C * inner));
  return Math.floor(o / group) * inner + (i % inner);
}

function zAt(x: HostArray, bias: HostArray | null, i: number, C: number, inner: number, scale: number, noise?: NoiseInput): number {
  const n = noise ? noise.weight.data[0] * noise.map.data[noiseIndex(i, C, inner, noise.group)] : 0;
  return x.data[i] * scale + n + (bias ? bias.data[Math.floor(i / inner) % C] : 0);
}

export function biasActForward(x: HostArray, bias: HostArray | null, c: BiasActConfig, noise?: NoiseInput, residual?: HostArray): HostArray {
  const { C, inner } = layout(x, c.dim);
  const y = host(x.shape);
  for (let i = 0; i < y.data.length; i++) {
    const z = zAt(x, bias, i, C, inner, c.scale ?? 1, noise);
    const v = (z > 0 ? z : c.alpha * z) * c.gain;
    y.data[i] = Math.min(Math.max(v, -c.clamp), c.clamp) + (residual ? residual.data[i] : 0);
  }
  return y;
}

/** [gx], [gx, gbias], then with noise the map's and the weight's gradients, then the residual's (gy). */
export function biasActVjp(x: HostArray, bias: HostArray | null, c: BiasActConfig, gy: HostArray, noise?: NoiseInput, residual?: HostArray): Float64Array[] {
  const { C, inner } = layout(x, c.dim);
  const gx = new Float64Array(x.data.length);
  const gb = new Float64Array(C);
  const gmap = new Float64Array(noise ? noise.map.data.length : 0);
  const gw = new Float64Array(1);
  for (let i = 0; i < gx.length; i++) {
    const z = zAt(x, bias, i, C, inner, c.scale ?? 1, noise);
    const slope = z > 0 ? 1 : c.alpha;
    const pass = Math.abs(z * slope * c.gain) <= c.clamp;
    const gz = pass ? gy.data[i] * slope * c.gain : 0;
    gx[i] = gz * (c.scale ?? 1);
    gb[Math.floor(i / inner) % C] += gz;
    if (noise) {
      const j = noiseIndex(i, C, inner, noise.group);
      gmap[j] += noise.weight.data[0] * gz;
      gw[0] += noise.map.data[j] * gz;
    }
  }
  return [gx, ...(bias ? [gb] : []), ...(noise ? [gmap, gw] : []), ...(residual ? [Float64Array.from(gy.data)] : [])];
}
