// The measurement-operator interface (built-in and user-supplied operators alike), the noisy
// `measure` helper, the adjoint through the tape, and the seeded draws operators are built from.
//
// Legend: N = images in a batch; [C, H, W] = one image (the operator's inShape); outShape = one
// measurement. Semantics: docs/design.md, "Measurement operators"; y = A(x*) + noise.
//
// Writing an operator: implement `MeasurementOperator`. `apply` must be built from differentiable
// engine ops (matmul, mul, reshape, ... or an op with a hand-written kernel pair that calls
// `record(...)`), so that the tape gives A^T for free: the gradient of sum(A(x) * y) with respect
// to x is A^T y for a linear A (and J_A(x)^T y for a nonlinear one). Register it with
// `registerOperator` (samplers/inverse/operators/index.ts) to make it available from a spec string.
//
// Random draws: every operator's randomness comes from its seed through the engine's Philox
// streams, each purpose on its own fixed stream offset (STREAM below), so an operator is a pure
// function of (spec, image shape, seed). The noise of `measure` uses offset 0 (+ options.offset);
// operator draws use offsets from 2^20 up, so the same seed may serve both without sharing numbers.

import { noGrad, grad, gradEnabled } from '../../../engine/tape.ts';
import { scope, zeros, type Tensor } from '../../../engine/tensor.ts';
import { mul, add } from '../../../engine/ops/elementwise.ts';
import { sum } from '../../../engine/ops/reduce.ts';
import { randomNormal, randomNormalRows, toWord64, type RowStream, type Value64 } from '../../../engine/random.ts';
import { reshape, slice } from '../../../engine/ops/layout.ts';
import { philoxBitsRef } from '../../../engine/reference/philox.ts';
import { shapeString } from '../../../engine/shape.ts';
import type { HostArray } from '../../../engine/reference/host.ts';

export interface MeasurementOperator {
  /** A short name, e.g. "sr-bicubic:4" (the spec that made it, for built-ins). */
  name: string;
  /** One image, [C, H, W]. */
  inShape: number[];
  /** One measurement (any rank), e.g. [C, H/f, W/f] or [m]. */
  outShape: number[];
  /** x [N, ...inShape] -> [N, ...outShape], from differentiable engine ops. */
  apply(x: Tensor): Tensor;
  /**
   * Optional: 1 where the output is observed, 0 where it is not (broadcastable to [N, ...outShape]).
   * `measure` zeroes the noise outside it, so unobserved entries stay exactly 0.
   */
  outputMask?: Tensor;
  /** Optional: the float64 CPU forward, x [N, ...inShape] -> [N, ...outShape] (tests use it). */
  reference?(x: HostArray): HostArray;
  /** Optional: releases the operator's GPU constants (masks, matrices, indices). */
  dispose?(): void;
}

/** Fixed Philox stream offsets of the operators' draws (see the header). */
export const STREAM = {
  pixels: 2 ** 20 + 1, // random-pixel inpainting positions
  gaussianMatrix: 2 ** 20 + 2, // cs-gaussian A
  signs: 2 ** 20 + 3, // cs-circulant s
  filter: 2 ** 20 + 4, // cs-circulant f
  indices: 2 ** 20 + 5, // cs-circulant kept indices
} as const;

/** Checks x [N, ...op.inShape] and returns N; the error names the operator and both shapes. */
export function checkInput(op: { name: string; inShape: readonly number[] }, x: Tensor): number {
  const ok = x.rank === op.inShape.length + 1 && op.inShape.every((d, i) => x.shape[i + 1] === d);
  if (!ok) {
    throw new RangeError(`operator ${op.name}: expected input [N, ${op.inShape.join(', ')}] (a batch of ${shapeString(op.inShape)} images), got ${shapeString(x.shape)}`);
  }
  if (x.dtype !== 'f32') throw new TypeError(`operator ${op.name}: expected an f32 input, got ${x.dtype}`);
  return x.shape[0];
}

/** Checks an image shape [C, H, W] for operator `name`. */
export function checkImageShape(name: string, inShape: readonly number[]): [number, number, number] {
  if (!Array.isArray(inShape) || inShape.length !== 3 || !inShape.every((d) => Number.isInteger(d) && d > 0)) {
    throw new RangeError(`operator ${name}: the image shape must be [C, H, W] with positive integers, got ${JSON.stringify(inShape)}`);
  }
  return [inShape[0], inShape[1], inShape[2]];
}

