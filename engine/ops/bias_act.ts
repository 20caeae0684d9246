// Fused bias + activation the StyleGAN2 way (rosinality fused_leaky_relu, NVlabs bias_act):
//
//   y = clamp(act(x + bias[c]) * gain, -clamp, clamp),  c = index along `dim`
//   act: 'lrelu' (slope alpha below 0, default 0.2; gain default sqrt(2)) or 'linear' (gain 1)
//
// Gradients for x and bias: gz = gy * gain * act'(z), 0 where the output was clamped; gx = gz and
// gbias[c] = sum of gz over every dimension but `dim` (partial sums in the backward kernel, then
// one invocation per channel adds them up). Kernels: shaders/bias_act.wgsl.
// Reference: engine/reference/bias_act.ts.
//
// Dimensions: x any rank >= 1, viewed as [outer, C, inner] with C = x.shape[dim]; bias [C].

import { defineKernel, grid1d } from '../kernel.ts';
import { record } from '../tape.ts';
import { Tensor, empty } from '../tensor.ts';
import { normalizeAxes, shapeString } from '../shape.ts';
import type { BiasActConfig } from '../reference/bias_act.ts';

const WG = 64; // workgroup size in bias_act.wgsl
const K = {
  forward: defineKernel({ shader: 'bias_act', entry: 'bias_act_forward', bindings: { x: 'read', bias: 'read', y: 'read_write', params: 'uniform' } }),
  backward: defineKernel({
    shader: 'bias_act',
    entry: 'bias_act_backward',
    bindings: { x: 'read', bias: 'read', gy: 'read', gx: 'read_write', params: 'uniform', bparams: 'uniform', partial: 'read_write' },
  }),
  biasGrad: defineKernel({ shader: 'bias_act', entry: 'bias_act_bias_grad', bindings: { partial_in: 'read', gbias: 'read_write', params: 'uniform', bparams: 'uniform' } }),
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
  if (shape.length === 0) throw new RangeError('bias_act: x must have rank >= 1 (a scalar has no channel dimension)');
  const [dim] = normalizeAxes(options.dim ?? 1, shape.length, 'bias_act: dim');
  return { alpha, gain, clamp, dim };
}

/** y = clamp(act(x + bias) * gain, -clamp, clamp); bias [x.shape[dim]] or null. */
export function biasAct(x: Tensor, bias: Tensor | null = null, options: BiasActOptions = {}): Tensor {
  if (x.dtype !== 'f32') throw new TypeError(`bias_act: expects an f32 tensor, got ${x.dtype}${shapeString(x.shape)}`);
  const c = biasActConfig(x.shape, options);
  const C = x.shape[c.dim];
  if (bias) {
    if (bias.dtype !== 'f32' || bias.rank !== 1 || bias.shape[0] !== C) {
      throw new RangeError(`bias_act: bias has shape ${bias.dtype}${shapeString(bias.shape)}, expected f32[${C}] (x ${shapeString(x.shape)} has ${C} channels along dim ${c.dim})`);
    }
  }
  const inner = x.shape.slice(c.dim + 1).reduce((p, d) => p * d, 1);
  const params = {
    n: x.size,
    channels: C,
    inner,
    has_bias: bias ? 1 : 0,
    alpha: c.alpha,
    gain: c.gain,
    clamp: Number.isFinite(c.clamp) ? c.clamp : 0,
    has_clamp: Number.isFinite(c.clamp) ? 1 : 0,
  };
  const b = bias ?? x; // bound but unread without a bias
  const grid = grid1d(Math.ceil(x.size / (4 * WG))); // 4 elements per invocation
  const y = empty(x.shape);
  K.forward.dispatch({ x, bias: b, y, params }, grid);
  const inputs = bias ? [x, bias] : [x];
  record('bias_act', inputs, y, bias ? [x, bias] : [x], (gy) => {
    const rows = x.size / inner;
    const lanes = Math.min(inner, LANES);
    const bparams = { rows, lanes };
    const gx = empty(x.shape);
    const partial = empty(bias ? [rows * lanes] : [1]); // [outer, C, lanes]; unwritten without a bias
    K.backward.dispatch({ x, bias: b, gy, gx, params, bparams, partial }, grid1d(Math.ceil((rows * lanes) / WG)));
    if (!bias) {
      partial.dispose();
      return [gx];
    }
    const gb = empty([C]);
    K.biasGrad.dispatch({ partial_in: partial, gbias: gb, params, bparams }, [Math.ceil(C / WG), 1, 1]);
    partial.dispose();
    return [gx, gb];
  });
  return y;
}
