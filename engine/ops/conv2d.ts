// conv2d: 2-D convolution (cross-correlation, as in PyTorch), NCHW, with groups, stride, padding
// (symmetric or asymmetric) and dilation, differentiable in input, weight and bias.
// Kernels: shaders/conv2d.wgsl and shaders/conv_transpose2d.wgsl via ./conv2d_kernels.ts;
// reference: engine/reference/conv2d.ts.
//
// Dimensions:
//   x    [N, C_in, H, W]
//   w    [C_out, C_in/G, kH, kW]      G = groups, which must divide C_in and C_out
//   bias [C_out]                      optional
//   y    [N, C_out, Ho, Wo]           Ho = floor((H + pt + pb - dy*(kH-1) - 1) / sy) + 1, same for Wo
//
// Backward:
//   gx = conv_transpose2d(gy, w) with the same geometry, cropped/extended to [H, W]
//   gw = correlation of gy with x (conv2d_backward_weight)
//   gb = sum of gy over N, Ho, Wo

import { record } from '../tape.ts';
import { Tensor } from '../tensor.ts';
import { shapeString } from '../shape.ts';
import { sum } from './reduce.ts';
import { convWeightGrad, directConv, transposedConv, type ConvGeometry } from './conv2d_kernels.ts';

export type Pair = number | readonly [number, number];

export interface Conv2dOptions {
  /** Step between windows: one number, or [sy, sx]. Default 1. */
  stride?: Pair;
  /** Zeros added around the input: p, [py, px] (both sides), or [top, bottom, left, right]. Default 0. */
  padding?: number | readonly [number, number] | readonly [number, number, number, number];
  /** Spacing of the kernel taps: d or [dy, dx]. Default 1. */
  dilation?: Pair;
  /** Channel groups; must divide C_in and C_out. Default 1. */
  groups?: number;
}

export type { ConvGeometry };

function pair(op: string, name: string, v: Pair | undefined, dflt: number, min: number): [number, number] {
  const p = v === undefined ? [dflt, dflt] : typeof v === 'number' ? [v, v] : [...v];
  if (p.length !== 2 || !p.every((d) => Number.isInteger(d) && d >= min)) {
    throw new RangeError(`${op}: ${name} must be an integer >= ${min} or a pair of them, got ${JSON.stringify(v)}`);
  }
  return p as [number, number];
}

/** Normalizes stride, padding, dilation and groups (shape-independent checks). */
export function convGeometry(op: string, o: Conv2dOptions): ConvGeometry {
  const stride = pair(op, 'stride', o.stride, 1, 1);
  const dilation = pair(op, 'dilation', o.dilation, 1, 1);
  const pd = o.padding ?? 0;
  const list = typeof pd === 'number' ? [pd, pd, pd, pd] : pd.length === 2 ? [pd[0], pd[0], pd[1], pd[1]] : [...pd];
  if (list.length !== 4 || !list.every((d) => Number.isInteger(d) && d >= 0)) {
    throw new RangeError(`${op}: padding must be a non-negative integer, [py, px] or [top, bottom, left, right], got ${JSON.stringify(pd)}`);
  }
  const groups = o.groups ?? 1;
  if (!Number.isInteger(groups) || groups < 1) throw new RangeError(`${op}: groups must be a positive integer, got ${groups}`);
  return { stride, padding: list as ConvGeometry['padding'], dilation, groups };
}

/** Checks dtype and rank of x and w, and bias against `cOut`. */
export function checkOperands(op: string, x: Tensor, w: Tensor, bias: Tensor | null, cOut: number): void {
  for (const [t, n] of [[x, 'x'], [w, 'w'], [bias, 'bias']] as const) {
    if (t && t.dtype !== 'f32') throw new TypeError(`${op}: ${n} must be f32, got ${t.dtype}`);
  }
  if (x.rank !== 4) throw new RangeError(`${op}: x must be [N, C_in, H, W], got shape ${shapeString(x.shape)}`);
  if (w.rank !== 4) throw new RangeError(`${op}: w must have rank 4, got shape ${shapeString(w.shape)}`);
  if (bias && (bias.rank !== 1 || bias.shape[0] !== cOut)) {
    throw new RangeError(`${op}: bias has shape ${shapeString(bias.shape)}, expected [${cOut}] (one per output channel)`);
  }
}

