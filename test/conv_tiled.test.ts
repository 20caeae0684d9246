// The implicit-GEMM convolution kernels (shaders/conv_tiled.wgsl), the ones hardware GPUs run,
// forced on this adapter: every gradcheck row of conv2d, conv_transpose2d and the modulated conv
// (forward and gradients against the float64 reference, the reference against finite
// differences), conv2d's and conv_transpose2d's PyTorch golden values, and the StyleGAN2 PyTorch
// fixture replayed end to end. Each case asserts that the tiled kernels ran (dispatches counted by
// kernel name) and that the general and subgroup forward and input-gradient kernels did not.
import { readFileSync } from 'node:fs';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { engine } from '../engine/engine.ts';
import { overrideKernelFamily, workgroupTiles } from '../engine/device.ts';
import { dispatchCountsByKernel } from '../engine/kernel.ts';
import { runGradCase, compare, describeMismatch, type GradCase } from '../engine/gradcheck.ts';
import { conv2dGradCases } from '../engine/cases/conv2d.ts';
import { convTranspose2dGradCases } from '../engine/cases/conv_transpose2d.ts';
import { modulatedConvGradCases } from '../engine/cases/modulated_conv.ts';
import { convTileProblem, overrideConvTile, type ConvTile } from '../engine/ops/conv_tiled.ts';
import { tileProblem } from '../engine/ops/matmul_tiled.ts';
import { conv2d } from '../engine/ops/conv2d.ts';
import { convTranspose2d } from '../engine/ops/conv_transpose2d.ts';
import { scope, tensor, type Tensor } from '../engine/tensor.ts';
import { clearTape, grad } from '../engine/tape.ts';
import { readFileBytes } from '../engine/io/files.ts';
import { readSafetensors } from '../engine/io/index.ts';
import { StyleGAN2 } from '../nets/stylegan2.ts';
import { readGeneratorCheckpoint } from '../nets/stylegan2_checkpoint.ts';
import { replayGenerator, type TensorMap } from '../nets/replay_generator.ts';
import { assertClose, relativeToMax } from './helpers.ts';

const test = suite('conv tiled');

/** The forward and input-gradient kernels the tiled ones replace (the weight gradients stay). */
const REPLACED = [
  'conv2d.conv2d_forward',
  'conv_transpose2d.conv_transpose2d_forward',
  'modulated_conv.modulated_conv_forward',
  'modulated_conv_backward.modulated_conv_input_backward',
  'modulated_conv_subgroup.',
];

/** Dispatches since `before`: of the tiled GEMMs by variant (conv, transposed, mod, modgrad), and of the replaced kernels. */
function counts(before: Map<string, number>): { tiled: Record<string, number>; replaced: string[] } {
  const tiled: Record<string, number> = {};
  const replaced: string[] = [];
  for (const [key, total] of dispatchCountsByKernel()) {
    const n = total - (before.get(key) ?? 0);
    if (n === 0) continue;
    const m = /^conv_tiled\.conv_tiled<(\w+)\//.exec(key);
    if (m) tiled[m[1].replace('_bias', '')] = (tiled[m[1].replace('_bias', '')] ?? 0) + n;
    else if (key.startsWith('conv_tiled.conv_tiled_pieces')) tiled.pieces = (tiled.pieces ?? 0) + n;
    else if (REPLACED.some((r) => key.startsWith(r))) replaced.push(key);
  }
  return { tiled, replaced };
}

/** Runs `fn` with the tiled family forced (and `tile`, when given) and returns the dispatch counts. */
async function forced(fn: () => Promise<void>, tile: ConvTile | null = null): Promise<ReturnType<typeof counts>> {
  overrideKernelFamily('tiled');
  overrideConvTile(tile);
  const before = dispatchCountsByKernel();
  try {
    await fn();
    return counts(before);
  } finally {
    overrideKernelFamily(null);
    overrideConvTile(null);
  }
}

async function gradcheck(c: GradCase, tile: ConvTile | null = null) {
  return forced(async () => {
    const r = await runGradCase(c);
    assert.ok(r.pass, `${c.name}:\n${r.failures.join('\n')}`);
  }, tile);
}

test('the default on this CPU adapter is not the tiled family; the hook forces it', () => {
  const gpu = engine().gpu;
  assert.is(workgroupTiles(gpu), false);
  overrideKernelFamily('tiled');
  try {
    assert.is(workgroupTiles(gpu), true);
  } finally {
    overrideKernelFamily(null);
  }
});

// conv2d: forward by 'conv', input gradient by 'transposed'; conv_transpose2d the other way round.
for (const [cases, fwd, adj] of [[conv2dGradCases(), 'conv', 'transposed'], [convTranspose2dGradCases(), 'transposed', 'conv']] as const) {
  for (const c of cases) {
    test(`tiled ${c.name}`, async () => {
      const n = await gradcheck(c);
      assert.ok((n.tiled[fwd] ?? 0) >= 1 && (n.tiled[adj] ?? 0) >= 1, `${c.name}: tiled dispatches ${JSON.stringify(n.tiled)}`);
      assert.equal(n.replaced, [], `${c.name}: a replaced kernel ran`);
    });
  }
}

for (const c of modulatedConvGradCases()) {
  test(`tiled ${c.name}`, async () => {
    const n = await gradcheck(c);
    // The gradcheck runs the forward more than once; the input gradient once with its pieces.
    assert.ok((n.tiled.mod ?? 0) >= 1 && (n.tiled.modgrad ?? 0) >= 1 && (n.tiled.pieces ?? 0) >= 1, `${c.name}: tiled dispatches ${JSON.stringify(n.tiled)}`);
    assert.equal(n.replaced, [], `${c.name}: a replaced kernel ran`);
  });
}

