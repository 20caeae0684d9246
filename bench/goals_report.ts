// The performance-goals report (`sgilo bench goals`): pure formatting and judging of
// numbers measured elsewhere (bench/goals.ts, bench/end_to_end.ts); tested in test/bench.test.ts.
//
// Sections: 1. large shapes (goal: >= 50% of the FMA peak AND >= 5x tfjs), 2. the nets' small
// shapes (goal: >= 3x tfjs) and the fixed per-dispatch cost, 3. end to end (informational), 4. the
// PyTorch CPU peer (goal: PyTorch time / engine time >= 1; bench/torch_rows.ts), then the summary
// line `goals: N PASS, M FAIL` and one line per FAIL saying by how much it misses, and the torch
// rows' own summary line.

import type { Cell } from './table.ts';
import type { KernelTime } from '../engine/profiler.ts';
import { formatProfile } from '../engine/profiler.ts';

export interface GoalRow {
  shape: string;
  /** Nominal MFLOP of one call (what GFLOP/s is computed from). */
  mflop: number;
  ours: Cell;
  tfjs: Cell;
  /** Minimum fraction of the FMA peak (0.5 for large shapes), or null for none. */
  minPeak: number | null;
  /** Minimum ours / tfjs. */
  minRatio: number;
}

export interface DispatchCost {
  /** What was recorded (e.g. "affine on 1 element"). */
  what: string;
  /** Dispatches recorded back to back per measurement. */
  dispatches: number;
  submits: number;
  gpuUsPerDispatch: number;
  hostUsPerDispatch: number;
  /** 'gpu timestamps' or 'wall clock'. */
  source: string;
  runs: number;
}

export interface EndToEndRow {
  workload: string;
  /** Median per-pass (or per-step) time: GPU timestamps where available; null where not measured. */
  gpuMs: number | null;
  wallMs: number;
  runs: number;
  /** Dispatches and submits per pass (profiled), null where not counted. */
  dispatches: number | null;
  submits: number | null;
  note?: string;
}

/** A workload timed on the engine and in the PyTorch CPU peer (bench/torch_rows.ts). */
export interface TorchRow {
  workload: string;
  /** Medians over the alternated runs, ms per step (or pass); null where not measured. */
  engineMs: number | null;
  torchMs: number | null;
  runs: number;
  /** The peer's worst differences from the engine's outputs (max|a-b|/max|b|, rms(a-b)/rms(b)), and what it compared. */
  maxRelErr: number | null;
  relRms: number | null;
  checked: string;
  /** The row's check gate: the measure, its bound and why (bench/torch_rows.ts CHECK_GATES). */
  gate?: string;
  /** Samples per step (training rows: shown as samples/s too). */
  samples?: number;
  torchRssBytes?: number;
  /** config-f: the engine pool's peak bytes in use and the process's peak RSS during the runs. */
  enginePoolBytes?: number;
  engineRssBytes?: number;
  note?: string;
  /** Why the row has no numbers (the peer or the engine failed, or the outputs disagreed). */
  error?: string;
}

/** The torch section: the rows, or the one reason they were all skipped. */
export interface TorchSection {
  /** e.g. "PyTorch 1.13.1 (/usr/bin/python3), 2 threads"; or the skip reason. */
  peer: string;
  skipped: string | null;
  rows: TorchRow[];
}

export interface GoalsReport {
  adapter: string;
  date: string;
  mode: 'full' | 'quick';
  timer: string;
  fmaPeak: number;
  fmaDetail: string;
  tfjs: string;
  large: GoalRow[];
  small: GoalRow[];
  dispatch: DispatchCost | null;
  endToEnd: EndToEndRow[];
  /** The SGILO step's per-kernel profile (summed over `steps` steps), if it was profiled. */
  sgiloProfile: { title: string; kernels: KernelTime[]; steps: number } | null;
  /** The PyTorch CPU peer's rows; absent or null: not requested. */
  torch?: TorchSection | null;
  notes: string[];
}

export interface Verdict {
  pass: boolean;
  /** How the row misses its goal (empty when it passes). */
  misses: string[];
}

const num = (c: Cell): number | null => ('error' in c ? null : c.gflops);

