// Batched matmul with either operand transposed and batch broadcasting (a batch of one, or missing
// leading dims, against a batch). Kernels (engine/device.ts `matmulKernels` picks the family):
// shaders/matmul_tiled.wgsl on hardware GPUs (engine/ops/matmul_tiled.ts);
// shaders/matmul_subgroup.wgsl where the device has 8-lane subgroups and the operands are
// vec4-aligned (engine/ops/matmul_subgroup.ts); else shaders/matmul.wgsl. The backward passes
// reuse them with swapped strides.
//
// Shapes: a [...batch, M, K] ([..., K, M] when transposeA), b [...batch, K, N] ([..., N, K] when
// transposeB) -> out [...batch, M, N].

import { defineKernel } from '../kernel.ts';
import { record } from '../tape.ts';
import { Tensor, empty } from '../tensor.ts';
import { broadcastShapes, sameShape, shapeString, sizeOf, type Shape } from '../shape.ts';
import { sumTo } from './reduce.ts';
import { permute } from './layout.ts';
import { noGrad } from '../tape.ts';
import { trySubgroupMatmul, type StridedView } from './matmul_subgroup.ts';
import { tryTiledMatmul } from './matmul_tiled.ts';
import { matmulKernels } from '../device.ts';
import { backend } from '../backend.ts';

const bindings = { a: 'read', b: 'read', out: 'read_write', params: 'uniform' } as const;

/** The unrolled kernel body for `rows` x `cols` outputs per invocation (shaders/matmul.wgsl). */
export function matmulSpecialization(wg: number, rows: number, cols: number): Record<string, string | number> {
  const setup: string[] = [];
  const step: string[] = [];
  const store: string[] = [];
  for (let i = 0; i < rows; i++) setup.push(`let ar${i} = a_base + min(r0 + ${i}u, last_m) * params.a_m;`);
  for (let j = 0; j < cols; j++) {
    setup.push(`let n${j} = n_first + ${j * wg}u;`, `let bc${j} = b_base + min(n${j}, last_n) * params.b_n;`);
    step.push(`let bv${j} = b[bk + bc${j}];`);
  }
  for (let i = 0; i < rows; i++) {
    step.push(`let av${i} = a[ar${i} + ak];`);
    for (let j = 0; j < cols; j++) {
      setup.push(`var s${i}_${j} = 0.0;`);
      step.push(`s${i}_${j} = fma(av${i}, bv${j}, s${i}_${j});`);
      store.push(`if (r0 + ${i}u < params.M && n${j} < params.N) { out[out_base + (r0 + ${i}u) * params.N + n${j}] = s${i}_${j}; }`);
    }
  }
  return { WG: wg, ROWS: rows, COLS: cols, SETUP: setup.join('\n  '), STEP: step.join('\n    '), STORE: store.join('\n  ') };
}

/** Tile shape per problem: up to 8 rows and 4 columns per invocation, fewer for small M or N. */
function tileFor(M: number, N: number): { wg: number; rows: number; cols: number } {
  const wg = N >= 64 ? 64 : 16;
  const cols = N <= wg ? 1 : N <= 2 * wg ? 2 : 4;
  const rows = M >= 8 ? 8 : M >= 4 ? 4 : M >= 2 ? 2 : 1;
  return { wg, rows, cols };
}

const kernels = new Map<string, ReturnType<typeof defineKernel>>();
function kernelFor(wg: number, rows: number, cols: number): ReturnType<typeof defineKernel> {
  const variant = `${rows}x${cols}/${wg}`;
  let k = kernels.get(variant);
  if (!k) {
    k = defineKernel({ shader: 'matmul', entry: 'matmul', variant, specialize: matmulSpecialization(wg, rows, cols), bindings });
    kernels.set(variant, k);
  }
  return k;
}

export interface MatmulOptions {
  transposeA?: boolean;
  transposeB?: boolean;
}

/**
 * The subgroup kernel reads B by rows (vec4s along n) faster than by columns (scalars along k,
 * which a Linear's x W^T with W stored [N, K] needs): 1.3-1.6x at the score ViT's [512, 128] x
 * [128, 384] and [128, 256] on lavapipe. A single [N, K] matrix read by columns against at least
 * this many rows of A is therefore transposed once into a [K, N] copy first; both kernels add the
 * products in the same k order, so the result is the same.
 */
const TRANSPOSE_B_MIN_ROWS = 128;

