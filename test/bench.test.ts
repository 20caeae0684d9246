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

test.run();