export function judge(row: GoalRow, fmaPeak: number): Verdict {
  const misses: string[] = [];
  const ours = num(row.ours);
  const tfjs = num(row.tfjs);
  if (ours === null) return { pass: false, misses: [`no number of ours (${'error' in row.ours ? row.ours.error : ''})`] };
  if (row.minPeak !== null) {
    const frac = ours / fmaPeak;
    if (!(frac >= row.minPeak)) misses.push(`${pct(frac)} of peak, goal ${pct(row.minPeak)}`);
  }
  if (tfjs === null) misses.push(`no tfjs number (${'error' in row.tfjs ? row.tfjs.error : ''})`);
  else if (!(ours / tfjs >= row.minRatio)) misses.push(`${(ours / tfjs).toFixed(2)}x tfjs, goal ${row.minRatio}x`);
  return { pass: misses.length === 0, misses };
}

function pct(f: number): string {
  const p = 100 * f;
  return `${p >= 10 ? p.toFixed(0) : p.toFixed(1)}%`;
}

function gf(c: Cell): string {
  if ('error' in c) return c.error.length > 30 ? `${c.error.slice(0, 27)}...` : c.error;
  return c.gflops >= 100 ? c.gflops.toFixed(0) : c.gflops >= 10 ? c.gflops.toFixed(1) : c.gflops >= 1 ? c.gflops.toFixed(2) : c.gflops.toPrecision(2);
}

function goalText(r: GoalRow): string {
  return [r.minPeak !== null ? `>=${pct(r.minPeak)} peak` : null, `>=${r.minRatio}x tfjs`].filter(Boolean).join(', ');
}

/** A markdown table (header, separator, rows); cells must not contain '|'. */
export function markdownTable(head: string[], body: string[][]): string[] {
  const clean = (s: string) => s.replace(/\|/g, '/');
  return [`| ${head.join(' | ')} |`, `|${head.map(() => '---').join('|')}|`, ...body.map((r) => `| ${r.map(clean).join(' | ')} |`)];
}

export const GOAL_COLUMNS = ['shape', 'MFLOP', 'ours GFLOP/s', 'tfjs GFLOP/s', 'ours/tfjs', '% of peak', 'goal', 'PASS/FAIL'];

function goalTable(rows: GoalRow[], fmaPeak: number): string[] {
  const body = rows.map((r) => {
    const ours = num(r.ours);
    const tfjs = num(r.tfjs);
    return [
      r.shape,
      r.mflop >= 10 ? r.mflop.toFixed(0) : r.mflop >= 0.1 ? r.mflop.toFixed(2) : r.mflop.toPrecision(2),
      gf(r.ours),
      gf(r.tfjs),
      ours !== null && tfjs !== null && tfjs > 0 ? `${(ours / tfjs).toFixed(2)}x` : '-',
      ours !== null ? pct(ours / fmaPeak) : '-',
      goalText(r),
      judge(r, fmaPeak).pass ? 'PASS' : 'FAIL',
    ];
  });
  return markdownTable(GOAL_COLUMNS, body);
}

const ms = (x: number | null) => (x === null ? '-' : x >= 100 ? x.toFixed(0) : x >= 1 ? x.toFixed(2) : x.toFixed(3));

/** Share of `total` ms taken by n dispatches at `us` each. */
const share = (n: number | null, us: number | undefined, total: number | null) => (n === null || us === undefined || !total ? '-' : `${((100 * n * us) / 1000 / total).toFixed(0)}%`);

