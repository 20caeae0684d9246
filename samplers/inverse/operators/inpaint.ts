// Inpainting: a per-pixel 0/1 mask shared by all channels, A(x) = x * mask.
//
// Legend: N = images, [C, H, W] = one image, P = H * W pixel positions.
//   x [N, C, H, W] -> [N, C, H, W] (the masked image: unobserved pixels are 0)   mask [1, 1, H, W]
//
// Why the masked image and not the kept values [C, m]: a mask multiply is one broadcast op, its
// adjoint is itself (A = A^T = A^2, a diagonal projection), the measurement is displayable as an
// image, and ||A(x) - y||^2 is the same sum over kept pixels either way. `positions` lists the
// kept pixels (flat h * W + w) for anyone who wants the compact form; `outputMask` makes
// `measure` leave unobserved pixels exactly 0 when it adds noise.
//
//   random pixels: keep m = max(1, round(fraction * P)) distinct positions, drawn uniformly from
//                  the seed (Philox stream STREAM.pixels); 0.75% of 32x32 keeps round(7.68) = 8.
//                  round() rounds halves up.
//   box:           remove a centered box of round(side * H) x round(side * W) pixels (at least
//                  1 x 1), top/left corner floor((H - h) / 2), floor((W - w) / 2); default side 0.5.

import { mul } from '../../../engine/ops/elementwise.ts';
import { tensor } from '../../../engine/tensor.ts';
import { host, type HostArray } from '../../../engine/reference/host.ts';
import type { Value64 } from '../../../engine/random.ts';
import { STREAM, checkImageShape, checkInput, drawDistinct, keepAll, type MeasurementOperator } from './common.ts';

export interface MaskOperator extends MeasurementOperator {
  /** [H * W] 1 = observed, 0 = removed (the same for every channel). */
  maskHost: Float32Array;
  /** The kept pixel positions, flat h * W + w, ascending. */
  positions: Uint32Array;
}

export function maskOperator(name: string, inShape: readonly number[], mask: Float32Array): MaskOperator {
  const [C, H, W] = checkImageShape(name, inShape);
  const maskT = tensor(mask, [1, 1, H, W]);
  const held = keepAll(maskT);
  const positions = Uint32Array.from(mask.keys()).filter((i) => mask[i] !== 0);
  const op: MaskOperator = {
    name,
    inShape: [C, H, W],
    outShape: [C, H, W],
    apply: (x) => (checkInput(op, x), mul(x, maskT)),
    outputMask: maskT,
    maskHost: mask,
    positions,
    reference: (x: HostArray) => host(x.shape, x.data.map((v, i) => v * mask[i % (H * W)])),
    dispose: held.dispose,
  };
  return op;
}

/** The number of kept positions: max(1, round(fraction * H * W)). */
export function keptPixelCount(fraction: number, H: number, W: number): number {
  return Math.max(1, Math.round(fraction * H * W));
}

export function randomPixelOperator(inShape: readonly number[], fraction: number, seed: Value64, name = `inpaint-random:${fraction}`): MaskOperator {
  const [, H, W] = checkImageShape(name, inShape);
  if (!(fraction > 0 && fraction <= 1)) throw new RangeError(`operator ${name}: the kept fraction must be in (0, 1], got ${fraction}`);
  const positions = drawDistinct(keptPixelCount(fraction, H, W), H * W, seed, STREAM.pixels);
  const mask = new Float32Array(H * W);
  for (const p of positions) mask[p] = 1;
  return maskOperator(name, inShape, mask);
}

export function boxOperator(inShape: readonly number[], side = 0.5, name = `inpaint-box:${side}`): MaskOperator {
  const [, H, W] = checkImageShape(name, inShape);
  if (!(side > 0 && side < 1)) throw new RangeError(`operator ${name}: the box side (a fraction of the image side) must be in (0, 1), got ${side}`);
  const h = Math.max(1, Math.round(side * H));
  const w = Math.max(1, Math.round(side * W));
  if (h === H && w === W) throw new RangeError(`operator ${name}: a ${h}x${w} box removes the whole ${H}x${W} image; use a smaller side`);
  const top = Math.floor((H - h) / 2);
  const left = Math.floor((W - w) / 2);
  const mask = new Float32Array(H * W).fill(1);
  for (let r = top; r < top + h; r++) mask.fill(0, r * W + left, r * W + left + w);
  return maskOperator(name, inShape, mask);
}
