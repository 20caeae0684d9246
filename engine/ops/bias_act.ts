// Fused bias + activation the StyleGAN2 way (rosinality fused_leaky_relu, NVlabs bias_act):
//
//   y = clamp(act((x * scale + w * noise) + bias[c]) * gain, -clamp, clamp) + residual,  c = index along `dim`
//   act: 'lrelu' (slope alpha below 0, default 0.2; gain default sqrt(2)) or 'linear' (gain 1)
//
// The noise term is optional: StyleGAN2's noise injection (a map per sample, or one for the
// batch, broadcast over the channels, times a scalar weight), fused in so that a styled conv's
// add(y, mul(noise, w)) costs no dispatches of its own, forward or backward. Its gradients:
// gnoise = w * (gz summed over the channels, and over the samples sharing a map), gw = sum of
// gz * noise (one extra kernel for both, bias_act_noise_grad, plus a sum for gw when asked).
//
// Gradients for x and bias: gz = gy * gain * act'(z), 0 where the output was clamped; gx = gz * scale and
// gbias[c] = sum of gz over every dimension but `dim` (partial sums in the backward kernel, then
// one invocation per channel adds them up). Kernels: shaders/bias_act.wgsl.
// Reference: engine/reference/bias_act.ts.
//
// Dimensions: x any rank >= 1, viewed as [outer, C, inner] with C = x.shape[dim]; bias [C].

import { backend } from '../backend.ts';
import { defineKernel, grid1d } from '../kernel.ts';
import { record } from '../tape.ts';
import { Tensor, empty } from '../tensor.ts';
import { normalizeAxes, shapeString } from '../shape.ts';
import { sum } from './reduce.ts';
import type { BiasActConfig } from '../reference/bias_act.ts';

const WG = 64; // workgroup size in bias_act.wgsl
const K = {
  forward: defineKernel({ shader: 'bias_act', entry: 'bias_act_forward', bindings: { x: 'read', bias: 'read', noise: 'read', nweight: 'read', residual: 'read', y: 'read_write', params: 'uniform' } }),
  backward: defineKernel({
    shader: 'bias_act',
    entry: 'bias_act_backward',
    bindings: { x: 'read', bias: 'read', noise: 'read', nweight: 'read', gy: 'read', gx: 'read_write', params: 'uniform', bparams: 'uniform', partial: 'read_write' },
  }),
  biasGrad: defineKernel({ shader: 'bias_act', entry: 'bias_act_bias_grad', bindings: { partial_in: 'read', gbias: 'read_write', params: 'uniform', bparams: 'uniform' } }),
  noiseGrad: defineKernel({
    shader: 'bias_act',
    entry: 'bias_act_noise_grad',
    bindings: { gz_in: 'read', noise: 'read', nweight: 'read', gnoise: 'read_write', gw_part: 'read_write', params: 'uniform', nparams: 'uniform' },
  }),
};
const LANES = 64; // most backward invocations per row of `inner` elements

export type BiasActKind = 'lrelu' | 'linear';

export interface BiasActOptions {
  /** Default 'linear'. */
  act?: BiasActKind;
  /** Negative slope of lrelu. Default 0.2; ignored for linear. */
  alpha?: number;
  /** Default sqrt(2) for lrelu, 1 for linear. */
  gain?: number;
  /** Clamp the output to [-clamp, clamp] (>= 0). Default: no clamp. */
  clamp?: number;
  /** The bias (channel) dimension, negative counts from the end. Default 1. */
  dim?: number;
  /**
   * Added after the activation, gain and clamp, x's shape: a residual connection (the ViT's
   * z + linear(h), ToRGB's skip) in the same dispatch. Its gradient is gy.
   */
  residual?: Tensor;
  /**
   * x's factor before the bias (default 1): StyleGAN2's equalized linear layer, scale * (x W^T) +
   * bias, is biasAct(matmul(x, W^T), bias, { scale }), one dispatch for the affine, bias and add.
   * Not with `noise`.
   */
  scale?: number;
  /**
   * Noise injection before the bias: x + weight * map, map of x's shape with 1 at `dim` (or 1 in
   * every dimension before `dim` too: one map for the batch), weight f32 [1].
   */
  noise?: { map: Tensor; weight: Tensor };
}

