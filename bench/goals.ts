// `sgilo bench goals [--quick] [--out F]`: the one-run performance table. In one process on one
// adapter: the FMA peak probe, the large shapes against 50% of that peak and 5x tfjs, the nets'
// small shapes against 3x tfjs, the fixed per-dispatch cost, and the end-to-end rows (StyleGAN2,
// the ViT score model, an SGILO step with its dispatch/submit counts and top kernels, the demo).
// Prints the markdown report (bench/goals_report.ts) and returns its text. The command writes it
// to out/bench/goals.md unless --out names another file (refused if it exists unless --force; a
// committed report is written with --out bench/results/<YYYY-MM-DD>-goals-<adapter-slug>.md).
// Called with `write: DIR`, runGoals itself writes <YYYY-MM-DD>-goals-<adapter-slug>.md into DIR;
// it never writes by default (bench/results/ is tracked).
//
// The kernel rows reuse the family benches (matmul.ts, conv2d.ts, modulated_conv.ts, attention.ts), which
// check every result against a float64 reference before timing it; their own tables go to the log.
// Modulated conv has no tfjs op: its peer is tf.conv2d with the same multiply-adds (bench/modulated_conv.ts).
//
// Shapes: matmul [M, K] x [K, N]; conv NCHW, 3x3 'same'; modulated conv x [N, Ci, H, H], w [Co, Ci, k, k];
// ViT (the shipped score model): D = 128, 8 heads of 16, MLP 256, B = 4 (the demo's 4 images x 1
// chain share each dispatch), T = 16 (4x4 features) or 64 (8x8).

import { mkdir, writeFile } from 'node:fs/promises';
import { describeAdapter } from '../engine/device.ts';
import type { Engine } from '../engine/engine.ts';
import { chooseImpl } from '../engine/ops/attention.ts';
import { planModulatedConv } from '../engine/ops/modulated_conv_plan.ts';
import { runAttentionBench } from './attention.ts';
import { runConv2dBench, convLabel, type ConvShape } from './conv2d.ts';
import { runMatmulBench, type MatmulShape } from './matmul.ts';
import { FASHION_LAYERS, runModulatedConvBench, type ModulatedConvLayer, type ModulatedConvPass } from './modulated_conv.ts';
import { runFmaPeak } from './probes.ts';
import { errorText } from './tfjs_peer.ts';
import type { BenchRow } from './table.ts';
import { demoRow, measureDispatchCost, sgiloRows, stylegan2Rows, vitRows } from './end_to_end.ts';
import { formatGoalsReport, reportFileName, type EndToEndRow, type GoalRow, type GoalsReport, type TorchSection } from './goals_report.ts';
import { runTorchSection, type TorchPlan } from './torch_rows.ts';

const VIT = { D: 128, heads: 8, dh: 16, mlp: 256, B: 4 };

export interface GoalsPlan {
  matmulLarge: number[];
  convLarge: ConvShape[];
  /** Modulated convs at batch 8 (Fashion) and at config-f shapes (batch 1), forward. */
  modulatedConvLarge: { layers: ModulatedConvLayer[]; batch: number }[];
  /** Fashion layers (name substrings) at batch 1, and the passes. */
  modulatedConvSmall: { layers: string[]; passes: ModulatedConvPass[] };
  /** ViT matmuls ([B*T, in] x [in, out]) per token count. */
  vitMatmuls: { T: number; which: ('qkv' | 'out' | 'ff1' | 'ff2')[] }[];
  attentionTokens: number[];
  dispatch: { n: number; runs: number } | null;
  stylegan2Batches: number[];
  vitTokens: number[];
  sgilo: { steps: number; profileSteps: number } | null;
  demo: boolean;
  /** Kernel measurements: seconds each, repeats (fastest kept), modulated conv rounds. */
  targetSeconds: number;
  repeats: number;
  rounds: number;
  /** End-to-end: batches per median and the least ms a batch should take. */
  e2eRuns: number;
  e2eMinMs: number;
  /** FMA probe size (default: bench/probes.ts's for the adapter). */
  fma?: { n: number; iterations: number };
  /** The PyTorch CPU peer's rows (bench/torch_rows.ts); absent or null: none. */
  torch?: TorchPlan | null;
}

