// The l1-ball projection (engine/ops/l1_ball.ts): GPU against the float64 sort-based reference on
// random rows (with and without a center, radii from tight to loose, rows longer than a workgroup),
// the edge cases (inside the ball -> unchanged, r = 0 -> the center, ties, values spread
// geometrically, one ball per row), clear errors for bad input, and that it is a projection:
// idempotent, and closer to x than random points of the ball (and the variational inequality
// <x - p, q - p> <= 0 for them). No gradcheck row: the op is not differentiated through.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { scope, tensor, type Tensor } from '../engine/tensor.ts';
import { projectL1Ball, projectL1BallWithThreshold } from '../engine/ops/l1_ball.ts';
import { HostRandom, host } from '../engine/reference/host.ts';
import { projectL1BallForward } from '../engine/reference/l1_ball.ts';
import { assertClose, throwsNaming } from './helpers.ts';

const test = suite('l1_ball');

const randn = (n: number, seed: number, scale = 1) => {
  const r = new HostRandom(seed);
  return Float32Array.from({ length: n }, () => scale * r.normal());
};
const l1 = (a: ArrayLike<number>, b?: ArrayLike<number>) => {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += Math.abs(a[i] - (b ? b[i] : 0));
  return s;
};
const rowOf = (a: ArrayLike<number>, b: number, n: number) => Array.prototype.slice.call(a, b * n, (b + 1) * n) as number[];

async function gpu(x: Float32Array, shape: number[], r: number, center?: Float32Array): Promise<{ y: Float32Array; theta: Float32Array }> {
  return scope(async () => {
    const { y, theta } = projectL1BallWithThreshold(tensor(x, shape), r, center ? tensor(center, shape) : undefined);
    return { y: await y.readF32(), theta: await theta.readF32() };
  });
}

/** GPU vs reference: elementwise within tol relative to the row's largest deviation. */
async function compare(shape: number[], r: number, seed: number, withCenter: boolean): Promise<void> {
  const n = shape.reduce((a, b) => a * b, 1);
  const x = randn(n, seed);
  const c = withCenter ? randn(n, seed + 1, 0.5) : undefined;
  const got = await gpu(x, shape, r, c);
  const ref = projectL1BallForward(host(shape, x), r, c ? host(shape, c) : undefined);
  const rows = shape[0];
  const per = n / rows;
  for (let b = 0; b < rows; b++) {
    const scale = rowOf(x, b, per).reduce((m, v) => Math.max(m, Math.abs(v)), 1);
    const tol = 2e-5 * scale * Math.max(1, Math.sqrt(per) / 16);
    assertClose([got.theta[b]], [ref.theta[b]], { atol: tol, rtol: 0 }, `[${shape}] r=${r} row ${b}: theta`);
    assertClose(rowOf(got.y, b, per), rowOf(ref.y.data, b, per), { atol: tol, rtol: 0 }, `[${shape}] r=${r} row ${b}`);
    const dist = l1(rowOf(got.y, b, per), c ? rowOf(c, b, per) : undefined);
    assert.ok(dist <= r * (1 + 1e-5) + 1e-6 * per, `[${shape}] row ${b}: ||y - c||_1 = ${dist} > r = ${r}`);
  }
}

test('matches the float64 reference on random rows (tight to loose radii, with and without a center)', async () => {
  const cases: [number[], number][] = [
    [[3, 7], 1],
    [[2, 4, 5, 5], 5],
    [[4, 300], 0.5],
    [[4, 300], 100],
    [[2, 3000], 1000],
    [[2, 3000], 10],
    [[1, 20000], 3000],
  ];
  let seed = 1;
  for (const [shape, r] of cases) for (const withCenter of [false, true]) await compare(shape, r, seed++, withCenter);
});

test('a long row (200k values, ILO-sized features) matches the reference', async () => {
  await compare([2, 200_000], 20_000, 77, true);
});

test('rows inside the ball are unchanged (bit for bit); r = 0 gives the center; r = inf is a copy', async () => {
  const x = randn(40, 3);
  const c = randn(40, 4);
  const dist = l1(x.subarray(0, 20), c.subarray(0, 20));
  // Row 0 inside (radius above its distance), row 1 far outside.
  const got = await gpu(Float32Array.from([...x.subarray(0, 20), ...x.subarray(20).map((v) => v * 1000)]), [2, 20], dist * 1.01, c);
  assert.equal(Array.from(got.y.subarray(0, 20)), Array.from(x.subarray(0, 20)));
  assert.is(got.theta[0], 0);
  assert.ok(got.theta[1] > 0);
  const zero = await gpu(x, [2, 20], 0, c);
  assert.equal(Array.from(zero.y), Array.from(c));
  const zeroNoCenter = await gpu(x, [2, 4, 5], 0);
  assert.ok(zeroNoCenter.y.every((v) => v === 0));
  const inf = await gpu(x, [4, 10], Infinity, c);
  assert.equal(Array.from(inf.y), Array.from(x));
  assert.equal(Array.from(inf.theta), [0, 0, 0, 0]);
  const atZero = await gpu(new Float32Array(12), [3, 4], 1);
  assert.ok(atZero.y.every((v) => v === 0));
});

