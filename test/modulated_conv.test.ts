// Modulated convolution (engine/ops/modulated_conv.ts) beyond its gradcheck rows
// (engine/cases/modulated_conv.ts, run by test/gradcheck.test.ts): GPU forward and gradients
// against the float64 reference at every layer size of the Fashion generator (batch 2), odd widths
// that span several 8-pixel blocks, the reference's upsampling path against a transposed conv and
// a blur written here independently, the demodulation's scale invariance, no intermediate of the
// unblurred size, bad input errors that name the problem, and the pool returning to its baseline.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { engine } from '../engine/engine.ts';
import { scope, tensor } from '../engine/tensor.ts';
import { grad } from '../engine/tape.ts';
import { modulatedConv2d, upsampleLink } from '../engine/ops/modulated_conv.ts';
import type { ModulatedConvDims, ModulatedConvOptions } from '../engine/ops/modulated_conv_plan.ts';
import { modulatedConvForward, modulatedConvVjp } from '../engine/reference/modulated_conv.ts';
import { HostRandom, host, type HostArray } from '../engine/reference/host.ts';
import { assertClose, relativeToMax, throwsNaming } from './helpers.ts';

const test = suite('modulated_conv');

function randn(shape: number[], seed: number, mean = 0, std = 1): HostArray {
  const r = new HostRandom(seed);
  const n = shape.reduce((a, b) => a * b, 1);
  return host(shape, Float64Array.from({ length: n }, () => Math.fround(mean + std * r.normal())));
}

/** A layer's sizes but the batch, which each test picks. */
interface Layer extends Omit<ModulatedConvDims, 'N'> {
  name: string;
  options: ModulatedConvOptions;
}

/** GPU forward and all three gradients, and the reference's: [got, want] for y, gx, gw, gs. */
async function runLayer(l: Layer, N: number, seed: number): Promise<[ArrayLike<number>, ArrayLike<number>][]> {
  const x = randn([N, l.Ci, l.H, l.W], seed);
  const w = randn([l.Co, l.Ci, l.k, l.k], seed + 1);
  const s = randn([N, l.Ci], seed + 2, 1, 0.5); // styles sit around 1 (the affine bias holds the +1)
  const want = modulatedConvForward(x, w, s, l.options);
  const gy = randn(want.shape, seed + 3);
  const wantGrads = modulatedConvVjp(x, w, s, gy, l.options);
  return scope(async () => {
    const inputs = [x, w, s].map((a) => tensor(a.data, a.shape).requireGrad());
    const y = modulatedConv2d(inputs[0], inputs[1], inputs[2], l.options);
    assert.equal([...y.shape], want.shape, `${l.name}: output shape`);
    const out = await y.readF32();
    const grads = grad(y, inputs, { upstream: tensor(gy.data, gy.shape) });
    const got = await Promise.all(grads.map((g) => g.readF32()));
    return [[out, want.data], ...got.map((g, j): [Float32Array, Float64Array] => [g, wantGrads[j]])];
  });
}

// Every modulated conv of models/fashion32/fashion32-stylegan2.pt (channels {4: 128, 8: 128, 16: 64, 32: 32}).
const FASHION: Layer[] = [
  { name: 'b4.conv1', Ci: 128, Co: 128, H: 4, W: 4, k: 3, options: {} },
  { name: 'b4.torgb', Ci: 128, Co: 3, H: 4, W: 4, k: 1, options: { demodulate: false } },
  { name: 'b8.conv0 (upsample)', Ci: 128, Co: 128, H: 4, W: 4, k: 3, options: { upsample: true } },
  { name: 'b8.conv1', Ci: 128, Co: 128, H: 8, W: 8, k: 3, options: {} },
  { name: 'b8.torgb', Ci: 128, Co: 3, H: 8, W: 8, k: 1, options: { demodulate: false } },
  { name: 'b16.conv0 (upsample)', Ci: 128, Co: 64, H: 8, W: 8, k: 3, options: { upsample: true } },
  { name: 'b16.conv1', Ci: 64, Co: 64, H: 16, W: 16, k: 3, options: {} },
  { name: 'b16.torgb', Ci: 64, Co: 3, H: 16, W: 16, k: 1, options: { demodulate: false } },
  { name: 'b32.conv0 (upsample)', Ci: 64, Co: 32, H: 16, W: 16, k: 3, options: { upsample: true } },
  { name: 'b32.conv1', Ci: 32, Co: 32, H: 32, W: 32, k: 3, options: {} },
  { name: 'b32.torgb', Ci: 32, Co: 3, H: 32, W: 32, k: 1, options: { demodulate: false } },
];