export function formatGoalsReport(r: GoalsReport): string {
  const L: string[] = [];
  L.push(`# Performance goals on ${r.adapter}`, '');
  L.push(`- date: ${r.date}`);
  L.push(`- mode: ${r.mode}${r.mode === 'quick' ? ' (tiny iteration counts and a subset of rows: a smoke test, not a measurement)' : ''}`);
  L.push(`- timer: ${r.timer}`);
  L.push(`- FMA peak (bench/probes.ts, this run): ${r.fmaPeak.toFixed(1)} GFLOP/s (${r.fmaDetail})`);
  L.push(`- peer: ${r.tfjs}`, '');

  L.push('## 1. Large shapes (>= 100 MFLOP per dispatch): goal >= 50% of the FMA peak and >= 5x tfjs', '');
  L.push(...goalTable(r.large, r.fmaPeak), '');
  L.push('## 2. The nets\' small shapes: goal >= 3x tfjs', '');
  L.push(...goalTable(r.small, r.fmaPeak), '');

  const d = r.dispatch;
  if (d) {
    L.push('### Fixed per-dispatch cost', '');
    L.push(
      ...markdownTable(
        ['recorded back to back', 'dispatches', 'submits', 'GPU us / dispatch', 'host (recording) us / dispatch', 'timer'],
        [[d.what, String(d.dispatches), String(d.submits), d.gpuUsPerDispatch.toFixed(2), d.hostUsPerDispatch.toFixed(2), `${d.source}, median of ${d.runs}`]],
      ),
      '',
    );
  }

  L.push('## 3. End to end (informational)', '');
  L.push(
    ...markdownTable(
      ['workload', 'GPU ms', 'wall ms', 'runs', 'dispatches', 'submits', 'dispatches x GPU cost', 'dispatches x host cost', 'note'],
      r.endToEnd.map((e) => [
        e.workload,
        ms(e.gpuMs),
        ms(e.wallMs),
        String(e.runs),
        e.dispatches === null ? '-' : fmtCount(e.dispatches),
        e.submits === null ? '-' : fmtCount(e.submits),
        share(e.dispatches, d?.gpuUsPerDispatch, e.gpuMs ?? e.wallMs),
        share(e.dispatches, d?.hostUsPerDispatch, e.wallMs),
        e.note ?? '',
      ]),
    ),
    '',
  );
  L.push('GPU ms: GPU timestamps around back-to-back passes (wall clock without timestamp-query); wall ms: host wall clock of the same runs.');
  L.push('"dispatches x GPU cost" and "dispatches x host cost": the share of the GPU (wall) time that the fixed per-dispatch cost above accounts for.', '');

  const p = r.sgiloProfile;
  if (p) {
    L.push(`### ${p.title}: per-kernel GPU time per step (profiled over ${p.steps} step${p.steps === 1 ? '' : 's'})`, '');
    L.push(formatProfile(p.kernels, p.steps, 12), '');
    const total = p.kernels.reduce((s, k) => s + k.ns, 0);
    const top = p.kernels[0];
    const dispatches = p.kernels.reduce((s, k) => s + k.dispatches, 0) / p.steps;
    if (top && total > 0) {
      L.push(`What dominates: ${top.kernel} (${((100 * top.ns) / total).toFixed(0)}% of the profiled GPU time); ${fmtCount(dispatches)} dispatches per step` +
        (d ? `, whose fixed cost is ${((dispatches * d.gpuUsPerDispatch) / 1000).toFixed(1)} ms GPU and ${((dispatches * d.hostUsPerDispatch) / 1000).toFixed(1)} ms host per step.` : '.'), '');
    }
  }

  if (r.torch) L.push(...torchSection(r.torch), '');

  if (r.notes.length) {
    L.push('## Notes', '');
    for (const n of r.notes) L.push(`- ${n}`);
    L.push('');
  }
  L.push(...summaryLines([...r.large, ...r.small], r.fmaPeak));
  if (r.torch) L.push(...torchSummary(r.torch));
  return L.join('\n') + '\n';
}

/** PyTorch time / engine time, or null where either is missing. */
export function torchRatio(row: TorchRow): number | null {
  return row.engineMs !== null && row.torchMs !== null && row.engineMs > 0 ? row.torchMs / row.engineMs : null;
}

const gib = (b: number | undefined) => (b === undefined || !Number.isFinite(b) ? '-' : `${(b / 2 ** 30).toFixed(2)} GiB`);
const perSecond = (ms: number | null, samples: number | undefined) => (ms === null || samples === undefined ? '' : ` (${((1000 * samples) / ms).toFixed(0)} samples/s)`);

