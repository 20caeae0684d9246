// The benchmark's own pieces on tiny sizes: the peak-probe kernels compute what they claim (so a
// probe number is a real ceiling), the matmul spot-check catches a wrong product, the timer runs,
// and the table formatter prints its columns. No durations are asserted.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { engine } from '../engine/engine.ts';
import { tensor, empty } from '../engine/tensor.ts';
import { dispatchCopyProbe, dispatchFmaProbe, fmaProbeReference, runFmaPeak, type FmaSetup } from '../bench/probes.ts';
import { spotCheck, type MatmulShape } from '../bench/matmul.ts';
import { COLUMNS, formatBenchTable } from '../bench/table.ts';
import { timeBatch } from '../bench/timing.ts';
import { formatGoalsReport, judge, reportFileName, GOAL_COLUMNS, type GoalRow, type GoalsReport } from '../bench/goals_report.ts';
import { runGoals, type GoalsPlan } from '../bench/goals.ts';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';

const test = suite('bench');

test('fma_probe equals the f32 recurrence computed on the CPU', async () => {
  // 100 invocations: not a multiple of the workgroup (64), so the bounds check is exercised.
  // a = 0.9 over 40 trips leaves each chain far from its fixed point b / (1 - a) = 2.5.
  const s: FmaSetup = { n: 100, iterations: 40, a: 0.9, b: 0.25 };
  const seeds = Float32Array.from({ length: s.n }, (_, i) => Math.sin(i) * 3);
  const seed = tensor(seeds, [s.n]);
  const result = empty([s.n, 4]);
  dispatchFmaProbe(seed, result, s);
  const got = await result.readF32();
  for (let i = 0; i < s.n; i++) {
    const want = fmaProbeReference(seeds[i], s);
    for (let l = 0; l < 4; l++) {
      const g = got[4 * i + l];
      assert.ok(Math.abs(g - want[l]) <= 1e-5 * Math.abs(want[l]) + 1e-5, `invocation ${i} lane ${l}: ${g} vs ${want[l]}`);
    }
  }
  // The chains really differ by lane (0.001 apart at the start, times 0.9^40 at the end).
  assert.ok(Math.abs(got[1] - got[0]) > 1e-6, 'lanes 0 and 1 should differ');
  seed.dispose();
  result.dispose();
});

test('fma_probe with zero trips writes the sum of the start values', async () => {
  const s: FmaSetup = { n: 3, iterations: 0, a: 0.5, b: 1 };
  const seed = tensor([0, 1, -2], [3]);
  const result = empty([3, 4]);
  dispatchFmaProbe(seed, result, s);
  const got = await result.readF32();
  // 8 chains start at seed + 0.001 * lane + 0.004 * chain: sum = 8 seed + 0.008 lane + 0.112.
  for (let i = 0; i < 3; i++) for (let l = 0; l < 4; l++) assert.ok(Math.abs(got[4 * i + l] - (8 * [0, 1, -2][i] + 0.008 * l + 0.112)) < 1e-5);
  seed.dispose();
  result.dispose();
});

test('copy_probe copies exactly, including the tail of the last workgroup', async () => {
  const n = 4 * 300; // 300 vec4: one full workgroup of 256 and a partial one
  const data = Float32Array.from({ length: n }, (_, i) => i * 0.37 - 100);
  const src = tensor(data, [n]);
  const dst = empty([n]);
  dispatchCopyProbe(src, dst);
  assert.equal(Array.from(await dst.readF32()), Array.from(data));
  src.dispose();
  dst.dispose();
});

test('probes refuse mismatched buffers with a clear error', () => {
  const a = empty([8]);
  const b = empty([12]);
  assert.throws(() => dispatchCopyProbe(a, b), /same size/);
  assert.throws(() => dispatchFmaProbe(a, b, { n: 8, iterations: 1, a: 1, b: 0 }), /seed must have 8 elements and result 32/);
  a.dispose();
  b.dispose();
});

