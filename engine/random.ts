// Counter-based random tensors: Philox 4x32-10 with an explicit seed and stream offset, so a run
// is reproducible and element i of a result depends only on (seed, offset, i).
// Kernels: shaders/philox.wgsl. CPU mirror and the exact stream layout: engine/reference/philox.ts.
//
// Legend: seed = the 64-bit Philox key; offset = the 64-bit stream index (counter words c2, c3).
// Each accepts an integer in [0, 2^53) or a pair [low, high] of u32 words. Two different offsets
// never share a Philox block, so calls with distinct offsets give independent, disjoint streams;
// a sampler that draws many tensors from one seed simply counts the offset up (RandomStream).
//
//   randomBits(shape, {seed, offset})              u32, the raw Philox words
//   randomUniform(shape, {seed, offset})           f32 in [0, 1): (x >> 8) * 2^-24
//   randomNormal(shape, {seed, offset, mean, std}) f32, Box-Muller (pairs of words; see the mirror)
//   randomNormalRows(shape, rows, {seed, ...})     f32, row r of shape[0] from its own stream rows[r]
//
// Row streams make a batch of independent runs batch-invariant: a run's draws are keyed by its own
// id, so running it alone or at any place in any batch gives it the same numbers.
//
// These are not differentiable: the results are new leaf tensors, never recorded on the tape.

import { defineKernel, grid1d } from './kernel.ts';
import { empty, tensor, type Tensor } from './tensor.ts';
import { shapeString, sizeOf, validateShape, type Shape } from './shape.ts';
import type { Word64 } from './reference/philox.ts';

const WG = 64; // workgroup size of every philox kernel (one Philox block per invocation)

const K = {
  bits: defineKernel({ shader: 'philox', entry: 'philox_bits', bindings: { bits_out: 'read_write', params: 'uniform' } }),
  uniform: defineKernel({ shader: 'philox', entry: 'philox_uniform', bindings: { out: 'read_write', params: 'uniform' } }),
  normal: defineKernel({ shader: 'philox', entry: 'philox_normal', bindings: { out: 'read_write', params: 'uniform' } }),
  normalRows: defineKernel({ shader: 'philox', entry: 'philox_normal_rows', bindings: { out: 'read_write', params: 'uniform', row_ids: 'read' } }),
};

/** A 64-bit value: an integer in [0, 2^53), or [low, high] u32 words. */
export type Value64 = number | readonly [number, number];

export interface RandomOptions {
  seed: Value64;
  /** Stream offset (default 0). */
  offset?: Value64;
}

export interface NormalOptions extends RandomOptions {
  mean?: number;
  std?: number;
}

const isU32 = (x: unknown): x is number => typeof x === 'number' && Number.isInteger(x) && x >= 0 && x <= 0xffffffff;

/** Splits a 64-bit seed or offset into [low, high] u32 words, with an error naming `what`. */
export function toWord64(value: Value64, what: string): Word64 {
  if (typeof value === 'number') {
    if (!Number.isSafeInteger(value) || value < 0) {
      throw new RangeError(`${what} must be an integer in [0, 2^53) or a pair [low, high] of u32 words, got ${value}`);
    }
    return [value % 2 ** 32, Math.floor(value / 2 ** 32)];
  }
  if (!Array.isArray(value) || value.length !== 2 || !value.every(isU32)) {
    throw new RangeError(`${what} must be an integer in [0, 2^53) or a pair [low, high] of u32 words, got ${JSON.stringify(value)}`);
  }
  return [value[0], value[1]];
}

function streamParams(op: string, shape: Shape, options: RandomOptions): { n: number; key0: number; key1: number; offset0: number; offset1: number; row_len: number } {
  validateShape(shape, op);
  if (!options || options.seed === undefined) throw new TypeError(`${op}: a seed is required (options.seed), so that results are reproducible`);
  const [key0, key1] = toWord64(options.seed, `${op}: seed`);
  const [offset0, offset1] = toWord64(options.offset ?? 0, `${op}: offset`);
  const n = sizeOf(shape);
  if (n > 0xffffffff) throw new RangeError(`${op}: ${n} elements in ${shapeString(shape)} exceed the 2^32 the kernel can index`);
  return { n, key0, key1, offset0, offset1, row_len: 0 };
}

function blocksGrid(n: number): [number, number, number] {
  return grid1d(Math.ceil(Math.ceil(n / 4) / WG));
}

/** The raw Philox u32 words of stream (seed, offset), element i = stream word i. */
export function randomBits(shape: Shape, options: RandomOptions): Tensor {
  const p = streamParams('randomBits', shape, options);
  const y = empty(shape, 'u32');
  K.bits.dispatch({ bits_out: y, params: { ...p, mean: 0, stddev: 1 } }, blocksGrid(p.n));
  return y;
}

