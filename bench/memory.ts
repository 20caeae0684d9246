// Planned against measured memory of the StyleGAN2 step that nets/stylegan2_plan.ts plans (W+ and
// noise gradients, random config-f weights), per size, on this adapter:
//   planned peak   the counting backend's peak of bytes in use during the step (mirroring this device);
//   measured peak  the WebGPU pool's peak of bytes in use during the same step (after one warm-up);
//   pool           bytes of buffers the pool holds after the steps (in use + kept for reuse), planned
//                  and measured (the measured one includes what earlier sizes left in the pool);
//   RSS growth     the process's resident memory over the steps: on a CPU adapter device memory is
//                  host memory, so this also shows what lives outside the pool (staging, pipelines,
//                  the driver's own allocations, host arrays).
// Run with `sgilo bench memory`.

import { describeAdapter } from '../engine/device.ts';
import type { Engine } from '../engine/engine.ts';
import { StyleGAN2, configF } from '../nets/stylegan2.ts';
import { measurePeakBytes, planStyleGAN2Memory, synthesisStep } from '../nets/stylegan2_plan.ts';

export interface MemoryBenchOptions {
  /** Image sides of the config-f generators (default [32, 64, 128]). */
  sizes?: number[];
  batch?: number;
  log?: (line: string) => void;
}

const MIB = 2 ** 20;
const mib = (b: number) => (b / MIB).toFixed(1);

function rss(): number {
  const p = (globalThis as { process?: { memoryUsage?: () => { rss: number } } }).process;
  return p?.memoryUsage?.().rss ?? NaN;
}

export async function runMemoryBench(eng: Engine, options: MemoryBenchOptions = {}): Promise<void> {
  const log = options.log ?? console.log;
  const batch = options.batch ?? 1;
  log(`StyleGAN2 config-f step (W+, noise gradients), batch ${batch}, on ${describeAdapter(eng.gpu.adapter)}; MiB\n`);
  const head = ['size', 'planned peak', 'measured peak', 'planned pool', 'measured pool', 'RSS growth', 'step s'];
  const rows: string[][] = [];
  for (const size of options.sizes ?? [32, 64, 128]) {
    const c = configF(size);
    const plan = await planStyleGAN2Memory(c, batch, { device: eng.gpu });
    const rss0 = rss();
    const pool0 = eng.memory().bytesAllocated;
    const gen = StyleGAN2.withShapes(c);
    try {
      await synthesisStep(gen, batch);
      const t0 = performance.now();
      const m = await measurePeakBytes(() => synthesisStep(gen, batch));
      const seconds = (performance.now() - t0) / 1000;
      const measuredPool = eng.memory().bytesAllocated - pool0;
      rows.push([String(size), mib(plan.passPeakBytes), mib(m.peakBytes - m.startBytes), mib(plan.poolBytes), mib(measuredPool), mib(rss() - rss0), seconds.toFixed(1)]);
    } finally {
      gen.dispose();
    }
  }
  const all = [head, ...rows];
  const w = head.map((_, i) => Math.max(...all.map((r) => r[i].length)));
  const line = (r: string[]) => r.map((c, i) => c.padStart(w[i])).join('  ');
  log([line(head), w.map((n) => '-'.repeat(n)).join('  '), ...rows.map(line)].join('\n'));
  log('\nmeasured pool: buffers the pool created during the row (it keeps freed ones; earlier rows leave theirs to reuse).');
}