const CONFIG_F: ModulatedConvLayer[] = [
  { name: 'config-f b16.conv1', Ci: 512, Co: 512, H: 16, k: 3, up: false, demod: true },
  { name: 'config-f b16.conv0 up', Ci: 512, Co: 512, H: 8, k: 3, up: true, demod: true },
];
const fashion = (names: string[]) => FASHION_LAYERS.filter((l) => names.includes(l.name));

export function goalsPlan(quick: boolean): GoalsPlan {
  const full: GoalsPlan = {
    matmulLarge: [512, 1024],
    convLarge: [
      { kind: 'conv', batch: 8, cIn: 64, cOut: 64, size: 32, k: 3 },
      { kind: 'conv', batch: 8, cIn: 128, cOut: 128, size: 16, k: 3 },
    ],
    modulatedConvLarge: [
      { layers: fashion(['b8.conv1', 'b16.conv0 up', 'b32.conv0 up']), batch: 8 },
      { layers: CONFIG_F, batch: 1 },
    ],
    modulatedConvSmall: { layers: FASHION_LAYERS.map((l) => l.name), passes: ['fwd', 'fwd+bwd(x,s)'] },
    vitMatmuls: [16, 64].map((T) => ({ T, which: ['qkv', 'out', 'ff1', 'ff2'] as ('qkv' | 'out' | 'ff1' | 'ff2')[] })),
    attentionTokens: [16, 64],
    dispatch: { n: 2000, runs: 5 },
    stylegan2Batches: [1, 8],
    vitTokens: [16, 64],
    sgilo: { steps: 10, profileSteps: 4 },
    demo: true,
    targetSeconds: 0.4,
    repeats: 2,
    rounds: 3,
    e2eRuns: 5,
    e2eMinMs: 300,
    torch: { ilo: [1, 4, 8], sgilo: [1, 4, 8], stylegan2: [4], train: true, steps: 8, runs: 5, fullsize: null },
  };
  if (!quick) return full;
  // Every family on its first (smallest) shapes, one short measurement each, no demo.
  return {
    ...full,
    matmulLarge: [512],
    convLarge: full.convLarge.slice(0, 1),
    modulatedConvLarge: [{ layers: fashion(['b16.conv0 up']), batch: 8 }],
    modulatedConvSmall: { layers: ['b4.conv1', 'b32.conv1'], passes: ['fwd'] },
    vitMatmuls: [{ T: 16, which: ['qkv'] }, { T: 64, which: ['qkv'] }],
    dispatch: { n: 256, runs: 3 },
    stylegan2Batches: [1],
    sgilo: { steps: 2, profileSteps: 1 },
    demo: false,
    targetSeconds: 0.03, repeats: 1, rounds: 1, // one short measurement per row
    e2eRuns: 2, e2eMinMs: 1, // two end-to-end runs, however short
    torch: { ilo: [1], sgilo: [1], stylegan2: [4], train: true, steps: 3, runs: 1, fullsize: null },
  };
}

/** config-f for --fullsize: 1024² at block 4 (minutes per step on a CPU), or 64² at block 2 with --quick. */
export function fullsizePlan(quick: boolean, runs: number): NonNullable<TorchPlan['fullsize']> {
  return quick ? { size: 64, layer: 2, runs } : { size: 1024, layer: 4, runs };
}

const FLOP_FACTOR: Record<ModulatedConvPass, number> = { fwd: 1, 'fwd+bwd': 3, 'fwd+bwd(x,s)': 2 };

