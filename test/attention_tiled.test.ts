// The tiled attention kernels (shaders/attention_tiled.wgsl), the ones hardware GPUs run, forced on
// this adapter: every attention gradcheck row (the flash rows on the tiled forward, dq and dkv
// kernels, the materialized rows on the tiled matmul), shapes that cross several query
// workgroups and key blocks raggedly against the float64 reference under the default and swept
// tiles, scores in the hundreds, and the score ViT's PyTorch fixture. Each case asserts that the
// tiled kernels ran and the flash kernels did not.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { overrideKernelFamily, workgroupTiles } from '../engine/device.ts';
import { engine } from '../engine/engine.ts';
import { dispatchCountsByKernel } from '../engine/kernel.ts';
import { compare, describeMismatch, runGradCase } from '../engine/gradcheck.ts';
import { attentionGradCases } from '../engine/cases/attention.ts';
import { attention, FLASH_MAX_D } from '../engine/ops/attention.ts';
import { attentionTileProblem, overrideAttentionTile, type AttentionTile } from '../engine/ops/attention_tiled.ts';
import { attentionForward, attentionVjp } from '../engine/reference/attention.ts';
import { HostRandom, host, type HostArray } from '../engine/reference/host.ts';
import { scope, tensor } from '../engine/tensor.ts';
import { clearTape, grad } from '../engine/tape.ts';
import { readFileBytes } from '../engine/io/files.ts';
import { flattenTensors, loadCheckpoint, readSafetensors } from '../engine/io/index.ts';
import { ScoreViT, inferScoreConfig } from '../nets/score_vit.ts';
import type { HostTensor } from '../engine/host_tensor.ts';
import { assertClose, relativeToMax } from './helpers.ts';

const test = suite('attention tiled');
const D4 = FLASH_MAX_D / 4;

interface Counts {
  /** Dispatches of the tiled forward, dq and dkv kernels. */
  tiled: { forward: number; dq: number; dkv: number };
  /** Dispatches of any flash kernel (shaders/attention.wgsl). */
  flash: number;
}

/** Attention dispatches since `before`. */
function forwards(before: Map<string, number>): Counts {
  const delta = (key: (k: string) => boolean) => [...dispatchCountsByKernel()].filter(([k]) => key(k)).reduce((a, [k, n]) => a + n - (before.get(k) ?? 0), 0);
  const tiled = (e: string) => delta((k) => k.startsWith(`attention_tiled.attention_tiled_${e}<`));
  return { tiled: { forward: tiled('forward'), dq: tiled('dq'), dkv: tiled('dkv') }, flash: delta((k) => k.startsWith('attention.attention_')) };
}

/** Every tiled kernel ran at least once and no flash kernel did. */
const allTiled = (n: Counts) => n.tiled.forward >= 1 && n.tiled.dq >= 1 && n.tiled.dkv >= 1 && n.flash === 0;

async function forced<T>(fn: () => Promise<T>, tile: AttentionTile | null = null): Promise<{ result: T; n: Counts }> {
  overrideKernelFamily('tiled');
  overrideAttentionTile(tile, D4);
  const before = dispatchCountsByKernel();
  try {
    const result = await fn();
    return { result, n: forwards(before) };
  } finally {
    overrideKernelFamily(null);
    overrideAttentionTile(null, D4);
  }
}

test('the default on this CPU adapter is the flash forward; the hook forces the tiled one', () => {
  assert.is(workgroupTiles(engine().gpu), false);
  assert.match(String(attentionTileProblem({ bq: 64, bkv: 6 }, D4)), /multiple of 4/);
  assert.match(String(attentionTileProblem({ bq: 64, bkv: 1024 }, D4)), /workgroup memory/);
  assert.throws(() => overrideAttentionTile({ bq: 4096, bkv: 4 }, D4), /exceeds/);
});

// Rows that name the packed qkv kernels ask for the flash kernels on purpose; the others must not reach them.
for (const c of attentionGradCases().filter((c) => !c.name.endsWith('packed]'))) {
  test(`tiled ${c.name}`, async () => {
    const { result: r, n } = await forced(() => runGradCase(c));
    assert.ok(r.pass, `${c.name}:\n${r.failures.join('\n')}`);
    assert.is(n.flash, 0, 'a flash kernel ran');
    if (c.name.endsWith('flash]')) assert.ok(allTiled(n), `${c.name}: ${JSON.stringify(n)}`);
  });
}

