// Gradcheck rows of the layout ops (reshape, permute, slice, concat, pad) on small awkward shapes:
// odd sizes, rank 3-4, non-square, every kind of axis. Included in the table by allGradCases()
// (engine/cases/index.ts).
//
// Layout ops only move elements, so the GPU must match the reference exactly; the elementwise
// tolerance is used.

import { TOLERANCES, type GradCase } from '../gradcheck.ts';
import { concat, pad, permute, reshape, slice } from '../ops/layout.ts';
import {
  concatForward,
  concatVjp,
  padForward,
  padVjp,
  permuteForward,
  permuteVjp,
  reshapeForward,
  reshapeVjp,
  sliceForward,
  sliceVjp,
} from '../reference/layout.ts';
import type { Shape } from '../shape.ts';

const dims = (s: Shape) => s.join('x');

function reshapeCase(from: Shape, to: number[], resolved: number[]): GradCase {
  return {
    name: `reshape[${dims(from)} -> ${to.join('x')}]`,
    inputs: [{ shape: from }],
    tol: TOLERANCES.elementwise,
    forward: ([x]) => reshapeForward(x, resolved),
    vjp: (_xs, gy) => [reshapeVjp(gy)],
    gpu: ([x]) => reshape(x, to),
  };
}

/** `axes` may hold negative axes (the op normalizes them); the reference gets them normalized. */
function permuteCase(shape: Shape, axes: number[]): GradCase {
  const norm = axes.map((a) => (a < 0 ? a + shape.length : a));
  return {
    name: `permute[${dims(shape)}, axes=${axes.join(',')}]`,
    inputs: [{ shape }],
    tol: TOLERANCES.elementwise,
    forward: ([x]) => permuteForward(x, norm),
    vjp: ([x], gy) => [permuteVjp(x, norm, gy)],
    gpu: ([x]) => permute(x, axes),
  };
}

/** `sizes` may hold -1 (to the end); the reference gets them resolved. */
function sliceCase(shape: Shape, starts: number[], sizes: number[]): GradCase {
  const ext = sizes.map((s, d) => (s === -1 ? shape[d] - starts[d] : s));
  return {
    name: `slice[${dims(shape)}, starts=${starts.join(',')}, sizes=${sizes.join(',')}]`,
    inputs: [{ shape }],
    tol: TOLERANCES.elementwise,
    forward: ([x]) => sliceForward(x, starts, ext),
    vjp: ([x], gy) => [sliceVjp(x, starts, gy)],
    gpu: ([x]) => slice(x, starts, sizes),
  };
}

function concatCase(shapes: Shape[], axis: number): GradCase {
  const ax = axis < 0 ? axis + shapes[0].length : axis;
  return {
    name: `concat[${shapes.map(dims).join(' + ')}, axis=${axis}]`,
    inputs: shapes.map((shape) => ({ shape })),
    tol: TOLERANCES.elementwise,
    forward: (xs) => concatForward(xs, ax),
    vjp: (xs, gy) => concatVjp(xs, ax, gy),
    gpu: (xs) => concat(xs, axis),
  };
}

function padCase(shape: Shape, pads: [number, number][], value: number): GradCase {
  return {
    name: `pad[${dims(shape)}, pads=${pads.map((p) => p.join(':')).join(',')}, value=${value}]`,
    inputs: [{ shape }],
    tol: TOLERANCES.elementwise,
    forward: ([x]) => padForward(x, pads, value),
    vjp: ([x], gy) => [padVjp(x, pads, gy)],
    gpu: ([x]) => pad(x, pads, value),
  };
}

export function layoutGradCases(): GradCase[] {
  return [
    reshapeCase([3, 4, 5], [5, -1], [5, 12]),
    reshapeCase([2, 3, 5, 7], [7, 3, -1, 2], [7, 3, 5, 2]),
    reshapeCase([6, 5], [30], [30]),
    permuteCase([5, 7], [1, 0]),
    permuteCase([3, 4, 5], [2, 0, 1]),
    permuteCase([2, 3, 4, 5], [3, 1, 0, 2]),
    permuteCase([3, 1, 5, 2], [-1, 0, -2, 1]),
    sliceCase([5, 7], [1, 2], [3, 4]),
    sliceCase([3, 4, 5], [1, 0, 2], [2, -1, 3]),
    sliceCase([2, 3, 4, 5], [1, 1, 0, 3], [1, 2, 3, -1]),
    // Innermost dimension contiguous, a multiple of 4, aligned: layout_gather4 (4 elements per invocation).
    permuteCase([2, 3, 8], [1, 0, 2]),
    sliceCase([3, 4, 8], [1, 0, 4], [2, -1, 4]),
    concatCase([[2, 3], [3, 3]], 0),
    concatCase([[2, 3, 4], [2, 1, 4], [2, 5, 4]], 1),
    concatCase([[2, 1, 3, 2], [2, 1, 3, 3]], -1),
    concatCase([[3, 5]], 1),
    padCase([5, 7], [[1, 2], [0, 3]], 0),
    padCase([2, 3, 4], [[0, 1], [2, 0], [1, 1]], 0.5),
    padCase([2, 1, 3, 2], [[1, 0], [0, 2], [1, 1], [0, 0]], -2),
  ];
}
