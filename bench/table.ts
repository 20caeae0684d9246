// The benchmark table: pure formatting of measured numbers (tested in test/bench.test.ts).
//
//   shape | ours GFLOP/s | tfjs GFLOP/s | ours/tfjs | ours / FMA peak
//
// A cell is either a measurement or the reason there is none (a peer that cannot run, a result
// that failed its check); ratios are left blank when either side is missing.

export type Cell = { gflops: number; iterations: number } | { error: string };

export interface BenchRow {
  /** e.g. "512x512x512" or "8 x 256x256x256" (batch x MxNxK). */
  shape: string;
  ours: Cell;
  tfjs: Cell;
}

export interface ProbeLine {
  name: string;
  value: number;
  unit: string;
  detail: string;
}

export interface BenchReport {
  adapter: string;
  date: string;
  timer: string;
  rows: BenchRow[];
  probes: ProbeLine[];
  /** GFLOP/s of the FMA probe, or null when probes did not run. */
  fmaPeak: number | null;
  notes: string[];
}

export const COLUMNS = ['shape', 'ours GFLOP/s', 'tfjs GFLOP/s', 'ours/tfjs', 'ours / FMA peak'] as const;

/** Longest reason shown inside a cell; the full text goes to the notes under the table. */
const MAX_REASON = 36;

function gf(c: Cell): string {
  if ('error' in c) return c.error.length > MAX_REASON ? `${c.error.slice(0, MAX_REASON - 3)}...` : c.error;
  return c.gflops >= 100 ? c.gflops.toFixed(0) : c.gflops >= 10 ? c.gflops.toFixed(1) : c.gflops.toFixed(2);
}

function value(c: Cell): number | null {
  return 'error' in c ? null : c.gflops;
}

export function formatBenchTable(r: BenchReport): string {
  const lines: string[] = [];
  lines.push(`matmul benchmark on ${r.adapter}`);
  lines.push(`date: ${r.date}; timer: ${r.timer}`);
  lines.push('');
  const body = r.rows.map((row) => {
    const ours = value(row.ours);
    const tfjs = value(row.tfjs);
    return [
      row.shape,
      gf(row.ours),
      gf(row.tfjs),
      ours !== null && tfjs !== null && tfjs > 0 ? `${(ours / tfjs).toFixed(2)}x` : '-',
      ours !== null && r.fmaPeak ? `${((100 * ours) / r.fmaPeak).toFixed(1)}%` : '-',
    ];
  });
  const all = [[...COLUMNS], ...body];
  const widths = COLUMNS.map((_, c) => Math.max(...all.map((cells) => cells[c].length)));
  const fmt = (cells: string[]) => cells.map((s, c) => (c === 0 ? s.padEnd(widths[c]) : s.padStart(widths[c]))).join(' | ');
  lines.push(fmt(all[0]));
  lines.push(widths.map((w) => '-'.repeat(w)).join('-|-'));
  for (const cells of body) lines.push(fmt(cells));
  if (r.probes.length) {
    lines.push('');
    const w = Math.max(...r.probes.map((p) => p.name.length));
    for (const p of r.probes) lines.push(`${`${p.name}:`.padEnd(w + 1)} ${p.value.toFixed(1)} ${p.unit}  (${p.detail})`);
  }
  const reasons = new Set<string>();
  for (const row of r.rows) for (const c of [row.ours, row.tfjs]) if ('error' in c && c.error.length > MAX_REASON) reasons.add(c.error);
  const notes = [...r.notes, ...[...reasons].map((s) => `n/a: ${s}`)];
  if (notes.length) {
    lines.push('');
    for (const n of notes) lines.push(`note: ${n}`);
  }
  return lines.join('\n');
}
