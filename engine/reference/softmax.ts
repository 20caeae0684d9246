// float64 reference of softmax over the last axis: y = exp(x - max) / sum exp(x - max) per row,
// and its VJP gx = y * (gy - sum(gy * y)) per row.
//
// Dimensions: x [..., D] viewed as [rows, D].

import { host, type HostArray } from './host.ts';

export function softmaxForward(x: HostArray): HostArray {
  const d = x.shape[x.shape.length - 1];
  const y = host(x.shape);
  for (let base = 0; base < x.data.length; base += d) {
    let m = -Infinity;
    for (let j = 0; j < d; j++) m = Math.max(m, x.data[base + j]);
    let s = 0;
    for (let j = 0; j < d; j++) s += Math.exp(x.data[base + j] - m);
    for (let j = 0; j < d; j++) y.data[base + j] = Math.exp(x.data[base + j] - m) / s;
  }
  return y;
}

export function softmaxVjp(x: HostArray, gy: HostArray): Float64Array {
  const d = x.shape[x.shape.length - 1];
  const y = softmaxForward(x).data;
  const g = new Float64Array(x.data.length);
  for (let base = 0; base < x.data.length; base += d) {
    let dot = 0;
    for (let j = 0; j < d; j++) dot += gy.data[base + j] * y[base + j];
    for (let j = 0; j < d; j++) g[base + j] = y[base + j] * (gy.data[base + j] - dot);
  }
  return g;
}
