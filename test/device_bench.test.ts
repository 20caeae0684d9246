// The GPU-machine benchmarks (bench/device/run.sh) in their quick form on this adapter: the tiled
// matmul tile sweep (each product spot-checked against the float64 CPU product before it is timed,
// ragged sizes here), the conv tile sweep (each output checked against the general kernels') and the paper-size workloads (StyleGAN2 forward, forward + backward and an SGILO
// step with a score prior after block 3, at 64x64 with 32 channels).
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { engine } from '../engine/engine.ts';
import { matmulKernels } from '../engine/device.ts';
import { runMatmulSweep } from '../bench/matmul_sweep.ts';
import { runConvSweep } from '../bench/conv_sweep.ts';
import { runPaperSizeBench } from '../bench/paper_size.ts';

const test = suite('device bench');

test('the tile sweep times checked products per tile and skips tiles the device cannot run', async () => {
  const lines: string[] = [];
  const before = matmulKernels(engine().gpu);
  const rows = await runMatmulSweep(engine(), {
    sizes: [24, 40],
    tiles: [
      { tm: 4, tn: 4, wgX: 4, wgY: 4, bk: 8, pad: 4 },
      { tm: 8, tn: 8, wgX: 4, wgY: 4, bk: 16, pad: 0 },
      { tm: 4, tn: 4, wgX: 64, wgY: 64, bk: 8, pad: 0 },
    ],
    targetSeconds: 0.01,
    log: (l) => lines.push(l),
  });
  assert.is(rows.length, 3);
  for (const r of rows.slice(0, 2)) for (const c of r.cells) assert.ok(!('error' in c) && c.gflops > 0, `${r.tile}: ${JSON.stringify(c)}`);
  assert.ok(rows[2].cells.every((c) => 'error' in c && c.error === 'skipped'));
  assert.match(lines.join('\n'), /\nbest at 40\^3: (16x16|32x32)/);
  assert.is(matmulKernels(engine().gpu), before, 'the sweep restores the kernel selection');
});

test('the conv tile sweep times checked modulated convs per tile, with the general kernels as the first row', async () => {
  const lines: string[] = [];
  const before = matmulKernels(engine().gpu);
  const rows = await runConvSweep(engine(), {
    layers: [{ name: 'up', Ci: 5, Co: 6, H: 5, k: 3, up: true, demod: true }],
    tiles: [
      { tm: 4, tn: 4, wgX: 4, wgY: 4, bk: 8, pad: 4 },
      { tm: 4, tn: 4, wgX: 64, wgY: 64, bk: 8, pad: 0 },
    ],
    targetSeconds: 0.01,
    log: (l) => lines.push(l),
  });
  assert.equal(rows.map((r) => r.tile), ['general kernels', '16x16/4x4/k8/p4', '256x256/4x4/k8/p0']);
  for (const r of rows.slice(0, 2)) for (const c of r.cells) assert.ok(!('error' in c) && c.gflops > 0, `${r.tile}: ${JSON.stringify(c)}`);
  assert.equal(rows[1].cells.length, 2); // fwd and fwd+bwd(x,s)
  assert.ok(rows[2].cells.every((c) => 'error' in c && c.error === 'skipped'));
  assert.match(lines.join('\n'), /\nbest at up 5->6 5\^2->2x fwd: /);
  assert.is(matmulKernels(engine().gpu), before, 'the sweep restores the kernel selection');
});

test('the paper-size workloads run in quick form with finite times', async () => {
  const lines: string[] = [];
  const rows = await runPaperSizeBench(engine(), { quick: true, log: (l) => lines.push(l) });
  assert.equal(rows.map((r) => r.workload.split(' N=')[0]), ['StyleGAN2 reduced 64^2', 'StyleGAN2 reduced 64^2', 'SGILO step 64^2']);
  for (const r of rows) assert.ok(r.ms > 0 && Number.isFinite(r.gflops) && r.gflops > 0, JSON.stringify(r));
  assert.match(lines.join('\n'), /\nworkload +\| +ms \| GFLOP\/s \| note\n/);
});

test.run();