// Tile shapes a GPU sweep uses (8 x 8 and 2 x 4 register tiles, k steps 4 to 32, no padding) on
// rows with several pixel and channel blocks and ragged K (5 x 9 = 45, 9 x 9 = 81).
const sweep: ConvTile[] = [
  { tm: 8, tn: 8, wgX: 4, wgY: 4, bk: 8, pad: 4 },
  { tm: 2, tn: 4, wgX: 8, wgY: 8, bk: 32, pad: 0 },
  { tm: 4, tn: 8, wgX: 4, wgY: 8, bk: 4, pad: 1 },
];
for (const t of sweep) {
  test(`tiled tile ${JSON.stringify(t)}`, async () => {
    for (const c of [conv2dGradCases()[6], modulatedConvGradCases()[5], modulatedConvGradCases()[6]]) {
      const n = await gradcheck(c, t);
      assert.equal(n.replaced, [], `${c.name}: a replaced kernel ran`);
    }
  });
}

test('tiles whose workgroup memory, index tables included, exceeds the device are refused by name', () => {
  // 64 x 64 blocks, k step 60, padding 4: 4 * 60 * 136 = 32640 bytes of tiles fit lavapipe's 32768,
  // the 16 * (60 + 64) bytes of index tables do not.
  const t: ConvTile = { tm: 4, tn: 4, wgX: 16, wgY: 16, bk: 60, pad: 4 };
  assert.match(String(convTileProblem(t)), /34624 bytes of workgroup memory/);
  if (engine().gpu.limits.maxComputeWorkgroupStorageSize === 32768) assert.is(tileProblem(t), null);
  assert.throws(() => overrideConvTile(t), /conv tile 64x64\/4x4\/k60\/p4/);
  assert.is(convTileProblem({ tm: 8, tn: 8, wgX: 16, wgY: 16, bk: 8, pad: 4 }), null);
});

interface GoldenCase {
  op: 'conv2d' | 'conv_transpose2d';
  name: string;
  x: number[]; x_shape: number[]; w: number[]; w_shape: number[]; b?: number[]; r: number[];
  y: number[]; y_shape: number[]; gx: number[]; gw: number[]; gb?: number[];
  stride: [number, number]; padding: [number, number]; dilation: [number, number]; groups: number; output_padding: [number, number];
}
const golden = JSON.parse(readFileSync(new URL('golden/conv_golden.json', import.meta.url), 'utf8')) as { cases: GoldenCase[] };

test('PyTorch golden conv2d and conv_transpose2d values (<= 1e-5 of max) on the tiled kernels', async () => {
  const n = await forced(async () => {
    for (const g of golden.cases) {
      await scope(async () => {
        const x = tensor(g.x, g.x_shape).requireGrad();
        const w = tensor(g.w, g.w_shape).requireGrad();
        const b = g.b ? tensor(g.b, [g.b.length]).requireGrad() : null;
        const o = { stride: g.stride, padding: g.padding, dilation: g.dilation, groups: g.groups };
        const y = g.op === 'conv2d' ? conv2d(x, w, b, o) : convTranspose2d(x, w, b, { ...o, outputPadding: g.output_padding });
        const grads = grad(y, b ? [x, w, b] : [x, w], { upstream: tensor(g.r, g.y_shape) });
        const checks: [string, Tensor, number[]][] = [['y', y, g.y], ['gx', grads[0], g.gx], ['gw', grads[1], g.gw]];
        for (const [what, t, want] of checks) assertClose(await t.readF32(), want, relativeToMax(want, 1e-5), `${g.name}: ${what} vs PyTorch`);
      }).finally(clearTape);
    }
  });
  assert.ok((n.tiled.conv ?? 0) >= 1 && (n.tiled.transposed ?? 0) >= 1, JSON.stringify(n.tiled));
  assert.equal(n.replaced, []);
});

test('StyleGAN2 PyTorch fixture: every out.* (<= 1e-4) and grad.* (<= 1e-3) tensor on the tiled kernels', async () => {
  const fixture = (f: string) => new URL(`./fixtures/reference-tiny/${f}`, import.meta.url).pathname;
  const expected = readSafetensors(await readFileBytes(fixture('generator_expected.safetensors'))).tensors as unknown as TensorMap;
  const inputs: TensorMap = new Map([...expected].filter(([k]) => k.startsWith('in.')));
  const ckpt = await readGeneratorCheckpoint(await readFileBytes(fixture('generator.pt')));
  const g = StyleGAN2.fromStateDict(ckpt.config, ckpt.stateDict, ckpt.latentAvg);
  const failures: string[] = [];
  let checked = 0;
  const n = await forced(async () => {
    const got = await replayGenerator(g, inputs);
    for (const [name, want] of expected) {
      if (name.startsWith('in.')) continue;
      const have = got.get(name);
      if (!have) {
        failures.push(`${name}: not produced`);
        continue;
      }
      const tol = relativeToMax(want.data, name.startsWith('out.') ? 1e-4 : 1e-3);
      const c = compare(have.data, want.data, tol);
      checked++;
      if (!c.pass) failures.push(describeMismatch(name, have.data, want.data, c, tol, want.shape));
    }
  }).finally(() => g.dispose());
  assert.equal(failures, []);
  assert.is(checked, 28);
  assert.ok((n.tiled.mod ?? 0) >= 1 && (n.tiled.modgrad ?? 0) >= 1, JSON.stringify(n.tiled));
  assert.equal(n.replaced, []);
});

test.run();
