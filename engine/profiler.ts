// Per-kernel GPU time, for "where does the time go" tables (bench, `sgilo profile`).
//
// While a profile is open, every dispatch gets a compute pass of its own whose beginning and end
// write GPU timestamps (the timestamp-query feature); each dispatch's label is the kernel's key.
// Query slots are resolved into a buffer at every submit and read back asynchronously, so
// recording never waits on the GPU. Profiling changes what it measures a little: one pass per
// dispatch instead of one pass per submit (on lavapipe each pass boundary is a barrier anyway).
//
// Also counted while open (by the engine): dispatches and submits, so a table can say "N dispatches, M submits
// per step". Without timestamp-query, `start()` throws: per-dispatch times cannot be had from
// wall clock without synchronizing every dispatch, which would measure the host instead.

/** Timestamp pairs per query set: one set is resolved per submit (or when full). */
const PAIRS = 1024;

export interface KernelTime {
  kernel: string;
  dispatches: number;
  /** Summed GPU nanoseconds between each dispatch's pass begin and end. */
  ns: number;
}

export class Profiler {
  private readonly querySet: GPUQuerySet;
  private used = 0;
  private labels: string[] = [];
  private readonly pending: Promise<void>[] = [];
  private readonly totals = new Map<string, KernelTime>();
  dispatches = 0;

  constructor(private readonly device: GPUDevice) {
    this.querySet = device.createQuerySet({ type: 'timestamp', count: 2 * PAIRS, label: 'profiler' });
  }

  /** True when the query set is full: the engine must submit before the next dispatch. */
  get full(): boolean {
    return this.used === PAIRS;
  }

  /** The timestampWrites for the next dispatch's pass, and its label recorded. */
  nextPass(label: string): GPUComputePassTimestampWrites {
    const i = this.used++;
    this.labels.push(label);
    this.dispatches++;
    return { querySet: this.querySet, beginningOfPassWriteIndex: 2 * i, endOfPassWriteIndex: 2 * i + 1 };
  }

  /** Called by the engine with the encoder it is about to finish: resolves the used slots. */
  resolveInto(encoder: GPUCommandEncoder): (() => void) | null {
    if (this.used === 0) return null;
    const n = this.used;
    const labels = this.labels;
    const resolve = this.device.createBuffer({ size: 16 * n, usage: GPUBufferUsage.QUERY_RESOLVE | GPUBufferUsage.COPY_SRC }); // [n, 2] u64
    const readback = this.device.createBuffer({ size: 16 * n, usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST }); // [n, 2] u64
    encoder.resolveQuerySet(this.querySet, 0, 2 * n, resolve, 0);
    encoder.copyBufferToBuffer(resolve, 0, readback, 0, 16 * n);
    this.used = 0;
    this.labels = [];
    // The map must be requested after the submit; the engine calls this right after submitting.
    return () => {
      this.pending.push(
        readback.mapAsync(GPUMapMode.READ).then(() => {
          const stamps = new BigUint64Array(readback.getMappedRange());
          for (let i = 0; i < n; i++) {
            const row = this.totals.get(labels[i]) ?? { kernel: labels[i], dispatches: 0, ns: 0 };
            row.dispatches++;
            // A pass whose stamps came back out of order (seen on some drivers) counts as 0.
            row.ns += Math.max(0, Number(stamps[2 * i + 1] - stamps[2 * i]));
            this.totals.set(labels[i], row);
          }
          readback.unmap();
          readback.destroy();
          resolve.destroy();
        }),
      );
    };
  }

  /** Waits for every read-back and returns the per-kernel totals, slowest first. */
  async results(): Promise<KernelTime[]> {
    await Promise.all(this.pending.splice(0));
    return [...this.totals.values()].sort((a, b) => b.ns - a.ns);
  }

  destroy(): void {
    this.querySet.destroy();
  }
}

/** A plain-text table of per-kernel times: kernel, dispatches, ms, % of the total, us each. */
export function formatProfile(rows: readonly KernelTime[], perStep = 1, limit = 25): string {
  const total = rows.reduce((s, r) => s + r.ns, 0);
  const lines = [`| kernel | dispatches${perStep > 1 ? '/step' : ''} | ms${perStep > 1 ? '/step' : ''} | % | us/dispatch |`, '|---|---|---|---|---|'];
  for (const r of rows.slice(0, limit)) {
    lines.push(`| ${r.kernel} | ${fmt(r.dispatches / perStep)} | ${(r.ns / 1e6 / perStep).toFixed(2)} | ${((100 * r.ns) / Math.max(total, 1)).toFixed(1)} | ${(r.ns / 1e3 / r.dispatches).toFixed(1)} |`);
  }
  if (rows.length > limit) {
    const rest = rows.slice(limit);
    const ns = rest.reduce((s, r) => s + r.ns, 0);
    const d = rest.reduce((s, r) => s + r.dispatches, 0);
    lines.push(`| (${rest.length} more kernels) | ${fmt(d / perStep)} | ${(ns / 1e6 / perStep).toFixed(2)} | ${((100 * ns) / Math.max(total, 1)).toFixed(1)} | |`);
  }
  lines.push(`| **total** | ${fmt(rows.reduce((s, r) => s + r.dispatches, 0) / perStep)} | ${(total / 1e6 / perStep).toFixed(2)} | 100 | |`);
  return lines.join('\n');
}

function fmt(x: number): string {
  return Number.isInteger(x) ? String(x) : x.toFixed(1);
}
