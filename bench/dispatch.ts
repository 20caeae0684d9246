// Dispatch throughput of many small ops: what the engine's per-dispatch bookkeeping costs on the
// CPU, apart from any kernel's own work. A chain of `ops` unary ops on a 256-element tensor
// (y = neg(y), the previous y disposed, so every op also takes and returns one pooled buffer) is
// recorded and then synced; the table gives microseconds per op for
//   record      the JavaScript side alone: tensor from the pool, uniform packing, bind group,
//               the dispatch recorded (and the automatic submit every 512 dispatches);
//   record+run  the same plus the sync, so the device executes every dispatch;
// each the median over `repeats` chains after one warm-up chain, and the same chain recorded on
// the counting backend (engine/counting_backend.ts: validated and counted, run nowhere), which is
// the cost of the engine's JavaScript without WebGPU's. Run with `sgilo bench dispatch`.

import { describeAdapter } from '../engine/device.ts';
import type { Engine } from '../engine/engine.ts';
import { withBackend } from '../engine/backend.ts';
import { CountingBackend } from '../engine/counting_backend.ts';
import { scope, tensor, type Tensor } from '../engine/tensor.ts';
import { neg } from '../engine/ops/elementwise.ts';

export interface DispatchBenchOptions {
  /** Ops per chain (default 20000). */
  ops?: number;
  /** Timed chains per row (default 7). */
  repeats?: number;
  log?: (line: string) => void;
}

export interface DispatchRow {
  what: string;
  /** Median microseconds per op. */
  usPerOp: number;
  /** Fastest chain, microseconds per op. */
  bestUsPerOp: number;
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

/** One chain of `ops` negations; returns [record ms, record+sync ms]. */
async function chain(sync: () => Promise<void>, ops: number): Promise<[number, number]> {
  return scope(async () => {
    let y: Tensor = tensor(new Float32Array(256).fill(1), [256]);
    await sync();
    const t0 = performance.now();
    for (let i = 0; i < ops; i++) {
      const next = neg(y);
      y.dispose();
      y = next;
    }
    const t1 = performance.now();
    await sync();
    const t2 = performance.now();
    return [t1 - t0, t2 - t0] as [number, number];
  });
}

/** Times chains on `sync`'s engine and returns the two rows (record, record+run). */
export async function timeDispatch(label: string, sync: () => Promise<void>, ops: number, repeats: number): Promise<DispatchRow[]> {
  await chain(sync, Math.min(ops, 2000)); // pipelines, pool buckets
  const rec: number[] = [];
  const all: number[] = [];
  for (let r = 0; r < repeats; r++) {
    const [a, b] = await chain(sync, ops);
    rec.push((1000 * a) / ops);
    all.push((1000 * b) / ops);
  }
  return [
    { what: `${label} record`, usPerOp: median(rec), bestUsPerOp: Math.min(...rec) },
    { what: `${label} record+run`, usPerOp: median(all), bestUsPerOp: Math.min(...all) },
  ];
}

export function formatDispatchRows(rows: DispatchRow[]): string {
  const head = ['workload', 'us/op (median)', 'us/op (best)', 'ops/s (median)'];
  const body = rows.map((r) => [r.what, r.usPerOp.toFixed(2), r.bestUsPerOp.toFixed(2), Math.round(1e6 / r.usPerOp).toLocaleString('en-US')]);
  const all = [head, ...body];
  const w = head.map((_, i) => Math.max(...all.map((r) => r[i].length)));
  const line = (r: string[]) => r.map((c, i) => (i === 0 ? c.padEnd(w[i]) : c.padStart(w[i]))).join('  ');
  return [line(head), w.map((n) => '-'.repeat(n)).join('  '), ...body.map(line)].join('\n');
}

export async function runDispatchBench(eng: Engine, options: DispatchBenchOptions = {}): Promise<DispatchRow[]> {
  const ops = options.ops ?? 20000;
  const repeats = options.repeats ?? 7;
  const log = options.log ?? console.log;
  const rows = await timeDispatch('neg [256] chain', () => eng.sync(), ops, repeats);
  const counting = new CountingBackend(eng.gpu);
  rows.push((await withBackend(counting, () => timeDispatch('counting backend', () => counting.sync(), ops, repeats)))[0]);
  log(`dispatch throughput on ${describeAdapter(eng.gpu.adapter)}: ${ops} ops per chain, median of ${repeats} chains\n`);
  log(formatDispatchRows(rows));
  return rows;
}