/** Y as a [K, N] row-major copy when it is one [N, K] matrix read by columns (see above), else null. */
function rowMajorCopy(y: StridedView, M: number, N: number, K: number, batch: number): Tensor | null {
  const b = y.buffer;
  const single = batch === 1 || y.batch === 0;
  if (M < TRANSPOSE_B_MIN_ROWS || !single || y.row !== 1 || y.col !== K || b.rank !== 2 || b.shape[0] !== N || b.shape[1] !== K || N % 4 !== 0) return null;
  return noGrad(() => permute(b, [1, 0]));
}

/** Records out[t] = X[t] (M x K) times Y[t] (K x N) for t < batch. */
function dispatchMatmul(out: Tensor, x: StridedView, y: StridedView, M: number, N: number, K: number, batch: number): void {
  const family = matmulKernels(backend().gpu);
  if (family === 'tiled' && tryTiledMatmul(out, x, y, M, N, K, batch)) return;
  if (family === 'subgroup') {
    const copy = rowMajorCopy(y, M, N, K, batch);
    const done = copy ? trySubgroupMatmul(out, x, { buffer: copy, batch: 0, row: N, col: 1 }, M, N, K, batch) : false;
    copy?.dispose();
    if (done || trySubgroupMatmul(out, x, y, M, N, K, batch)) return;
  }
  const params = { M, N, K, a_batch: x.batch, a_m: x.row, a_k: x.col, b_batch: y.batch, b_k: y.row, b_n: y.col };
  const { wg, rows, cols } = tileFor(M, N);
  kernelFor(wg, rows, cols).dispatch({ a: x.buffer, b: y.buffer, out, params }, [Math.ceil(N / (wg * cols)), Math.ceil(M / rows), batch]);
}

function transposed(v: StridedView): StridedView {
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
  // Folding: when b is one matrix shared by the whole batch and a is stored [..., M, K], the batch
  // is just more rows of A: one [batch*M, K] x [K, N] product. Its B-gradient is then one matmul
  // over all batch*M rows, instead of batch per-item products summed afterwards (which would make a
  // [batch, K, N] temporary and a reduction, costly for linear layers over tokens).
  const fold = !tA && batch > 1 && sizeOf(bBatchShape) === 1 && batch * M <= 32 * 65535; // grid y limit
  const rowsA = fold ? batch * M : M;
  const nBatch = fold ? 1 : batch;
  const aView: StridedView = { buffer: a, batch: batchOf(aBatchShape, 'a') * aR * aC, row: tA ? 1 : aC, col: tA ? aC : 1 };
  const bView: StridedView = { buffer: b, batch: batchOf(bBatchShape, 'b') * bR * bC, row: tB ? 1 : bC, col: tB ? bC : 1 };
  // aView reads A(m, k), bView reads B(k, n), whatever the storage order.
  const outShape = [...batchShape, M, N];
  const out = empty(outShape);
  dispatchMatmul(out, aView, bView, rowsA, N, K, nBatch);

  record('matmul', [a, b], out, [a, b], (gy, needs) => {
    const gView: StridedView = { buffer: gy, batch: rowsA * N, row: N, col: 1 }; // G(m, n)
    // Gradient of an operand as stored: for A stored [M, K]: dA = G B^T; stored [K, M]: dA^T = B G^T.
    const summed = (s: Shape) => !fold && sizeOf(s) !== batch; // a broadcast operand's batch is summed away
    const gradA = !needs[0] ? null : operandGrad(a, summed(aBatchShape), batchShape, tA ? [bView, transposed(gView), K, rowsA, N] : [gView, transposed(bView), rowsA, K, N], nBatch);
    const gradB = !needs[1] ? null : operandGrad(b, summed(bBatchShape), batchShape, tB ? [transposed(gView), aView, N, K, rowsA] : [transposed(aView), gView, K, N, rowsA], nBatch);
    return [gradA, gradB];
  });
  return out;
}

/** Computes an operand's gradient as X Y over the batch, then sums a broadcast batch away. */
function operandGrad(operand: Tensor, broadcast: boolean, batchShape: Shape, [x, y, rows, cols, inner]: [StridedView, StridedView, number, number, number], batch: number): Tensor {
  const full = broadcast ? empty([...batchShape, rows, cols]) : empty(operand.shape);
  dispatchMatmul(full, x, y, rows, cols, inner, batch);
  if (!broadcast) return full;
  const reduced = sumTo(full, operand.shape);
  full.dispose();
  return reduced;
}