test('runFmaPeak measures and self-checks on a tiny probe', async () => {
  const r = await runFmaPeak({ n: 64, iterations: 8, targetSeconds: 0.01, repeats: 1, maxIterations: 4 });
  assert.ok(r.value > 0 && Number.isFinite(r.value), `GFLOP/s ${r.value}`);
  assert.ok(r.timing.iterations >= 1 && r.timing.iterations <= 4);
});

test('timeBatch records every iteration and reports a positive time', async () => {
  const eng = engine();
  const src = tensor([1, 2, 3, 4], [4]);
  const dst = empty([4]);
  let calls = 0;
  const t = await timeBatch({ device: eng.device, timestamps: eng.gpu.hasTimestampQuery, flush: () => eng.submit(), idle: () => eng.sync() }, 3, () => {
    calls++;
    dispatchCopyProbe(src, dst);
  });
  assert.is(calls, 3);
  assert.is(t.iterations, 3);
  assert.ok(t.ms > 0 && t.wallMs > 0);
  src.dispose();
  dst.dispose();
});

test('spotCheck accepts a correct product and names a wrong element', () => {
  const s: MatmulShape = { batch: 2, M: 3, N: 4, K: 5 };
  const a = Float32Array.from({ length: 30 }, (_, i) => Math.cos(i));
  const b = Float32Array.from({ length: 40 }, (_, i) => Math.sin(i));
  const out = new Float32Array(24);
  for (let t = 0; t < 2; t++)
    for (let i = 0; i < 3; i++)
      for (let j = 0; j < 4; j++) {
        let acc = 0;
        for (let k = 0; k < 5; k++) acc += a[(t * 3 + i) * 5 + k] * b[(t * 5 + k) * 4 + j];
        out[(t * 3 + i) * 4 + j] = acc;
      }
  assert.is(spotCheck(s, a, b, out), null);
  out[0] += 0.5; // [0, 0, 0] is always among the checked elements
  assert.match(spotCheck(s, a, b, out) ?? '', /wrong result at \[0, 0, 0\]/);
  assert.match(spotCheck(s, a, b, new Float32Array(5)) ?? '', /5 elements, expected 24/);
});

test('the bench table has its columns, ratios, probe lines and reasons', () => {
  const text = formatBenchTable({
    adapter: 'Test Adapter [v/a, software, node]',
    date: '2024-01-01 00:00:00 UTC',
    timer: 'wall clock',
    rows: [
      { shape: '128x128x128', ours: { gflops: 20, iterations: 10 }, tfjs: { gflops: 10, iterations: 5 } },
      { shape: '8 x 256x256x256', ours: { gflops: 5, iterations: 3 }, tfjs: { error: 'tfjs webgpu backend did not start: no adapter found on this machine' } },
    ],
    probes: [
      { name: 'FMA peak', value: 100, unit: 'GFLOP/s', detail: 'x' },
      { name: 'copy bandwidth', value: 12.5, unit: 'GB/s', detail: 'y' },
    ],
    fmaPeak: 100,
    notes: ['a note'],
  });
  const lines = text.split('\n');
  assert.ok(lines[0].includes('Test Adapter'));
  assert.ok(lines[1].includes('2024-01-01'));
  const header = lines.find((l) => l.startsWith('shape'))!;
  assert.equal(header.split('|').map((c) => c.trim()), [...COLUMNS]);
  const row1 = lines.find((l) => l.startsWith('128x128x128'))!.split('|').map((c) => c.trim());
  assert.equal(row1, ['128x128x128', '20.0', '10.0', '2.00x', '20.0%']);
  const row2 = lines.find((l) => l.startsWith('8 x 256'))!.split('|').map((c) => c.trim());
  assert.is(row2[3], '-'); // no ratio without a tfjs number
  assert.ok(row2[2].startsWith('tfjs webgpu backend'));
  assert.ok(text.includes('FMA peak:') && text.includes('100.0 GFLOP/s') && text.includes('12.5 GB/s'));
  assert.ok(text.includes('note: n/a: tfjs webgpu backend did not start: no adapter found on this machine'));
  assert.ok(text.includes('note: a note'));
});