/** Runs one family bench and maps its rows; a bench that throws gives every row its reason. */
async function rowsOf(labels: { shape: string; mflop: number }[], goal: { minPeak: number | null; minRatio: number }, run: () => Promise<BenchRow[]>): Promise<GoalRow[]> {
  let rows: BenchRow[] | null = null;
  let reason = '';
  try {
    rows = await run();
    if (rows.length !== labels.length) throw new Error(`expected ${labels.length} rows, the bench returned ${rows.length}`);
  } catch (e) {
    reason = `failed: ${errorText(e)}`;
    rows = null;
  }
  return labels.map((l, i) => ({ ...l, ...goal, ours: rows ? rows[i].ours : { error: reason }, tfjs: rows ? rows[i].tfjs : { error: reason } }));
}

function matmulLabel(s: MatmulShape, name: string): { shape: string; mflop: number } {
  return { shape: name, mflop: (2 * s.batch * s.M * s.N * s.K) / 1e6 };
}

/** As bench/conv2d.ts counts them: per input pixel for 'up' (scatter), per output pixel ('same' conv). */
function convMflop(s: ConvShape): number {
  return (2 * s.batch * s.cIn * s.cOut * s.size * s.size * s.k * s.k) / 1e6;
}

function modulatedConvLabel(l: ModulatedConvLayer, N: number, pass: ModulatedConvPass): { shape: string; mflop: number } {
  const pl = planModulatedConv([N, l.Ci, l.H, l.H], [l.Co, l.Ci, l.k, l.k], [N, l.Ci], { upsample: l.up, demodulate: l.demod });
  return { shape: `modconv ${l.name} ${l.Ci}->${l.Co} @${l.H}x${l.H}${l.up ? ' up' : ''} k${l.k} N=${N} ${pass}`, mflop: (2 * pl.macs * FLOP_FACTOR[pass]) / 1e6 };
}

export interface GoalsOptions {
  quick?: boolean;
  /** Replaces the plan of `quick` (tests). */
  plan?: GoalsPlan;
  /** The directory to write the report file into (none: the caller writes `text`). */
  write?: string;
  /** Run the plan's PyTorch CPU peer rows (default true; skipped with a note where torch is missing). */
  torch?: boolean;
  /** Add the config-f row to the torch rows (`--fullsize`: minutes). */
  fullsize?: boolean;
  log?: (line: string) => void;
}

