// layer_norm's two row implementations (engine/ops/layer_norm.ts): 'serial' (one invocation per
// row, the default for D <= 64) and 'workgroup' (one 64-wide workgroup per row, the default above).
// Each against the float64 reference (forward, and gx, gw, gb for a random upstream gradient) on
// shapes either side of the switch, forced both ways; grid folding past 65535 workgroups for both;
// the choice and the impl option's error; a constant row (zero variance). The finite-difference
// rows are in engine/cases/layer_norm.ts; bad-input, grid-folding and pool checks shared with the
// layout ops and softmax are in test/layout.test.ts.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { scope, tensor } from '../engine/tensor.ts';
import { grad, clearTape } from '../engine/tape.ts';
import { SERIAL_MAX_D, chooseLayerNormImpl, layerNorm, type LayerNormImpl } from '../engine/ops/layer_norm.ts';
import { layerNormForward, layerNormVjp } from '../engine/reference/layer_norm.ts';
import { HostRandom, host } from '../engine/reference/host.ts';
import { sum } from '../engine/ops/reduce.ts';
import { throwsNaming } from './helpers.ts';

const test = suite('layer_norm');

/** max |a - b| / max |b|. */
function relErr(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let num = 0;
  let den = 0;
  for (let i = 0; i < b.length; i++) (num = Math.max(num, Math.abs(a[i] - b[i]))), (den = Math.max(den, Math.abs(b[i])));
  return num / den;
}

async function againstReference(shape: number[], impl: LayerNormImpl, seed: number, offset = 0): Promise<string[]> {
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
  const errs = [relErr(got[0], want.data), relErr(got[1], wgx), relErr(got[2], wgw), relErr(got[3], wgb)];
  return ['y', 'gx', 'gw', 'gb'].flatMap((name, i) => (errs[i] <= 2e-5 ? [] : [`[${shape}] ${impl} ${name}: ${errs[i]}`]));
}

test('the default: serial up to D = 64, workgroup above', () => {
  assert.is(SERIAL_MAX_D, 64);
  assert.is(chooseLayerNormImpl(1), 'serial');
  assert.is(chooseLayerNormImpl(64), 'serial');
  assert.is(chooseLayerNormImpl(65), 'workgroup');
  assert.is(chooseLayerNormImpl(1024), 'workgroup');
});

test('both implementations match the float64 reference on narrow and wide rows', async () => {
  const failures: string[] = [];
  // 4096 x 32: the Gaussian score model's sampling batch; 300 rows: several serial workgroups and
  // a partial last one; 130 and 64: either side of the switch; an offset mean (two-pass variance).
  const shapes = [[4096, 32], [3, 100, 7], [6, 130], [2, 3, 64], [5, 65]];
  for (const [i, shape] of shapes.entries()) {
    for (const impl of ['serial', 'workgroup'] as const) failures.push(...(await againstReference(shape, impl, 10 + i)));
  }
  failures.push(...(await againstReference([40, 24], 'serial', 30, 50)), ...(await againstReference([40, 24], 'workgroup', 30, 50)));
  assert.equal(failures, []);
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
