// upfirdn2d and bias_act beyond their gradcheck rows (engine/cases/upfirdn2d.ts and bias_act.ts,
// run by test/gradcheck.test.ts): upfirdn2d's errors that name the problem (bias_act's:
// test/bias_act.test.ts), hand-computed values of NVlabs'
// semantics, the derivation of the backward (adjoint = upfirdn2d with the flipped kernel and
// transformed pads) checked in float64, StyleGAN2 helper behaviour (makeKernel, a constant image
// stays constant under upsample2d), golden values from PyTorch (test/golden/), and the pool
// returning to its baseline after forward and backward passes.
import { readFileSync } from 'node:fs';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { engine } from '../engine/engine.ts';
import { scope, tensor, type Tensor } from '../engine/tensor.ts';
import { grad } from '../engine/tape.ts';
import { blur, downsample2d, makeKernel, upfirdn2d, upfirdn2dConfig, upfirdn2dOutputSize, upsample2d, type Upfirdn2dOptions } from '../engine/ops/upfirdn2d.ts';
import { biasAct } from '../engine/ops/bias_act.ts';
import { upfirdn2dForward, upfirdn2dVjp } from '../engine/reference/upfirdn2d.ts';
import { HostRandom, host, type HostArray } from '../engine/reference/host.ts';
import { assertClose, relativeToMax, relToMax, throwsNaming } from './helpers.ts';

const test = suite('upfirdn2d');

const randn = (n: number, rng: HostRandom) => Array.from({ length: n }, () => Math.fround(rng.normal()));

/** |a - b| <= tol * max(max|b|, 1e-6) per element: max|a - b| / max|b| <= tol per tensor. */
const close = (got: ArrayLike<number>, want: ArrayLike<number>, tol: number, what: string) => assertClose(got, want, relativeToMax(want, tol, 1e-6), what);

/** PyTorch golden values: max|a - b| / max|b| per tensor. */
const GOLDEN_TOL = 1e-5;
const goldenWorst = { fwd: 0, grad: 0 };

async function run(x: number[], shape: number[], kernel: Parameters<typeof upfirdn2d>[1], o: Upfirdn2dOptions): Promise<{ shape: readonly number[]; data: number[] }> {
  return scope(async () => {
    const y = upfirdn2d(tensor(x, shape), kernel, o);
    return { shape: y.shape, data: [...(await y.readF32())] };
  });
}

test('upfirdn2d rejects an empty output, bad kernels, factors and pads, naming the problem', () => {
  const x = () => tensor(new Float32Array(2 * 3 * 4 * 4), [2, 3, 4, 4]);
  const k4 = makeKernel([1, 3, 3, 1]);
  throwsNaming(() => upfirdn2d(x(), k4, { pad: [0, 0, -1, -1] }), /output height would be -1 <= 0/, /height 4 \* up 1 \+ pads -1 \+ -1 - kernel 4/);
  throwsNaming(() => upfirdn2d(x(), k4, { down: 2, pad: [-2, 0, 0, 0] }), /output width would be 0 <= 0/);
  throwsNaming(() => upfirdn2d(x(), [[1, 2], [3]]), /kernel rows must be a non-empty 2-D array of equal-length rows/);
  throwsNaming(() => upfirdn2d(x(), [] as number[][]), /kernel rows must be a non-empty 2-D array/);
  throwsNaming(() => upfirdn2d(x(), { shape: [4], data: [1, 3, 3, 1] }), /kernel must have shape \[kH, kW\], got \[4\]/);
  throwsNaming(() => upfirdn2d(x(), { shape: [2, 2], data: [1, 2, 3] }), /kernel \[2, 2\] needs 4 values, got 3/);
  throwsNaming(() => upfirdn2d(x(), tensor([1, 3, 3, 1], [4])), /kernel must be an f32 tensor \[kH, kW\], got f32\[4\]/);
  throwsNaming(() => upfirdn2d(x(), tensor([1, 2, 3, 4], [2, 2]).requireGrad()), /FIR kernel gets no gradient/);
  throwsNaming(() => upfirdn2d(x(), [[1, NaN]]), /non-finite/);
  throwsNaming(() => upfirdn2d(tensor([1, 2, 3, 4], [2, 2]), k4), /x must be an f32 tensor \[N, C, H, W\], got f32\[2, 2\]/);
  throwsNaming(() => upfirdn2d(x(), k4, { up: 0 }), /up must be a positive integer or a pair/);
  throwsNaming(() => upfirdn2d(x(), k4, { down: [2, 1.5] as unknown as [number, number] }), /down must be a positive integer/);
  throwsNaming(() => upfirdn2d(x(), k4, { pad: [2, 1] }), /pad must be an integer or \[px0, px1, py0, py1\] \(4 integers\), got \[2,1\]/);
  throwsNaming(() => makeKernel([1, -1]), /sums to 0/);
});