export async function runGoals(eng: Engine, options: GoalsOptions = {}): Promise<{ report: GoalsReport; text: string; file: string | null }> {
  const quick = options.quick ?? false;
  const plan = options.plan ?? goalsPlan(quick);
  const say = options.log ?? ((line: string) => console.log(line));
  const peerLines: string[] = [];
  // The family benches' progress and tables, indented; their tfjs start lines name the peer.
  const sub = (line: string) => {
    const v = /tfjs (\S+) \(webgpu backend\)/.exec(line);
    if (v) peerLines.push(`tfjs-backend-webgpu ${v[1]}, same process, same adapter`);
    else if (/tfjs unavailable/.test(line)) peerLines.push(line.trim());
    say(`    ${line}`);
  };
  const adapter = describeAdapter(eng.gpu.adapter);
  const started = new Date();
  say(`goals bench on ${adapter} (${quick ? 'quick' : 'full'})`);
  const mo = { targetSeconds: plan.targetSeconds, repeats: plan.repeats };
  const fma = await runFmaPeak({ ...mo, ...plan.fma, repeats: Math.max(plan.repeats, quick ? 1 : 3) });
  say(`  FMA peak: ${fma.value.toFixed(1)} GFLOP/s (${fma.detail})`);

  const LARGE = { minPeak: 0.5, minRatio: 5 };
  const SMALL = { minPeak: null, minRatio: 3 };
  const large: GoalRow[] = [];
  const small: GoalRow[] = [];
  const square = plan.matmulLarge.map((n) => ({ batch: 1, M: n, N: n, K: n }));
  if (square.length) {
    say('  large: matmul');
    large.push(...(await rowsOf(square.map((s) => matmulLabel(s, `matmul ${s.M}^3`)), LARGE, () => runMatmulBench(eng, { sizes: [], batched: null, shapes: square, probes: false, ...mo, log: sub }))));
  }
  if (plan.convLarge.length) {
    say('  large: conv2d');
    large.push(...(await rowsOf(plan.convLarge.map((s) => ({ shape: convLabel(s), mflop: convMflop(s) })), LARGE, () => runConv2dBench(eng, { shapes: plan.convLarge, probes: false, ...mo, log: sub }))));
  }
  const modulatedConv = (layers: ModulatedConvLayer[], N: number, passes: ModulatedConvPass[]) =>
    runModulatedConvBench(eng, { layerDefs: layers, batches: [N], passes, probes: false, targetSeconds: plan.targetSeconds, rounds: plan.rounds, log: sub });
  for (const g of plan.modulatedConvLarge) {
    say(`  large: modulated conv N=${g.batch}`);
    large.push(...(await rowsOf(g.layers.map((l) => modulatedConvLabel(l, g.batch, 'fwd')), LARGE, () => modulatedConv(g.layers, g.batch, ['fwd']))));
  }

  const ms = plan.modulatedConvSmall;
  const smallLayers = FASHION_LAYERS.filter((l) => ms.layers.includes(l.name));
  if (smallLayers.length) {
    say('  small: Fashion modulated convs N=1');
    small.push(...(await rowsOf(smallLayers.flatMap((l) => ms.passes.map((p) => modulatedConvLabel(l, 1, p))), SMALL, () => modulatedConv(smallLayers, 1, ms.passes))));
  }
  const dims = { qkv: [VIT.D, 3 * VIT.heads * VIT.dh], out: [VIT.heads * VIT.dh, VIT.D], ff1: [VIT.D, VIT.mlp], ff2: [VIT.mlp, VIT.D] };
  const vm = plan.vitMatmuls.flatMap(({ T, which }) => which.map((w) => ({ w, T, s: { batch: 1, M: VIT.B * T, K: dims[w][0], N: dims[w][1] } })));
  if (vm.length) {
    say('  small: ViT matmuls');
    const labels = vm.map(({ w, T, s }) => matmulLabel(s, `ViT ${w} [B*T=${s.M}, ${s.K}] x [${s.K}, ${s.N}] (T=${T})`));
    small.push(...(await rowsOf(labels, SMALL, () => runMatmulBench(eng, { sizes: [], batched: null, shapes: vm.map((x) => x.s), probes: false, ...mo, log: sub }))));
  }
  if (plan.attentionTokens.length) {
    say('  small: ViT attention');
    const impls = [...new Set(plan.attentionTokens.map((T) => chooseImpl(T, T, VIT.dh, false)))];
    const labels = plan.attentionTokens.map((T) => ({ shape: `attention fwd T=${T} B=${VIT.B} ${VIT.heads} heads x ${VIT.dh}`, mflop: (4 * VIT.B * VIT.heads * T * T * VIT.dh) / 1e6 }));
    small.push(
      ...(await rowsOf(labels, SMALL, async () =>
        (await runAttentionBench(eng, { tokens: plan.attentionTokens, widths: [VIT.heads * VIT.dh], d: VIT.dh, batch: VIT.B, impls, backward: false, probes: false, ...mo, log: sub })).filter((r) => r.shape.endsWith('*')),
      )),
    );
  }

  const notes: string[] = [];
  const dispatch = plan.dispatch ? await measureDispatchCost(eng, plan.dispatch.n, plan.dispatch.runs) : null;
  if (dispatch) say(`  per dispatch: ${dispatch.gpuUsPerDispatch.toFixed(2)} us GPU, ${dispatch.hostUsPerDispatch.toFixed(2)} us host`);

  const endToEnd: EndToEndRow[] = [];
  const to = { runs: plan.e2eRuns, minMs: plan.e2eMinMs, log: say };
  const guard = async <T>(what: string, fn: () => Promise<T>): Promise<T | null> => {
    try {
      return await fn();
    } catch (e) {
      notes.push(`${what} failed: ${errorText(e)}`);
      say(`  ${what} failed: ${errorText(e)}`);
      return null;
    }
  };
  say('  end to end');
  if (plan.stylegan2Batches.length) endToEnd.push(...((await guard('StyleGAN2', () => stylegan2Rows(eng, plan.stylegan2Batches, to))) ?? []));
  if (plan.vitTokens.length) endToEnd.push(...((await guard('ViT', () => vitRows(eng, plan.vitTokens, VIT.B, to))) ?? []));
  let sgiloProfile: GoalsReport['sgiloProfile'] = null;
  if (plan.sgilo) {
    const { steps, profileSteps } = plan.sgilo;
    const r = await guard('SGILO step', () => sgiloRows(eng, steps, profileSteps, say));
    if (r) {
      endToEnd.push(...r.rows);
      sgiloProfile = r.profile;
    }
  }
  if (plan.demo) {
    const r = await guard('demo', () => demoRow(say));
    if (r) endToEnd.push(r);
  } else notes.push('demo reconstruction skipped (--quick); `npm run demo` prints its wall time');
  let torch: TorchSection | null = null;
  const torchPlan = options.torch === false ? null : plan.torch ?? null;
  if (torchPlan) {
    say('  PyTorch CPU peer');
    const withFullsize = options.fullsize ? { ...torchPlan, fullsize: fullsizePlan(quick, torchPlan.runs) } : torchPlan;
    torch = await runTorchSection(eng, withFullsize, say);
    if (!torch.skipped) notes.push(`PyTorch peer: bench/peers/torch_peer.py, our own PyTorch code of the same networks on the same weights, ${torch.peer}`);
  } else notes.push('PyTorch CPU peer not run (--no-torch)');
  if (!eng.gpu.hasTimestampQuery) notes.push('no timestamp-query: wall-clock times, and no dispatch counts or per-kernel profile');

  notes.push('kernel rows: each contender checked against a float64 reference, then timed (fastest of the repeats); the family benches\' own tables are in the command\'s output');
  if (plan.modulatedConvLarge.length || smallLayers.length) notes.push(`modulated conv: tfjs has no such op; its column is tf.conv2d with the same multiply-adds (at the output resolution for "up" rows), as in bench/modulated_conv.ts; fwd+bwd(x,s) adds conv2dTranspose`);
  if (vm.length) notes.push(`ViT matmuls as plain [M, K] x [K, N] products (the net multiplies by W^T with its batch of ${VIT.B} folded into the rows)`);
  notes.push(`tfjs-backend-webgpu in the same process on the same adapter; ratios compare GPU time per call`);

  const report: GoalsReport = {
    adapter,
    date: started.toISOString().replace('T', ' ').slice(0, 19) + ' UTC',
    mode: quick ? 'quick' : 'full',
    timer: eng.gpu.hasTimestampQuery ? 'GPU timestamp queries around back-to-back calls' : 'wall clock of submitted work (no timestamp-query)',
    fmaPeak: fma.value,
    fmaDetail: fma.detail,
    tfjs: [...new Set(peerLines)].join('; ') || 'not run',
    large,
    small,
    dispatch,
    endToEnd,
    sgiloProfile,
    torch,
    notes,
  };
  const text = formatGoalsReport(report);
  say('');
  say(text);
  let file: string | null = null;
  if (options.write) {
    const dir = options.write;
    await mkdir(dir, { recursive: true });
    file = `${dir.replace(/\/$/, '')}/${reportFileName(started, eng.gpu.adapter.device || eng.gpu.adapter.description, quick)}`;
    await writeFile(file, text);
    say(`wrote ${file}`);
  }
  return { report, text, file };
}
