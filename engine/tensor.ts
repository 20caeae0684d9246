// Tensor: a contiguous row-major float32 (or u32) array in a pooled GPU buffer.
//
// Lifetime: a tensor holds one reference to its buffer; `dispose()` drops it. The autodiff tape
// takes extra references on tensors its backward pass needs (`retain`/`release`), so disposing an
// intermediate inside a `scope()` never pulls a buffer from under a pending backward pass.
// `scope(fn)` disposes every tensor created inside it except those returned (found by walking
// the result's arrays and plain objects) and those marked with `keep()`.
//
// A tensor's buffer comes from the backend active when it is made (engine/backend.ts) and goes
// back to that backend, whichever is active when the tensor is released.

import { backend, type Backend, type DeviceBuffer } from './backend.ts';
import { shapeString, sizeOf, validateShape, type Shape } from './shape.ts';

/**
 * One recorded op on the autodiff tape (engine/tape.ts). Declared here, below the tape, because a
 * tensor points at the node that produced it and the tape holds tensors.
 */
export interface TapeNode {
  op: string;
  inputs: Tensor[];
  output: Tensor;
  /** Tensors the backward rule reads; retained until the tape is cleared. */
  saved: Tensor[];
  /**
   * Gradients for each input (null where an input needs none), given the output's gradient.
   * `needs[i]` says whether input i requires a gradient, so a rule can skip work nobody uses.
   */
  backward: (gy: Tensor, needs: boolean[]) => (Tensor | null)[];
  /**
   * Optional, for single-input ops whose gradient touches part of the input (slice): adds the
   * input's gradient into `into` (the tape's running sum for that input, same shape, f32) in place,
   * in fewer dispatches than `backward` followed by an add.
   */
  accumulate?: (gy: Tensor, into: Tensor) => void;
}

export type DType = 'f32' | 'u32';

let nextId = 1;

export class Tensor {
  readonly id = nextId++;
  readonly shape: readonly number[];
  readonly size: number;
  private buf: DeviceBuffer | null;
  /** The backend that lent the buffer. */
  readonly backend: Backend;
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
    this.backend = backend();
    this.buf = this.backend.allocate(this.size * 4, `tensor ${shapeString(shape)}`);
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

  get buffer(): DeviceBuffer {
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
      this.backend.release(this.buf);
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
    const data = await this.backend.read(this.buffer, this.bytes);
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
  t.backend.write(t.buffer, host);
  return t;
}

/** A tensor with unspecified contents (ops write every element). */
export function empty(shape: Shape, dtype: DType = 'f32'): Tensor {
  return new Tensor(shape, dtype);
}

export function zeros(shape: Shape, dtype: DType = 'f32'): Tensor {
  const t = new Tensor(shape, dtype);
  t.backend.write(t.buffer, new Uint8Array(t.bytes));
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
