// Layout ops: reshape, permute, slice, concat and constant pad, with their backward passes.
// Kernels: shaders/layout.wgsl (gather / pad / scatter, bit moves that serve f32 and u32 alike);
// reference: engine/reference/layout.ts.
//
// Dimensions: rank <= MAX_RANK (8). Tensors are contiguous row-major, so every op here writes a
// new tensor; reshape is a plain buffer copy (same bytes, new shape).
//
//   op       forward                                   backward
//   reshape  buffer copy                               buffer copy back to x's shape
//   permute  gather with permuted strides              permute by the inverse permutation
//   slice    gather from the window's corner           pad kernel: window into zeros
//   concat   one scatter per input into its band       one gather (slice) per input
//   pad      pad kernel: x into a `value` border        gather (crop) of the interior

import { backend } from '../backend.ts';
import { defineKernel, grid1d } from '../kernel.ts';
import { record } from '../tape.ts';
import { Tensor, empty } from '../tensor.ts';
import { MAX_RANK, coalesceDims, shapeString, sizeOf, stridesOf, type Shape } from '../shape.ts';

const WG = 64; // workgroup size of every kernel in layout.wgsl

const K = {
  gather: defineKernel({ shader: 'layout', entry: 'layout_gather', bindings: { src: 'read', dst: 'read_write', gparams: 'uniform' } }),
  gather4: defineKernel({ shader: 'layout', entry: 'layout_gather4', bindings: { src4: 'read', dst4: 'read_write', gparams: 'uniform' } }),
  pad: defineKernel({ shader: 'layout', entry: 'layout_pad', bindings: { src: 'read', dst: 'read_write', pparams: 'uniform' } }),
  scatter: defineKernel({ shader: 'layout', entry: 'layout_scatter', bindings: { src: 'read', dst: 'read_write', sparams: 'uniform' } }),
  scatterAdd: defineKernel({ shader: 'layout', entry: 'layout_scatter_add', bindings: { src: 'read', dst: 'read_write', sparams: 'uniform' } }),
};

// ---- kernel wrappers (no tape) ------------------------------------------------------------

/** coalesceDims for one stride list (permute, slice and pad read one operand). */
export function coalesce(shape: readonly number[], strides: readonly number[]): { shape: number[]; strides: number[] } {
  const c = coalesceDims(shape, [strides]);
  return { shape: c.shape, strides: c.strides[0] };
}

/** New tensor of `outShape`: element idx reads src[offset + sum idx_d * srcStrides[d]]. */
function gather(src: Tensor, outShape: Shape, srcStrides: number[], offset: number): Tensor {
  const dst = empty(outShape, src.dtype);
  const { shape, strides } = coalesce(outShape, srcStrides);
  const gparams = { n: dst.size, rank: shape.length, offset, shape, strides };
  // Whole vec4s: the innermost dimension contiguous and a multiple of 4, every other offset aligned.
  const last = shape.length - 1;
  const vec4 = strides[last] === 1 && shape[last] % 4 === 0 && offset % 4 === 0 && strides.every((s, d) => d === last || s % 4 === 0);
  if (vec4) K.gather4.dispatch({ src4: src, dst4: dst, gparams }, grid1d(Math.ceil(dst.size / 4 / WG)));
  else K.gather.dispatch({ src, dst, gparams }, grid1d(Math.ceil(dst.size / WG)));
  return dst;
}

/** New tensor of `outShape` holding `src` at corner `lo` and the bits of `value` elsewhere. */
function padWindow(src: Tensor, outShape: Shape, lo: number[], value: number): Tensor {
  const dst = empty(outShape, src.dtype);
  // Merge a dimension into the one before it when the window spans it fully (lo 0, same extent):
  // fewer divisions per element (see coalesce).
  const out: number[] = [];
  const corner: number[] = [];
  const win: number[] = [];
  outShape.forEach((n, d) => {
    const last = out.length - 1;
    if (last >= 0 && lo[d] === 0 && src.shape[d] === n) {
      out[last] *= n;
      corner[last] *= n;
      win[last] *= n;
    } else {
      out.push(n);
      corner.push(lo[d]);
      win.push(src.shape[d]);
    }
  });
  const pparams = { n: dst.size, rank: out.length, value: valueBits(value, src.dtype), out_shape: out, lo: corner, win_shape: win };
  K.pad.dispatch({ src, dst, pparams }, grid1d(Math.ceil(dst.size / WG)));
  return dst;
}