function torchSection(t: TorchSection): string[] {
  const L = ['## 4. PyTorch CPU peer: goal PyTorch time / engine time >= 1', '', `- peer: ${t.peer}`, ''];
  if (t.skipped !== null) return [...L, `skipped: ${t.skipped}`];
  const body = t.rows.map((r) => {
    const ratio = torchRatio(r);
    return [
      r.workload,
      r.engineMs === null ? '-' : `${ms(r.engineMs)}${perSecond(r.engineMs, r.samples)}`,
      r.torchMs === null ? '-' : `${ms(r.torchMs)}${perSecond(r.torchMs, r.samples)}`,
      ratio === null ? '-' : `${ratio.toFixed(2)}x`,
      r.maxRelErr === null ? '-' : r.maxRelErr.toExponential(1),
      r.relRms === null ? '-' : r.relRms.toExponential(1),
      String(r.runs),
      r.error ? `ERROR: ${r.error}` : ratio !== null && ratio >= 1 ? 'PASS' : 'FAIL',
    ];
  });
  L.push(...markdownTable(['workload', 'engine ms', 'PyTorch ms', 'PyTorch/engine', 'max rel. diff', 'rel. RMS diff', 'runs', 'PASS/FAIL'], body), '');
  L.push('ms per step (or pass), each side the median of its runs, the runs alternated (engine, PyTorch, engine, ...) in one process; wall clock on both sides.');
  L.push('max rel. diff and rel. RMS diff: the peer\'s outputs (a) against the engine\'s (b) on the same inputs, max|a - b| / max|b| and rms(a - b) / rms(b) per tensor (a round\'s losses: one tensor over its steps), worst of the row; a row beyond its gate (below) is an error.');
  for (const r of t.rows) {
    if (r.enginePoolBytes !== undefined || r.engineRssBytes !== undefined) {
      L.push('', `Memory, ${r.workload}: engine pool peak ${gib(r.enginePoolBytes)}, engine process peak RSS ${gib(r.engineRssBytes)} (measured from the start of the row); PyTorch process peak RSS ${gib(r.torchRssBytes)}.`);
    }
  }
  const checked = t.rows.filter((r) => r.checked);
  if (checked.length) L.push('', 'Compared:', ...checked.map((r) => `- ${r.workload}: ${r.checked}${r.gate ? `; gate: ${r.gate}` : ''}${r.note ? `; ${r.note}` : ''}`));
  return L;
}

/** `torch peer: N PASS, M FAIL` (errors count as FAIL), or the skip line. */
export function torchSummary(t: TorchSection): string[] {
  if (t.skipped !== null) return [`torch peer: skipped (${t.skipped})`];
  const fails = t.rows.filter((r) => r.error || !((torchRatio(r) ?? 0) >= 1));
  return [
    `torch peer: ${t.rows.length - fails.length} PASS, ${fails.length} FAIL`,
    ...fails.map((r) => `- FAIL ${r.workload}: ${r.error ? r.error : `PyTorch/engine ${torchRatio(r)!.toFixed(2)}x, goal 1x`}`),
  ];
}

function fmtCount(x: number): string {
  return Number.isInteger(x) ? String(x) : x.toFixed(1);
}

/** `goals: N PASS, M FAIL`, then one line per FAIL with how much it misses by. */
export function summaryLines(rows: GoalRow[], fmaPeak: number): string[] {
  const verdicts = rows.map((r) => ({ r, v: judge(r, fmaPeak) }));
  const fails = verdicts.filter((x) => !x.v.pass);
  return [`goals: ${rows.length - fails.length} PASS, ${fails.length} FAIL`, ...fails.map(({ r, v }) => `- FAIL ${r.shape}: ${v.misses.join('; ')}`)];
}

/** bench/results/<YYYY-MM-DD>-goals-<adapter-slug>.md (the slug from the adapter's device name). */
export function reportFileName(date: Date, adapterName: string, quick: boolean): string {
  const slug = adapterName.toLowerCase().replace(/[^a-z0-9]+/g, '-').replace(/^-+|-+$/g, '').slice(0, 40).replace(/-+$/, '') || 'adapter';
  return `${date.toISOString().slice(0, 10)}-goals-${quick ? 'quick-' : ''}${slug}.md`;
}
