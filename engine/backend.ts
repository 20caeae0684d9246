// The backend seam: everything the engine core (tensors, kernels, the tape) asks of a device.
//
//   allocate / release   a buffer of at least `bytes` from the backend's pool, and back to it
//                        (a tensor's retain/release counts references and calls release once);
//   write / read / copy  host data in, data out, buffer to buffer, in recording order;
//   placeUniform         a kernel's uniform block, for the dispatch that follows;
//   dispatch             one reflected entry point (engine/kernel.ts) with its bindings;
//   sync                 waits until everything recorded has run, and surfaces errors.
//
// Two implementations: the WebGPU engine (engine/engine.ts) and the counting backend
// (engine/counting_backend.ts), which runs nothing and allocates nothing on a device but keeps the
// same pool bookkeeping, so running real code on it plans that code's memory (nets/stylegan2_plan.ts).
//
// The active backend is a module variable read once per tensor and per dispatch: `init()` makes
// the WebGPU engine active, `withBackend` swaps another in for the duration of a function.

import type { GpuContext } from './device.ts';
import type { PoolStats } from './buffer_pool.ts';

/** A buffer as the core sees it: a handle with a byte size. A GPUBuffer is one. */
export interface DeviceBuffer {
  readonly size: number;
}

/** What ops may ask about the device (limits, adapter, subgroups); a GpuContext is one. */
export type DeviceInfo = Pick<GpuContext, 'adapter' | 'limits' | 'subgroups'>;

export type BindingKind = 'read' | 'read_write' | 'uniform';

/** One binding of a dispatch, in the layout of GPUBindGroupEntry (the WebGPU engine passes it on as is). */
export interface BindingEntry {
  binding: number;
  resource: { buffer: DeviceBuffer; offset?: number; size?: number };
}

/** A compute entry point after reflection: what a backend needs to build and run its pipeline. */
export interface KernelProgram {
  /** shader.entry<variant>, for errors, counts and profiles. */
  readonly key: string;
  readonly entry: string;
  /** The specialized WGSL. */
  readonly code: string;
  /** Values of the WGSL `override` declarations, for the pipeline (KernelSpec.constants). */
  readonly constants?: Record<string, number>;
  readonly slots: readonly { readonly binding: number; readonly kind: BindingKind }[];
  /** The pipeline the WebGPU engine built for it, and for which device (rebuilt for another). */
  gpu: { device: GPUDevice; pipeline: GPUComputePipeline; layout: GPUBindGroupLayout } | null;
}

export interface Backend {
  readonly gpu: DeviceInfo;
  /** True where nothing runs (the counting backend): reads return zeros, so results mean nothing. */
  readonly planning: boolean;
  readonly destroyed: boolean;
  allocate(bytes: number, what: string): DeviceBuffer;
  release(buffer: DeviceBuffer): void;
  /** Writes host data into a buffer, ordered after everything recorded before. */
  write(buffer: DeviceBuffer, data: ArrayBufferView, offset?: number): void;
  /** Copies `bytes` of `buffer` to the host, after everything recorded before. */
  read(buffer: DeviceBuffer, bytes: number, offset?: number): Promise<ArrayBuffer>;
  copy(src: DeviceBuffer, srcOffset: number, dst: DeviceBuffer, dstOffset: number, bytes: number): void;
  placeUniform(data: Uint8Array): BindingEntry['resource'];
  dispatch(program: KernelProgram, entries: BindingEntry[], x: number, y: number, z: number): void;
  sync(): Promise<void>;
  memory(): PoolStats;
  /** Starts a new peak measurement (memory().peakBytesInUse) from the bytes in use now. */
  resetPeak(): void;
}

let device: Backend | null = null;
let swapped: Backend | null = null;

/** The backend ops use now: the one `withBackend` put in place, else the initialized engine. */
export function backend(): Backend {
  const b = swapped ?? device;
  if (b === null || b.destroyed) throw new Error('The engine is not initialized: call `await init()` first.');
  return b;
}

/** Whether a planning backend is active: code that branches on values it reads back skips that work. */
export function planning(): boolean {
  return swapped?.planning ?? false;
}

/** The engine's own registration (engine/engine.ts init and shutdown). */
export function setDeviceBackend(b: Backend | null): void {
  device = b;
}

/** Whether `withBackend` has swapped a backend in (engine() refuses then, so no op reaches the device). */
export function backendSwapped(): boolean {
  return swapped !== null;
}

/**
 * Runs `fn` with `b` as the active backend and restores the previous one when `fn` (or its
 * promise) settles. Like scopes, such runs must not interleave with other async work on tensors.
 */
export function withBackend<T>(b: Backend, fn: () => T): T {
  const previous = swapped;
  swapped = b;
  let result: T;
  try {
    result = fn();
  } catch (e) {
    swapped = previous;
    throw e;
  }
  if (result instanceof Promise) {
    return result.finally(() => {
      swapped = previous;
    }) as T;
  }
  swapped = previous;
  return result;
}