/** Uniform floats in [0, 1): element i = (word_i >> 8) * 2^-24, bit-identical to the CPU mirror. */
export function randomUniform(shape: Shape, options: RandomOptions): Tensor {
  const p = streamParams('randomUniform', shape, options);
  const y = empty(shape);
  K.uniform.dispatch({ out: y, params: { ...p, mean: 0, stddev: 1 } }, blocksGrid(p.n));
  return y;
}

/** Normal floats, mean + std * z with z from Box-Muller on pairs of words (see reference/philox.ts). */
export function randomNormal(shape: Shape, options: NormalOptions): Tensor {
  const p = streamParams('randomNormal', shape, options);
  const y = empty(shape);
  K.normal.dispatch({ out: y, params: { ...p, ...normalParams('randomNormal', options) } }, blocksGrid(p.n));
  return y;
}

/** A row's stream: [id, keyAdd] (counter word c1, and an addend to the key's high word); [0, 0] is the plain stream. */
export type RowStream = readonly [number, number];

function normalParams(op: string, options: NormalOptions): { mean: number; stddev: number } {
  const mean = options.mean ?? 0;
  const std = options.std ?? 1;
  if (!Number.isFinite(mean)) throw new RangeError(`${op}: mean must be finite, got ${mean}`);
  if (!Number.isFinite(std) || std < 0) throw new RangeError(`${op}: std must be finite and >= 0, got ${std}`);
  return { mean, stddev: std };
}

/**
 * Normal floats drawn row by row: row r (index r of the first dimension) from stream rows[r], so
 * each row's numbers depend on (seed, offset, rows[r]) only. Rows must hold a multiple of 4 elements
 * (a Philox block never straddles two rows). Exact layout: philoxNormalRowsF64 in the mirror.
 */
export function randomNormalRows(shape: Shape, rows: readonly RowStream[], options: NormalOptions): Tensor {
  const p = streamParams('randomNormalRows', shape, options);
  const rowLen = p.n / shape[0];
  if (rows.length !== shape[0]) throw new RangeError(`randomNormalRows: ${rows.length} row streams for ${shape[0]} rows of ${shapeString(shape)}`);
  if (rowLen % 4 !== 0) throw new RangeError(`randomNormalRows: rows of ${shapeString(shape)} hold ${rowLen} elements, not a multiple of 4`);
  for (const r of rows) if (!(Array.isArray(r) && r.length === 2 && r.every(isU32))) throw new RangeError(`randomNormalRows: a row stream is a pair [id, keyAdd] of u32, got ${JSON.stringify(r)}`);
  const ids = tensor(rows.flat(), [rows.length, 2], 'u32');
  const y = empty(shape);
  K.normalRows.dispatch({ out: y, row_ids: ids, params: { ...p, ...normalParams('randomNormalRows', options), row_len: rowLen } }, blocksGrid(p.n));
  ids.dispose();
  return y;
}

/**
 * A seed plus a counter: each draw uses the next offset, so a sequence of draws is reproducible
 * from the seed alone and no two draws share random numbers. `offset` can be saved and restored.
 */
export class RandomStream {
  private readonly seedWords: Word64;
  private next: number;

  constructor(seed: Value64, offset = 0) {
    this.seedWords = toWord64(seed, 'RandomStream: seed');
    if (!Number.isSafeInteger(offset) || offset < 0) throw new RangeError(`RandomStream: offset must be an integer in [0, 2^53), got ${offset}`);
    this.next = offset;
  }

  /** The offset the next draw will use. */
  get offset(): number {
    return this.next;
  }

  /** Draws with the current offset, and moves to the next one only if the draw succeeded. */
  private draw(make: (options: { seed: Word64; offset: number }) => Tensor): Tensor {
    const t = make({ seed: this.seedWords, offset: this.next });
    this.next++;
    return t;
  }

  bits(shape: Shape): Tensor {
    return this.draw((o) => randomBits(shape, o));
  }

  uniform(shape: Shape): Tensor {
    return this.draw((o) => randomUniform(shape, o));
  }

  normal(shape: Shape, mean = 0, std = 1): Tensor {
    return this.draw((o) => randomNormal(shape, { ...o, mean, std }));
  }

  /** Row r of shape[0] from stream rows[r] (randomNormalRows), with this draw's offset. */
  normalRows(shape: Shape, rows: readonly RowStream[], mean = 0, std = 1): Tensor {
    return this.draw((o) => randomNormalRows(shape, rows, { ...o, mean, std }));
  }
}
