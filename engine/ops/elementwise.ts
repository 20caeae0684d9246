// Elementwise ops generated from elementwise_table.ts: one forward and one backward kernel per
// row, specialized from shaders/unary.wgsl and shaders/binary.wgsl.

import { defineKernel, grid1d, type Kernel } from '../kernel.ts';
import { backend } from '../backend.ts';
import { record } from '../tape.ts';
import { Tensor, empty } from '../tensor.ts';
import { broadcastShapes, sameShape, shapeString, type Shape } from '../shape.ts';
import { BINARY_ROWS, UNARY_ROWS, type BinaryRow, type UnaryRow } from '../elementwise_table.ts';
import { binaryForwardKernels, binaryKernel, recordBinaryForward } from '../accumulate.ts';
import { sumTo } from './reduce.ts';

const WG = 64; // workgroup size of shaders/unary.wgsl

interface UnaryKernels {
  row: UnaryRow;
  forward: Kernel;
  backward: Kernel;
}
interface BinaryKernels {
  row: BinaryRow;
  forward: Kernel;
  /** null when both derivatives are constant (+-1): the backward is then a copy or a sum. */
  backward: Kernel | null;
  /** The same on 4 consecutive outputs per invocation (see binaryParams in engine/accumulate.ts for when). */
  forward4: Kernel;
  backward4: Kernel | null;
}

const isConstantDerivative = (d: string) => d === '1.0' || d === '-1.0';

const unaryOps = new Map<string, UnaryKernels>();
const binaryOps = new Map<string, BinaryKernels>();

/** Adds a unary row (the table's rows are defined at load; tests add a deliberately wrong one). */
export function defineUnaryOp(row: UnaryRow): void {
  if (unaryOps.has(row.name)) throw new Error(`unary op "${row.name}" is already defined`);
  const specialize = { FWD: row.fwd, BWD: row.bwd };
  unaryOps.set(row.name, {
    row,
    forward: defineKernel({ shader: 'unary', entry: 'unary_forward', variant: row.name, specialize, bindings: { x: 'read', y: 'read_write', params: 'uniform' } }),
    backward: defineKernel({
      shader: 'unary',
      entry: 'unary_backward',
      variant: row.name,
      specialize,
      bindings: { x: 'read', y_saved: 'read', gy: 'read', gx: 'read_write', params: 'uniform' },
    }),
  });
}

export function defineBinaryOp(row: BinaryRow): void {
  if (binaryOps.has(row.name)) throw new Error(`binary op "${row.name}" is already defined`);
  const constant = isConstantDerivative(row.da) && isConstantDerivative(row.db);
  const { forward, forward4 } = binaryForwardKernels(row);
  binaryOps.set(row.name, {
    row,
    forward,
    backward: constant ? null : binaryKernel(row, 'binary_backward', { a_in: 'read', b_in: 'read', gy: 'read', ga: 'read_write', gb: 'read_write', params: 'uniform' }),
    forward4,
    backward4: constant ? null : binaryKernel(row, 'binary_backward4', { a4: 'read', b4: 'read', gy4: 'read', ga4: 'read_write', gb4: 'read_write', params: 'uniform' }),
  });
}

for (const row of UNARY_ROWS) defineUnaryOp(row);
for (const row of BINARY_ROWS) defineBinaryOp(row);

export function unaryOpNames(): string[] {
  return [...unaryOps.keys()];
}
export function binaryOpNames(): string[] {
  return [...binaryOps.keys()];
}
export function unaryRow(name: string): UnaryRow {
  return lookup(unaryOps, name, 'unary').row;
}
export function binaryRow(name: string): BinaryRow {
  return lookup(binaryOps, name, 'binary').row;
}

function lookup<T>(map: Map<string, T>, name: string, kind: string): T {
  const k = map.get(name);
  if (!k) throw new Error(`unknown ${kind} op "${name}" (known: ${[...map.keys()].join(', ')})`);
  return k;
}

function requireF32(op: string, ...ts: Tensor[]): void {
  for (const t of ts) if (t.dtype !== 'f32') throw new TypeError(`${op}: expects f32 tensors, got ${t.dtype}${shapeString(t.shape)}`);
}