/** Checks the noise map and weight against x; returns how many consecutive samples share a map. */
function noiseGroup(x: Tensor, dim: number, noise: { map: Tensor; weight: Tensor }): number {
  const { map, weight } = noise;
  const perSample = [...x.shape.slice(0, dim), 1, ...x.shape.slice(dim + 1)];
  const shared = [...x.shape.slice(0, dim).map(() => 1), 1, ...x.shape.slice(dim + 1)];
  const is = (s: number[]) => map.rank === s.length && map.shape.every((d, i) => d === s[i]);
  if (map.dtype !== 'f32' || !(is(perSample) || is(shared))) {
    throw new RangeError(`bias_act: noise map has shape ${map.dtype}${shapeString(map.shape)}, expected f32${shapeString(perSample)} or f32${shapeString(shared)} for x ${shapeString(x.shape)}`);
  }
  if (weight.dtype !== 'f32' || weight.rank !== 1 || weight.shape[0] !== 1) {
    throw new RangeError(`bias_act: noise weight has shape ${weight.dtype}${shapeString(weight.shape)}, expected f32[1]`);
  }
  const outer = x.shape.slice(0, dim).reduce((p, d) => p * d, 1);
  return is(perSample) ? 1 : outer;
}

/** Normalizes and checks the options for a tensor of `shape` (the object the reference takes). */
export function biasActConfig(shape: readonly number[], options: BiasActOptions = {}): BiasActConfig {
  const act = options.act ?? 'linear';
  if (act !== 'lrelu' && act !== 'linear') throw new RangeError(`bias_act: unknown activation "${act}" (expected 'lrelu' or 'linear')`);
  const alpha = act === 'lrelu' ? (options.alpha ?? 0.2) : 1;
  const gain = options.gain ?? (act === 'lrelu' ? Math.SQRT2 : 1);
  const clamp = options.clamp ?? Infinity;
  if (!Number.isFinite(alpha)) throw new RangeError(`bias_act: alpha must be finite, got ${options.alpha}`);
  if (!Number.isFinite(gain)) throw new RangeError(`bias_act: gain must be finite, got ${options.gain}`);
  if (!(clamp >= 0)) throw new RangeError(`bias_act: clamp must be >= 0, got ${options.clamp}`);
  const scale = options.scale ?? 1;
  if (!Number.isFinite(scale)) throw new RangeError(`bias_act: scale must be finite, got ${options.scale}`);
  if (scale !== 1 && options.noise) throw new RangeError('bias_act: scale and noise do not combine (the noise gradient is taken from gz)');
  if (shape.length === 0) throw new RangeError('bias_act: x must have rank >= 1 (a scalar has no channel dimension)');
  const [dim] = normalizeAxes(options.dim ?? 1, shape.length, 'bias_act: dim');
  return { alpha, gain, clamp, dim, scale };
}

