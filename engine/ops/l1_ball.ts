// Euclidean projection onto an l1 ball, one ball per batch item (ILO's "optional l1 balls",
// docs/design.md, "CSGM, ILO and SGILO"): y[b] = argmin_u ||u - x[b]||_2 subject to ||u - center[b]||_1 <= r.
// Kernel: shaders/l1_ball.wgsl (the algorithm and why it needs no sort are described there);
// float64 reference: engine/reference/l1_ball.ts (Duchi et al. 2008, sort-based, exact).
//
// Legend: B = rows (batch items), n = elements per row (the product of the other dimensions).
//   x [B, ...] f32   center [B, ...] f32 (optional, default 0)   ->   y [B, ...], theta [B]
// theta[b] is the soft threshold: y = center + sign(x - center) * max(|x - center| - theta, 0).
//
// Why on the GPU: ILO applies it after every optimizer step to the latent, each noise map and the
// intermediate features (up to a few hundred thousand values per item), all of which live on the
// GPU; a host version would read back and upload every tensor every step. One workgroup per row
// searches theta in a few reductions over the row (Michelot steps with a bisection bracket).
//
// Not differentiable and not recorded on the tape: it is a projection applied after the update,
// outside the computation that is differentiated (so it has no backward kernel and no gradcheck
// row). Call it under noGrad or on tensors that need no gradient.

import { defineKernel, grid1d } from '../kernel.ts';
import { Tensor, empty } from '../tensor.ts';
import { sameShape, shapeString } from '../shape.ts';

const K = defineKernel({
  shader: 'l1_ball',
  entry: 'l1_ball_project',
  bindings: { x: 'read', center: 'read', y: 'read_write', theta: 'read_write', params: 'uniform' },
});

export interface L1BallResult {
  /** The projection, shaped like x. */
  y: Tensor;
  /** The soft threshold per row [B] (0 for rows already inside the ball). */
  theta: Tensor;
}

function validate(x: Tensor, radius: number, center?: Tensor): void {
  if (x.dtype !== 'f32') throw new TypeError(`projectL1Ball: x must be f32, got ${x.dtype}${shapeString(x.shape)}`);
  if (x.rank < 2) throw new RangeError(`projectL1Ball: x must be [rows, ...] with one ball per row, got ${shapeString(x.shape)} (reshape a single vector to [1, n])`);
  if (typeof radius !== 'number' || Number.isNaN(radius) || radius < 0) throw new RangeError(`projectL1Ball: the radius must be a number >= 0 (or Infinity), got ${radius}`);
  if (center) {
    if (center.dtype !== 'f32') throw new TypeError(`projectL1Ball: center must be f32, got ${center.dtype}${shapeString(center.shape)}`);
    if (!sameShape(center.shape, x.shape)) throw new RangeError(`projectL1Ball: center has shape ${shapeString(center.shape)}, x has ${shapeString(x.shape)}; they must match`);
  }
}

/** Projects each row of x onto the l1 ball of radius r around center's row (or 0); also returns theta. */
export function projectL1BallWithThreshold(x: Tensor, radius: number, center?: Tensor): L1BallResult {
  validate(x, radius, center);
  const rows = x.shape[0];
  const y = empty(x.shape);
  const theta = empty([rows]);
  // Without a center the binding aliases x (read-only twice is allowed); the shader does not read it.
  K.dispatch({ x, center: center ?? x, y, theta, params: { rows, n: x.size / rows, radius, has_center: center ? 1 : 0 } }, grid1d(rows) /* one workgroup per row */);
  return { y, theta };
}

/** Projects each row of x onto {u : ||u - center[b]||_1 <= radius} (center 0 when omitted). */
export function projectL1Ball(x: Tensor, radius: number, center?: Tensor): Tensor {
  const { y, theta } = projectL1BallWithThreshold(x, radius, center);
  theta.dispose();
  return y;
}