function randn(shape: number[], seed: number, spread = 1): HostArray {
  const r = new HostRandom(seed);
  return host(shape, Array.from({ length: shape.reduce((a, b) => a * b, 1) }, () => Math.fround(spread * r.normal())));
}

/** Tiled forward (and the flash backward) against the float64 reference: [B, H, Tq, d], Tk keys. */
async function againstReference(qShape: number[], Tk: number, spread: number, tol: { atol: number; rtol: number }, tile: AttentionTile | null) {
  const [B, H, , d] = qShape;
  const q = randn(qShape, 1, spread);
  const k = randn([B, H, Tk, d], 2, spread);
  const v = randn([B, H, Tk, d], 3);
  const gy = randn(qShape, 4);
  const scale = 1 / Math.sqrt(d);
  const want = [attentionForward(q, k, v, scale).data, ...attentionVjp(q, k, v, gy, scale)];
  const { result: got, n } = await forced(
    () =>
      scope(async () => {
        const ts = [q, k, v].map((x) => tensor(x.data, x.shape).requireGrad());
        const out = attention(ts[0], ts[1], ts[2], { impl: 'flash' });
        const gs = grad(out, ts, { upstream: tensor(gy.data, gy.shape) });
        return Promise.all([out, ...gs].map((t) => t.readF32()));
      }).finally(clearTape),
    tile,
  );
  for (const [i, name] of ['out', 'gq', 'gk', 'gv'].entries()) assertClose(got[i], want[i], tol, `${JSON.stringify(qShape)} Tk ${Tk}: ${name}`);
  assert.ok(allTiled(n), JSON.stringify(n));
}

const TOL = { atol: 1e-5, rtol: 1e-4 };
test('several query workgroups and key blocks, ragged: T = 70 and 75 keys, d = 64 and 20 (padded to 24)', async () => {
  await againstReference([1, 2, 70, 64], 75, 1, TOL, null);
  await againstReference([2, 1, 70, 20], 33, 1, TOL, null);
});

test('scores in the hundreds: the online softmax over blocks stays finite and exact', async () => {
  await againstReference([1, 1, 40, 16], 45, 5, { atol: 1e-4, rtol: 1e-3 }, { bq: 16, bkv: 8 });
});

for (const t of [{ bq: 16, bkv: 4 }, { bq: 32, bkv: 16 }, { bq: 128, bkv: 60 }]) {
  test(`tile ${JSON.stringify(t)}`, async () => {
    await againstReference([1, 2, 37, 12], 41, 1, TOL, t);
  });
}

test('score ViT PyTorch fixture: eps (<= 1e-4 of max) and grad x (<= 1e-3) on the tiled kernels', async () => {
  const path = (f: string) => new URL(`./fixtures/reference-tiny/${f}`, import.meta.url).pathname;
  const sd = new Map<string, HostTensor<Float32Array>>();
  for (const [k, t] of flattenTensors(await loadCheckpoint(await readFileBytes(path('score.pt'))))) sd.set(k, { dtype: 'float32', shape: t.shape, data: t.data as Float32Array });
  const net = ScoreViT.fromStateDict(inferScoreConfig(sd, 1), sd);
  const exp = readSafetensors(await readFileBytes(path('score_expected.safetensors'))).tensors;
  const T = (name: string) => tensor(exp.get(name)!.data as Float32Array, exp.get(name)!.shape);
  const failures: string[] = [];
  try {
    const { n } = await forced(() =>
      scope(async () => {
        const x = T('in.x').requireGrad();
        const eps = net.forward(x, T('in.t'));
        const [gx] = grad(eps, [x], { upstream: T('in.upstream') });
        for (const [name, got, bound] of [['out.eps', await eps.readF32(), 1e-4], ['grad.x', await gx.readF32(), 1e-3]] as const) {
          const want = exp.get(name)!.data as Float32Array;
          const tol = relativeToMax(want, bound);
          const c = compare(got, want, tol);
          if (!c.pass) failures.push(describeMismatch(name, got, want, c, tol, exp.get(name)!.shape));
        }
      }).finally(clearTape),
    );
    assert.equal(failures, []);
    // grad x needs dq only (k and v are computed from x, so dkv runs too).
    assert.ok(allTiled(n), JSON.stringify(n));
  } finally {
    net.dispose();
  }
});

test.run();
