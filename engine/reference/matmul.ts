// float64 reference of batched matmul with transposes and batch broadcasting.

import { broadcastShapes, sizeOf } from '../shape.ts';
import { host, type HostArray } from './host.ts';

export interface MatmulRefOptions {
  transposeA?: boolean;
  transposeB?: boolean;
}

function dims(a: HostArray, b: HostArray, o: MatmulRefOptions) {
  const [aR, aC] = a.shape.slice(-2);
  const [bR, bC] = b.shape.slice(-2);
  const M = o.transposeA ? aC : aR;
  const K = o.transposeA ? aR : aC;
  const N = o.transposeB ? bR : bC;
  const batchShape = broadcastShapes(a.shape.slice(0, -2), b.shape.slice(0, -2), 'matmul');
  const batch = sizeOf(batchShape);
  const aStep = sizeOf(a.shape.slice(0, -2)) === 1 ? 0 : aR * aC;
  const bStep = sizeOf(b.shape.slice(0, -2)) === 1 ? 0 : bR * bC;
  // Offsets of A(m, k) and B(k, n) inside one batch item.
  const ai = (m: number, k: number) => (o.transposeA ? k * aC + m : m * aC + k);
  const bi = (k: number, n: number) => (o.transposeB ? n * bC + k : k * bC + n);
  return { M, K, N, batchShape, batch, aStep, bStep, ai, bi };
}

export function matmulForward(a: HostArray, b: HostArray, o: MatmulRefOptions = {}): HostArray {
  const { M, K, N, batchShape, batch, aStep, bStep, ai, bi } = dims(a, b, o);
  const out = host([...batchShape, M, N]);
  for (let t = 0; t < batch; t++)
    for (let m = 0; m < M; m++)
      for (let n = 0; n < N; n++) {
        let s = 0;
        for (let k = 0; k < K; k++) s += a.data[t * aStep + ai(m, k)] * b.data[t * bStep + bi(k, n)];
        out.data[(t * M + m) * N + n] = s;
      }
  return out;
}

export function matmulVjp(a: HostArray, b: HostArray, gy: HostArray, o: MatmulRefOptions = {}): [Float64Array, Float64Array] {
  const { M, K, N, batch, aStep, bStep, ai, bi } = dims(a, b, o);
  const ga = new Float64Array(a.data.length);
  const gb = new Float64Array(b.data.length);
  for (let t = 0; t < batch; t++)
    for (let m = 0; m < M; m++)
      for (let n = 0; n < N; n++) {
        const g = gy.data[(t * M + m) * N + n];
        for (let k = 0; k < K; k++) {
          ga[t * aStep + ai(m, k)] += g * b.data[t * bStep + bi(k, n)];
          gb[t * bStep + bi(k, n)] += g * a.data[t * aStep + ai(m, k)];
        }
      }
  return [ga, gb];
}