// float32 sums of up to 1152 products (forward) and 2048 (weight gradient): measured errors on
// lavapipe are 1e-7 to 2e-6 of the tensor's largest value; 10x margin. Per element:
// |a - b| <= tol * max|b| (relativeToMax), i.e. max|a - b| / max|b| <= tol per tensor.
const FWD_TOL = 1e-5;
const GRAD_TOL = 2e-5;

function check(name: string, pairs: [ArrayLike<number>, ArrayLike<number>][]): void {
  pairs.forEach(([got, want], i) => {
    const what = ['forward', 'gradient of x', 'gradient of weight', 'gradient of styles'][i];
    assertClose(got, want, relativeToMax(want, i ? GRAD_TOL : FWD_TOL), `${name}: ${what}`);
  });
}

test('GPU equals the reference at every Fashion generator layer, batch 2', async () => {
  for (const [j, l] of FASHION.entries()) check(l.name, await runLayer(l, 2, 100 + 10 * j));
});

test('odd sizes: several 8-pixel blocks, channels not a multiple of 4, custom padding', async () => {
  const cases: Layer[] = [
    { name: '3x3 pad 1, 7x19', Ci: 5, Co: 6, H: 7, W: 19, k: 3, options: {} },
    { name: '3x3 pad 0, 9x13', Ci: 3, Co: 5, H: 9, W: 13, k: 3, options: { padding: 0 } },
    { name: '3x3 pad 2, 5x10', Ci: 6, Co: 7, H: 5, W: 10, k: 3, options: { padding: 2, demodulate: false } },
    { name: '5x5, 6x17', Ci: 3, Co: 5, H: 6, W: 17, k: 5, options: {} },
    { name: 'upsample 5x11', Ci: 6, Co: 5, H: 5, W: 11, k: 3, options: { upsample: true } },
    { name: 'upsample no demod 3x9', Ci: 5, Co: 3, H: 3, W: 9, k: 3, options: { upsample: true, demodulate: false } },
  ];
  for (const [j, l] of cases.entries()) check(l.name, await runLayer(l, 3, 300 + j));
});

// Independent naive versions: per-sample weights, then y[q] = sum_p x[p] w[q - 2p] by scattering, then
// upfirdn2d(pad 1, 1) with the flipped 4x4 kernel outer([1,3,3,1])/64*4 on an explicitly padded copy.
function naiveUpsample(x: HostArray, w: HostArray, s: HostArray, demod: boolean): HostArray {
  const [N, Ci, H, W] = x.shape;
  const [Co, , k] = w.shape;
  const Ht = 2 * H + 1;
  const Wt = 2 * W + 1;
  const t = new Float64Array(N * Co * Ht * Wt);
  for (let n = 0; n < N; n++)
    for (let o = 0; o < Co; o++) {
      const wn: number[] = [];
      for (let i = 0; i < Ci; i++) for (let j = 0; j < k * k; j++) wn.push(w.data[(o * Ci + i) * k * k + j] * s.data[n * Ci + i] / Math.sqrt(Ci * k * k));
      const d = demod ? 1 / Math.sqrt(wn.reduce((a, v) => a + v * v, 0) + 1e-8) : 1;
      for (let i = 0; i < Ci; i++)
        for (let py = 0; py < H; py++)
          for (let px = 0; px < W; px++)
            for (let ky = 0; ky < k; ky++)
              for (let kx = 0; kx < k; kx++) {
                t[((n * Co + o) * Ht + 2 * py + ky) * Wt + 2 * px + kx] += d * wn[(i * k + ky) * k + kx] * x.data[((n * Ci + i) * H + py) * W + px];
              }
    }
  const b = [1, 3, 3, 1];
  const kernel = (jy: number, jx: number) => (b[jy] * b[jx]) / 16; // /64 * 4
  const Pd = Ht + 2;
  const out = host([N, Co, 2 * H, 2 * W]);
  for (let c = 0; c < N * Co; c++) {
    const padded = new Float64Array(Pd * (Wt + 2));
    for (let r = 0; r < Ht; r++) for (let q = 0; q < Wt; q++) padded[(r + 1) * (Wt + 2) + q + 1] = t[(c * Ht + r) * Wt + q];
    for (let r = 0; r < 2 * H; r++)
      for (let q = 0; q < 2 * W; q++) {
        let acc = 0;
        for (let jy = 0; jy < 4; jy++) for (let jx = 0; jx < 4; jx++) acc += padded[(r + jy) * (Wt + 2) + q + jx] * kernel(3 - jy, 3 - jx);
        out.data[(c * 2 * H + r) * 2 * W + q] = acc;
      }
  }
  return out;
}