test('upfirdn2d matches hand-computed NVlabs semantics (zero insertion, flip, crop, down, pad order)', async () => {
  // Upsample [1,2,3] by 2 along x: [1,0,2,0,3,0]; true convolution with f = [1,10] is a correlation with
  // [10,1]: 1*10, 0*10+2*1, 2*10, 0+3, 3*10; out = (3*2 + 0 - 2 + 1) // 1 = 5.
  let r = await run([1, 2, 3], [1, 1, 1, 3], [[1, 10]], { up: [2, 1] });
  assert.equal(r.shape, [1, 1, 1, 5]);
  assert.equal(r.data, [10, 2, 20, 3, 30]);
  // Crop one sample on the left, pad one on the right: [2,3,4,5,0]; correlate with [3,2,1]:
  // 16, 22, 22; keep every 2nd: [16, 22]. out = (5 - 1 + 1 - 3 + 2) // 2 = 2.
  r = await run([1, 2, 3, 4, 5], [1, 1, 1, 5], [[1, 2, 3]], { down: [2, 1], pad: [-1, 1, 0, 0] });
  assert.equal(r.shape, [1, 1, 1, 2]);
  assert.equal(r.data, [16, 22]);
  // The pad order is [px0, px1, py0, py1]: py0 = 1 pads the column [1,2,3] on top: [0,1,2,3];
  // f = [[1],[10]] correlates as [10,1] down the column: 1, 12, 23.
  r = await run([1, 2, 3], [1, 1, 3, 1], [[1], [10]], { pad: [0, 0, 1, 0] });
  assert.equal(r.shape, [1, 1, 3, 1]);
  assert.equal(r.data, [1, 12, 23]);
  // Per-axis factors are [x, y]: up [1, 2] doubles the height only.
  r = await run([1, 2], [1, 1, 1, 2], [[1]], { up: [1, 2], pad: [0, 0, 0, -1] });
  assert.equal(r.shape, [1, 1, 1, 2]);
  assert.equal(r.data, [1, 2]);
  r = await run([1, 2], [1, 1, 2, 1], [[1]], { up: [1, 2] });
  assert.equal(r.shape, [1, 1, 4, 1]);
  assert.equal(r.data, [1, 0, 2, 0]);
});

test('output size is (in*up + p0 + p1 - k + down) // down per axis', () => {
  assert.equal(upfirdn2dOutputSize(16, 16, 4, 4, upfirdn2dConfig({ up: 2, pad: [2, 1, 2, 1] })), [32, 32]);
  assert.equal(upfirdn2dOutputSize(33, 33, 4, 4, upfirdn2dConfig({ pad: 1 })), [32, 32]);
  assert.equal(upfirdn2dOutputSize(32, 32, 4, 4, upfirdn2dConfig({ down: 2, pad: 1 })), [16, 16]);
  assert.equal(upfirdn2dOutputSize(7, 5, 3, 1, upfirdn2dConfig({ up: [1, 3], down: [2, 1], pad: [1, 0, -2, 3] })), [20, 3]);
});