/** y = clamp(act((x * scale + w * noise) + bias) * gain, -clamp, clamp) + residual; bias [x.shape[dim]] or null. */
export function biasAct(x: Tensor, bias: Tensor | null = null, options: BiasActOptions = {}): Tensor {
  if (x.dtype !== 'f32') throw new TypeError(`bias_act: expects an f32 tensor, got ${x.dtype}${shapeString(x.shape)}`);
  const c = biasActConfig(x.shape, options);
  const C = x.shape[c.dim];
  if (bias) {
    // [C], or C values laid out along one axis of ones ([1, C, 1, 1], a checkpoint's ToRGB bias).
    const flat = bias.size === C && bias.shape.filter((d) => d !== 1).length <= 1;
    if (bias.dtype !== 'f32' || !flat) {
      throw new RangeError(`bias_act: bias has shape ${bias.dtype}${shapeString(bias.shape)}, expected f32[${C}] (x ${shapeString(x.shape)} has ${C} channels along dim ${c.dim})`);
    }
  }
  const inner = x.shape.slice(c.dim + 1).reduce((p, d) => p * d, 1);
  const noise = options.noise ?? null;
  const group = noise ? noiseGroup(x, c.dim, noise) : 1;
  const residual = options.residual ?? null;
  if (residual && (residual.dtype !== 'f32' || residual.rank !== x.rank || residual.shape.some((d, i) => d !== x.shape[i]))) {
    throw new RangeError(`bias_act: residual has shape ${residual.dtype}${shapeString(residual.shape)}, expected f32${shapeString(x.shape)} (x's)`);
  }
  const params = {
    n: x.size,
    channels: C,
    inner,
    has_bias: bias ? 1 : 0,
    alpha: c.alpha,
    gain: c.gain,
    clamp: Number.isFinite(c.clamp) ? c.clamp : 0,
    has_clamp: Number.isFinite(c.clamp) ? 1 : 0,
    has_noise: noise ? 1 : 0,
    noise_group: group,
    xscale: c.scale ?? 1,
    has_residual: residual ? 1 : 0,
  };
  // Bound but unread without a bias or noise.
  const b = bias ?? x;
  const nmap = noise?.map ?? x;
  const nweight = noise?.weight ?? x;
  const grid = grid1d(Math.ceil(x.size / (4 * WG))); // 4 elements per invocation
  const y = empty(x.shape);
  K.forward.dispatch({ x, bias: b, noise: nmap, nweight, residual: residual ?? x, y, params }, grid);
  // Inputs: x, then the bias, the noise map and weight, the residual, each when given.
  const inputs = [x, ...(bias ? [bias] : []), ...(noise ? [noise.map, noise.weight] : []), ...(residual ? [residual] : [])];
  const saved = [x, ...(bias ? [bias] : []), ...(noise ? [noise.map, noise.weight] : [])];
  record('bias_act', inputs, y, saved, (gy, needs) => {
    const own = residual ? needs.slice(0, -1) : needs;
    const gres = residual && needs[needs.length - 1] ? copyOf(gy) : null;
    const grads = backwardRule(gy, own);
    return residual ? [...grads, gres] : grads;
  });
  return y;

  function backwardRule(gy: Tensor, needs: boolean[]): (Tensor | null)[] {
    // A plain bias add (linear, gain 1, no clamp, scale or noise): gx is gy, and the bias's gradient
    // a reduction, exactly the `add` op's backward (a copy and at most one dispatch).
    const plain = c.alpha === 1 && c.gain === 1 && !Number.isFinite(c.clamp) && (c.scale ?? 1) === 1 && !noise;
    if (plain) {
      const axes = x.shape.map((_, d) => d).filter((d) => d !== c.dim);
      const gbPlain = bias && needs[1] ? sum(gy, axes, { keepdims: bias.rank !== 1 }) : null;
      if (!gbPlain || gbPlain.shape.every((d, i) => d === bias!.shape[i])) return [needs[0] ? copyOf(gy) : null, ...(bias ? [gbPlain] : [])];
      gbPlain.dispose(); // a bias laid out unlike x (e.g. [1, C] on rank 4): the kernels below
    }
    const rows = x.size / inner;
    const lanes = Math.min(inner, LANES);
    // The bias's gradient only where asked for (a network's biases need none while a latent is fitted).
    const wantBias = bias !== null && needs[1];
    const bparams = { rows, lanes, want_bias: wantBias ? 1 : 0 };
    const gx = empty(x.shape);
    const partial = empty(wantBias ? [rows * lanes] : [1]); // [outer, C, lanes]; unwritten without
    K.backward.dispatch({ x, bias: b, noise: nmap, nweight, gy, gx, params, bparams, partial }, grid1d(Math.ceil((rows * lanes) / WG)));
    let gb: Tensor | null = null;
    if (wantBias) {
      gb = empty(bias!.shape);
      K.biasGrad.dispatch({ partial_in: partial, gbias: gb, params, bparams }, [Math.ceil(C / WG), 1, 1]);
    }
    partial.dispose();
    if (!noise) return bias ? [gx, gb] : [gx];
    const nz = noise;
    const [needMap, needWeight] = needs.slice(-2);
    let gmap: Tensor | null = null;
    let gw: Tensor | null = null;
    if (needMap || needWeight) {
      const maps = x.size / inner / C / group;
      gmap = empty(nz.map.shape);
      // Without the weight's gradient the kernel writes no partial sums: a 1-element stand-in.
      const part = empty([needWeight ? maps * inner : 1]);
      const nparams = { maps, want_w: needWeight ? 1 : 0 };
      K.noiseGrad.dispatch({ gz_in: gx, noise: nmap, nweight, gnoise: gmap, gw_part: part, params, nparams }, grid1d(Math.ceil((maps * inner) / WG)));
      if (needWeight) gw = sum(part, [0], { keepdims: true });
      part.dispose();
      if (!needMap) {
        gmap.dispose();
        gmap = null;
      }
    }
    return [gx, ...(bias ? [gb] : []), gmap, gw];
  }
}

function copyOf(t: Tensor): Tensor {
  const c = empty(t.shape);
  backend().copy(t.buffer, 0, c.buffer, 0, t.bytes);
  return c;
}
