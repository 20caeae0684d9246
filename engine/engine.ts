// The engine: one GPU device, its buffer pool, and the command recorder.
//
// Recording model (llm.c/gpu.cpp style): ops append dispatches to one command encoder and one
// compute pass; nothing is submitted until someone reads a tensor back, calls `sync()`, uploads
// data (queue writes run before unsubmitted commands, so we submit first), or the number of
// recorded dispatches reaches `autoSubmitEvery` (which bounds the encoder's CPU memory in long
// loops). Uniform parameters of all dispatches of one submit live in a few 64 KiB arena buffers,
// written once just before the submit; queue order makes reusing them for the next submit safe.
//
// Validation errors from WebGPU arrive asynchronously; they are collected and thrown, with the
// kernel's name, from the next `sync()` or read, so a bad kernel never yields silent garbage.
//
// The engine is the WebGPU implementation of the backend seam (engine/backend.ts); `init()` makes it
// the active backend.

import { acquireGpu, type AcquireOptions, type GpuContext } from './device.ts';
import { BufferPool, type PoolStats } from './buffer_pool.ts';
import { backendSwapped, setDeviceBackend, type Backend, type BindingEntry, type DeviceBuffer, type KernelProgram } from './backend.ts';
import { Profiler, type KernelTime } from './profiler.ts';

const ARENA_BYTES = 64 * 1024;

class UniformArena {
  private chunks: { gpu: GPUBuffer; cpu: Uint8Array }[] = [];
  private chunk = 0;
  private offset = 0;

  constructor(
    private readonly device: GPUDevice,
    private readonly align: number,
  ) {}

  /** Reserves space for `data` and returns where it will live on the GPU. */
  place(data: Uint8Array): { buffer: GPUBuffer; offset: number; size: number } {
    if (data.byteLength > ARENA_BYTES) throw new RangeError(`uniform block of ${data.byteLength} bytes exceeds ${ARENA_BYTES}`);
    if (this.offset + data.byteLength > ARENA_BYTES) {
      this.chunk++;
      this.offset = 0;
    }
    if (this.chunk === this.chunks.length) {
      const gpu = this.device.createBuffer({ size: ARENA_BYTES, usage: GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST });
      this.chunks.push({ gpu, cpu: new Uint8Array(ARENA_BYTES) });
    }
    const c = this.chunks[this.chunk];
    c.cpu.set(data, this.offset);
    const placed = { buffer: c.gpu, offset: this.offset, size: data.byteLength };
    this.offset += Math.ceil(data.byteLength / this.align) * this.align;
    return placed;
  }

  /** Uploads the used part of every chunk; call right before submitting. */
  upload(queue: GPUQueue): void {
    for (let i = 0; i <= this.chunk && i < this.chunks.length; i++) {
      const used = i < this.chunk ? ARENA_BYTES : this.offset;
      if (used > 0) queue.writeBuffer(this.chunks[i].gpu, 0, this.chunks[i].cpu, 0, used);
    }
    this.chunk = 0;
    this.offset = 0;
  }

  destroy(): void {
    for (const c of this.chunks) c.gpu.destroy();
    this.chunks = [];
  }
}

export interface EngineOptions extends AcquireOptions {
  /** Submit automatically after this many recorded dispatches (default 512). */
  autoSubmitEvery?: number;
}

export class Engine implements Backend {
  readonly planning = false;
  readonly device: GPUDevice;
  readonly pool: BufferPool;
  private encoder: GPUCommandEncoder | null = null;
  private pass: GPUComputePassEncoder | null = null;
  private readonly arena: UniformArena;
  private recorded = 0;
  private readonly autoSubmitEvery: number;
  private readonly errors: string[] = [];
  private readonly pendingChecks: Promise<void>[] = [];
  /** Number of submits so far (benchmarks and tests count them). */
  submits = 0;
  destroyed = false;
  /** Open while `startProfile()` .. `stopProfile()`: per-dispatch GPU timestamps. */
  private profiler: Profiler | null = null;
  private profileSubmitsAtStart = 0;

  constructor(
    readonly gpu: GpuContext,
    options: EngineOptions = {},
  ) {
    this.device = gpu.device;
    const usage = GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST;
    this.pool = new BufferPool({ create: (size) => this.device.createBuffer({ size, usage }), destroy: (b) => b.destroy() }, Math.min(gpu.limits.maxStorageBufferBindingSize, gpu.limits.maxBufferSize));
    this.arena = new UniformArena(this.device, gpu.limits.minUniformBufferOffsetAlignment);
    this.autoSubmitEvery = options.autoSubmitEvery ?? 512;
    this.device.addEventListener('uncapturederror', (ev) => {
      this.errors.push((ev as GPUUncapturedErrorEvent).error.message);
    });
  }