/** The goal rows of a report's markdown tables (the lines with 8 cells ending in PASS or FAIL). */
function goalLines(text: string): string[][] {
  return text
    .split('\n')
    .filter((l) => l.startsWith('| ') && /\| (PASS|FAIL) \|$/.test(l))
    .map((l) => l.slice(2, -2).split(' | '));
}

const SUMMARY = /^goals: (\d+) PASS, (\d+) FAIL$/m;

test('goals: judging against peak and tfjs, and the report with its summary', () => {
  const row = (shape: string, ours: number, tfjs: number | null, minPeak: number | null, minRatio: number): GoalRow => ({
    shape,
    mflop: 268.4,
    ours: { gflops: ours, iterations: 3 },
    tfjs: tfjs === null ? { error: 'tfjs unavailable: no adapter' } : { gflops: tfjs, iterations: 3 },
    minPeak,
    minRatio,
  });
  const large = [row('matmul 512^3', 60, 10, 0.5, 5), row('matmul 1024^3', 21, 10, 0.5, 5)];
  const small = [row('ViT qkv', 3, 1, null, 3), row('attention fwd T=16', 2, null, null, 3)];
  assert.equal(judge(large[0], 100), { pass: true, misses: [] });
  assert.equal(judge(large[1], 100).misses, ['21% of peak, goal 50%', '2.10x tfjs, goal 5x']);
  assert.ok(judge(small[0], 100).pass, '3.00x meets a 3x goal');
  assert.match(judge(small[1], 100).misses[0], /no tfjs number/);
  const report: GoalsReport = {
    adapter: 'Test Adapter [v/a, software, node]',
    date: '2024-01-01 00:00:00 UTC',
    mode: 'full',
    timer: 'wall clock',
    fmaPeak: 100,
    fmaDetail: 'x',
    tfjs: 'tfjs-backend-webgpu 4.22.0',
    large,
    small,
    dispatch: { what: 'affine', dispatches: 100, submits: 1, gpuUsPerDispatch: 10, hostUsPerDispatch: 20, source: 'wall clock', runs: 3 },
    endToEnd: [{ workload: 'StyleGAN2 N=1 fwd', gpuMs: 10, wallMs: 20, runs: 3, dispatches: 100, submits: 1 }],
    sgiloProfile: { title: 'SGILO step', steps: 2, kernels: [{ kernel: 'modconv', dispatches: 12, ns: 8e6 }, { kernel: 'add', dispatches: 40, ns: 2e6 }] },
    notes: ['a note'],
  };
  const text = formatGoalsReport(report);
  assert.ok(text.startsWith('# Performance goals on Test Adapter'));
  assert.ok(text.includes('2024-01-01'));
  assert.ok(text.includes(`| ${GOAL_COLUMNS.join(' | ')} |`), 'the goal tables have the PASS/FAIL column');
  assert.equal(goalLines(text).map((c) => [c[0], c[7]]), [['matmul 512^3', 'PASS'], ['matmul 1024^3', 'FAIL'], ['ViT qkv', 'PASS'], ['attention fwd T=16', 'FAIL']]);
  assert.equal(goalLines(text)[1].slice(4, 6), ['2.10x', '21%']);
  // 100 dispatches x 10 us = 1 ms of a 10 ms GPU pass; x 20 us = 2 ms of a 20 ms wall pass.
  assert.ok(text.includes('| StyleGAN2 N=1 fwd | 10.00 | 20.00 | 3 | 100 | 1 | 10% | 10% |  |'));
  assert.ok(text.includes('| modconv | 6 | 4.00 | 80.0 | 666.7 |'), 'per-step kernel table');
  assert.ok(text.includes('What dominates: modconv (80% of the profiled GPU time); 26 dispatches per step'));
  const m = SUMMARY.exec(text);
  assert.ok(m, 'summary line');
  assert.equal([Number(m![1]), Number(m![2])], [2, 2]);
  const tail = text.trimEnd().split('\n').slice(-3);
  assert.equal(tail, ['goals: 2 PASS, 2 FAIL', '- FAIL matmul 1024^3: 21% of peak, goal 50%; 2.10x tfjs, goal 5x', '- FAIL attention fwd T=16: no tfjs number (tfjs unavailable: no adapter)']);
  assert.is(reportFileName(new Date('2026-11-27T22:00:00Z'), 'llvmpipe (LLVM 15.0.6, 256 bits)', false), '2026-11-27-goals-llvmpipe-llvm-15-0-6-256-bits.md');
  assert.is(reportFileName(new Date('2026-11-27T22:00:00Z'), 'NVIDIA H100', true), '2026-11-27-goals-quick-nvidia-h100.md');
});