// The backward rule in engine/ops/upfirdn2d.ts: gx = upfirdn2d(gy, flip(f), up = down, down = up,
// pad = [kW-1-px0, W*ux - OW*dx + px0 - ux + 1, kH-1-py0, H*uy - OH*dy + py0 - uy + 1]). Checked here
// in float64 against the step-by-step adjoint of the reference, on random configurations.
test('the adjoint of upfirdn2d is upfirdn2d with the flipped kernel and transformed pads (float64)', () => {
  const rng = new HostRandom(99);
  const pick = (lo: number, hi: number) => lo + Math.floor(rng.uniform() * (hi - lo + 1));
  let tried = 0;
  while (tried < 60) {
    const [H, W, kH, kW] = [pick(1, 6), pick(1, 6), pick(1, 4), pick(1, 4)];
    const c = upfirdn2dConfig({ up: [pick(1, 3), pick(1, 3)], down: [pick(1, 3), pick(1, 3)], pad: [pick(-3, 3), pick(-3, 3), pick(-3, 3), pick(-3, 3)] });
    let OH: number, OW: number;
    try {
      [OH, OW] = upfirdn2dOutputSize(H, W, kH, kW, c);
    } catch {
      continue; // an empty output: not a configuration
    }
    tried++;
    const x = host([1, 2, H, W], randn(2 * H * W, rng));
    const f = host([kH, kW], randn(kH * kW, rng));
    const gy = host([1, 2, OH, OW], randn(2 * OH * OW, rng));
    const flipped = host([kH, kW], [...f.data].reverse()); // reversing row-major data flips both axes
    const [px0, , py0] = c.pad;
    const adjoint = upfirdn2dConfig({
      up: [c.downX, c.downY],
      down: [c.upX, c.upY],
      pad: [kW - 1 - px0, W * c.upX - OW * c.downX + px0 - c.upX + 1, kH - 1 - py0, H * c.upY - OH * c.downY + py0 - c.upY + 1],
    });
    const viaFormula: HostArray = upfirdn2dForward(gy, flipped, adjoint);
    assert.equal(viaFormula.shape, x.shape, `adjoint output shape for ${JSON.stringify({ H, W, kH, kW, c })}`);
    close(viaFormula.data, upfirdn2dVjp(x, f, c, gy), 1e-12, `adjoint ${JSON.stringify({ H, W, kH, kW, c })}`);
  }
});

test('makeKernel: outer product normalized to sum 1, times the scale', () => {
  const k = makeKernel([1, 3, 3, 1], 4);
  assert.equal(k.shape, [4, 4]);
  assert.equal([...k.data.slice(0, 4)], [4 / 64, 12 / 64, 12 / 64, 4 / 64]);
  assert.is([...k.data].reduce((s, v) => s + v, 0), 4);
  assert.equal([...makeKernel([[1, 2], [3, 4]]).data], [0.1, 0.2, 0.3, 0.4]);
});

test('upsample2d of a constant image is constant away from the border; blur and downsample2d keep shapes', async () => {
  const c = 1.75;
  const [H, W] = [6, 7];
  const out = await scope(async () => {
    const x = tensor(new Float32Array(2 * 3 * H * W).fill(c), [2, 3, H, W]);
    const up = upsample2d(x);
    const down = downsample2d(up);
    const blurred = blur(tensor(new Float32Array(1 * 2 * 9 * 9).fill(c), [1, 2, 9, 9]), [1, 1], { upsampleFactor: 2 });
    return { up: await up.readF32(), upShape: up.shape, downShape: down.shape, down: await down.readF32(), blurShape: blurred.shape, blurred: await blurred.readF32() };
  });
  assert.equal(out.upShape, [2, 3, 2 * H, 2 * W]);
  assert.equal(out.downShape, [2, 3, H, W]);
  assert.equal(out.blurShape, [1, 2, 8, 8]);
  // A 4-tap kernel reaches 2 output samples past each edge of the zero-inserted image.
  const OW = 2 * W;
  for (let p = 0; p < 6; p++) {
    for (let y = 2; y < 2 * H - 2; y++) {
      for (let x = 2; x < 2 * W - 2; x++) {
        const v = out.up[(p * 2 * H + y) * OW + x];
        if (Math.abs(v - c) > 1e-6) assert.unreachable(`upsample2d plane ${p} at (${y}, ${x}) is ${v}, expected ${c}`);
      }
    }
  }
  // Blur after a transposed conv multiplies a constant by factor^2 = 4 in the interior.
  assert.ok(Math.abs(out.blurred[3 * 8 + 3] - 4 * c) < 1e-5, `blur interior ${out.blurred[27]}`);
  // Down after up gives the constant back in the interior.
  assert.ok(Math.abs(out.down[2 * W + 3] - c) < 1e-5, `downsample2d interior ${out.down[2 * W + 3]}`);
});