  /** Runs `create` inside a validation error scope; a failure is reported, tagged, at the next sync. */
  checked<T>(tag: string, create: () => T): T {
    this.device.pushErrorScope('validation');
    const result = create();
    this.pendingChecks.push(
      this.device.popErrorScope().then((err) => {
        if (err) this.errors.push(`${tag}: ${err.message}`);
      }),
    );
    return result;
  }

  allocate(bytes: number, what: string): GPUBuffer {
    return this.pool.acquire(bytes, what);
  }

  release(buffer: DeviceBuffer): void {
    this.pool.release(buffer as GPUBuffer);
  }

  placeUniform(data: Uint8Array): GPUBufferBinding {
    return this.arena.place(data);
  }

  /** Records one dispatch of a reflected entry point, building its pipeline on first use on this device. */
  dispatch(program: KernelProgram, entries: BindingEntry[], x: number, y: number, z: number): void {
    const p = program.gpu !== null && program.gpu.device === this.device ? program.gpu : this.buildPipeline(program);
    const bindGroup = this.device.createBindGroup({ layout: p.layout, entries: entries as GPUBindGroupEntry[] });
    this.recordDispatch(p.pipeline, bindGroup, x, y, z, program.key);
  }

  private buildPipeline(program: KernelProgram): NonNullable<KernelProgram['gpu']> {
    const device = this.device;
    const layout = device.createBindGroupLayout({
      label: program.key,
      entries: program.slots.map((s) => ({
        binding: s.binding,
        visibility: GPUShaderStage.COMPUTE,
        buffer: { type: s.kind === 'uniform' ? 'uniform' : s.kind === 'read' ? 'read-only-storage' : 'storage' },
      })),
    });
    const pipeline = this.checked(`pipeline ${program.key}`, () =>
      device.createComputePipeline({
        label: program.key,
        layout: device.createPipelineLayout({ bindGroupLayouts: [layout] }),
        compute: { module: device.createShaderModule({ label: program.key, code: program.code }), entryPoint: program.entry, ...(program.constants ? { constants: program.constants } : {}) },
      }),
    );
    program.gpu = { device, pipeline, layout };
    return program.gpu;
  }

  private computePass(): GPUComputePassEncoder {
    if (!this.encoder) this.encoder = this.device.createCommandEncoder();
    if (!this.pass) this.pass = this.encoder.beginComputePass();
    return this.pass;
  }

  recordDispatch(pipeline: GPUComputePipeline, bindGroup: GPUBindGroup, x: number, y: number, z: number, label = 'dispatch'): void {
    if (this.profiler) return this.recordProfiledDispatch(this.profiler, pipeline, bindGroup, x, y, z, label);
    const pass = this.computePass();
    pass.setPipeline(pipeline);
    pass.setBindGroup(0, bindGroup);
    pass.dispatchWorkgroups(x, y, z);
    if (++this.recorded >= this.autoSubmitEvery) this.submit();
  }

  /** One pass per dispatch, with timestamps at its beginning and end (engine/profiler.ts). */
  private recordProfiledDispatch(profiler: Profiler, pipeline: GPUComputePipeline, bindGroup: GPUBindGroup, x: number, y: number, z: number, label: string): void {
    if (profiler.full) this.submit();
    if (this.pass) {
      this.pass.end();
      this.pass = null;
    }
    if (!this.encoder) this.encoder = this.device.createCommandEncoder();
    const pass = this.encoder.beginComputePass({ timestampWrites: profiler.nextPass(label) });
    pass.setPipeline(pipeline);
    pass.setBindGroup(0, bindGroup);
    pass.dispatchWorkgroups(x, y, z);
    pass.end();
    if (++this.recorded >= this.autoSubmitEvery) this.submit();
  }

  /** Starts timing every dispatch (needs the timestamp-query feature); see engine/profiler.ts. */
  startProfile(): void {
    if (!this.gpu.hasTimestampQuery) throw new Error(`profiling needs the timestamp-query feature, which ${this.gpu.adapter.description} does not offer`);
    if (this.profiler) throw new Error('a profile is already open');
    this.submit();
    this.profiler = new Profiler(this.device);
    this.profileSubmitsAtStart = this.submits;
  }

