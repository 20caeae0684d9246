// layer_norm's two row implementations (engine/ops/layer_norm.ts): 'serial' (one invocation per
// row, the default for D <= serialMaxD(): 64 on a hardware GPU, 256 on a CPU adapter) and
// 'workgroup' (one 64-wide workgroup per row, the default above).
// Each against the float64 reference (forward, and gx, gw, gb for a random upstream gradient) on
// shapes either side of the switch, forced both ways; grid folding past 65535 workgroups for both;
// the default choice at serialMaxD() and one above, by the kernels it dispatches; the impl option's
// error; a constant row (zero variance). The finite-difference rows are in engine/cases/layer_norm.ts;
// bad-input, grid-folding and pool checks shared with the layout ops and softmax are in
// test/layout.test.ts.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { scope, tensor } from '../engine/tensor.ts';
import { grad, clearTape } from '../engine/tape.ts';
import { serialMaxD, layerNorm, type LayerNormImpl } from '../engine/ops/layer_norm.ts';
import { dispatchCountsByKernel } from '../engine/kernel.ts';
import { layerNormForward, layerNormVjp } from '../engine/reference/layer_norm.ts';
import { HostRandom, host } from '../engine/reference/host.ts';
import { sum } from '../engine/ops/reduce.ts';
import { assertClose, relativeToMax, throwsNaming } from './helpers.ts';

const test = suite('layer_norm');

/** Per tensor max|a - b| / max|b| <= 2e-5 (relativeToMax). */
const TOL = 2e-5;

/** Asserts y, gx, gw, gb of the given impl (or the default choice) match the float64 reference. */
async function againstReference(shape: number[], impl: LayerNormImpl | undefined, seed: number, offset = 0): Promise<void> {
  const rng = new HostRandom(seed);
  const d = shape[shape.length - 1];
  const n = shape.reduce((p, v) => p * v, 1);
  const draw = (k: number, shift = 0) => Float64Array.from({ length: k }, () => Math.fround(shift + rng.normal()));
  const [xd, wd, bd, gyd] = [draw(n, offset), draw(d, 1), draw(d), draw(n)];
  const eps = 1e-5;
  const want = layerNormForward(host(shape, xd), host([d], wd), host([d], bd), eps);
  const [wgx, wgw, wgb] = layerNormVjp(host(shape, xd), host([d], wd), host([d], bd), eps, host(shape, gyd));
  const got = await scope(async () => {
    const x = tensor(xd, shape).requireGrad();
    const w = tensor(wd, [d]).requireGrad();
    const b = tensor(bd, [d]).requireGrad();
    const y = layerNorm(x, w, b, eps, { impl });
    const gs = grad(y, [x, w, b], { upstream: tensor(gyd, shape) });
    return Promise.all([y, ...gs].map((t) => t.readF32()));
  }).finally(clearTape);
  const wants = [want.data, wgx, wgw, wgb];
  ['y', 'gx', 'gw', 'gb'].forEach((name, i) => assertClose(got[i], wants[i], relativeToMax(wants[i], TOL), `[${shape}] ${impl ?? 'default'} ${name}`));
}

/** The layer_norm row kernels (forward, gx) dispatched while fn runs, by entry point. */
async function rowKernelsOf(fn: () => Promise<void>): Promise<string[]> {
  const before = dispatchCountsByKernel();
  await fn();
  return [...dispatchCountsByKernel()]
    .filter(([k, n]) => /^layer_norm\.layer_norm_(forward|backward)(_rows)?$/.test(k) && n > (before.get(k) ?? 0))
    .map(([k]) => k.slice('layer_norm.'.length))
    .sort();
}

test('the default: rows of serialMaxD() run the serial kernels, one more the workgroup ones; both match the reference', async () => {
  const SERIAL_MAX_D = serialMaxD();
  const serial = ['layer_norm_backward_rows', 'layer_norm_forward_rows'];
  const workgroup = ['layer_norm_backward', 'layer_norm_forward'];
  for (const [d, want] of [[1, serial], [SERIAL_MAX_D, serial], [SERIAL_MAX_D + 1, workgroup], [4 * SERIAL_MAX_D, workgroup]] as const) {
    assert.equal(await rowKernelsOf(() => againstReference([3, d], undefined, 40 + d)), want, `D = ${d}`);
  }
  // The forced impls dispatch what they name, whatever D is.
  assert.equal(await rowKernelsOf(() => againstReference([3, SERIAL_MAX_D + 1], 'serial', 41)), serial);
  assert.equal(await rowKernelsOf(() => againstReference([3, SERIAL_MAX_D], 'workgroup', 42)), workgroup);
});

