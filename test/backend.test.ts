// The backend seam (engine/backend.ts) and the counting backend (engine/counting_backend.ts):
// reads give zeros of the right size, dispatches are checked and counted but not run, the pool's
// bookkeeping is the WebGPU pool's, and tensors of one backend cannot slip into the other.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { backend, planning, withBackend } from '../engine/backend.ts';
import { CountingBackend, PLANNING_DEVICE } from '../engine/counting_backend.ts';
import { engine } from '../engine/engine.ts';
import { declaredKernels, defineKernel, dispatchCountsByKernel } from '../engine/kernel.ts';
import { grad } from '../engine/tape.ts';
import { empty, scope, tensor, type Tensor } from '../engine/tensor.ts';
import { add, exp, mul } from '../engine/ops/elementwise.ts';
import { matmul } from '../engine/ops/matmul.ts';
import { sum } from '../engine/ops/reduce.ts';

const test = suite('backend');

test('the counting backend reads zeros of the right size and runs nothing', async () => {
  const c = new CountingBackend();
  const coverage = dispatchCountsByKernel().get('unary.unary_forward<exp>') ?? 0;
  const [values, dispatches] = await withBackend(c, async () => {
    assert.ok(planning());
    const y = exp(tensor([1, 2, 3], [3]));
    return [await y.readF32(), c.dispatches] as const;
  });
  assert.equal([...values], [0, 0, 0]);
  assert.is(dispatches, 1);
  assert.is(c.dispatchesByKernel.get('unary.unary_forward<exp>'), 1);
  assert.is(c.writes, 1);
  assert.is(c.reads, 1);
  assert.is(dispatchCountsByKernel().get('unary.unary_forward<exp>') ?? 0, coverage, 'planning does not count as kernel coverage');
  assert.not.ok(planning());
});

test('kernels still validate on the counting backend', () => {
  withBackend(new CountingBackend(), () => {
    assert.throws(() => add(empty([2, 3]), empty([4])), /add: cannot broadcast|\[2, 3\]/);
    assert.throws(() => matmul(empty([2, 3]), empty([4, 5])), /matmul/);
  });
});

/** A workload with pool reuse, broadcasting and a backward pass; returns the pool's deltas. */
async function workload(): Promise<{ peak: number; inUse: number; buffers: number }> {
  const b = backend();
  const start = b.memory();
  b.resetPeak();
  await scope(async () => {
    const x = tensor(new Float32Array(64 * 48).fill(0.5), [64, 48]).requireGrad();
    const w = tensor(new Float32Array(48 * 40).fill(0.25), [48, 40]).requireGrad();
    const bias = tensor(new Float32Array(40).fill(1), [40]).requireGrad();
    let h: Tensor = add(matmul(x, w), bias);
    for (let i = 0; i < 3; i++) h = mul(exp(h), h);
    grad(sum(h), [x, w, bias]);
    await b.sync();
  });
  const end = b.memory();
  return { peak: end.peakBytesInUse - start.bytesInUse, inUse: end.bytesInUse - start.bytesInUse, buffers: end.buffersInUse - start.buffersInUse };
}

test('the counting pool reaches the WebGPU pool peak for the same code', async () => {
  const real = await workload();
  const c = new CountingBackend(engine().gpu);
  const counted = await withBackend(c, workload);
  assert.ok(real.peak > 64 * 48 * 4 * 3, `peak ${real.peak}`);
  assert.equal(real, { peak: real.peak, inUse: 0, buffers: 0 }, 'the scope frees everything');
  assert.equal(counted, real);
  assert.is(c.memory().bytesInUse, 0, 'everything went back to the counting pool');
});

test('freed buffers are reused by size class, as in the WebGPU pool', () => {
  const c = new CountingBackend();
  withBackend(c, () => {
    empty([1000]).dispose(); // 4000 bytes: bucket 4096
    const allocated = c.memory().bytesAllocated;
    assert.is(allocated, 4096);
    const t = empty([1010]); // 4040 bytes, the same bucket: reused
    assert.is(c.memory().bytesAllocated, allocated);
    const u = empty([1100]); // 4400 bytes: bucket 5120, a new buffer
    assert.is(c.memory().bytesAllocated, allocated + 5120);
    assert.is(c.memory().bytesInUse, 4040 + 4400);
    t.dispose();
    u.dispose();
  });
  assert.is(c.memory().peakBytesInUse, 4040 + 4400);
});

test('a tensor of another backend is refused, and engine() is closed while planning', () => {
  const outside = tensor([1, 2], [2]);
  try {
    withBackend(new CountingBackend(), () => {
      assert.throws(() => exp(outside), /did not lend/);
      assert.throws(() => engine(), /another backend is active/);
    });
    assert.throws(() => withBackend(new CountingBackend(), () => { throw new Error('boom'); }), /boom/);
    assert.is(backend(), engine(), 'the engine is active again, also after a throw');
  } finally {
    outside.dispose();
  }
});

test('a kernel first declared while planning is not this device\'s to cover until declared for it', async () => {
  const spec = { shader: 'unary', entry: 'unary_forward', variant: 'planning-probe', specialize: { FWD: '2.0 * a', BWD: '2.0' }, bindings: { x: 'read', y: 'read_write', params: 'uniform' } } as const;
  const key = 'unary.unary_forward<planning-probe>';
  withBackend(new CountingBackend(), () => defineKernel({ ...spec, specialize: { ...spec.specialize }, bindings: { ...spec.bindings } }));
  assert.not.ok(declaredKernels().includes(key));
  const k = defineKernel({ ...spec, specialize: { ...spec.specialize }, bindings: { ...spec.bindings } });
  assert.ok(declaredKernels().includes(key));
  const x = tensor([1, 2, 3], [3]);
  const y = empty([3]);
  k.dispatch({ x, y, params: { n: 3, p0: 0, p1: 0 } }, [1]); // covered: the suite's coverage check sees it
  assert.equal([...(await y.readF32())], [2, 4, 6]);
  x.dispose();
  y.dispose();
});

test('the planning device is a GPU without subgroup kernels and with large buffers', () => {
  assert.is(PLANNING_DEVICE.subgroups, null);
  assert.not.ok(PLANNING_DEVICE.adapter.isSoftware);
  assert.ok(PLANNING_DEVICE.limits.maxStorageBufferBindingSize >= 2 ** 31);
});

test.run();