/** Writes `src` into `dst` at dst[offset + sum idx_d * dstStrides[d]] (adds it there with `add`, f32 only). */
function scatter(src: Tensor, dst: Tensor, dstStrides: number[], offset: number, add = false): void {
  const { shape, strides } = coalesce(src.shape, dstStrides);
  const sparams = { n: src.size, rank: shape.length, offset, shape, strides };
  (add ? K.scatterAdd : K.scatter).dispatch({ src, dst, sparams }, grid1d(Math.ceil(src.size / WG)));
}

/** The fill value as the u32 bit pattern the pad kernel writes. */
function valueBits(value: number, dtype: Tensor['dtype']): number {
  if (dtype === 'u32') {
    if (!Number.isInteger(value) || value < 0 || value > 0xffffffff) throw new RangeError(`pad: value ${value} is not a u32`);
    return value;
  }
  return new Uint32Array(Float32Array.of(value).buffer)[0];
}

function copyAs(x: Tensor, shape: Shape): Tensor {
  const y = empty(shape, x.dtype);
  backend().copy(x.buffer, 0, y.buffer, 0, x.bytes);
  return y;
}

function isIntList(v: unknown): v is number[] {
  return Array.isArray(v) && v.every((d) => Number.isInteger(d));
}

// ---- ops ------------------------------------------------------------------------------------

/** Same data, new shape; one entry may be -1 (inferred from the element count). */
export function reshape(x: Tensor, shape: Shape): Tensor {
  const out = resolveReshape(x.shape, shape);
  const y = copyAs(x, out);
  record('reshape', [x], y, [], (gy) => [copyAs(gy, x.shape)]);
  return y;
}

/** The target shape with its -1 filled in; errors name the shapes and the element counts. */
export function resolveReshape(from: Shape, shape: Shape): number[] {
  const n = sizeOf(from);
  const what = `reshape: cannot reshape ${shapeString(from)} (${n} elements) into ${isIntList(shape) ? shapeString(shape) : String(shape)}`;
  if (!isIntList(shape)) throw new TypeError(`${what}: the shape must be a list of integers`);
  if (shape.length > MAX_RANK) throw new RangeError(`${what}: rank ${shape.length} exceeds ${MAX_RANK}`);
  const free = shape.filter((d) => d === -1).length;
  if (free > 1) throw new RangeError(`${what}: at most one dimension may be -1`);
  if (shape.some((d) => d !== -1 && d <= 0)) throw new RangeError(`${what}: dimensions must be positive (or one -1)`);
  const known = shape.reduce((p, d) => (d === -1 ? p : p * d), 1);
  if (free === 1) {
    if (n % known !== 0) throw new RangeError(`${what}: ${n} is not divisible by ${known}, so -1 has no integer size`);
    return shape.map((d) => (d === -1 ? n / known : d));
  }
  if (known !== n) throw new RangeError(`${what}: the new shape has ${known} elements`);
  return [...shape];
}

/** y.shape[i] = x.shape[axes[i]] (negative axes count from the end). */
export function permute(x: Tensor, axes: readonly number[]): Tensor {
  const perm = checkPermutation(axes, x.rank);
  const strides = stridesOf(x.shape);
  const y = gather(
    x,
    perm.map((a) => x.shape[a]),
    perm.map((a) => strides[a]),
    0,
  );
  const inverse = new Array<number>(perm.length);
  perm.forEach((a, i) => (inverse[a] = i));
  record('permute', [x], y, [], (gy) => [permute(gy, inverse)]);
  return y;
}

function checkPermutation(axes: readonly number[], rank: number): number[] {
  const what = `permute: axes ${JSON.stringify(axes)} are not a permutation of the ${rank} axes of the input`;
  if (!isIntList(axes)) throw new TypeError(`${what} (not a list of integers)`);
  if (axes.length !== rank) throw new RangeError(`${what}: expected ${rank} axes, got ${axes.length}`);
  const perm = axes.map((a) => {
    if (a < -rank || a >= rank) throw new RangeError(`${what}: axis ${a} is out of range for rank ${rank}`);
    return a < 0 ? a + rank : a;
  });
  const seen = new Set(perm);
  if (seen.size !== rank) throw new RangeError(`${what}: axis ${perm.find((a, i) => perm.indexOf(a) !== i)} is repeated`);
  return perm;
}

/** The block of x starting at `starts` with extent `sizes` per axis (a size of -1: to the end). */
export function slice(x: Tensor, starts: readonly number[], sizes: readonly number[]): Tensor {
  const ext = resolveSlice(x.shape, starts, sizes);
  const strides = stridesOf(x.shape);
  const offset = starts.reduce((acc, s, d) => acc + s * strides[d], 0);
  const y = gather(x, ext, strides, offset);
  record('slice', [x], y, [], (gy) => [padWindow(gy, x.shape, [...starts], 0)], (gy, into) => scatter(gy, into, strides, offset, true));
  return y;
}