/** Splits the optional bias argument from the options (conv2d(x, w, opts) or conv2d(x, w, bias, opts)). */
export function splitArgs<O>(biasOrOptions: Tensor | null | O | undefined, options: O | undefined): [Tensor | null, O] {
  if (biasOrOptions instanceof Tensor) return [biasOrOptions, options ?? ({} as O)];
  if (biasOrOptions === null) return [null, options ?? ({} as O)];
  return [null, (biasOrOptions as O | undefined) ?? options ?? ({} as O)];
}

/** Validates the shapes and returns the geometry and the output shape. */
export function conv2dShapes(x: Tensor, w: Tensor, bias: Tensor | null, options: Conv2dOptions): { geom: ConvGeometry; out: [number, number, number, number] } {
  const op = 'conv2d';
  const geom = convGeometry(op, options);
  checkOperands(op, x, w, bias, w.shape[0]);
  const [n, cIn, h, wd] = x.shape;
  const [cOut, cinG, kH, kW] = w.shape;
  const G = geom.groups;
  if (cIn % G !== 0) throw new RangeError(`${op}: groups ${G} does not divide the ${cIn} input channels of x ${shapeString(x.shape)}`);
  if (cOut % G !== 0) throw new RangeError(`${op}: groups ${G} does not divide the ${cOut} output channels of w ${shapeString(w.shape)}`);
  if (cinG * G !== cIn) {
    throw new RangeError(`${op}: channel mismatch: x ${shapeString(x.shape)} has ${cIn} input channels, but w ${shapeString(w.shape)} expects ${cinG} per group x ${G} group(s) = ${cinG * G}`);
  }
  const [pt, pb, pl, pr] = geom.padding;
  const [dy, dx] = geom.dilation;
  const spanY = dy * (kH - 1) + 1;
  const spanX = dx * (kW - 1) + 1;
  if (spanY > h + pt + pb || spanX > wd + pl + pr) {
    const dil = dy > 1 || dx > 1 ? ` (${spanY}x${spanX} dilated)` : '';
    throw new RangeError(`${op}: kernel ${kH}x${kW}${dil} is larger than the padded input ${h + pt + pb}x${wd + pl + pr} (input ${h}x${wd}, padding [${geom.padding}])`);
  }
  const ho = Math.floor((h + pt + pb - spanY) / geom.stride[0]) + 1;
  const wo = Math.floor((wd + pl + pr - spanX) / geom.stride[1]) + 1;
  return { geom, out: [n, cOut, ho, wo] };
}

/**
 * 2-D convolution of x [N, C_in, H, W] with w [C_out, C_in/groups, kH, kW] plus an optional bias
 * [C_out]: `conv2d(x, w, options)` or `conv2d(x, w, bias, options)`.
 */
export function conv2d(x: Tensor, w: Tensor, biasOrOptions?: Tensor | null | Conv2dOptions, maybeOptions?: Conv2dOptions): Tensor {
  const [bias, options] = splitArgs(biasOrOptions, maybeOptions);
  const { geom, out } = conv2dShapes(x, w, bias, options);
  return recordConv('conv2d', x, w, bias, geom, out, false);
}

/**
 * Runs a convolution (`transposed` false) or a transposed convolution on the validated operands and
 * records its backward. Each is the other's input gradient; both weight gradients are the one
 * correlation of the convolution-side input with the convolution-side output gradient (for the
 * transposed convolution: gy with x); the bias gradient sums gy over N, Ho, Wo.
 */
export function recordConv(op: string, x: Tensor, w: Tensor, bias: Tensor | null, geom: ConvGeometry, out: readonly number[], transposed: boolean): Tensor {
  const [forward, adjoint] = transposed ? [transposedConv, directConv] : [directConv, transposedConv];
  const [, , h, wd] = x.shape;
  const kernel: [number, number] = [w.shape[2], w.shape[3]];
  const y = forward(x, w, bias, geom, [out[2], out[3]]);
  record(op, bias ? [x, w, bias] : [x, w], y, [x, w], (gy) => {
    const gx = x.requiresGrad ? adjoint(gy, w, null, geom, [h, wd]) : null;
    const gw = w.requiresGrad ? (transposed ? convWeightGrad(gy, x, geom, kernel) : convWeightGrad(x, gy, geom, kernel)) : null;
    const gb = bias?.requiresGrad ? sum(gy, [0, 2, 3]) : null;
    return [gx, gw, gb];
  });
  return y;
}
