// The forward of the table's binary rows (shaders/binary.wgsl), in the engine core, and with it the
// tape's gradient accumulation: a + b with the `add` row's kernels. The tape sits below the ops
// (engine/ops/elementwise.ts records on the tape), so it cannot call the `add` op; instead the
// op module declares its binary kernels through `binaryKernel` here, and `defineKernel` hands both
// the same Kernel objects. An accumulation is therefore exactly the dispatch `add` records, under
// the same kernel key, and a spec that drifted apart would fail at load ("declared twice").

import { defineKernel, grid1d, type Kernel } from './kernel.ts';
import { empty, type Tensor } from './tensor.ts';
import { broadcastShapes, broadcastStrides, coalesceDims, type Shape } from './shape.ts';
import { BINARY_ROWS, type BinaryRow } from './elementwise_table.ts';
import type { BindingKind } from './backend.ts';

/** Workgroup size of shaders/binary.wgsl's entry points. */
const WG = 64;

/** Declares one entry point of shaders/binary.wgsl specialized to a table row. */
export function binaryKernel(row: BinaryRow, entry: string, bindings: Record<string, BindingKind>): Kernel {
  return defineKernel({ shader: 'binary', entry, variant: row.name, specialize: { FWD: row.fwd, DA: row.da, DB: row.db }, bindings });
}

export interface BinaryForwardKernels {
  forward: Kernel;
  /** The same on 4 consecutive outputs per invocation (see binaryParams for when). */
  forward4: Kernel;
}

export function binaryForwardKernels(row: BinaryRow): BinaryForwardKernels {
  return {
    forward: binaryKernel(row, 'binary_forward', { a_in: 'read', b_in: 'read', out: 'read_write', params: 'uniform' }),
    forward4: binaryKernel(row, 'binary_forward4', { a4: 'read', b4: 'read', out4: 'read_write', params: 'uniform' }),
  };
}

/**
 * Kernel parameters, with dimensions merged where both operands allow it (fewer divisions per
 * element: a bias over [B, T, D] is rank 2, equal shapes rank 1), and whether the vec4 kernels
 * apply: the innermost merged dimension a multiple of 4 and each operand's innermost stride 1 or 0.
 */
export function binaryParams(aShape: Shape, bShape: Shape, outShape: Shape) {
  const c = coalesceDims(outShape, [broadcastStrides(aShape, outShape), broadcastStrides(bShape, outShape)]);
  const last = c.shape.length - 1;
  const [aInner, bInner] = [c.strides[0][last], c.strides[1][last]];
  const vec4 = c.shape[last] % 4 === 0 && aInner <= 1 && bInner <= 1;
  const params = {
    n: outShape.reduce((p, d) => p * d, 1),
    rank: c.shape.length,
    a_vec: aInner,
    b_vec: bInner,
    out_shape: c.shape,
    a_strides: c.strides[0],
    b_strides: c.strides[1],
  };
  return { params, vec4 };
}

/** Records out = row(a, b) at the broadcast `shape` (nothing on the tape); returns what a backward reuses. */
export function recordBinaryForward(k: BinaryForwardKernels, a: Tensor, b: Tensor, shape: Shape) {
  const out = empty(shape);
  const { params, vec4 } = binaryParams(a.shape, b.shape, shape);
  const groups = grid1d(Math.ceil(out.size / (vec4 ? 4 : 1) / WG));
  if (vec4) k.forward4.dispatch({ a4: a, b4: b, out4: out, params }, groups);
  else k.forward.dispatch({ a_in: a, b_in: b, out, params }, groups);
  return { out, params, vec4, groups };
}

const addKernels = binaryForwardKernels(BINARY_ROWS.find((r) => r.name === 'add')!);

/** a + b (broadcasting), a new tensor; never recorded on the tape (the tape accumulates with it). */
export function accumulate(a: Tensor, b: Tensor): Tensor {
  if (a.dtype !== 'f32' || b.dtype !== 'f32') throw new TypeError(`add: expects f32 tensors, got ${a.dtype} and ${b.dtype}`);
  return recordBinaryForward(addKernels, a, b, broadcastShapes(a.shape, b.shape, 'add')).out;
}
