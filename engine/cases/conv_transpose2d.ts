// Gradcheck rows of conv_transpose2d on small awkward shapes: StyleGAN2's upsampling conv, batch 2,
// groups, stride 2 and 3 (and (2, 3)), padding, output padding, dilation, 4x3 and 1x1 kernels.
// Included in the table by allGradCases() (engine/cases/index.ts); built by engine/cases/conv2d.ts's
// convCase (name, inputs, the matmul tolerance).

import type { GradCase } from '../gradcheck.ts';
import { convGeometry } from '../ops/conv2d.ts';
import { convTranspose2d, type ConvTranspose2dOptions } from '../ops/conv_transpose2d.ts';
import { convTranspose2dForward, convTranspose2dVjp } from '../reference/conv_transpose2d.ts';
import type { Shape } from '../shape.ts';
import { convCase } from './conv2d.ts';

function convTransposeCase(xShape: Shape, wShape: Shape, o: ConvTranspose2dOptions, withBias: boolean): GradCase {
  const g = convGeometry('conv_transpose2d', o);
  const op = o.outputPadding ?? 0;
  const geom = { ...g, outputPadding: (typeof op === 'number' ? [op, op] : [op[0], op[1]]) as [number, number] };
  // The bias has one entry per output channel: weight [C_in, C_out/G, kH, kW].
  const biasSize = withBias ? wShape[1] * (o.groups ?? 1) : null;
  const ref = { forward: convTranspose2dForward, vjp: convTranspose2dVjp };
  return convCase('conv_transpose2d', xShape, wShape, o, biasSize, ref, geom, convTranspose2d);
}

export function convTranspose2dGradCases(): GradCase[] {
  return [
    // StyleGAN2's upsampling conv: 3x3, stride 2, no padding, H -> 2H + 1.
    convTransposeCase([1, 3, 3, 4], [3, 5, 3, 3], { stride: 2 }, true),
    // Batch 2, groups 2, padding 1, output padding 1.
    convTransposeCase([2, 4, 3, 3], [4, 3, 3, 3], { stride: 2, padding: 1, outputPadding: 1, groups: 2 }, false),
    // Stride 3 with a 4x3 kernel and padding [py, px].
    convTransposeCase([1, 2, 3, 2], [2, 3, 4, 3], { stride: 3, padding: [1, 0] }, true),
    // Stride (2, 3), dilation 2, asymmetric padding, output padding (1, 2).
    convTransposeCase([1, 3, 2, 3], [3, 2, 3, 2], { stride: [2, 3], dilation: 2, padding: [0, 1, 1, 0], outputPadding: [1, 2] }, false),
    // 1x1, stride 1 (a per-pixel channel mix).
    convTransposeCase([2, 5, 3, 2], [5, 2, 1, 1], {}, true),
  ];
}