test('ties, values spread geometrically, and huge spreads', async () => {
  // Six entries of magnitude 1, radius 3: each shrinks to 0.5 with its sign.
  let got = await gpu(Float32Array.from([1, -1, 1, -1, 1, -1]), [1, 6], 3);
  assert.equal(Array.from(got.y), [0.5, -0.5, 0.5, -0.5, 0.5, -0.5]);
  assert.is(got.theta[0], 0.5);
  // Ties exactly at the threshold: [3, -1, 1, 0.5] with r = 2 -> theta 1: [2, 0, 0, 0].
  got = await gpu(Float32Array.from([3, -1, 1, 0.5]), [1, 4], 2);
  assert.equal(Array.from(got.y), [2, 0, 0, 0]);
  assert.is(got.theta[0], 1);
  // Tied entries above the threshold: [3, -2, 2, 1, -1], r = 2 -> theta 5/3.
  await compareExact(Float32Array.from([3, -2, 2, 1, -1]), [1, 5], 2);
  // Zeros among ties, and many exact duplicates across a long row.
  const dup = Float32Array.from({ length: 1000 }, (_, i) => [0, 0.25, -0.25, 0.5, 2][i % 5]);
  await compareExact(dup, [2, 500], 37);
  // 2^-i (Michelot's slow case) and a spread of 1e-6 .. 1e6.
  await compareExact(Float32Array.from({ length: 120 }, (_, i) => (i % 2 ? -1 : 1) * 2 ** -(i % 60)), [2, 60], 0.3);
  await compareExact(Float32Array.from({ length: 64 }, (_, i) => 10 ** ((i % 13) - 6) * (i % 3 ? 1 : -1)), [1, 64], 12.5);
});

async function compareExact(x: Float32Array, shape: number[], r: number): Promise<void> {
  const got = await gpu(x, shape, r);
  const ref = projectL1BallForward(host(shape, x), r);
  const scale = x.reduce((m, v) => Math.max(m, Math.abs(v)), 0);
  assertClose(got.y, ref.y.data, { atol: 1e-6 * scale, rtol: 0 }, `[${shape}] r=${r}`);
}

test('bad input fails with a message naming the problem', () => {
  throwsNaming(() => projectL1Ball(tensor([1, 2, 3], [1, 3]), -1), /radius must be a number >= 0/, /-1/);
  throwsNaming(() => projectL1Ball(tensor([1, 2, 3], [1, 3]), NaN), /radius/, /NaN/);
  throwsNaming(() => projectL1Ball(tensor([1, 2, 3], [3]), 1), /\[rows, \.\.\.\]/, /\[3\]/);
  throwsNaming(() => projectL1Ball(tensor([1, 2, 3, 4], [2, 2]), 1, tensor([1, 2, 3, 4], [1, 4])), /center has shape \[1, 4\], x has \[2, 2\]/);
  throwsNaming(() => projectL1Ball(tensor([1, 2], [1, 2], 'u32'), 1), /x must be f32, got u32/);
});

test('it is a projection: idempotent, and the closest point of the ball', async () => {
  const rows = 3;
  const n = 500;
  const r = 20;
  const x = randn(rows * n, 11, 0.5);
  const c = randn(rows * n, 12, 0.2);
  const { y, y2 } = await scope(async () => {
    const p: Tensor = projectL1Ball(tensor(x, [rows, n]), r, tensor(c, [rows, n]));
    const p2 = projectL1Ball(p, r, tensor(c, [rows, n]));
    return { y: await p.readF32(), y2: await p2.readF32() };
  });
  for (let i = 0; i < y.length; i++) assert.ok(Math.abs(y2[i] - y[i]) <= 1e-6, `idempotent at ${i}: ${y[i]} -> ${y2[i]}`);
  const rng = new HostRandom(13);
  for (let b = 0; b < rows; b++) {
    const xb = rowOf(x, b, n);
    const yb = rowOf(y, b, n);
    const cb = rowOf(c, b, n);
    assert.ok(l1(yb, cb) <= r * (1 + 1e-5), `row ${b} in the ball`);
    const dy = Math.hypot(...xb.map((v, i) => v - yb[i]));
    for (let t = 0; t < 200; t++) {
      // Random points of the ball: a random direction (sparse half the time), scaled to a random
      // l1 radius in [0, r] (on the boundary a quarter of the time).
      const dir = Array.from({ length: n }, () => (t % 2 && rng.uniform() < 0.9 ? 0 : rng.normal()));
      const scale = (t % 4 === 0 ? r : r * rng.uniform()) / Math.max(l1(dir), 1e-12);
      const q = dir.map((v, i) => cb[i] + v * scale);
      const dq = Math.hypot(...xb.map((v, i) => v - q[i]));
      assert.ok(dy <= dq + 1e-5, `row ${b}: ||x - P(x)|| = ${dy} > ||x - q|| = ${dq}`);
      // Variational inequality of the projection onto a convex set.
      let ip = 0;
      for (let i = 0; i < n; i++) ip += (xb[i] - yb[i]) * (q[i] - yb[i]);
      assert.ok(ip <= 1e-4, `row ${b}: <x - p, q - p> = ${ip} > 0`);
    }
  }
});

test.run();
