// Tensors, shapes, the buffer pool and scopes.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { engine } from '../engine/engine.ts';
import { scope, tensor, zeros, full, empty, Tensor } from '../engine/tensor.ts';
import { bucketSize } from '../engine/buffer_pool.ts';
import { add, mul } from '../engine/ops/elementwise.ts';
import { sum } from '../engine/ops/reduce.ts';
import { broadcastShapes, normalizeAxes } from '../engine/shape.ts';

const test = suite('tensor');

test('upload and download round-trip f32 and u32', async () => {
  const data = [1.5, -2, 3.25, 1e-8, -7e5, 0];
  const t = tensor(data, [2, 3]);
  assert.equal(Array.from(await t.read()), data.map(Math.fround));
  const u = tensor([0, 1, 4294967295], [3], 'u32');
  assert.equal(Array.from(await u.read()), [0, 1, 4294967295]);
  assert.is(u.dtype, 'u32');
  t.dispose();
  u.dispose();
});

test('zeros and full', async () => {
  const z = zeros([3, 5]);
  assert.ok((await z.read()).every((v) => v === 0));
  const f = full([4], -2.5);
  assert.equal(Array.from(await f.read()), [-2.5, -2.5, -2.5, -2.5]);
  z.dispose();
  f.dispose();
});

test('scalars have shape [] and size 1', async () => {
  const s = tensor([42], []);
  assert.is(s.size, 1);
  assert.equal(s.shape, []);
  assert.equal(Array.from(await s.read()), [42]);
  s.dispose();
});

test('bad shapes give clear errors', () => {
  assert.throws(() => tensor([1, 2, 3], [2, 2]), /3 values do not fill shape \[2, 2\]/);
  assert.throws(() => empty([2, 0]), /positive integer.*\[2, 0\]/);
  assert.throws(() => empty([2, -1]), /positive integer/);
  assert.throws(() => empty([1.5]), /positive integer/);
  assert.throws(() => empty([1, 1, 1, 1, 1, 1, 1, 1, 1]), /rank 9 exceeds/);
  assert.throws(() => broadcastShapes([2, 3], [4, 3], 'add'), /add: shapes \[2, 3\] and \[4, 3\] cannot be broadcast/);
  assert.throws(() => normalizeAxes([0, 3], 2, 'sum'), /sum: axis 3 is out of range for a tensor of rank 2/);
  assert.throws(() => normalizeAxes([1, -1], 2, 'sum'), /repeated axis/);
});

test('a buffer larger than the device allows is refused with its size', () => {
  const limit = Math.min(engine().gpu.limits.maxStorageBufferBindingSize, engine().gpu.limits.maxBufferSize);
  const n = Math.floor(limit / 4) + 1024;
  assert.throws(() => empty([n]), /exceed the device's largest bindable buffer/);
});

test('use after dispose names the tensor', () => {
  const t = zeros([2]);
  t.dispose();
  assert.throws(() => t.buffer, /used after dispose\(\)/);
  t.dispose(); // idempotent
});

test('mixing dtypes is refused', () => {
  const u = zeros([2], 'u32');
  const f = zeros([2]);
  assert.throws(() => add(u, f), /expects f32/);
  assert.throws(() => u.requireGrad(), /only f32/);
  u.dispose();
  f.dispose();
});

test('buckets: quarter steps of powers of two, at least 256 bytes', () => {
  assert.is(bucketSize(1), 256);
  assert.is(bucketSize(256), 256);
  assert.is(bucketSize(257), 512); // steps are at least 256 bytes
  assert.is(bucketSize(1025), 1280);
  assert.is(bucketSize(4096), 4096);
  assert.is(bucketSize(4097), 5120);
  for (const n of [300, 1000, 5000, 123457, 9_999_999]) {
    const b = bucketSize(n);
    assert.ok(b >= n && b <= n * 1.25 + 256, `${n} -> ${b}`);
  }
});

test('the pool reuses released buffers and counts bytes in use', () => {
  const before = engine().memory();
  const a = empty([1000]);
  const mid = engine().memory();
  assert.is(mid.bytesInUse - before.bytesInUse, 4000);
  assert.is(mid.buffersInUse - before.buffersInUse, 1);
  const buf = a.buffer;
  a.dispose();
  assert.is(engine().memory().bytesInUse, before.bytesInUse);
  const b = empty([990]); // same bucket: must get the same buffer back
  assert.is(b.buffer, buf);
  b.dispose();
});

test('scope disposes intermediates and keeps what is returned or kept', async () => {
  const base = engine().memory().bytesInUse;
  const x = tensor([1, 2, 3], [3]);
  let kept: Tensor | null = null;
  const out = scope(() => {
    const y = mul(x, x);
    const z = add(y, x);
    kept = full([2], 1).keep();
    return { total: sum(z), list: [z] };
  });
  assert.ok(!x.disposed, 'tensors from outside the scope survive');
  assert.ok(!kept!.disposed, 'kept tensors survive');
  assert.equal(Array.from(await out.total.read()), [2 + 6 + 12]);
  assert.equal(Array.from(await out.list[0].read()), [2, 6, 12]);
  out.total.dispose();
  out.list[0].dispose();
  kept!.dispose();
  x.dispose();
  assert.is(engine().memory().bytesInUse, base);
});

test('scope cleans up when the function throws', () => {
  const base = engine().memory().bytesInUse;
  assert.throws(() =>
    scope(() => {
      zeros([64]);
      throw new Error('boom');
    }),
  /boom/);
  assert.is(engine().memory().bytesInUse, base);
});

test('async scopes dispose after the promise settles', async () => {
  const base = engine().memory().bytesInUse;
  const v = await scope(async () => {
    const t = full([3], 2);
    const s = sum(t);
    return Array.from(await s.read());
  });
  assert.equal(v, [6]);
  assert.is(engine().memory().bytesInUse, base);
});

test('dispatches are recorded into one submit; reading submits', async () => {
  const eng = engine();
  await eng.sync();
  const x = tensor([1, 2], [2]); // an upload submits pending work first
  const submits = eng.submits;
  const ys = scope(() => {
    let y = x;
    for (let i = 0; i < 20; i++) y = add(y, x);
    return y;
  });
  assert.is(eng.submits, submits, 'no submit while recording');
  assert.equal(Array.from(await ys.read()), [21, 42]);
  assert.is(eng.submits, submits + 1, 'one submit for 20 dispatches and the readback');
  x.dispose();
  ys.dispose();
});

test.run();
