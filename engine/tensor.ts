// Tensor: a contiguous row-major float32 (or u32) array in a pooled GPU buffer.
//
// Lifetime: a tensor holds one reference to its buffer; `dispose()` drops it. The autodiff tape
// takes extra references on tensors its backward pass needs (`retain`/`release`), so disposing an
// intermediate inside a `scope()` never pulls a buffer from under a pending backward pass.
// `scope(fn)` disposes every tensor created inside it except those returned (found by walking
// the result's arrays and plain objects) and those marked with `keep()`.

import { engine } from './engine.ts';
import { shapeString, sizeOf, validateShape, type Shape } from './shape.ts';
import type { TapeNode } from './tape.ts';

export type DType = 'f32' | 'u32';

let nextId = 1;

export class Tensor {
  readonly id = nextId++;
  readonly shape: readonly number[];
  readonly size: number;
  private buf: GPUBuffer | null;
  private refs = 1;
  private userDisposed = false;
  /** Set by `requireGrad()`; ops on such tensors are recorded on the tape. */
  requiresGrad = false;
  /** Accumulated by `backward()` on leaves that require grad. */
  grad: Tensor | null = null;
  /** The tape node that produced this tensor, if it was recorded. */
  node: TapeNode | null = null;
  /** Exempt from scope() disposal (parameters, long-lived state). */
  kept = false;

  constructor(
    shape: Shape,
    readonly dtype: DType = 'f32',
  ) {
    validateShape(shape);
    this.shape = Object.freeze([...shape]);
    this.size = sizeOf(shape);
    this.buf = engine().pool.acquire(this.size * 4, `tensor ${shapeString(shape)}`);
    trackInScope(this);
  }

  get rank(): number {
    return this.shape.length;
  }

  get bytes(): number {
    return this.size * 4;
  }

  get disposed(): boolean {
    return this.buf === null;
  }

  get buffer(): GPUBuffer {
    if (!this.buf) throw new Error(`tensor #${this.id} ${shapeString(this.shape)} was used after dispose()`);
    return this.buf;
  }

  requireGrad(on = true): this {
    if (on && this.dtype !== 'f32') throw new TypeError(`tensor #${this.id}: only f32 tensors can require grad`);
    this.requiresGrad = on;
    return this;
  }

  keep(): this {
    this.kept = true;
    return this;
  }

  retain(): void {
    if (!this.buf) throw new Error(`tensor #${this.id} ${shapeString(this.shape)} was used after dispose()`);
    this.refs++;
  }

  release(): void {
    if (--this.refs === 0 && this.buf) {
      engine().pool.release(this.buf);
      this.buf = null;
    }
  }

  /** Drops the user's reference. Idempotent. The buffer returns to the pool when no tape needs it. */
  dispose(): void {
    if (this.userDisposed) return;
    this.userDisposed = true;
    this.grad?.dispose();
    this.grad = null;
    this.release();
  }

  /** Copies the data to the host. */
  async read(): Promise<Float32Array | Uint32Array> {
    const data = await engine().read(this.buffer, this.bytes);
    return this.dtype === 'f32' ? new Float32Array(data) : new Uint32Array(data);
  }

  async readF32(): Promise<Float32Array> {
    if (this.dtype !== 'f32') throw new TypeError(`tensor #${this.id} is ${this.dtype}, not f32`);
    return (await this.read()) as Float32Array;
  }

  toString(): string {
    return `Tensor#${this.id}(${this.dtype}${shapeString(this.shape)}${this.requiresGrad ? ', requiresGrad' : ''})`;
  }
}

/** Uploads host data. `data` may be any numeric array; its length must match the shape. */
export function tensor(data: ArrayLike<number>, shape: Shape, dtype: DType = 'f32'): Tensor {
  validateShape(shape);
  const n = sizeOf(shape);
  if (data.length !== n) throw new RangeError(`tensor: ${data.length} values do not fill shape ${shapeString(shape)} (${n} elements)`);
  const t = new Tensor(shape, dtype);
  const host = dtype === 'f32' ? Float32Array.from(data) : Uint32Array.from(data);
  engine().write(t.buffer, host);
  return t;
}

/** A tensor with unspecified contents (ops write every element). */
export function empty(shape: Shape, dtype: DType = 'f32'): Tensor {
  return new Tensor(shape, dtype);
}

export function zeros(shape: Shape, dtype: DType = 'f32'): Tensor {
  const t = new Tensor(shape, dtype);
  engine().write(t.buffer, new Uint8Array(t.bytes));
  return t;
}

export function full(shape: Shape, value: number): Tensor {
  return tensor(new Float32Array(sizeOf(shape)).fill(value), shape);
}

// ---- scopes -------------------------------------------------------------------------------

const scopes: Set<Tensor>[] = [];

function trackInScope(t: Tensor): void {
  scopes[scopes.length - 1]?.add(t);
}

function collectTensors(value: unknown, into: Set<Tensor>): void {
  if (value instanceof Tensor) into.add(value);
  else if (Array.isArray(value)) for (const v of value) collectTensors(v, into);
  else if (value && typeof value === 'object' && Object.getPrototypeOf(value) === Object.prototype) {
    for (const v of Object.values(value)) collectTensors(v, into);
  }
}

function closeScope(tracked: Set<Tensor>, result: unknown): void {
  const keep = new Set<Tensor>();
  collectTensors(result, keep);
  for (const t of tracked) {
    if (keep.has(t) || t.kept) scopes[scopes.length - 1]?.add(t);
    else t.dispose();
  }
}

/**
 * Runs `fn` and disposes every tensor created during it that is not returned or kept.
 * Returned tensors move to the enclosing scope. Async functions are supported, but scopes must
 * not interleave (do not run two async scopes concurrently).
 */
export function scope<T>(fn: () => T): T {
  const tracked = new Set<Tensor>();
  scopes.push(tracked);
  let result: T;
  try {
    result = fn();
  } catch (e) {
    scopes.pop();
    closeScope(tracked, undefined);
    throw e;
  }
  if (result instanceof Promise) {
    return result.then(
      (v) => {
        scopes.splice(scopes.lastIndexOf(tracked), 1);
        closeScope(tracked, v);
        return v;
      },
      (e) => {
        scopes.splice(scopes.lastIndexOf(tracked), 1);
        closeScope(tracked, undefined);
        throw e;
      },
    ) as T;
  }
  scopes.pop();
  closeScope(tracked, result);
  return result;
}
