// The tape: gradients through shared subexpressions, noGrad, .grad accumulation, parameters and
// latents asking for gradients, and flat memory over 10,000 recorded-and-disposed steps.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { engine } from '../engine/engine.ts';
import { scope, tensor, full } from '../engine/tensor.ts';
import { grad, backward, noGrad, tapeLength, clearTape } from '../engine/tape.ts';
import { add, mul, square, sub, affine, tanh } from '../engine/ops/elementwise.ts';
import { sum, mean } from '../engine/ops/reduce.ts';
import { matmul } from '../engine/ops/matmul.ts';
import { slice } from '../engine/ops/layout.ts';
import { dispatchCountsByKernel } from '../engine/kernel.ts';

const test = suite('tape');

const close = (a: ArrayLike<number>, b: number[], tol = 1e-5) => {
  assert.is(a.length, b.length);
  for (let i = 0; i < b.length; i++) assert.ok(Math.abs(a[i] - b[i]) <= tol * (1 + Math.abs(b[i])), `[${i}] ${a[i]} vs ${b[i]}`);
};

test('a tensor used twice accumulates both paths', async () => {
  await scope(async () => {
    const x = tensor([1, -2, 3], [3]).requireGrad();
    const y = sum(mul(x, x)); // d/dx = 2x
    const [g] = grad(y, [x]);
    close(await g.read(), [2, -4, 6]);
  });
});

test('slices of one tensor add their gradients into its running sum in place, overlapping or not', async () => {
  await scope(async () => {
    // x [2, 3]; loss = sum(x * c) + sum(slice rows 0..1, cols 1..2 * 2) + sum(slice col 2 * 3)
    // + sum(slice row 1 * 5): d/dx = c + 2 on the first window + 3 on column 2 + 5 on row 1.
    const x = tensor([1, 2, 3, 4, 5, 6], [2, 3]).requireGrad();
    const c = tensor([0.5, -1, 2, 1.5, -0.25, 4], [2, 3]);
    const loss = add(
      add(sum(mul(x, c)), sum(affine(slice(x, [0, 1], [2, 2]), 2))),
      add(sum(affine(slice(x, [0, 2], [2, 1]), 3)), sum(affine(slice(x, [1, 0], [1, 3]), 5))),
    );
    const pads = () => dispatchCountsByKernel().get('layout.layout_pad') ?? 0;
    const adds = () => dispatchCountsByKernel().get('layout.layout_scatter_add') ?? 0;
    const [p0, a0] = [pads(), adds()];
    const [g] = grad(loss, [x]);
    close(await g.read(), [0.5, 1, 7, 6.5, 6.75, 14]);
    // The first slice to reach x starts its running sum (pad into zeros); the others add into it.
    // The product's gradient arrives last and is added by the tape as usual.
    assert.is(pads() - p0, 1);
    assert.is(adds() - a0, 2);
  });
});

test('an intermediate sliced twice and asked for gets the summed gradient, and so does its input', async () => {
  await scope(async () => {
    const x = tensor([1, 2, 3, 4], [4]).requireGrad();
    const y = affine(x, 2);
    const s1 = slice(y, [0], [2]);
    const s2 = slice(y, [1], [3]);
    const root = add(sum(s1), sum(s2));
    const [gy, gx] = grad(root, [y, x]);
    close(await gy.read(), [1, 2, 1, 1]);
    close(await gx.read(), [2, 4, 2, 2]);
  });
});

test('only tensors that ask for gradients are recorded; noGrad records nothing', async () => {
  await scope(async () => {
    clearTape();
    const a = tensor([1, 2], [2]);
    const b = tensor([3, 4], [2]);
    add(a, b);
    assert.is(tapeLength(), 0);
    const w = tensor([1, 1], [2]).requireGrad();
    noGrad(() => add(w, b));
    assert.is(tapeLength(), 0);
    add(w, b);
    assert.is(tapeLength(), 1);
    clearTape();
  });
});