/** The slice's extent per axis; errors name the axis, the bounds and the input shape. */
export function resolveSlice(shape: Shape, starts: readonly number[], sizes: readonly number[]): number[] {
  const rank = shape.length;
  if (!isIntList(starts) || !isIntList(sizes)) throw new TypeError(`slice: starts and sizes must be lists of integers, got ${JSON.stringify(starts)} and ${JSON.stringify(sizes)}`);
  if (starts.length !== rank || sizes.length !== rank) {
    throw new RangeError(`slice: input ${shapeString(shape)} has rank ${rank}, but got ${starts.length} starts and ${sizes.length} sizes`);
  }
  return shape.map((dim, d) => {
    const s = starts[d];
    const size = sizes[d] === -1 ? dim - s : sizes[d];
    if (s < 0 || s >= dim) throw new RangeError(`slice: start ${s} on axis ${d} is out of range [0, ${dim}) of input ${shapeString(shape)}`);
    if (size <= 0) throw new RangeError(`slice: size ${sizes[d]} on axis ${d} must be positive (or -1 for "to the end")`);
    if (s + size > dim) throw new RangeError(`slice: start ${s} + size ${size} on axis ${d} is out of range: it exceeds dimension ${dim} of input ${shapeString(shape)}`);
    return size;
  });
}

/** Joins tensors along `axis`; every other dimension must match. */
export function concat(tensors: readonly Tensor[], axis: number): Tensor {
  if (!tensors?.length) throw new RangeError('concat: needs a non-empty list of tensors');
  const first = tensors[0];
  const rank = first.rank;
  if (!Number.isInteger(axis) || axis < -rank || axis >= rank) throw new RangeError(`concat: axis ${axis} is out of range for tensors of rank ${rank}`);
  const ax = axis < 0 ? axis + rank : axis;
  tensors.forEach((t, k) => {
    if (t.dtype !== first.dtype) throw new TypeError(`concat: tensor ${k} is ${t.dtype} but tensor 0 is ${first.dtype}`);
    const mismatch = t.rank !== rank || t.shape.some((d, i) => i !== ax && d !== first.shape[i]);
    if (mismatch) {
      throw new RangeError(`concat: shape mismatch: tensor ${k} ${shapeString(t.shape)} does not match tensor 0 ${shapeString(first.shape)} outside axis ${ax}`);
    }
  });
  const outShape = [...first.shape];
  outShape[ax] = tensors.reduce((acc, t) => acc + t.shape[ax], 0);
  const y = empty(outShape, first.dtype);
  const yStrides = stridesOf(outShape);
  const offsets: number[] = []; // element offset of each input's band in y
  let along = 0;
  for (const t of tensors) {
    offsets.push(along * yStrides[ax]);
    scatter(t, y, yStrides, along * yStrides[ax]);
    along += t.shape[ax];
  }
  record('concat', [...tensors], y, [], (gy) => tensors.map((t, k) => (t.requiresGrad ? gather(gy, t.shape, yStrides, offsets[k]) : null)));
  return y;
}

/** Constant padding: pads[d] = [before, after] elements of `value` on axis d. */
export function pad(x: Tensor, pads: readonly (readonly [number, number])[], value = 0): Tensor {
  if (!Array.isArray(pads) || pads.length !== x.rank) {
    throw new RangeError(`pad: expected one [before, after] pair per axis of ${shapeString(x.shape)} (${x.rank}), got ${JSON.stringify(pads)}`);
  }
  pads.forEach((p, d) => {
    if (!Array.isArray(p) || p.length !== 2 || !isIntList(p)) throw new TypeError(`pad: pads[${d}] must be an integer pair [before, after], got ${JSON.stringify(p)}`);
    if (p[0] < 0 || p[1] < 0) throw new RangeError(`pad: negative padding ${JSON.stringify(p)} on axis ${d}; pad only adds elements (use slice to crop)`);
  });
  if (typeof value !== 'number') throw new TypeError(`pad: value must be a number, got ${typeof value}`);
  const lo = pads.map((p) => p[0]);
  const outShape = x.shape.map((d, i) => d + pads[i][0] + pads[i][1]);
  const y = padWindow(x, outShape, lo, value);
  const yStrides = stridesOf(outShape);
  record('pad', [x], y, [], (gy) => [gather(gy, x.shape, yStrides, lo.reduce((acc, l, d) => acc + l * yStrides[d], 0))]);
  return y;
}