export interface MeasureOptions {
  /** Standard deviation of the additive Gaussian noise (default 0: no noise). */
  noiseStd?: number;
  /** Seed of the noise (required when noiseStd > 0). */
  seed?: Value64;
  /** Philox stream offset of the noise (default 0), e.g. to draw fresh noise for another image set. */
  offset?: number;
  /**
   * One row stream per image (engine/random.ts, randomNormalRows): image n's noise is then its own,
   * whatever else is in the batch. Without it the batch draws one plain stream.
   */
  rows?: readonly RowStream[];
}

/**
 * y = A(x) + noiseStd * u with u ~ N(0, I) from the engine's Philox RNG (seed, offset), zeroed
 * outside op.outputMask. Not recorded on the tape (a measurement is data). x [N, ...inShape].
 */
export function measure(op: MeasurementOperator, x: Tensor, options: MeasureOptions = {}): Tensor {
  const noiseStd = options.noiseStd ?? 0;
  if (!Number.isFinite(noiseStd) || noiseStd < 0) throw new RangeError(`measure: noiseStd must be finite and >= 0, got ${noiseStd}`);
  if (noiseStd > 0 && options.seed === undefined) throw new TypeError('measure: a seed is required for noisy measurements (options.seed), so that they are reproducible');
  return noGrad(() =>
    scope(() => {
      checkInput(op, x);
      const clean = op.apply(x);
      if (noiseStd === 0) return clean;
      let noise = options.rows ? rowNoise(clean.shape, options.rows, options.seed!, options.offset ?? 0, noiseStd) : randomNormal(clean.shape, { seed: options.seed!, offset: options.offset ?? 0, std: noiseStd });
      if (op.outputMask) noise = mul(noise, op.outputMask);
      return add(clean, noise);
    }),
  );
}

/** Row-stream noise shaped like a measurement: rows padded to a multiple of 4 elements, then cut back. */
function rowNoise(shape: readonly number[], rows: readonly RowStream[], seed: Value64, offset: number, std: number): Tensor {
  const [N, ...rest] = shape;
  const m = rest.reduce((a, b) => a * b, 1);
  const padded = 4 * Math.ceil(m / 4);
  const drawn = randomNormalRows([N, padded], rows, { seed, offset, std });
  return reshape(padded === m ? drawn : slice(drawn, [0, 0], [N, m]), [...shape]);
}

/**
 * A^T y for a linear operator (J_A(0)^T y in general): the tape's gradient of sum(A(x) * y) with
 * respect to x at x = 0. y [N, ...outShape] -> [N, ...inShape]. Used by the adjoint tests, and
 * handy to show a measurement in image space (e.g. back-projected compressed-sensing data).
 * Like grad(), it clears the tape: call it outside a computation whose backward is still pending.
 */
export function adjoint(op: MeasurementOperator, y: Tensor): Tensor {
  if (!gradEnabled()) throw new Error(`adjoint of ${op.name}: needs the tape, but was called inside noGrad()`);
  const N = y.shape[0];
  const ok = y.rank === op.outShape.length + 1 && op.outShape.every((d, i) => y.shape[i + 1] === d);
  if (!ok) throw new RangeError(`adjoint of ${op.name}: expected [N, ${op.outShape.join(', ')}], got ${shapeString(y.shape)}`);
  return scope(() => {
    const x = zeros([N, ...op.inShape]).requireGrad();
    const objective = sum(mul(op.apply(x), y));
    return grad(objective, [x])[0];
  });
}

/**
 * `count` distinct integers from [0, total), uniformly (a partial Fisher-Yates shuffle driven by
 * Philox stream (seed, offset) on the host, 53-bit uniforms from word pairs), returned sorted.
 */
export function drawDistinct(count: number, total: number, seed: Value64, offset: number): Uint32Array {
  if (!Number.isInteger(count) || count < 1 || count > total) throw new RangeError(`drawDistinct: cannot draw ${count} distinct values from ${total}`);
  const words = philoxBitsRef(2 * count, toWord64(seed, 'seed'), toWord64(offset, 'offset'));
  const pool = new Uint32Array(total);
  for (let i = 0; i < total; i++) pool[i] = i;
  for (let i = 0; i < count; i++) {
    const u = ((words[2 * i] >>> 5) * 2 ** 26 + (words[2 * i + 1] >>> 6)) / 2 ** 53; // [0, 1)
    const j = i + Math.floor(u * (total - i));
    const t = pool[i];
    pool[i] = pool[j];
    pool[j] = t;
  }
  return pool.slice(0, count).sort();
}

/** Holds an operator's GPU constants: kept (exempt from scopes) until dispose(). */
export function keepAll(...ts: Tensor[]): { dispose(): void } {
  for (const t of ts) t.keep();
  return { dispose: () => ts.forEach((t) => t.dispose()) };
}