test("the reference's upsampling path equals a naive transposed conv followed by a naive blur", () => {
  for (const demod of [true, false]) {
    const x = randn([2, 3, 4, 5], 11);
    const w = randn([4, 3, 3, 3], 12);
    const s = randn([2, 3], 13, 1, 0.5);
    const want = naiveUpsample(x, w, s, demod);
    const got = modulatedConvForward(x, w, s, { upsample: true, demodulate: demod });
    assert.equal(got.shape, [2, 4, 8, 10]);
    assertClose(got.data, want.data, relativeToMax(want.data, 1e-12), `demodulate ${demod}`);
  }
});

test('the 1-D phase map of the upsampling path is the blur composed with the stride-2 transposed conv', () => {
  // Phase r, tap t reads x[a - 1 + t] for output 2a + r: E[m] = sum_ky W[ky] bf[ky - m + 1], m = 2(1 - t) + r.
  assert.equal([...upsampleLink(3)], [0, 0.25, 0.75, 0.75, 0.75, 0.25, 0.25, 0, 0, 0, 0, 0.25, 0.25, 0.75, 0.75, 0.75, 0.25, 0]);
});

test('demodulation: scaling every style of a sample leaves the output unchanged', async () => {
  await scope(async () => {
    const x = tensor(randn([2, 6, 5, 9], 21).data, [2, 6, 5, 9]);
    const w = tensor(randn([7, 6, 3, 3], 22).data, [7, 6, 3, 3]);
    const s = randn([2, 6], 23, 1, 0.5);
    const a = await modulatedConv2d(x, w, tensor(s.data, s.shape)).readF32();
    const b = await modulatedConv2d(x, w, tensor(s.data.map((v, i) => v * (i < 6 ? 3 : 0.25)), s.shape)).readF32();
    assertClose(b, a, relativeToMax(a, 1e-5), 'styles scaled per sample');
  });
});

test('upsampling allocates nothing of the unblurred size (2H+1)^2', async () => {
  const pool = engine().pool;
  const sizes: number[] = [];
  const acquire = pool.acquire.bind(pool);
  pool.acquire = (bytes: number, what: string) => (sizes.push(bytes), acquire(bytes, what));
  const [N, Ci, Co, H] = [2, 8, 16, 16];
  try {
    await scope(async () => {
      const x = tensor(randn([N, Ci, H, H], 31).data, [N, Ci, H, H]).requireGrad();
      const w = tensor(randn([Co, Ci, 3, 3], 32).data, [Co, Ci, 3, 3]).requireGrad();
      const s = tensor(randn([N, Ci], 33, 1, 0.5).data, [N, Ci]).requireGrad();
      sizes.length = 0;
      const y = modulatedConv2d(x, w, s, { upsample: true });
      const grads = grad(y, [x, w, s], { upstream: tensor(new Float32Array(y.size).fill(1), y.shape) });
      await Promise.all(grads.map((g) => g.readF32()));
    });
  } finally {
    pool.acquire = acquire;
  }
  const output = N * Co * (2 * H) * (2 * H) * 4;
  const unblurred = N * Co * (2 * H + 1) * (2 * H + 1) * 4;
  assert.ok(sizes.length > 0);
  assert.ok(Math.max(...sizes) <= output, `largest buffer ${Math.max(...sizes)} bytes; the output is ${output}, the unblurred map ${unblurred}`);
});

