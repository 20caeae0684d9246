// Host (CPU, float64) arrays for the references and gradient checks, and a small seeded PRNG
// for test data. The references are the oracle and the readable definition of every op.

import { broadcastStrides, sizeOf, stridesOf, type Shape } from '../shape.ts';
import type { HostTensor } from '../host_tensor.ts';

/** The host tensor the references compute on (engine/host_tensor.ts), float64. */
export type HostArray = HostTensor<Float64Array>;

export function host(shape: Shape, data?: ArrayLike<number>): HostArray {
  const n = sizeOf(shape);
  const d = data ? Float64Array.from(data) : new Float64Array(n);
  if (d.length !== n) throw new RangeError(`host: ${d.length} values for shape [${shape.join(', ')}]`);
  return { dtype: 'float64', shape: [...shape], data: d };
}

/** Calls fn(outIndex, offsetsInEachOperand) for every element of `outShape`, with broadcasting. */
export function forEachBroadcast(outShape: Shape, operands: Shape[], fn: (i: number, offsets: number[]) => void): void {
  const strides = operands.map((s) => broadcastStrides(s, outShape));
  const n = sizeOf(outShape);
  const idx = new Array<number>(outShape.length).fill(0);
  for (let i = 0; i < n; i++) {
    fn(
      i,
      strides.map((st) => idx.reduce((acc, c, d) => acc + c * st[d], 0)),
    );
    for (let d = outShape.length - 1; d >= 0; d--) {
      if (++idx[d] < outShape[d]) break;
      idx[d] = 0;
    }
  }
}

/** Row-major multi-index of flat index i. */
export function unravel(i: number, shape: Shape): number[] {
  const st = stridesOf(shape);
  return st.map((s, d) => Math.floor(i / s) % shape[d]);
}

/** mulberry32: tiny, seeded, good enough for test data (the engine's RNG is separate). */
export class HostRandom {
  private state: number;
  constructor(seed: number) {
    this.state = seed >>> 0;
  }
  uniform(): number {
    let t = (this.state = (this.state + 0x6d2b79f5) >>> 0);
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }
  normal(): number {
    const u = 1 - this.uniform();
    return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * this.uniform());
  }
}
