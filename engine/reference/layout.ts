// float64 references of the layout ops (engine/ops/layout.ts), written index by index from their
// definitions rather than from the kernels' stride tricks. Each VJP routes gy back along the
// forward's element mapping; every layout op is a (partial) permutation of elements, so the
// backward is the same mapping read the other way.
//
// Shapes are taken already resolved (reshape without -1, slice sizes without -1).

import { sizeOf, stridesOf, type Shape } from '../shape.ts';
import { host, unravel, type HostArray } from './host.ts';

function ravel(idx: number[], shape: Shape): number {
  const st = stridesOf(shape);
  return idx.reduce((acc, c, d) => acc + c * st[d], 0);
}

export function reshapeForward(x: HostArray, shape: Shape): HostArray {
  if (sizeOf(shape) !== x.data.length) throw new RangeError(`reshapeForward: ${x.data.length} elements into [${shape.join(', ')}]`);
  return host(shape, x.data);
}

export function reshapeVjp(gy: HostArray): Float64Array {
  return Float64Array.from(gy.data);
}

/** y[i_0, ..., i_{r-1}] = x[j] with j[axes[k]] = i_k. */
export function permuteForward(x: HostArray, axes: number[]): HostArray {
  const y = host(axes.map((a) => x.shape[a]));
  for (let i = 0; i < y.data.length; i++) {
    const idx = unravel(i, y.shape);
    const src = new Array<number>(axes.length);
    axes.forEach((a, k) => (src[a] = idx[k]));
    y.data[i] = x.data[ravel(src, x.shape)];
  }
  return y;
}

export function permuteVjp(x: HostArray, axes: number[], gy: HostArray): Float64Array {
  const g = new Float64Array(x.data.length);
  for (let i = 0; i < gy.data.length; i++) {
    const idx = unravel(i, gy.shape);
    const src = new Array<number>(axes.length);
    axes.forEach((a, k) => (src[a] = idx[k]));
    g[ravel(src, x.shape)] += gy.data[i];
  }
  return g;
}

export function sliceForward(x: HostArray, starts: number[], sizes: number[]): HostArray {
  const y = host(sizes);
  for (let i = 0; i < y.data.length; i++) {
    y.data[i] = x.data[ravel(unravel(i, sizes).map((c, d) => c + starts[d]), x.shape)];
  }
  return y;
}

/** Zeros of x's shape with gy added into the sliced block. */
export function sliceVjp(x: HostArray, starts: number[], gy: HostArray): Float64Array {
  const g = new Float64Array(x.data.length);
  for (let i = 0; i < gy.data.length; i++) {
    g[ravel(unravel(i, gy.shape).map((c, d) => c + starts[d]), x.shape)] += gy.data[i];
  }
  return g;
}

/** Start of each input's band along `axis`. */
function bands(xs: HostArray[], axis: number): number[] {
  const starts: number[] = [];
  let at = 0;
  for (const x of xs) {
    starts.push(at);
    at += x.shape[axis];
  }
  return starts;
}

export function concatForward(xs: HostArray[], axis: number): HostArray {
  const shape = [...xs[0].shape];
  shape[axis] = xs.reduce((acc, x) => acc + x.shape[axis], 0);
  const y = host(shape);
  const starts = bands(xs, axis);
  xs.forEach((x, k) => {
    for (let i = 0; i < x.data.length; i++) {
      const idx = unravel(i, x.shape);
      idx[axis] += starts[k];
      y.data[ravel(idx, shape)] = x.data[i];
    }
  });
  return y;
}

export function concatVjp(xs: HostArray[], axis: number, gy: HostArray): Float64Array[] {
  const starts = bands(xs, axis);
  return xs.map((x, k) =>
    Float64Array.from(x.data, (_, i) => {
      const idx = unravel(i, x.shape);
      idx[axis] += starts[k];
      return gy.data[ravel(idx, gy.shape)];
    }),
  );
}

export function padForward(x: HostArray, pads: [number, number][], value: number): HostArray {
  const y = host(x.shape.map((d, i) => d + pads[i][0] + pads[i][1]));
  y.data.fill(value);
  for (let i = 0; i < x.data.length; i++) {
    y.data[ravel(unravel(i, x.shape).map((c, d) => c + pads[d][0]), y.shape)] = x.data[i];
  }
  return y;
}

/** The interior of gy (the padding's value does not depend on x). */
export function padVjp(x: HostArray, pads: [number, number][], gy: HostArray): Float64Array {
  return Float64Array.from(x.data, (_, i) => gy.data[ravel(unravel(i, x.shape).map((c, d) => c + pads[d][0]), gy.shape)]);
}
