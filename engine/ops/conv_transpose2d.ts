// conv_transpose2d: 2-D transposed convolution with PyTorch's semantics (the adjoint of conv2d
// with respect to its input), NCHW, with stride, padding, output padding, groups and dilation,
// differentiable in input, weight and bias.
// Kernels: shaders/conv_transpose2d.wgsl and shaders/conv2d.wgsl via ./conv2d_kernels.ts;
// reference: engine/reference/conv_transpose2d.ts.
//
// Dimensions:
//   x    [N, C_in, H, W]
//   w    [C_in, C_out/G, kH, kW]      G = groups, which must divide C_in (PyTorch's layout)
//   bias [C_out]                      optional
//   y    [N, C_out, Ho, Wo]           Ho = (H - 1)*sy - pt - pb + dy*(kH - 1) + opy + 1, same for Wo
// StyleGAN2's upsampling conv: stride 2, padding 0, 3x3, so H -> 2H + 1.
//
// Backward:
//   gx = conv2d(gy, w) with the same stride, padding and dilation, output [H, W]
//   gw = the conv2d weight-gradient correlation with the roles of x and gy exchanged
//   gb = sum of gy over N, Ho, Wo

import type { Tensor } from '../tensor.ts';
import { shapeString } from '../shape.ts';
import { checkOperands, convGeometry, recordConv, splitArgs, type Conv2dOptions, type Pair } from './conv2d.ts';
import type { ConvGeometry } from './conv2d_kernels.ts';

export interface ConvTranspose2dOptions extends Conv2dOptions {
  /** Extra rows/columns at the bottom/right of the output: op or [opy, opx]; each < max(stride, dilation). Default 0. */
  outputPadding?: Pair;
}

/** Validates the shapes and returns the geometry and the output shape. */
export function convTranspose2dShapes(
  x: Tensor,
  w: Tensor,
  bias: Tensor | null,
  options: ConvTranspose2dOptions,
): { geom: ConvGeometry; outputPadding: [number, number]; out: [number, number, number, number] } {
  const op = 'conv_transpose2d';
  const geom = convGeometry(op, options);
  const G = geom.groups;
  const cOut = w.rank === 4 ? w.shape[1] * G : 0;
  checkOperands(op, x, w, bias, cOut);
  const [n, cIn, h, wd] = x.shape;
  const [wIn, , kH, kW] = w.shape;
  if (cIn % G !== 0) throw new RangeError(`${op}: groups ${G} does not divide the ${cIn} input channels of x ${shapeString(x.shape)}`);
  if (wIn !== cIn) {
    throw new RangeError(`${op}: channel mismatch: x ${shapeString(x.shape)} has ${cIn} input channels, but w ${shapeString(w.shape)} is [C_in, C_out/groups, kH, kW] with C_in = ${wIn}`);
  }
  const opad = options.outputPadding;
  const outputPadding: [number, number] = opad === undefined ? [0, 0] : typeof opad === 'number' ? [opad, opad] : [opad[0], opad[1]];
  outputPadding.forEach((p, a) => {
    const limit = Math.max(geom.stride[a], geom.dilation[a]);
    if (!Number.isInteger(p) || p < 0 || p >= limit) {
      throw new RangeError(`${op}: outputPadding ${JSON.stringify(opad)} must be a non-negative integer below max(stride, dilation) = ${limit} on axis ${a ? 'x' : 'y'}`);
    }
  });
  const [pt, pb, pl, pr] = geom.padding;
  const ho = (h - 1) * geom.stride[0] - pt - pb + geom.dilation[0] * (kH - 1) + outputPadding[0] + 1;
  const wo = (wd - 1) * geom.stride[1] - pl - pr + geom.dilation[1] * (kW - 1) + outputPadding[1] + 1;
  if (ho <= 0 || wo <= 0) {
    throw new RangeError(`${op}: padding [${geom.padding}] crops the whole output: ${h}x${wd} input, kernel ${kH}x${kW}, stride [${geom.stride}] give ${ho}x${wo}`);
  }
  return { geom, outputPadding, out: [n, cOut, ho, wo] };
}

/**
 * Transposed convolution of x [N, C_in, H, W] with w [C_in, C_out/groups, kH, kW] plus an optional
 * bias [C_out]: `convTranspose2d(x, w, options)` or `convTranspose2d(x, w, bias, options)`.
 */
export function convTranspose2d(x: Tensor, w: Tensor, biasOrOptions?: Tensor | null | ConvTranspose2dOptions, maybeOptions?: ConvTranspose2dOptions): Tensor {
  const [bias, options] = splitArgs(biasOrOptions, maybeOptions);
  const { geom, out } = convTranspose2dShapes(x, w, bias, options);
  return recordConv('conv_transpose2d', x, w, bias, geom, out, true);
}
