// The workgroup-tiled matmul kernel (shaders/matmul_tiled.wgsl), the one hardware GPUs run, forced
// on this adapter: every matmul gradcheck row (forward and both gradients against the float64
// reference, the reference against finite differences), plus shapes that cross several workgroup
// tiles and k steps raggedly, under the default tile per shape and under swept tile shapes. Each
// case asserts that the tiled kernel ran and that no other matmul kernel did.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { engine } from '../engine/engine.ts';
import { matmulKernels, overrideKernelFamily, subgroupTiles } from '../engine/device.ts';
import { dispatchCountsByKernel } from '../engine/kernel.ts';
import { runGradCase, type GradCase } from '../engine/gradcheck.ts';
import { matmulCase, matmulGradCases } from '../engine/cases/matmul.ts';
import { overrideMatmulTile, tileProblem, type MatmulTile } from '../engine/ops/matmul_tiled.ts';

const test = suite('matmul tiled');

/** Dispatches per kernel family of matmul since `before` (the counts are not reset: test/coverage.final.ts reads them). */
function familyCounts(before: Map<string, number>): { tiled: number; other: number; variants: string[] } {
  let tiled = 0;
  let other = 0;
  const variants: string[] = [];
  for (const [key, total] of dispatchCountsByKernel()) {
    const n = total - (before.get(key) ?? 0);
    if (n === 0) continue;
    if (key.startsWith('matmul_tiled.')) {
      tiled += n;
      variants.push(key);
    } else if (key.startsWith('matmul.') || key.startsWith('matmul_subgroup.')) other += n;
  }
  return { tiled, other, variants };
}

async function checkTiled(c: GradCase, tile: MatmulTile | null = null): Promise<string[]> {
  overrideKernelFamily('tiled');
  overrideMatmulTile(tile);
  const before = dispatchCountsByKernel();
  try {
    const r = await runGradCase(c);
    assert.ok(r.pass, `${c.name}:\n${r.failures.join('\n')}`);
    const counts = familyCounts(before);
    // Forward, dA and dB at least (a broadcast operand's gradient adds a reduction, not a matmul).
    assert.ok(counts.tiled >= 3, `${c.name}: tiled kernel dispatched ${counts.tiled} times`);
    assert.is(counts.other, 0, `${c.name}: another matmul kernel ran`);
    return counts.variants;
  } finally {
    overrideKernelFamily(null);
    overrideMatmulTile(null);
  }
}

test('the default on this CPU adapter is not the tiled kernel; the hook forces it', () => {
  const gpu = engine().gpu;
  assert.is(matmulKernels(gpu), subgroupTiles(gpu) ? 'subgroup' : 'general');
  overrideKernelFamily('tiled');
  try {
    assert.is(matmulKernels(gpu), 'tiled');
    assert.is(subgroupTiles(gpu), false); // the conv kernels leave their subgroup tiles too
  } finally {
    overrideKernelFamily(null);
  }
  assert.throws(() => overrideKernelFamily('fast' as never), /general, subgroup, tiled/);
});

const seen = new Set<string>();
for (const c of matmulGradCases()) {
  test(`tiled ${c.name}`, async () => {
    for (const v of await checkTiled(c)) seen.add(v.split('/')[0]);
  });
}

// Ragged shapes across several 32 x 32 tiles and 16-deep k steps: K = 37 (scalar loads of a
// by-rows A), K = 40 (vec4 loads, k steps of 16, 16, 8), M and N not multiples of the tile.
const ragged: GradCase[] = [
  matmulCase([33, 37], [37, 35], false, false),
  matmulCase([40, 33], [35, 40], true, true),
  matmulCase([2, 36, 40], [2, 40, 44], false, false),
  matmulCase([40, 36], [2, 44, 40], true, true),
];
for (const c of ragged) test(`tiled ${c.name}`, async () => void (await checkTiled(c)));

test('all four operand layouts, with vec4 and scalar loads, were dispatched', () => {
  // Layout key: A 'k' (by rows) or 'm' (by columns), B 'n' (by rows) or 'k' (by columns); 4 or 1: vec4 or scalar loads.
  for (const a of ['k', 'm']) for (const b of ['n', 'k']) for (const w of ['4', '1']) {
    const key = `matmul_tiled.matmul_tiled<${a}${w}${b}${w}`;
    assert.ok(seen.has(key), `never dispatched: ${key} (seen: ${[...seen].join(', ')})`);
  }
});

// Swept shapes as a GPU run uses them: 8 x 8 and 2 x 4 register tiles, k steps of 4 to 32, no padding.
const sweep: MatmulTile[] = [
  { tm: 8, tn: 8, wgX: 4, wgY: 4, bk: 8, pad: 4 },
  { tm: 2, tn: 4, wgX: 8, wgY: 8, bk: 32, pad: 0 },
  { tm: 4, tn: 8, wgX: 4, wgY: 8, bk: 4, pad: 1 },
];
for (const t of sweep) {
  test(`tiled tile ${JSON.stringify(t)}`, async () => {
    await checkTiled(matmulCase([37, 44], [44, 41], false, false), t);
    await checkTiled(matmulCase([44, 36], [40, 44], true, true), t);
  });
}

test('tiles the device cannot run are refused by name', () => {
  assert.match(String(tileProblem({ tm: 16, tn: 4, wgX: 8, wgY: 8, bk: 8, pad: 0 })), /8 x 8/);
  assert.match(String(tileProblem({ tm: 4, tn: 4, wgX: 8, wgY: 8, bk: 6, pad: 0 })), /multiples of 4/);
  assert.match(String(tileProblem({ tm: 8, tn: 8, wgX: 16, wgY: 16, bk: 64, pad: 4 })), /workgroup memory/);
  assert.throws(() => overrideMatmulTile({ tm: 4, tn: 4, wgX: 64, wgY: 64, bk: 8, pad: 0 }), /exceeds/);
});

test.run();