test('goals: a tiny plan runs every section and writes a well-formed report', async () => {
  const plan: GoalsPlan = {
    matmulLarge: [64],
    convLarge: [{ kind: 'conv', batch: 1, cIn: 4, cOut: 4, size: 8, k: 3 }],
    modulatedConvLarge: [],
    modulatedConvSmall: { layers: ['b32.torgb'], passes: ['fwd'] },
    vitMatmuls: [{ T: 16, which: ['qkv'] }],
    attentionTokens: [16],
    dispatch: { n: 16, runs: 1 },
    stylegan2Batches: [],
    vitTokens: [16],
    sgilo: null,
    demo: false,
    targetSeconds: 0.005,
    repeats: 1,
    rounds: 1,
    e2eRuns: 1,
    e2eMinMs: 1,
    fma: { n: 256, iterations: 64 },
    // No interpreter with torch (below): the torch rows are skipped with a note, not a failure.
    torch: { ilo: [1], sgilo: [], stylegan2: [], train: false, steps: 1, runs: 1, fullsize: null },
  };
  const dir = await mkdtemp(`${tmpdir()}/goals-`);
  const python = process.env.SGILO_TORCH_PYTHON;
  process.env.SGILO_TORCH_PYTHON = '/nonexistent/python3';
  try {
    const { report, text, file } = await runGoals(engine(), { plan, quick: true, write: dir, log: () => {} });
    assert.match(report.torch?.skipped ?? '', /no Python with torch/);
    assert.match(text, /^torch peer: skipped \(no Python with torch/m);
    assert.ok(Number.isFinite(report.fmaPeak) && report.fmaPeak > 0);
    const rows = [...report.large, ...report.small];
    assert.is(rows.length, 5);
    for (const r of rows) {
      assert.ok(!('error' in r.ours), `${r.shape}: ${'error' in r.ours ? r.ours.error : ''}`);
      if (!('error' in r.ours)) assert.ok(Number.isFinite(r.ours.gflops) && r.ours.gflops > 0, r.shape);
      assert.ok(r.mflop > 0, r.shape);
    }
    const d = report.dispatch!;
    assert.ok(d.gpuUsPerDispatch > 0 && d.hostUsPerDispatch > 0 && Number.isFinite(d.gpuUsPerDispatch + d.hostUsPerDispatch));
    assert.is(report.endToEnd.length, 1);
    assert.ok(report.endToEnd[0].wallMs > 0 && Number.isFinite(report.endToEnd[0].wallMs));
    const lines = goalLines(text);
    assert.is(lines.length, 5);
    for (const c of lines) {
      assert.is(c.length, GOAL_COLUMNS.length);
      assert.ok(Number(c[1]) > 0 && Number(c[2]) > 0, c.join(' | '));
    }
    const m = SUMMARY.exec(text)!;
    assert.ok(m, 'summary line');
    assert.is(Number(m[1]) + Number(m[2]), 5);
    assert.is(text.split('\n').filter((l) => l.startsWith('- FAIL ')).length, Number(m[2]));
    assert.ok(file && file.startsWith(dir) && /goals-quick-.*\.md$/.test(file));
    assert.is(await readFile(file!, 'utf8'), text);
  } finally {
    if (python === undefined) delete process.env.SGILO_TORCH_PYTHON;
    else process.env.SGILO_TORCH_PYTHON = python;
    await rm(dir, { recursive: true, force: true });
  }
});

test.run();