/** Applies the unary op `name` (with its scalars p0, p1) elementwise. */
export function unary(name: string, x: Tensor, p0 = 0, p1 = 0): Tensor {
  const k = lookup(unaryOps, name, 'unary');
  requireF32(name, x);
  const y = empty(x.shape);
  const params = { n: x.size, p0, p1 };
  const groups = grid1d(Math.ceil(x.size / WG));
  k.forward.dispatch({ x, y, params }, groups);
  record(name, [x], y, [x, y], (gy) => {
    const gx = empty(x.shape);
    k.backward.dispatch({ x, y_saved: y, gy, gx, params }, groups);
    return [gx];
  });
  return y;
}

/** Applies the binary op `name` with NumPy broadcasting. */
export function binary(name: string, a: Tensor, b: Tensor): Tensor {
  const k = lookup(binaryOps, name, 'binary');
  requireF32(name, a, b);
  const shape = broadcastShapes(a.shape, b.shape, name);
  const { out, params, vec4, groups } = recordBinaryForward(k, a, b, shape);
  record(name, [a, b], out, [a, b], (gy, needs) => {
    // Constant derivatives (add, sub) need no kernel: the gradient is +-gy, summed to the operand.
    const constant = (d: string, shape: Shape) => {
      const g = sameShape(gy.shape, shape) ? copyOf(gy) : sumTo(gy, shape);
      return d === '1.0' ? g : negated(g);
    };
    if (!k.backward) {
      return [needs[0] ? constant(k.row.da, a.shape) : null, needs[1] ? constant(k.row.db, b.shape) : null];
    }
    const ga = empty(shape);
    const gb = empty(shape);
    if (vec4) k.backward4!.dispatch({ a4: a, b4: b, gy4: gy, ga4: ga, gb4: gb, params }, groups);
    else k.backward.dispatch({ a_in: a, b_in: b, gy, ga, gb, params }, groups);
    return [needs[0] ? reduceTo(ga, a.shape) : (ga.dispose(), null), needs[1] ? reduceTo(gb, b.shape) : (gb.dispose(), null)];
  });
  return out;
}

function copyOf(x: Tensor): Tensor {
  const y = empty(x.shape);
  backend().copy(x.buffer, 0, y.buffer, 0, x.bytes);
  return y;
}

/** -g (consumes g). */
function negated(g: Tensor): Tensor {
  const n = unary('neg', g);
  g.dispose();
  return n;
}

/** Sums a gradient computed at the broadcast shape down to an operand's shape (consumes g). */
function reduceTo(g: Tensor, shape: Shape): Tensor {
  if (sameShape(g.shape, shape)) return g;
  const r = sumTo(g, shape);
  g.dispose();
  return r;
}

export const add = (a: Tensor, b: Tensor) => binary('add', a, b);
export const sub = (a: Tensor, b: Tensor) => binary('sub', a, b);
export const mul = (a: Tensor, b: Tensor) => binary('mul', a, b);
export const div = (a: Tensor, b: Tensor) => binary('div', a, b);

export const neg = (x: Tensor) => unary('neg', x);
export const exp = (x: Tensor) => unary('exp', x);
export const log = (x: Tensor) => unary('log', x);
export const sqrt = (x: Tensor) => unary('sqrt', x);
export const rsqrt = (x: Tensor) => unary('rsqrt', x);
export const square = (x: Tensor) => unary('square', x);
export const sin = (x: Tensor) => unary('sin', x);
export const cos = (x: Tensor) => unary('cos', x);
export const abs = (x: Tensor) => unary('abs', x);
export const sigmoid = (x: Tensor) => unary('sigmoid', x);
export const tanh = (x: Tensor) => unary('tanh', x);
export const swish = (x: Tensor) => unary('swish', x);
export const gelu = (x: Tensor) => unary('gelu', x);
export const relu = (x: Tensor) => unary('relu', x);
/** leaky_relu(x) * gain; StyleGAN2's fused activation is leakyRelu(x, 0.2, Math.SQRT2). */
export const leakyRelu = (x: Tensor, slope = 0.2, gain = 1) => unary('leaky_relu', x, slope, gain);
export const clamp = (x: Tensor, lo: number, hi: number) => {
  if (!(lo <= hi)) throw new RangeError(`clamp: lower bound ${lo} exceeds upper bound ${hi}`);
  return unary('clamp', x, lo, hi);
};
/** scale * x + shift with constant scalars. */
export const affine = (x: Tensor, scale: number, shift = 0) => unary('affine', x, scale, shift);