interface GoldenCase {
  op: 'upfirdn2d' | 'bias_act';
  name: string;
  x_shape: number[];
  x: number[];
  y: number[];
  upstream: number[];
  gx: number[];
  up?: [number, number];
  down?: [number, number];
  pad?: number[];
  kernel_shape?: number[];
  kernel?: number[];
  y_shape?: number[];
  act?: 'lrelu' | 'linear';
  dim?: number;
  clamp?: number | null;
  bias?: number[];
  gbias?: number[];
}

const golden = JSON.parse(readFileSync(new URL('golden/upfirdn2d_golden.json', import.meta.url), 'utf8')) as { cases: GoldenCase[] };

for (const g of golden.cases) {
  test(`matches PyTorch (NVlabs reference formulas): ${g.op} ${g.name}`, async () => {
    const got = await scope(async () => {
      const x = tensor(g.x, g.x_shape).requireGrad();
      const inputs: Tensor[] = [x];
      let y: Tensor;
      if (g.op === 'upfirdn2d') {
        y = upfirdn2d(x, { shape: g.kernel_shape!, data: g.kernel! }, { up: g.up, down: g.down, pad: g.pad });
        assert.equal(y.shape, g.y_shape);
      } else {
        const b = tensor(g.bias!, [g.bias!.length]).requireGrad();
        inputs.push(b);
        y = biasAct(x, b, { act: g.act, dim: g.dim, clamp: g.clamp ?? undefined });
      }
      const grads = grad(y, inputs, { upstream: tensor(g.upstream, y.shape) });
      return { y: await y.readF32(), grads: await Promise.all(grads.map((t) => t.readF32())) };
    });
    goldenWorst.fwd = Math.max(goldenWorst.fwd, relToMax(close(got.y, g.y, GOLDEN_TOL, 'forward')));
    goldenWorst.grad = Math.max(goldenWorst.grad, relToMax(close(got.grads[0], g.gx, GOLDEN_TOL, 'gradient of x')));
    if (g.gbias) goldenWorst.grad = Math.max(goldenWorst.grad, relToMax(close(got.grads[1], g.gbias, GOLDEN_TOL, 'gradient of bias')));
  });
}

test('PyTorch golden: the measured errors', () => {
  console.log(`  upfirdn2d/bias_act golden: max|a-b|/max|b| ${goldenWorst.fwd.toExponential(2)} (outputs), ${goldenWorst.grad.toExponential(2)} (gradients), bound ${GOLDEN_TOL.toExponential(0)}`);
});

test('forward and backward return the pool to its baseline', async () => {
  const rng = new HostRandom(5);
  const step = async () =>
    scope(async () => {
      const x = tensor(randn(2 * 3 * 8 * 8, rng), [2, 3, 8, 8]).requireGrad();
      const b = tensor(randn(3, rng), [3]).requireGrad();
      const y = downsample2d(biasAct(upsample2d(x), b, { act: 'lrelu', clamp: 1 }));
      const [gx, gb] = grad(y, [x, b]);
      await gx.readF32();
      await gb.readF32();
    });
  await step(); // warm-up: caches the kernel tensors and fills the pool's buckets
  const before = engine().memory().bytesInUse;
  for (let i = 0; i < 3; i++) await step();
  assert.is(engine().memory().bytesInUse, before);
});

test.run();
