// float64 references of sum, mean, max over axes (max: gradient to the first maximal element in
// row-major order over the reduced axes) and of broadcast_to.

import { sizeOf, type Shape } from '../shape.ts';
import { forEachBroadcast, host, unravel, type HostArray } from './host.ts';

function outIndexOf(idx: number[], shape: Shape, axes: number[]): number {
  let o = 0;
  for (let d = 0; d < shape.length; d++) if (!axes.includes(d)) o = o * shape[d] + idx[d];
  return o;
}

function reducedCount(shape: Shape, axes: number[]): number {
  return axes.reduce((p, a) => p * shape[a], 1);
}

export function sumForward(x: HostArray, axes: number[], outShape: Shape, mean = false): HostArray {
  const out = host(outShape);
  for (let i = 0; i < x.data.length; i++) out.data[outIndexOf(unravel(i, x.shape), x.shape, axes)] += x.data[i];
  if (mean) {
    const r = reducedCount(x.shape, axes);
    for (let i = 0; i < out.data.length; i++) out.data[i] /= r;
  }
  return out;
}

export function sumVjp(x: HostArray, axes: number[], gy: HostArray, mean = false): Float64Array {
  const scale = mean ? 1 / reducedCount(x.shape, axes) : 1;
  return Float64Array.from(x.data, (_, i) => gy.data[outIndexOf(unravel(i, x.shape), x.shape, axes)] * scale);
}

/** Max values and, per output element, the flat input index of the first maximum. */
function argmax(x: HostArray, axes: number[], outShape: Shape): { out: HostArray; at: Int32Array } {
  const out = host(outShape);
  out.data.fill(-Infinity);
  const at = new Int32Array(sizeOf(outShape)).fill(-1);
  for (let i = 0; i < x.data.length; i++) {
    const o = outIndexOf(unravel(i, x.shape), x.shape, axes);
    if (at[o] < 0 || x.data[i] > out.data[o]) {
      out.data[o] = x.data[i];
      at[o] = i;
    }
  }
  return { out, at };
}

export function maxForward(x: HostArray, axes: number[], outShape: Shape): HostArray {
  return argmax(x, axes, outShape).out;
}

export function maxVjp(x: HostArray, axes: number[], gy: HostArray): Float64Array {
  const { at } = argmax(x, axes, gy.shape);
  const g = new Float64Array(x.data.length);
  at.forEach((i, o) => (g[i] += gy.data[o]));
  return g;
}

export function broadcastForward(x: HostArray, shape: Shape): HostArray {
  const out = host(shape);
  forEachBroadcast(shape, [x.shape], (i, [ix]) => (out.data[i] = x.data[ix]));
  return out;
}

export function broadcastVjp(x: HostArray, gy: HostArray): Float64Array {
  const g = new Float64Array(x.data.length);
  forEachBroadcast(gy.shape, [x.shape], (i, [ix]) => (g[ix] += gy.data[i]));
  return g;
}