test('backward() accumulates into .grad of every leaf (parameters and latents)', async () => {
  await scope(async () => {
    const w = tensor([0.5, -1, 2, 0.25, 1, -0.5], [2, 3]).requireGrad().keep(); // parameter
    const z = tensor([1, 2], [1, 2]).requireGrad().keep(); // latent
    for (let step = 0; step < 2; step++) {
      const loss = sum(square(matmul(z, w)));
      backward(loss);
    }
    // loss = sum((z w)^2); d/dw = 2 z^T (z w), d/dz = 2 (z w) w^T; twice accumulated.
    const zw = [0.5 * 1 + 0.25 * 2, -1 * 1 + 1 * 2, 2 * 1 - 0.5 * 2];
    const gw = [0, 1].flatMap((i) => zw.map((v) => 2 * 2 * [1, 2][i] * v));
    const wRows = [[0.5, -1, 2], [0.25, 1, -0.5]];
    const gz = wRows.map((row) => 2 * 2 * row.reduce((s, wv, j) => s + wv * zw[j], 0));
    close(await w.grad!.read(), gw);
    close(await z.grad!.read(), gz);
    w.dispose();
    z.dispose();
  });
});

test('an explicit upstream gradient is used and not consumed', async () => {
  await scope(async () => {
    const x = tensor([1, 2, 3], [3]).requireGrad();
    const y = affine(x, 3, 1);
    const up = tensor([1, 10, 100], [3]);
    const [g] = grad(y, [x], { upstream: up });
    close(await g.read(), [3, 30, 300]);
    assert.ok(!up.disposed);
    assert.throws(() => grad(y, [x], { upstream: full([2], 1) }), /upstream gradient \[2\] does not match the root \[3\]/);
    clearTape();
  });
});

test('gradient of a tensor the root does not depend on is zero', async () => {
  await scope(async () => {
    const x = tensor([1, 2], [2]).requireGrad();
    const u = tensor([5, 5], [2]).requireGrad();
    const [gx, gu] = grad(sum(tanh(x)), [x, u]);
    close(await gu.read(), [0, 0]);
    close(await gx.read(), [1 - Math.tanh(1) ** 2, 1 - Math.tanh(2) ** 2]);
  });
});

test('disposing intermediates inside a scope does not break a later backward pass', async () => {
  const x = tensor([1, 2, 3], [3]).requireGrad();
  const loss = scope(() => mean(square(sub(x, full([3], 1))))); // intermediates disposed here
  const [g] = grad(loss, [x]);
  close(await g.read(), [0, 2 / 3, 4 / 3]);
  x.dispose();
  loss.dispose();
  g.dispose();
});

test('bytes in use return to their baseline after 10,000 recorded and disposed steps', async () => {
  const eng = engine();
  await eng.sync();
  const w = tensor([0.1, -0.2, 0.3, 0.4], [2, 2]).requireGrad().keep();
  const x = tensor([1, 2, 3, 4, 5, 6], [3, 2]).keep();
  const base = eng.memory();
  let allocatedAfterWarmup = 0;
  for (let step = 0; step < 10_000; step++) {
    scope(() => {
      const loss = mean(square(matmul(x, w)));
      const [g] = grad(loss, [w]);
      // An update is not part of the model: under noGrad it is not recorded (as torch.no_grad).
      return noGrad(() => sub(w, affine(g, 0.01))); // returned to the loop body and disposed below
    }).dispose();
    if (step === 100) allocatedAfterWarmup = eng.memory().bytesAllocated;
    if (step % 2500 === 0) await eng.sync(); // keep the GPU queue short
  }
  await eng.sync();
  const end = eng.memory();
  assert.is(end.bytesInUse, base.bytesInUse, 'bytes in use');
  assert.is(end.buffersInUse, base.buffersInUse, 'buffers in use');
  assert.is(end.bytesAllocated, allocatedAfterWarmup, 'the pool stopped growing after warm-up');
  assert.is(tapeLength(), 0);
  w.dispose();
  x.dispose();
});

test.run();
