// float64 references of the elementwise ops, straight from the table's `ref`/`dref` functions.

import { broadcastShapes } from '../shape.ts';
import type { BinaryRow, UnaryRow } from '../elementwise_table.ts';
import { forEachBroadcast, host, type HostArray } from './host.ts';

export function unaryForward(row: UnaryRow, x: HostArray, p0 = 0, p1 = 0): HostArray {
  return host(x.shape, Array.from(x.data, (a) => row.ref(a, p0, p1)));
}

export function unaryVjp(row: UnaryRow, x: HostArray, gy: HostArray, p0 = 0, p1 = 0): Float64Array {
  return Float64Array.from(x.data, (a, i) => gy.data[i] * row.dref(a, row.ref(a, p0, p1), p0, p1));
}

export function binaryForward(row: BinaryRow, a: HostArray, b: HostArray): HostArray {
  const shape = broadcastShapes(a.shape, b.shape, row.name);
  const out = host(shape);
  forEachBroadcast(shape, [a.shape, b.shape], (i, [ia, ib]) => (out.data[i] = row.ref(a.data[ia], b.data[ib])));
  return out;
}

/** Gradients of <gy, row(a, b)> with respect to a and b, summed over broadcast dimensions. */
export function binaryVjp(row: BinaryRow, a: HostArray, b: HostArray, gy: HostArray): [Float64Array, Float64Array] {
  const ga = new Float64Array(a.data.length);
  const gb = new Float64Array(b.data.length);
  forEachBroadcast(gy.shape, [a.shape, b.shape], (i, [ia, ib]) => {
    ga[ia] += gy.data[i] * row.dra(a.data[ia], b.data[ib]);
    gb[ib] += gy.data[i] * row.drb(a.data[ia], b.data[ib]);
  });
  return [ga, gb];
}
