// Timing of GPU work for the benchmarks, the same way for our engine and for a peer (tfjs) that
// owns its own device: a `TimedTarget` says how to flush what was recorded and how to wait.
//
// One measurement = `iterations` calls of `record()` recorded back to back, submitted, waited for.
// With the timestamp-query feature the time is the GPU's: an empty compute pass writing a
// timestamp is submitted before the work and another after it, so the interval covers exactly the
// work in queue order (Dawn may delay a submit until it has more to send; the timestamps are taken
// when the passes execute, so host recording time outside the work is not counted). Without the
// feature, wall-clock time from the first record to the end of the wait is used.
//
// Dawn quantizes timestamps to 2^16 ns unless the instance was created with
// 'disable-dawn-features=timestamp_quantization'; we detect that (both stamps multiples of 2^16)
// and say so. At the ~0.3-1 s per measurement we aim for, 65.5 us is below 0.03%.

import type { Engine } from '../engine/engine.ts';

export interface TimedTarget {
  device: GPUDevice;
  /** Use GPU timestamps (the device was created with 'timestamp-query'). */
  timestamps: boolean;
  /** Submits everything recorded so far. */
  flush(): void;
  /** Waits until everything submitted has finished (and throws what the target collected). */
  idle(): Promise<void>;
}

/** Our engine as a timed target: its device, its submit and its wait. */
export function engineTarget(eng: Engine): TimedTarget {
  return { device: eng.device, timestamps: eng.gpu.hasTimestampQuery, flush: () => eng.submit(), idle: () => eng.sync() };
}

export interface Timing {
  iterations: number;
  /** Milliseconds of the whole batch: GPU time where available, else wall clock. */
  ms: number;
  wallMs: number;
  source: 'gpu timestamps' | 'wall clock';
  /** The timestamps were multiples of 2^16 ns (Dawn's quantization is on). */
  quantized: boolean;
}

const QUANTUM = 65536n;

/** Two timestamps (before / after) per measurement, resolved and read back. */
class StampPair {
  private readonly querySet: GPUQuerySet;
  private readonly resolve: GPUBuffer;
  private readonly readback: GPUBuffer;

  constructor(private readonly device: GPUDevice) {
    this.querySet = device.createQuerySet({ type: 'timestamp', count: 2, label: 'bench timer' });
    this.resolve = device.createBuffer({ size: 16, usage: GPUBufferUsage.QUERY_RESOLVE | GPUBufferUsage.COPY_SRC }); // [2] u64
    this.readback = device.createBuffer({ size: 16, usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST }); // [2] u64
  }

  begin(): void {
    const enc = this.device.createCommandEncoder();
    enc.beginComputePass({ timestampWrites: { querySet: this.querySet, beginningOfPassWriteIndex: 0 } }).end();
    this.device.queue.submit([enc.finish()]);
  }

  end(): void {
    const enc = this.device.createCommandEncoder();
    enc.beginComputePass({ timestampWrites: { querySet: this.querySet, endOfPassWriteIndex: 1 } }).end();
    enc.resolveQuerySet(this.querySet, 0, 2, this.resolve, 0);
    enc.copyBufferToBuffer(this.resolve, 0, this.readback, 0, 16);
    this.device.queue.submit([enc.finish()]);
  }

  /** Nanoseconds between the stamps, and whether they look quantized. */
  async read(): Promise<{ ns: number; quantized: boolean }> {
    await this.readback.mapAsync(GPUMapMode.READ);
    const [t0, t1] = new BigUint64Array(this.readback.getMappedRange().slice(0));
    this.readback.unmap();
    return { ns: Number(t1 - t0), quantized: t0 % QUANTUM === 0n && t1 % QUANTUM === 0n };
  }

  destroy(): void {
    this.querySet.destroy();
    this.resolve.destroy();
    this.readback.destroy();
  }
}

const pairs = new WeakMap<GPUDevice, StampPair>();

/** Times `iterations` back-to-back calls of `record` (see the file comment). */
export async function timeBatch(target: TimedTarget, iterations: number, record: (i: number) => void): Promise<Timing> {
  await target.idle();
  let pair: StampPair | undefined;
  if (target.timestamps) {
    pair = pairs.get(target.device);
    if (!pair) pairs.set(target.device, (pair = new StampPair(target.device)));
  }
  const t0 = performance.now();
  pair?.begin();
  for (let i = 0; i < iterations; i++) record(i);
  target.flush();
  pair?.end();
  await target.idle();
  const wallMs = performance.now() - t0;
  if (!pair) return { iterations, ms: wallMs, wallMs, source: 'wall clock', quantized: false };
  const { ns, quantized } = await pair.read();
  // A zero or negative interval means the stamps are unusable here: fall back to the wall clock.
  if (!(ns > 0)) return { iterations, ms: wallMs, wallMs, source: 'wall clock', quantized };
  return { iterations, ms: ns / 1e6, wallMs, source: 'gpu timestamps', quantized };
}

/** Drops the timestamp resources of a device (call before destroying a peer's device). */
export function releaseTimer(device: GPUDevice): void {
  pairs.get(device)?.destroy();
  pairs.delete(device);
}

/** Default cap on iterations per measurement (tiny products on a fast GPU). */
const MAX_ITERATIONS = 50000;

export interface MeasureOptions {
  /** Seconds one measurement should take (the iteration count is chosen for it). */
  targetSeconds: number;
  /** Measurements to take; the fastest is reported (the machine may be shared). */
  repeats: number;
  /** Upper bound on iterations per measurement. */
  maxIterations?: number;
}

/**
 * Warm-up (pipeline creation, first-touch of buffers), a calibration run that grows until it takes
 * a measurable time, then `repeats` measurements of N iterations with N chosen so one takes about
 * `targetSeconds` (re-measured once with a rescaled N if the result came out much shorter than that:
 * a calibration slowed by load elsewhere). Returns the fastest measurement by per-iteration time.
 */
export async function measure(target: TimedTarget, record: (i: number) => void, o: MeasureOptions): Promise<Timing> {
  await timeBatch(target, 1, record); // warm-up
  let calib = await timeBatch(target, 1, record);
  // Grow the calibration batch until it is long enough that per-submit overheads do not dominate.
  const minCalibMs = Math.min(50, (o.targetSeconds * 1000) / 4);
  while (calib.ms < minCalibMs && calib.iterations < (o.maxIterations ?? MAX_ITERATIONS)) {
    const grow = Math.min(16, Math.max(2, Math.ceil(minCalibMs / Math.max(calib.ms, 0.01))));
    calib = await timeBatch(target, calib.iterations * grow, record);
  }
  const perIteration = calib.ms / calib.iterations;
  const n = Math.max(1, Math.min(o.maxIterations ?? MAX_ITERATIONS, Math.round((o.targetSeconds * 1000) / perIteration)));
  let best: Timing | null = null;
  for (let r = 0; r < o.repeats; r++) {
    const t = await timeBatch(target, n, record);
    if (!best || t.ms < best.ms) best = t;
  }
  // Too short (the calibration ran during a burst of load elsewhere): again with N rescaled.
  if (best!.ms < 0.6 * o.targetSeconds * 1000 && n < (o.maxIterations ?? MAX_ITERATIONS)) {
    const n2 = Math.min(o.maxIterations ?? MAX_ITERATIONS, Math.max(n + 1, Math.round((n * o.targetSeconds * 1000) / best!.ms)));
    const t = await timeBatch(target, n2, record);
    if (t.ms / n2 < best!.ms / best!.iterations) best = t;
  }
  return best!;
}
