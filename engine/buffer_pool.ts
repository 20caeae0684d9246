// A size-bucketed pool of storage buffers. GPU buffers are not garbage collected and creating
// them is slow, so tensors borrow buffers from here and give them back on dispose.
//
// Buckets: sizes are rounded up to a quarter step of their power of two, steps of at least 256
// (e.g. 4096, 5120, 6144, 7168, 8192, ...), so at most 25% of a buffer is slack and a loop that
// allocates the same shapes every step reuses the same buffers.
//
// A released buffer may still be referenced by recorded-but-unsubmitted commands; that is fine
// because it is only ever reused by commands recorded later, which run later. Buffers are
// destroyed only by `trim()`, which the engine calls when it is destroyed.
//
// The pool does not know what a buffer is: the WebGPU engine gives it a factory of GPU buffers,
// the counting backend (engine/counting_backend.ts) one of plain size records, so both keep the
// same bookkeeping and the counting backend's peak is the one the device's pool reaches.

const MIN_BUCKET = 256;

export function bucketSize(bytes: number): number {
  if (bytes <= MIN_BUCKET) return MIN_BUCKET;
  const pow = 2 ** Math.floor(Math.log2(bytes));
  const step = Math.max(MIN_BUCKET, pow / 4);
  return Math.ceil(bytes / step) * step;
}

export interface PoolStats {
  /** Buffers currently lent to tensors. */
  buffersInUse: number;
  /** Bytes requested by tensors currently alive (exact sizes, not bucket sizes). */
  bytesInUse: number;
  /** Buffers waiting in the pool for reuse. */
  buffersPooled: number;
  bytesPooled: number;
  /** Every buffer the pool has created and not destroyed, in bucket bytes. */
  bytesAllocated: number;
  /** The largest bytesInUse since the pool was made or `resetPeak()` was called. */
  peakBytesInUse: number;
}

/** Makes and destroys the pool's buffers (of exactly `size` bytes, a bucket size). */
export interface BufferFactory<B> {
  create(size: number): B;
  destroy(buffer: B): void;
}

export class BufferPool<B extends { readonly size: number } = GPUBuffer> {
  private readonly free = new Map<number, B[]>();
  private readonly lentSize = new Map<B, number>();
  private stats: PoolStats = { buffersInUse: 0, bytesInUse: 0, buffersPooled: 0, bytesPooled: 0, bytesAllocated: 0, peakBytesInUse: 0 };

  constructor(
    private readonly factory: BufferFactory<B>,
    private readonly maxBufferBytes: number,
  ) {}

  acquire(bytes: number, what: string): B {
    if (bytes > this.maxBufferBytes) {
      throw new RangeError(`${what}: ${bytes} bytes exceed the device's largest bindable buffer (${this.maxBufferBytes} bytes)`);
    }
    const size = bucketSize(bytes);
    const list = this.free.get(size);
    let buffer = list?.pop();
    if (buffer) {
      this.stats.buffersPooled--;
      this.stats.bytesPooled -= size;
    } else {
      buffer = this.factory.create(size);
      this.stats.bytesAllocated += size;
    }
    this.lentSize.set(buffer, bytes);
    this.stats.buffersInUse++;
    this.stats.bytesInUse += bytes;
    this.stats.peakBytesInUse = Math.max(this.stats.peakBytesInUse, this.stats.bytesInUse);
    return buffer;
  }

  release(buffer: B): void {
    const bytes = this.lentSize.get(buffer);
    if (bytes === undefined) throw new Error('BufferPool.release: buffer was not lent by this pool (released twice?)');
    this.lentSize.delete(buffer);
    this.stats.buffersInUse--;
    this.stats.bytesInUse -= bytes;
    const size = buffer.size;
    let list = this.free.get(size);
    if (!list) this.free.set(size, (list = []));
    list.push(buffer);
    this.stats.buffersPooled++;
    this.stats.bytesPooled += size;
  }

  /** Destroys pooled buffers. Only call when no unsubmitted command may reference them. */
  trim(): void {
    for (const list of this.free.values()) {
      for (const b of list) {
        this.stats.bytesAllocated -= b.size;
        this.factory.destroy(b);
      }
    }
    this.free.clear();
    this.stats.buffersPooled = 0;
    this.stats.bytesPooled = 0;
  }

  /** Whether `buffer` is lent by this pool now. */
  lends(buffer: B): boolean {
    return this.lentSize.has(buffer);
  }

  /** Starts a new peak measurement from the current bytes in use. */
  resetPeak(): void {
    this.stats.peakBytesInUse = this.stats.bytesInUse;
  }

  snapshot(): PoolStats {
    return { ...this.stats };
  }
}
