// sum, mean and max over chosen axes; broadcast_to and sum_to (each other's backward).
// Kernels: shaders/reduce.wgsl. Max's gradient goes to the first maximal element (row-major order
// over the reduced axes), matching the reference in engine/reference/reduce.ts.

import { defineKernel, grid1d } from '../kernel.ts';
import { record } from '../tape.ts';
import { Tensor, empty } from '../tensor.ts';
import { broadcastShapes, broadcastStrides, normalizeAxes, sameShape, shapeString, sizeOf, stridesOf, type Shape } from '../shape.ts';

const reduceBindings = { x: 'read', y: 'read_write', params: 'uniform' } as const;
const K = {
  sum: defineKernel({ shader: 'reduce', entry: 'reduce_sum', bindings: reduceBindings }),
  sumSerial: defineKernel({ shader: 'reduce', entry: 'reduce_sum_serial', bindings: reduceBindings }),
  max: defineKernel({ shader: 'reduce', entry: 'reduce_max', bindings: { ...reduceBindings, arg: 'read_write' } }),
  sumBackward: defineKernel({ shader: 'reduce', entry: 'reduce_sum_backward', bindings: { gy: 'read', gx: 'read_write', bparams: 'uniform' } }),
  maxBackward: defineKernel({ shader: 'reduce', entry: 'reduce_max_backward', bindings: { gy: 'read', gx: 'read_write', bparams: 'uniform', arg_saved: 'read' } }),
};

export interface ReduceOptions {
  keepdims?: boolean;
}

/** How `shape` splits into kept and reduced axes, in the forms the kernels want. */
export interface ReductionPlan {
  axes: number[];
  kept: number[];
  reduceSize: number;
  /** Forward uniforms (minus scale). */
  forward: { n_out: number; reduce_size: number; kept_rank: number; red_rank: number; kept_shape: number[]; kept_strides: number[]; red_shape: number[]; red_strides: number[] };
  /** Per input dim: stride into the output (0 on reduced axes) and into the flat reduced index (0 on kept axes). */
  outStrides: number[];
  redIndexStrides: number[];
}

export function planReduction(shape: Shape, axes: number[]): ReductionPlan {
  const strides = stridesOf(shape);
  const kept = shape.map((_, i) => i).filter((i) => !axes.includes(i));
  const keptShape = kept.map((i) => shape[i]);
  const redShape = axes.map((i) => shape[i]);
  const keptOut = stridesOf(keptShape);
  const redFlat = stridesOf(redShape);
  const outStrides = shape.map(() => 0);
  const redIndexStrides = shape.map(() => 0);
  kept.forEach((ax, j) => (outStrides[ax] = keptOut[j]));
  axes.forEach((ax, j) => (redIndexStrides[ax] = redFlat[j]));
  // The kernels' reduced dims: adjacent reduced axes merged into one (same flat order r), so a
  // bias gradient [B, T, C] -> [C] walks one stride and the serial kernel's fast path applies.
  const red: [number, number][] = []; // [size, input stride]
  axes.forEach((ax, j) => {
    const last = red[red.length - 1];
    if (j > 0 && axes[j - 1] === ax - 1 && last[1] === shape[ax] * strides[ax]) {
      last[0] *= shape[ax];
      last[1] = strides[ax];
    } else red.push([shape[ax], strides[ax]]);
  });
  return {
    axes,
    kept,
    reduceSize: sizeOf(redShape),
    forward: {
      n_out: sizeOf(keptShape),
      reduce_size: sizeOf(redShape),
      kept_rank: kept.length,
      red_rank: red.length,
      kept_shape: keptShape,
      kept_strides: kept.map((i) => strides[i]),
      red_shape: red.map(([n]) => n),
      red_strides: red.map(([, st]) => st),
    },
    outStrides,
    redIndexStrides,
  };
}

function outputShape(shape: Shape, axes: number[], keepdims: boolean): number[] {
  return keepdims ? shape.map((d, i) => (axes.includes(i) ? 1 : d)) : shape.filter((_, i) => !axes.includes(i));
}

function broadcastBack(kernel: typeof K.sumBackward, gy: Tensor, inShape: Shape, plan: { outStrides: number[]; redIndexStrides: number[] }, scale: number, arg?: Tensor): Tensor {
  const gx = empty(inShape);
  const bparams = { n: gx.size, rank: inShape.length, scale, in_shape: [...inShape], out_strides: plan.outStrides, red_strides: plan.redIndexStrides };
  kernel.dispatch(arg ? { gy, gx, bparams, arg_saved: arg } : { gy, gx, bparams }, grid1d(Math.ceil(gx.size / 64)));
  return gx;
}

