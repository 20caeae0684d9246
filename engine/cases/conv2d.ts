// Gradcheck rows of conv2d on small awkward shapes: odd and non-square sizes, batch 2, channel
// counts that are not multiples of the kernels' 4-wide blocks, stride 2, asymmetric padding,
// dilation, groups, 1x1 / 3x3 / 4x3 kernels, and a weight gradient large enough to be split over
// pixel chunks. Included in the table by allGradCases() (engine/cases/index.ts); the options'
// label (describe) and the row builder (convCase) are shared with engine/cases/conv_transpose2d.ts.
//
// Sizes stay small so the float64 finite-difference check is quick (inputs above 96 elements are
// checked along random directions). Tolerance: the matmul class (sums of up to ~50 products).

import { TOLERANCES, type GradCase } from '../gradcheck.ts';
import { conv2d, convGeometry, type Conv2dOptions } from '../ops/conv2d.ts';
import type { ConvTranspose2dOptions } from '../ops/conv_transpose2d.ts';
import { conv2dForward, conv2dVjp } from '../reference/conv2d.ts';
import type { HostArray } from '../reference/host.ts';
import type { Shape } from '../shape.ts';
import type { Tensor } from '../tensor.ts';

const dims = (s: Shape) => s.join('x');

export function describe(o: Conv2dOptions | ConvTranspose2dOptions): string {
  const parts: string[] = [];
  for (const [k, v] of Object.entries(o)) parts.push(`${k}=${Array.isArray(v) ? v.join(',') : v}`);
  return parts.length ? `, ${parts.join(', ')}` : '';
}

/** A reference pair (forward, vjp) of a conv on its resolved geometry G. */
interface ConvReference<G> {
  forward: (x: HostArray, w: HostArray, bias: HostArray | null, g: G) => HostArray;
  vjp: (x: HostArray, w: HostArray, bias: HostArray | null, gy: HostArray, g: G) => Float64Array[];
}

/**
 * The row of `op` on x and w (and a bias of `biasSize` elements, or none), at the matmul tolerance:
 * the reference `ref` on geometry `g` against the GPU op `gpu` with options `o`.
 */
export function convCase<G, O extends ConvTranspose2dOptions>(
  op: string,
  xShape: Shape,
  wShape: Shape,
  o: O,
  biasSize: number | null,
  ref: ConvReference<G>,
  g: G,
  gpu: (x: Tensor, w: Tensor, bias: Tensor | null, o: O) => Tensor,
): GradCase {
  return {
    name: `${op}[x ${dims(xShape)}, w ${dims(wShape)}${biasSize === null ? '' : ', bias'}${describe(o)}]`,
    inputs: [{ shape: xShape }, { shape: wShape }, ...(biasSize === null ? [] : [{ shape: [biasSize] }])],
    tol: TOLERANCES.matmul,
    forward: ([x, w, b]) => ref.forward(x, w, b ?? null, g),
    vjp: ([x, w, b], gy) => ref.vjp(x, w, b ?? null, gy, g),
    gpu: ([x, w, b]) => gpu(x, w, b ?? null, o),
  };
}

function conv2dCase(xShape: Shape, wShape: Shape, o: Conv2dOptions, withBias: boolean): GradCase {
  const ref = { forward: conv2dForward, vjp: conv2dVjp };
  return convCase('conv2d', xShape, wShape, o, withBias ? wShape[0] : null, ref, convGeometry('conv2d', o), conv2d);
}

export function conv2dGradCases(): GradCase[] {
  return [
    // 3x3 "same" convolution, odd non-square image, 3 -> 5 channels (not multiples of 4).
    conv2dCase([1, 3, 5, 7], [5, 3, 3, 3], { padding: 1 }, true),
    // Batch 2, stride 2, non-square.
    conv2dCase([2, 3, 6, 5], [5, 3, 3, 3], { stride: 2, padding: 1 }, false),
    // 4x3 kernel, 2 groups, asymmetric padding [top, bottom, left, right].
    conv2dCase([2, 4, 5, 6], [6, 2, 4, 3], { groups: 2, padding: [1, 2, 0, 1] }, true),
    // 1x1 kernel (ToRGB-like: 6 -> 3 channels).
    conv2dCase([1, 6, 4, 4], [3, 6, 1, 1], {}, true),
    // Groups whose 5 output channels straddle a 4-channel block; stride (1, 2), dilation 2.
    conv2dCase([1, 4, 7, 6], [10, 2, 3, 3], { groups: 2, stride: [1, 2], dilation: 2, padding: [2, 1] }, false),
    // Few weights and many pixels: the weight gradient is split over row chunks, then reduced.
    conv2dCase([2, 3, 9, 11], [2, 3, 1, 1], {}, true),
    // >= 8 output channels, stride 1, one group, even padding: on adapters with 8-lane subgroups the
    // forward is shaders/modulated_conv_subgroup.wgsl's unscaled variant (16- and 8-channel tiles,
    // ragged channel and pixel edges), with and without the bias; no padding (a 'valid' conv) too.
    conv2dCase([2, 5, 6, 11], [17, 5, 3, 3], { padding: 1 }, true),
    conv2dCase([1, 3, 7, 9], [8, 3, 3, 3], {}, false),
    // The same with W % 4 == 0: unrolled rows read as vec4s ('valid': the window starts at b0).
    conv2dCase([2, 4, 4, 12], [9, 4, 3, 3], { padding: 1 }, true),
    conv2dCase([1, 3, 5, 8], [8, 3, 3, 3], {}, false),
  ];
}
