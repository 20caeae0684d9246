// `sgilo bench matmul --sweep`: GFLOP/s of the tiled matmul kernel (shaders/matmul_tiled.wgsl) per
// tile shape, forced on whatever the adapter is (engine/device.ts overrideKernelFamily), one column
// per square size. The tile shapes are the kernel's WGSL override constants, so each column is one
// shader text compiled into a pipeline per tile. Every product is spot-checked against the float64
// CPU product before it is timed (bench/contender.ts benchContender), so a wrong tile reports WRONG, not a
// number. Tiles the device cannot run (workgroup size or memory limits) are listed as skipped.

import { describeAdapter, overrideKernelFamily } from '../engine/device.ts';
import type { Engine } from '../engine/engine.ts';
import { HostRandom } from '../engine/reference/host.ts';
import { overrideMatmulTile, tileName, tileProblem, type MatmulTile } from '../engine/ops/matmul_tiled.ts';
import { benchContender } from './contender.ts';
import { flopsOf, prepareOurs, randomOperand, spotCheck, type MatmulShape } from './matmul.ts';
import type { Cell } from './table.ts';
import { type Timing } from './timing.ts';

/** The swept tiles: 64 to 128 wide workgroup tiles, 4x4 to 8x8 register tiles, k steps of 8 to 32, padding 0, 1 or 4. */
export const SWEEP_TILES: MatmulTile[] = [
  { tm: 4, tn: 4, wgX: 16, wgY: 16, bk: 8, pad: 4 },
  { tm: 4, tn: 4, wgX: 16, wgY: 16, bk: 16, pad: 4 },
  { tm: 4, tn: 4, wgX: 16, wgY: 16, bk: 32, pad: 4 },
  { tm: 4, tn: 4, wgX: 16, wgY: 16, bk: 16, pad: 1 },
  { tm: 8, tn: 8, wgX: 8, wgY: 8, bk: 16, pad: 4 },
  { tm: 8, tn: 8, wgX: 8, wgY: 8, bk: 32, pad: 4 },
  { tm: 8, tn: 8, wgX: 16, wgY: 16, bk: 8, pad: 0 },
  { tm: 8, tn: 8, wgX: 16, wgY: 16, bk: 8, pad: 4 },
  { tm: 8, tn: 8, wgX: 16, wgY: 16, bk: 16, pad: 4 },
  { tm: 8, tn: 8, wgX: 16, wgY: 16, bk: 32, pad: 4 },
  { tm: 8, tn: 4, wgX: 16, wgY: 16, bk: 16, pad: 4 },
  { tm: 4, tn: 8, wgX: 16, wgY: 16, bk: 16, pad: 4 },
  { tm: 4, tn: 4, wgX: 32, wgY: 32, bk: 16, pad: 4 },
  { tm: 8, tn: 4, wgX: 32, wgY: 16, bk: 16, pad: 4 },
];

const QUICK_TILES: MatmulTile[] = [
  { tm: 4, tn: 4, wgX: 8, wgY: 8, bk: 16, pad: 4 },
  { tm: 4, tn: 4, wgX: 16, wgY: 16, bk: 8, pad: 4 },
  { tm: 8, tn: 8, wgX: 8, wgY: 8, bk: 8, pad: 0 },
];

export interface SweepOptions {
  sizes: number[];
  tiles?: MatmulTile[];
  targetSeconds?: number;
  /** Three tiles that fit any adapter, short measurements: a path check on a CPU adapter. */
  quick?: boolean;
  log?: (line: string) => void;
}

export interface SweepRow {
  tile: string;
  cells: Cell[];
}

export async function runMatmulSweep(eng: Engine, options: SweepOptions): Promise<SweepRow[]> {
  const log = options.log ?? ((line: string) => console.log(line));
  const o = { targetSeconds: options.targetSeconds ?? (options.quick ? 0.05 : 0.15), repeats: 1 };
  const tiles = options.tiles ?? (options.quick ? QUICK_TILES : SWEEP_TILES);
  log(`matmul tile sweep (shaders/matmul_tiled.wgsl forced) on ${describeAdapter(eng.gpu.adapter)}; sizes ${options.sizes.map((n) => `${n}^3`).join(', ')}`);
  const rng = new HostRandom(99);
  const operands = options.sizes.map((n) => ({ n, a: randomOperand(rng, n * n), b: randomOperand(rng, n * n) }));
  const rows: SweepRow[] = [];
  const timings: Timing[] = [];
  const wrong: string[] = [];
  overrideKernelFamily('tiled');
  try {
    for (const t of tiles) {
      const problem = tileProblem(t);
      if (problem) {
        log(`  ${tileName(t)}: skipped (${problem})`);
        rows.push({ tile: tileName(t), cells: operands.map(() => ({ error: 'skipped' })) });
        continue;
      }
      overrideMatmulTile(t);
      const cells: Cell[] = [];
      for (const { n, a, b } of operands) {
        const s: MatmulShape = { batch: 1, M: n, N: n, K: n };
        const c = await benchContender(() => prepareOurs(eng, s, a, b), (got) => spotCheck(s, a, b, got), flopsOf(s), o, timings);
        if ('error' in c && c.error !== 'skipped') wrong.push(`${tileName(t)} at ${n}^3: ${c.error}`);
        cells.push(c);
      }
      rows.push({ tile: tileName(t), cells });
      log(`  ${tileName(t)}: ${cells.map((c) => ('error' in c ? c.error : `${c.gflops.toFixed(1)}`)).join(' | ')}`);
    }
  } finally {
    overrideMatmulTile(null);
    overrideKernelFamily(null);
  }
  log('');
  log(formatSweep(options.sizes, rows));
  log('tile: BMxBN / TMxTN per invocation / k step / padding; GFLOP/s, each the best of one measurement of back-to-back products');
  if (wrong.length) throw new Error(`tiled matmul failed its check against the CPU reference:\n${wrong.join('\n')}`);
  return rows;
}

/** The table of a sweep: a column per square size (n^3) or per named shape (the conv sweep's layers). */
export function formatSweep(sizes: readonly (number | string)[], rows: SweepRow[]): string {
  const name = (n: number | string) => (typeof n === 'number' ? `${n}^3` : n);
  const head = ['tile', ...sizes.map((n) => `${name(n)} GFLOP/s`)];
  const body = rows.map((r) => [r.tile, ...r.cells.map((c) => ('error' in c ? c.error.slice(0, 24) : c.gflops.toFixed(1)))]);
  const best = sizes.map((_, i) => {
    let top: SweepRow | null = null;
    let g = -1;
    for (const r of rows) {
      const c = r.cells[i];
      if (!('error' in c) && c.gflops > g) [top, g] = [r, c.gflops];
    }
    return top ? `${top.tile} (${g.toFixed(1)})` : '-';
  });
  const all = [head, ...body];
  const w = head.map((_, i) => Math.max(...all.map((r) => r[i].length)));
  const line = (r: string[]) => r.map((s, i) => (i === 0 ? s.padEnd(w[i]) : s.padStart(w[i]))).join(' | ');
  return [line(head), w.map((n) => '-'.repeat(n)).join('-|-'), ...body.map(line), '', ...sizes.map((n, i) => `best at ${name(n)}: ${best[i]}`)].join('\n');
}