/**
 * One invocation per output (serial loop) or one workgroup per output (tree)? Serial unless R is so
 * long that one invocation's loop would dominate: on lavapipe a score-model bias gradient
 * ([32*16, 768] -> [768]) as tree workgroups costs most of a training step, and next to nothing
 * serial (bench/results/2026-11-notes-from-code.md, "Reductions: serial vs tree"); at
 * [512, 128] -> [128] (the block-0 model's bias gradients) serial is still about 1.5x faster.
 * The choice depends on R alone, never on the number of outputs: the two kernels add in different
 * orders, so a rule that looked at the output count would give a batch item different bits in a
 * batch of 4 than alone (a noise map's gradient sums over channels per pixel, one output per
 * image and pixel), and the methods promise batch-invariant results.
 */
export function serialSum(reduceSize: number): boolean {
  return reduceSize <= 16384;
}

/** Sum (scale 1) or mean (scale 1/R) into an output of `outShape` (same element order). */
function reduceSumInto(op: string, x: Tensor, axes: number[], outShape: Shape, mean: boolean): Tensor {
  const plan = planReduction(x.shape, axes);
  const scale = mean ? 1 / plan.reduceSize : 1;
  const y = empty(outShape);
  const params = { ...plan.forward, scale };
  if (serialSum(plan.reduceSize)) K.sumSerial.dispatch({ x, y, params }, grid1d(Math.ceil(plan.forward.n_out / 64)));
  else K.sum.dispatch({ x, y, params }, grid1d(plan.forward.n_out) /* one workgroup per output */);
  record(op, [x], y, [], (gy) => [broadcastBack(K.sumBackward, gy, x.shape, plan, scale)]);
  return y;
}

function requireF32(op: string, x: Tensor): void {
  if (x.dtype !== 'f32') throw new TypeError(`${op}: expects an f32 tensor, got ${x.dtype}${shapeString(x.shape)}`);
}

export function sum(x: Tensor, axes?: number | readonly number[], options: ReduceOptions = {}): Tensor {
  requireF32('sum', x);
  const ax = normalizeAxes(axes, x.rank, 'sum');
  return reduceSumInto('sum', x, ax, outputShape(x.shape, ax, options.keepdims ?? false), false);
}

export function mean(x: Tensor, axes?: number | readonly number[], options: ReduceOptions = {}): Tensor {
  requireF32('mean', x);
  const ax = normalizeAxes(axes, x.rank, 'mean');
  return reduceSumInto('mean', x, ax, outputShape(x.shape, ax, options.keepdims ?? false), true);
}

export function max(x: Tensor, axes?: number | readonly number[], options: ReduceOptions = {}): Tensor {
  requireF32('max', x);
  const ax = normalizeAxes(axes, x.rank, 'max');
  const plan = planReduction(x.shape, ax);
  const y = empty(outputShape(x.shape, ax, options.keepdims ?? false));
  const arg = empty(y.shape, 'u32');
  K.max.dispatch({ x, y, arg, params: { ...plan.forward, scale: 1 } }, grid1d(plan.forward.n_out) /* one workgroup per output */);
  record('max', [x], y, [arg], (gy) => [broadcastBack(K.maxBackward, gy, x.shape, plan, 1, arg)]);
  arg.dispose(); // the tape retains it when backward needs it
  return y;
}

/** Repeats `x` along broadcast dimensions to `shape` (NumPy rules). */
export function broadcastTo(x: Tensor, shape: Shape): Tensor {
  requireF32('broadcast_to', x);
  const target = broadcastShapes(x.shape, shape, 'broadcast_to');
  if (!sameShape(target, shape)) throw new RangeError(`broadcast_to: ${shapeString(x.shape)} cannot be broadcast to ${shapeString(shape)}`);
  const plan = { outStrides: broadcastStrides(x.shape, shape), redIndexStrides: shape.map(() => 0) };
  const y = broadcastBack(K.sumBackward, x, shape, plan, 1);
  record('broadcast_to', [x], y, [], (gy) => [sumTo(gy, x.shape)]);
  return y;
}

/** Sums `x` down to `shape`, the inverse of broadcasting `shape` up to x's shape. */
export function sumTo(x: Tensor, shape: Shape): Tensor {
  const target = broadcastShapes(shape, x.shape, 'sum_to');
  if (!sameShape(target, x.shape)) throw new RangeError(`sum_to: ${shapeString(x.shape)} is not a broadcast of ${shapeString(shape)}`);
  const off = x.rank - shape.length;
  const axes = x.shape.map((_, i) => i).filter((i) => i < off || (shape[i - off] === 1 && x.shape[i] !== 1));
  return reduceSumInto('sum_to', x, axes, shape, false);
}