test('bad input is rejected with an error naming the problem', () => {
  const t = (shape: number[]) => tensor(new Float32Array(shape.reduce((a, b) => a * b, 1)), shape);
  const x = () => t([2, 4, 6, 6]);
  throwsNaming(() => modulatedConv2d(x(), t([5, 4, 3, 3]), t([2, 3])), /styles \[2, 3\] must be \[N, C_in\] = \[2, 4\]/);
  throwsNaming(() => modulatedConv2d(x(), t([5, 4, 3, 3]), t([3, 4])), /styles \[3, 4\] must be \[N, C_in\]/);
  throwsNaming(() => modulatedConv2d(x(), t([5, 4, 3, 3]), t([8])), /styles must be \[N, C_in\], got \[8\]/);
  throwsNaming(() => modulatedConv2d(x(), t([5, 3, 3, 3]), t([2, 4])), /weight \[5, 3, 3, 3\] has C_in = 3, but x \[2, 4, 6, 6\] has 4 channels/);
  throwsNaming(() => modulatedConv2d(x(), t([5, 4, 3]), t([2, 4])), /weight must be \[C_out, C_in, k, k\], got \[5, 4, 3\]/);
  throwsNaming(() => modulatedConv2d(x(), t([5, 4, 3, 1]), t([2, 4])), /square kernel, got 3x1/);
  throwsNaming(() => modulatedConv2d(t([4, 6, 6]), t([5, 4, 3, 3]), t([2, 4])), /x must be \[N, C_in, H, W\], got \[4, 6, 6\]/);
  throwsNaming(() => modulatedConv2d(x(), t([5, 4, 4, 4]), t([2, 4]), { upsample: true }), /upsample needs an odd kernel size/, /k = 4/);
  throwsNaming(() => modulatedConv2d(x(), t([5, 4, 5, 5]), t([2, 4]), { upsample: true }), /upsample is implemented for 3x3 kernels/, /k = 5/);
  throwsNaming(() => modulatedConv2d(x(), t([5, 4, 3, 3]), t([2, 4]), { upsample: true, padding: 1 }), /padding is fixed by the blur/);
  throwsNaming(() => modulatedConv2d(x(), t([5, 4, 3, 3]), t([2, 4]), { padding: -1 }), /padding must be a non-negative integer, got -1/);
  throwsNaming(() => modulatedConv2d(t([2, 4, 2, 2]), t([5, 4, 5, 5]), t([2, 4]), { padding: 0 }), /5x5 kernel with padding 0 does not fit the 2x2 input/);
  throwsNaming(() => modulatedConv2d(tensor([1], [1, 1, 1, 1], 'u32'), t([1, 1, 1, 1]), t([1, 1])), /x must be f32/);
});

test('bad input allocates nothing that outlives the call; forward and backward return the pool to its baseline', async () => {
  const before = engine().memory().bytesInUse;
  throwsNaming(() => modulatedConv2d(tensor(new Float32Array(8), [1, 2, 2, 2]), tensor(new Float32Array(9), [1, 1, 3, 3]), tensor([1, 1], [1, 2])), /C_in = 1/);
  assert.is(engine().memory().bytesInUse, before);
  for (const [step, options] of ([{}, { upsample: true }, { demodulate: false }] as ModulatedConvOptions[]).entries()) {
    await scope(async () => {
      const x = tensor(randn([2, 3, 5, 6], step).data, [2, 3, 5, 6]).requireGrad();
      const w = tensor(randn([4, 3, 3, 3], step + 1).data, [4, 3, 3, 3]).requireGrad();
      const s = tensor(randn([2, 3], step + 2).data, [2, 3]).requireGrad();
      const grads = grad(modulatedConv2d(x, w, s, options), [x, w, s]);
      await Promise.all(grads.map((g) => g.readF32()));
    });
  }
  assert.is(engine().memory().bytesInUse, before);
});

test.run();
