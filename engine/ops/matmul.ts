// Batched matmul with either operand transposed and batch broadcasting (a batch of one, or missing
// leading dims, against a batch). Kernel: shaders/matmul.wgsl; the backward passes reuse it with
// swapped strides.
//
// Shapes: a [...batch, M, K] ([..., K, M] when transposeA), b [...batch, K, N] ([..., N, K] when
// transposeB) -> out [...batch, M, N].

import { defineKernel } from '../kernel.ts';
import { record } from '../tape.ts';
import { Tensor, empty } from '../tensor.ts';
import { broadcastShapes, sameShape, shapeString, sizeOf, type Shape } from '../shape.ts';
import { sumTo } from './reduce.ts';

const kernel = defineKernel({ shader: 'matmul', entry: 'matmul', bindings: { a: 'read', b: 'read', out: 'read_write', params: 'uniform' } });

export interface MatmulOptions {
  transposeA?: boolean;
  transposeB?: boolean;
}

/** How to read one operand: element (row, col) of batch item t is at t*batch + row*row + col*col. */
interface View {
  buffer: Tensor;
  batch: number;
  row: number;
  col: number;
}

/** Records out[t] = X[t] (M x K) times Y[t] (K x N) for t < batch. */
function dispatchMatmul(out: Tensor, x: View, y: View, M: number, N: number, K: number, batch: number): void {
  const params = { M, N, K, a_batch: x.batch, a_m: x.row, a_k: x.col, b_batch: y.batch, b_k: y.row, b_n: y.col };
  kernel.dispatch({ a: x.buffer, b: y.buffer, out, params }, [Math.ceil(N / 32), Math.ceil(M / 32), batch]);
}

function transposed(v: View): View {
  return { buffer: v.buffer, batch: v.batch, row: v.col, col: v.row };
}

export function matmul(a: Tensor, b: Tensor, options: MatmulOptions = {}): Tensor {
  const tA = options.transposeA ?? false;
  const tB = options.transposeB ?? false;
  for (const [t, n] of [[a, 'a'], [b, 'b']] as const) {
    if (t.dtype !== 'f32') throw new TypeError(`matmul: ${n} must be f32, got ${t.dtype}`);
    if (t.rank < 2) throw new RangeError(`matmul: ${n} must have rank >= 2, got shape ${shapeString(t.shape)}`);
  }
  const [aR, aC] = a.shape.slice(-2);
  const [bR, bC] = b.shape.slice(-2);
  const M = tA ? aC : aR;
  const K = tA ? aR : aC;
  const Kb = tB ? bC : bR;
  const N = tB ? bR : bC;
  if (K !== Kb) {
    throw new RangeError(`matmul: inner dimensions differ: a ${shapeString(a.shape)}${tA ? '^T' : ''} has K=${K}, b ${shapeString(b.shape)}${tB ? '^T' : ''} has K=${Kb}`);
  }
  const aBatchShape = a.shape.slice(0, -2);
  const bBatchShape = b.shape.slice(0, -2);
  const batchShape = broadcastShapes(aBatchShape, bBatchShape, 'matmul');
  const batch = sizeOf(batchShape);
  const batchOf = (s: Shape, n: string) => {
    const size = sizeOf(s);
    if (size === 1) return 0; // broadcast: every batch item reads the same matrix
    const padded = [...Array(batchShape.length - s.length).fill(1), ...s];
    if (!sameShape(padded, batchShape)) {
      throw new RangeError(`matmul: batch dims of ${n} ${shapeString(s)} must equal the batch ${shapeString(batchShape)} or be all ones`);
    }
    return 1;
  };
  const aView: View = { buffer: a, batch: batchOf(aBatchShape, 'a') * aR * aC, row: tA ? 1 : aC, col: tA ? aC : 1 };
  const bView: View = { buffer: b, batch: batchOf(bBatchShape, 'b') * bR * bC, row: tB ? 1 : bC, col: tB ? bC : 1 };
  // aView reads A(m, k), bView reads B(k, n), whatever the storage order.
  const outShape = [...batchShape, M, N];
  const out = empty(outShape);
  dispatchMatmul(out, aView, bView, M, N, K, batch);

  record('matmul', [a, b], out, [a, b], (gy, needs) => {
    const gView: View = { buffer: gy, batch: M * N, row: N, col: 1 }; // G(m, n)
    // Gradient of an operand as stored: for A stored [M, K]: dA = G B^T; stored [K, M]: dA^T = B G^T.
    const gradA = !needs[0] ? null : operandGrad(a, aBatchShape, batchShape, tA ? [bView, transposed(gView), K, M, N] : [gView, transposed(bView), M, K, N], batch);
    const gradB = !needs[1] ? null : operandGrad(b, bBatchShape, batchShape, tB ? [transposed(gView), aView, N, K, M] : [transposed(aView), gView, K, N, M], batch);
    return [gradA, gradB];
  });
  return out;
}

/** Computes an operand's gradient as X Y over the full batch, then sums a broadcast batch away. */
function operandGrad(operand: Tensor, ownBatch: Shape, batchShape: Shape, [x, y, rows, cols, inner]: [View, View, number, number, number], batch: number): Tensor {
  const full = sizeOf(ownBatch) === batch ? empty(operand.shape) : empty([...batchShape, rows, cols]);
  dispatchMatmul(full, x, y, rows, cols, inner, batch);
  if (full.size === operand.size) return full;
  const reduced = sumTo(full, operand.shape);
  full.dispose();
  return reduced;
}