test('FiLM modulation: both implementations, the ViT shape and rows spanning serial workgroups, match the float64 reference', async () => {
  // [32, 16, 128]: the block-0 score model's LayerNorm (32 items of 16 tokens); [5, 30, 24]:
  // 150 rows, items crossing workgroup boundaries.
  for (const [i, [items, T, d]] of [[32, 16, 128], [5, 30, 24]].entries()) {
    const rng = new HostRandom(90 + i);
    const shape = [items, T, d];
    const n = items * T * d;
    const draw = (k: number, shift = 0) => Float64Array.from({ length: k }, () => Math.fround(shift + rng.normal()));
    const [xd, wd, bd, md, gyd] = [draw(n), draw(d, 1), draw(d), draw(items * 2 * d), draw(n)];
    const hx = host(shape, xd);
    const [hw, hb, hm] = [host([d], wd), host([d], bd), host([items, 2 * d], md)];
    const want = [layerNormForward(hx, hw, hb, 1e-5, hm).data, ...layerNormVjp(hx, hw, hb, 1e-5, host(shape, gyd), hm)];
    for (const impl of ['serial', 'workgroup'] as const) {
      const got = await scope(async () => {
        const ts = [tensor(xd, shape), tensor(wd, [d]), tensor(bd, [d]), tensor(md, [items, 2 * d])].map((t) => t.requireGrad());
        const y = layerNorm(ts[0], ts[1], ts[2], 1e-5, { impl, modulation: ts[3] });
        const gs = grad(y, ts, { upstream: tensor(gyd, shape) });
        return Promise.all([y, ...gs].map((t) => t.readF32()));
      }).finally(clearTape);
      ['y', 'gx', 'gw', 'gb', 'gmod'].forEach((name, k) => assertClose(got[k], want[k], relativeToMax(want[k], TOL), `[${shape}] ${impl} modulated ${name}`));
    }
  }
  const x = () => tensor(new Float32Array(24), [2, 3, 4]);
  const w = () => tensor(new Float32Array(4), [4]);
  throwsNaming(() => layerNorm(x(), w(), w(), 1e-5, { modulation: tensor(new Float32Array(16), [2, 8, 1]) }), /modulation must be f32 \[Bm, 8\] with Bm dividing the 6 rows/);
  throwsNaming(() => layerNorm(x(), w(), w(), 1e-5, { modulation: tensor(new Float32Array(32), [4, 8]) }), /got f32\[4, 8\]/);
});

test('both implementations match the float64 reference on narrow and wide rows', async () => {
  // 4096 x 32: the Gaussian score model's sampling batch; 300 rows: several serial workgroups and
  // a partial last one; 130 and 64: either side of the switch; an offset mean (two-pass variance).
  const shapes = [[4096, 32], [3, 100, 7], [6, 130], [2, 3, 64], [5, 65]];
  for (const [i, shape] of shapes.entries()) {
    for (const impl of ['serial', 'workgroup'] as const) await againstReference(shape, impl, 10 + i);
  }
  await againstReference([40, 24], 'serial', 30, 50);
  await againstReference([40, 24], 'workgroup', 30, 50);
});

test('both implementations fold their grids past 65535 workgroups', async () => {
  // Every row [log 3, 0] normalizes to [1, -1] (eps 0). workgroup: one workgroup per row, so
  // 65537 rows fold; serial: 64 rows per workgroup, so 65535 * 64 + 1 rows fold.
  for (const [impl, rows] of [['workgroup', 65537], ['serial', 65535 * 64 + 1]] as const) {
    const data = new Float32Array(rows * 2);
    for (let r = 0; r < rows; r++) data[2 * r] = Math.log(3);
    const z = await scope(() => layerNorm(tensor(data, [rows, 2]), tensor([1, 1], [2]), tensor([0, 0], [2]), 0, { impl }).readF32());
    for (const r of [0, rows - 2, rows - 1]) {
      assert.ok(Math.abs(z[2 * r] - 1) < 1e-5 && Math.abs(z[2 * r + 1] + 1) < 1e-5, `${impl}, row ${r} of ${rows}: ${z[2 * r]}, ${z[2 * r + 1]}`);
    }
  }
});

test('an unknown impl is named', () => {
  throwsNaming(() => layerNorm(tensor([1, 2], [1, 2]), tensor([1, 1], [2]), tensor([0, 0], [2]), 1e-5, { impl: 'fast' as LayerNormImpl }), /unknown impl "fast"/);
});

test('layer_norm of a constant row gives the bias and finite gradients', async () => {
  await scope(async () => {
    // D = 8 so the mean is exact (1/D is a power of two) and x - mean is exactly 0.
    const x = tensor(new Array(16).fill(3.25), [2, 8]).requireGrad();
    const randn = (n: number, seed: number) => {
      const r = new HostRandom(seed);
      return Array.from({ length: n }, () => Math.fround(r.normal()));
    };
    const w = tensor(randn(8, 3), [8]).requireGrad();
    const b = tensor(randn(8, 4), [8]).requireGrad();
    const y = layerNorm(x, w, b);
    const yv = await y.readF32();
    const bv = await b.readF32();
    yv.forEach((v, i) => assert.ok(Math.abs(v - bv[i % 8]) <= 1e-6, `y[${i}] = ${v}, bias ${bv[i % 8]}`));
    const [gx, gw, gb] = grad(sum(y), [x, w, b]);
    for (const g of [gx, gw, gb]) for (const v of await g.readF32()) assert.ok(Number.isFinite(v));
    assert.equal([...(await gb.readF32())], new Array(8).fill(2));
  });
});

test.run();