  /** Ends the profile: per-kernel GPU time (slowest first), dispatch and submit counts. */
  async stopProfile(): Promise<{ kernels: KernelTime[]; dispatches: number; submits: number }> {
    const profiler = this.profiler;
    if (!profiler) throw new Error('no profile is open: call startProfile() first');
    // Work still being recorded belongs to the profile and is submitted by the sync below.
    const submits = this.submits - this.profileSubmitsAtStart + (this.encoder ? 1 : 0);
    await this.sync();
    this.profiler = null;
    const kernels = await profiler.results();
    profiler.destroy();
    return { kernels, dispatches: profiler.dispatches, submits };
  }

  recordCopy(src: DeviceBuffer, srcOffset: number, dst: DeviceBuffer, dstOffset: number, bytes: number): void {
    if (this.pass) {
      this.pass.end();
      this.pass = null;
    }
    if (!this.encoder) this.encoder = this.device.createCommandEncoder();
    this.encoder.copyBufferToBuffer(src as GPUBuffer, srcOffset, dst as GPUBuffer, dstOffset, bytes);
  }

  copy(src: DeviceBuffer, srcOffset: number, dst: DeviceBuffer, dstOffset: number, bytes: number): void {
    this.recordCopy(src, srcOffset, dst, dstOffset, bytes);
  }

  /** Submits everything recorded so far. */
  submit(): void {
    if (!this.encoder) return;
    if (this.pass) this.pass.end();
    this.arena.upload(this.device.queue);
    const afterSubmit = this.profiler?.resolveInto(this.encoder);
    this.device.queue.submit([this.encoder.finish()]);
    afterSubmit?.();
    this.encoder = null;
    this.pass = null;
    this.recorded = 0;
    this.submits++;
  }

  /** Writes host data into a buffer, ordered after everything recorded before the call. */
  write(buffer: DeviceBuffer, data: ArrayBufferView, offset = 0): void {
    this.submit();
    this.device.queue.writeBuffer(buffer as GPUBuffer, offset, data.buffer, data.byteOffset, data.byteLength);
  }

  /** Submits, waits for the GPU, and throws any validation error collected so far. */
  async sync(): Promise<void> {
    this.submit();
    await this.device.queue.onSubmittedWorkDone();
    await this.throwCollectedErrors();
  }

  private async throwCollectedErrors(): Promise<void> {
    await Promise.all(this.pendingChecks.splice(0));
    if (this.errors.length) {
      // Root causes (tagged pipeline/shader failures) first, then the errors they led to.
      const all = this.errors.splice(0).sort((a, b) => Number(b.startsWith('pipeline ')) - Number(a.startsWith('pipeline ')));
      throw new Error(`WebGPU reported ${all.length} error(s):\n${all.join('\n')}`);
    }
  }

  /** Copies `bytes` of `buffer` to the host. Submits pending work first. */
  async read(buffer: DeviceBuffer, bytes: number, offset = 0): Promise<ArrayBuffer> {
    const staging = this.device.createBuffer({ size: Math.ceil(bytes / 4) * 4, usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST });
    this.recordCopy(buffer, offset, staging, 0, staging.size);
    this.submit();
    try {
      await staging.mapAsync(GPUMapMode.READ);
      const copy = staging.getMappedRange().slice(0, bytes);
      staging.unmap();
      await this.throwCollectedErrors();
      return copy;
    } finally {
      staging.destroy();
    }
  }

  memory(): PoolStats {
    return this.pool.snapshot();
  }

  resetPeak(): void {
    this.pool.resetPeak();
  }

  destroy(): void {
    if (this.destroyed) return;
    this.destroyed = true;
    this.pass = null;
    this.encoder = null;
    this.pool.trim();
    this.arena.destroy();
    this.gpu.destroy();
  }
}

let current: Engine | null = null;

/** Acquires a device (once) and makes it the engine every op uses. */
export async function init(options: EngineOptions = {}): Promise<Engine> {
  if (current && !current.destroyed) return current;
  current = new Engine(await acquireGpu(options), options);
  setDeviceBackend(current);
  return current;
}

export function engine(): Engine {
  if (!current || current.destroyed) throw new Error('The engine is not initialized: call `await init()` first.');
  if (backendSwapped()) throw new Error('engine(): another backend is active (withBackend); ops reach the device through backend()');
  return current;
}

export function isInitialized(): boolean {
  return current !== null && !current.destroyed;
}

/** Destroys the device so the process can exit (Dawn keeps Node alive while a device lives). */
export function shutdown(): void {
  current?.destroy();
  current = null;
  setDeviceBackend(null);
}
