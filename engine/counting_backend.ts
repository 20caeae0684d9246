// The counting backend: the backend seam (engine/backend.ts) with no device behind it. Buffers are
// size records from the same BufferPool class the WebGPU engine uses (same buckets, same reuse,
// same bytesInUse and peak), dispatches and copies are validated by the kernels as usual and then
// only counted, writes are dropped, and reads return zero-filled arrays of the right size.
//
// Running real code on it (inside `withBackend`) plans that code: the pool's peak is the one the
// device's pool reaches for the same sequence of allocations, which holds as long as the code takes
// the same path, i.e. does not branch on values it reads back (`planning()` lets such code skip).
// Decisions that depend on the device (subgroup kernels, grid limits, split targets) follow the
// DeviceInfo it is given: a real engine's `gpu` to mirror that device, or PLANNING_DEVICE.

import { BufferPool, type PoolStats } from './buffer_pool.ts';
import { detectRuntime } from './device.ts';
import type { Backend, BindingEntry, DeviceBuffer, DeviceInfo, KernelProgram } from './backend.ts';

/** A buffer that exists only as its bucket size. */
export interface CountedBuffer {
  readonly size: number;
}

/**
 * A hardware GPU as WebGPU describes it by default, with buffers up to 4 GiB (what large GPUs
 * offer; the engine asks for the adapter's own limits), and no subgroup kernels.
 */
export const PLANNING_DEVICE: DeviceInfo = {
  adapter: { runtime: detectRuntime(), vendor: '', architecture: '', device: '', description: 'counting backend (plans, runs nothing)', isSoftware: false, features: [] },
  limits: {
    maxBufferSize: 2 ** 32,
    maxStorageBufferBindingSize: 2 ** 32,
    maxUniformBufferBindingSize: 65536,
    maxComputeWorkgroupStorageSize: 16384,
    maxComputeInvocationsPerWorkgroup: 256,
    maxComputeWorkgroupSizeX: 256,
    maxComputeWorkgroupSizeY: 256,
    maxComputeWorkgroupSizeZ: 64,
    maxComputeWorkgroupsPerDimension: 65535,
    maxStorageBuffersPerShaderStage: 8,
    minUniformBufferOffsetAlignment: 256,
  },
  subgroups: null,
};

const UNIFORM: BindingEntry['resource'] = { buffer: { size: 0 } };

export class CountingBackend implements Backend {
  readonly planning = true;
  destroyed = false;
  readonly pool: BufferPool<CountedBuffer>;
  /** Dispatches per kernel key. */
  readonly dispatchesByKernel = new Map<string, number>();
  dispatches = 0;
  copies = 0;
  writes = 0;
  reads = 0;
  /** Bytes of the largest single buffer requested (WebGPU's binding limits apply to it). */
  largestBufferBytes = 0;

  constructor(readonly gpu: DeviceInfo = PLANNING_DEVICE) {
    const limits = gpu.limits;
    this.pool = new BufferPool<CountedBuffer>({ create: (size) => ({ size }), destroy: () => {} }, Math.min(limits.maxStorageBufferBindingSize, limits.maxBufferSize));
  }

  allocate(bytes: number, what: string): CountedBuffer {
    const b = this.pool.acquire(bytes, what);
    if (bytes > this.largestBufferBytes) this.largestBufferBytes = bytes;
    return b;
  }

  release(buffer: DeviceBuffer): void {
    this.pool.release(buffer as CountedBuffer);
  }

  write(buffer: DeviceBuffer, data: ArrayBufferView, offset = 0): void {
    this.own(buffer, 'write');
    if (offset + data.byteLength > buffer.size) throw new RangeError(`write: ${data.byteLength} bytes at ${offset} overrun a ${buffer.size}-byte buffer`);
    this.writes++;
  }

  async read(buffer: DeviceBuffer, bytes: number, offset = 0): Promise<ArrayBuffer> {
    this.own(buffer, 'read');
    if (offset + bytes > buffer.size) throw new RangeError(`read: ${bytes} bytes at ${offset} overrun a ${buffer.size}-byte buffer`);
    this.reads++;
    return new ArrayBuffer(bytes);
  }

  copy(src: DeviceBuffer, srcOffset: number, dst: DeviceBuffer, dstOffset: number, bytes: number): void {
    this.own(src, 'copy');
    this.own(dst, 'copy');
    if (srcOffset + bytes > src.size || dstOffset + bytes > dst.size) throw new RangeError(`copy: ${bytes} bytes overrun a buffer`);
    this.copies++;
  }

  placeUniform(): BindingEntry['resource'] {
    return UNIFORM;
  }

  dispatch(program: KernelProgram, entries: BindingEntry[]): void {
    for (const e of entries) if (e.resource !== UNIFORM) this.own(e.resource.buffer, program.key);
    this.dispatches++;
    this.dispatchesByKernel.set(program.key, (this.dispatchesByKernel.get(program.key) ?? 0) + 1);
  }

  async sync(): Promise<void> {}

  memory(): PoolStats {
    return this.pool.snapshot();
  }

  resetPeak(): void {
    this.pool.resetPeak();
  }

  destroy(): void {
    this.destroyed = true;
  }

  /** A buffer of another backend (a tensor made outside `withBackend`) would make the plan wrong. */
  private own(buffer: DeviceBuffer, what: string): void {
    if (!this.pool.lends(buffer as CountedBuffer)) throw new Error(`${what}: a buffer that the counting backend did not lend (a tensor from another backend, or one already released)`);
  }
}
