// conv2d and conv_transpose2d: the checks beyond the gradcheck rows (engine/cases/conv2d.ts and
// conv_transpose2d.ts, run by test/gradcheck.test.ts). Here: conv2d's bad input errors that name
// the problem (conv_transpose2d's: test/conv_transpose2d.test.ts); conv2d against a
// composition (im2col on the host + our GPU matmul, and the float64 reference against im2col + the
// reference matmul); the adjoint identity <conv2d(a, w), b> = <a, conv_transpose2d(b, w)> on the
// GPU; StyleGAN2-like shapes with several channel and pixel blocks, and sums split over channels
// or pixel rows (engine/ops/conv2d_kernels.ts), against the reference (forward and every gradient);
// PyTorch's F.conv2d / F.conv_transpose2d outputs and gradients (test/golden/conv_golden.py); and
// the pool returning to its baseline after forward and backward.
import { readFileSync } from 'node:fs';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { engine } from '../engine/engine.ts';
import { scope, tensor, type Tensor } from '../engine/tensor.ts';
import { clearTape, grad } from '../engine/tape.ts';
import { sum } from '../engine/ops/reduce.ts';
import { mul } from '../engine/ops/elementwise.ts';
import { matmul } from '../engine/ops/matmul.ts';
import { conv2d, convGeometry, type Conv2dOptions } from '../engine/ops/conv2d.ts';
import { convTranspose2d, type ConvTranspose2dOptions } from '../engine/ops/conv_transpose2d.ts';
import { HostRandom, host, type HostArray } from '../engine/reference/host.ts';
import { conv2dForward, conv2dVjp, im2col } from '../engine/reference/conv2d.ts';
import { convTranspose2dForward, convTranspose2dVjp } from '../engine/reference/conv_transpose2d.ts';
import { matmulForward } from '../engine/reference/matmul.ts';
import { assertClose, relativeToMax, relToMax, throwsNaming } from './helpers.ts';

const test = suite('conv2d');

const size = (s: number[]) => s.reduce((a, b) => a * b, 1);
const randn = (shape: number[], seed: number): HostArray => {
  const r = new HostRandom(seed);
  return host(shape, Array.from({ length: size(shape) }, () => Math.fround(r.normal())));
};
const up = (h: HostArray) => tensor(h.data, h.shape);

/** The float32 tolerance of a composition of float32 sums against another. */
const CLOSE = { atol: 1e-5, rtol: 1e-4 };
/** StyleGAN2-like shapes: sums of up to a few thousand products, split over channels or rows. */
const WIDE = { atol: 1e-4, rtol: 1e-4 };

test('conv2d names bad input: channels, groups, kernel size, bias, ranks, options', () => {
  const z = (s: number[]) => tensor(new Float32Array(size(s)), s);
  throwsNaming(() => conv2d(z([1, 5, 8, 8]), z([4, 3, 3, 3])), /channel mismatch/, /5 input channels/, /expects 3 per group x 1 group\(s\) = 3/);
  throwsNaming(() => conv2d(z([1, 4, 8, 8]), z([6, 2, 3, 3]), { groups: 3 }), /groups 3 does not divide the 4 input channels/);
  throwsNaming(() => conv2d(z([1, 6, 8, 8]), z([4, 2, 3, 3]), { groups: 3 }), /groups 3 does not divide the 4 output channels/);
  throwsNaming(() => conv2d(z([1, 4, 8, 8]), z([4, 4, 3, 3]), { groups: 2 }), /channel mismatch/, /4 per group x 2 group\(s\) = 8/);
  throwsNaming(() => conv2d(z([1, 3, 4, 4]), z([2, 3, 5, 5])), /kernel 5x5 is larger than the padded input 4x4/);
  throwsNaming(() => conv2d(z([1, 3, 4, 4]), z([2, 3, 3, 3]), { dilation: 2 }), /kernel 3x3 \(5x5 dilated\) is larger than the padded input 4x4/);
  conv2d(z([1, 3, 4, 4]), z([2, 3, 5, 5]), { padding: 1 }).dispose(); // 6x6 padded: fits
  throwsNaming(() => conv2d(z([1, 3, 4, 4]), z([2, 3, 3, 3]), z([3]), {}), /bias has shape \[3\], expected \[2\]/);
  throwsNaming(() => conv2d(z([1, 3, 4, 4]), z([2, 3, 3, 3]), z([1, 2]), {}), /bias has shape \[1, 2\], expected \[2\]/);
  throwsNaming(() => conv2d(z([3, 4, 4]), z([2, 3, 3, 3])), /x must be \[N, C_in, H, W\], got shape \[3, 4, 4\]/);
  throwsNaming(() => conv2d(z([1, 3, 4, 4]), z([2, 3, 3])), /w must have rank 4/);
  throwsNaming(() => conv2d(z([1, 3, 4, 4]), z([2, 3, 3, 3]), { stride: 0 }), /stride must be an integer >= 1/);
  throwsNaming(() => conv2d(z([1, 3, 4, 4]), z([2, 3, 3, 3]), { padding: [1, 2, 3] as unknown as number }), /padding must be/);
  throwsNaming(() => conv2d(z([1, 3, 4, 4]), z([2, 3, 3, 3]), { groups: 0 }), /groups must be a positive integer/);
});

test('bad input allocates nothing that outlives the call', () => {
  const before = engine().memory().bytesInUse;
  throwsNaming(() => conv2d(tensor([1, 2, 3, 4], [1, 1, 2, 2]), tensor(new Float32Array(9), [1, 1, 3, 3])), /larger than the padded input/);
  assert.is(engine().memory().bytesInUse, before);
});

// Composition: conv2d = W [C_out, Cg*kH*kW] x im2col(x) [Cg*kH*kW, N*Ho*Wo] per group, then
// [C_out, N, Ho*Wo] -> [N, C_out, Ho*Wo].
function viaIm2col(x: HostArray, w: HostArray, o: Conv2dOptions, gpuMatmul: (a: HostArray, b: HostArray) => Promise<Float64Array>) {
  const g = convGeometry('conv2d', o);
  const [cOut, cg, kH, kW] = w.shape;
  const og = cOut / g.groups;
  return (async () => {
    const parts: Float64Array[] = [];
    let pixels = 0;
    for (let grp = 0; grp < g.groups; grp++) {
      const cols = im2col(x, [kH, kW], g, grp);
      pixels = cols.shape[1];
      const wg = host([og, cg * kH * kW], w.data.subarray(grp * og * cg * kH * kW, (grp + 1) * og * cg * kH * kW));
      parts.push(await gpuMatmul(wg, cols));
    }
    const n = x.shape[0];
    const hw = pixels / n;
    const out = new Float64Array(cOut * pixels);
    parts.forEach((p, grp) => {
      for (let o2 = 0; o2 < og; o2++) for (let b = 0; b < n; b++) for (let q = 0; q < hw; q++) out[((b * cOut + grp * og + o2) * hw) + q] = p[o2 * pixels + b * hw + q];
    });
    return out;
  })();
}

test('conv2d equals im2col + matmul (GPU conv vs GPU matmul; reference vs reference matmul)', async () => {
  const cases: [number[], number[], Conv2dOptions][] = [
    [[2, 6, 7, 5], [4, 3, 3, 3], { groups: 2, padding: 1, stride: [2, 1] }],
    [[1, 5, 9, 6], [7, 5, 4, 3], { padding: [2, 1, 0, 1], dilation: [1, 2] }],
  ];
  for (const [i, [xs, ws, o]] of cases.entries()) {
    const x = randn(xs, 10 + i);
    const w = randn(ws, 20 + i);
    await scope(async () => {
      const gpu = await conv2d(up(x), up(w), o).readF32();
      const composed = await viaIm2col(x, w, o, async (a, b) => Float64Array.from(await matmul(up(a), up(b)).readF32()));
      assertClose(gpu, composed, CLOSE, `case ${i}: GPU conv2d vs GPU im2col+matmul`);
      const refComposed = await viaIm2col(x, w, o, async (a, b) => matmulForward(a, b).data);
      assertClose(conv2dForward(x, w, null, convGeometry('conv2d', o)).data, refComposed, { atol: 1e-12, rtol: 1e-12 }, `case ${i}: reference conv2d vs reference im2col+matmul`);
    });
  }
});

test('conv_transpose2d is the adjoint of conv2d: <conv2d(a, w), b> = <a, conv_transpose2d(b, w)>', async () => {
  const o: ConvTranspose2dOptions = { stride: 2, padding: [1, 0], groups: 2 };
  const a = randn([2, 4, 9, 8], 1);
  const w = randn([6, 2, 3, 3], 2);
  const b = randn([2, 6, 5, 3], 3); // conv2d output: Ho = (9 + 2 - 3)/2 + 1 = 5, Wo = (8 - 3)/2 + 1 = 3
  await scope(async () => {
    const lhs = (await sum(mul(conv2d(up(a), up(w), o), up(b))).readF32())[0];
    // conv_transpose2d of b [2, 6, 5, 3] with w read as [C_in = 6, C_out/G = 2, 3, 3] gives [2, 4, 9, 8].
    const t = convTranspose2d(up(b), up(w), { ...o, outputPadding: [0, 1] });
    assert.equal([...t.shape], a.shape);
    const rhs = (await sum(mul(up(a), t)).readF32())[0];
    assert.ok(Math.abs(lhs - rhs) <= 1e-4 * Math.abs(lhs) + 1e-4, `${lhs} vs ${rhs}`);
  });
});

/** GPU forward and gradients of every input against the float64 reference. */
async function againstReference(
  label: string,
  shapes: number[][],
  gpuOp: (ts: Tensor[]) => Tensor,
  fwd: (hs: HostArray[]) => HostArray,
  vjp: (hs: HostArray[], gy: HostArray) => Float64Array[],
  seed: number,
): Promise<void> {
  const hs = shapes.map((s, i) => randn(s, seed + i));
  const want = fwd(hs);
  const gy = randn(want.shape, seed + 99);
  const wantGrads = vjp(hs, gy);
  await scope(async () => {
    const ts = hs.map((h) => up(h).requireGrad());
    const y = gpuOp(ts);
    assert.equal([...y.shape], want.shape, `${label}: output shape`);
    const grads = grad(y, ts, { upstream: up(gy) });
    assertClose(await y.readF32(), want.data, WIDE, `${label}: forward`);
    for (const [j, g] of grads.entries()) assertClose(await g.readF32(), wantGrads[j], WIDE, `${label}: gradient of input ${j}`);
  }).finally(clearTape);
}

test('StyleGAN2-like shapes with several channel and pixel blocks match the reference', async () => {
  // 3x3 "same" conv, batch 2, 18 -> 10 channels (blocks of 4 with a partial one), 9x9.
  const c: Conv2dOptions = { padding: 1 };
  const gc = convGeometry('conv2d', c);
  await againstReference('conv2d 2x18x9x9 * 10x18x3x3', [[2, 18, 9, 9], [10, 18, 3, 3], [10]], ([x, w, b]) => conv2d(x, w, b, c), ([x, w, b]) => conv2dForward(x, w, b, gc), ([x, w, b], gy) => conv2dVjp(x, w, b, gy, gc), 100);
  // Upsampling conv: stride 2, no padding, 3x3, 6x5 -> 13x11, 9 -> 7 channels.
  const t: ConvTranspose2dOptions = { stride: 2 };
  const gt = { ...convGeometry('conv_transpose2d', t), outputPadding: [0, 0] as [number, number] };
  await againstReference('conv_transpose2d 2x9x6x5 * 9x7x3x3', [[2, 9, 6, 5], [9, 7, 3, 3], [7]], ([x, w, b]) => convTranspose2d(x, w, b, t), ([x, w, b]) => convTranspose2dForward(x, w, b, gt), ([x, w, b], gy) => convTranspose2dVjp(x, w, b, gy, gt), 200);
  // 20 input channels: the transposed kernel's channel sum is split in two (partials + bias on the first).
  const t2: ConvTranspose2dOptions = { stride: 2, padding: 1, outputPadding: 1 };
  const gt2 = { ...convGeometry('conv_transpose2d', t2), outputPadding: [1, 1] as [number, number] };
  await againstReference('conv_transpose2d 2x20x4x3 * 20x6x3x3', [[2, 20, 4, 3], [20, 6, 3, 3], [6]], ([x, w, b]) => convTranspose2d(x, w, b, t2), ([x, w, b]) => convTranspose2dForward(x, w, b, gt2), ([x, w, b], gy) => convTranspose2dVjp(x, w, b, gy, gt2), 250);
  // ToRGB-like 1x1: 16 -> 3 channels over 2x16x16 (the weight gradient is split over pixel rows).
  const g1 = convGeometry('conv2d', {});
  await againstReference('conv2d 2x16x16x16 * 3x16x1x1', [[2, 16, 16, 16], [3, 16, 1, 1], [3]], ([x, w, b]) => conv2d(x, w, b), ([x, w, b]) => conv2dForward(x, w, b, g1), ([x, w, b], gy) => conv2dVjp(x, w, b, gy, g1), 300);
});

interface GoldenCase {
  op: 'conv2d' | 'conv_transpose2d';
  name: string;
  stride: [number, number];
  padding: [number, number];
  dilation: [number, number];
  groups: number;
  output_padding?: [number, number];
  x_shape: number[];
  w_shape: number[];
  y_shape: number[];
  x: number[];
  w: number[];
  b?: number[];
  r: number[];
  y: number[];
  gx: number[];
  gw: number[];
  gb?: number[];
}

const golden = JSON.parse(readFileSync(new URL('golden/conv_golden.json', import.meta.url), 'utf8')) as { cases: GoldenCase[] };

/** PyTorch golden values: max|a - b| / max|b| <= 1e-5 per tensor (relativeToMax). */
const GOLDEN_TOL = 1e-5;
const goldenWorst = { fwd: 0, grad: 0 };

for (const g of golden.cases) {
  test(`PyTorch golden: ${g.op} ${g.name}`, async () => {
    await scope(async () => {
      const x = tensor(g.x, g.x_shape).requireGrad();
      const w = tensor(g.w, g.w_shape).requireGrad();
      const b = g.b ? tensor(g.b, [g.b.length]).requireGrad() : null;
      const o = { stride: g.stride, padding: g.padding, dilation: g.dilation, groups: g.groups };
      const y = g.op === 'conv2d' ? conv2d(x, w, b, o) : convTranspose2d(x, w, b, { ...o, outputPadding: g.output_padding });
      assert.equal([...y.shape], g.y_shape);
      const inputs = b ? [x, w, b] : [x, w];
      const grads = grad(y, inputs, { upstream: tensor(g.r, g.y_shape) });
      const checks: [string, Tensor, number[]][] = [['y', y, g.y], ['gx', grads[0], g.gx], ['gw', grads[1], g.gw]];
      if (b && g.gb) checks.push(['gb', grads[2], g.gb]);
      for (const [what, t, want] of checks) {
        const e = relToMax(assertClose(await t.readF32(), want, relativeToMax(want, GOLDEN_TOL), `${g.name}: ${what} vs PyTorch`));
        const k = what === 'y' ? 'fwd' : 'grad';
        goldenWorst[k] = Math.max(goldenWorst[k], e);
      }
    }).finally(clearTape);
  });
}

test('PyTorch golden: the measured errors', () => {
  console.log(`  conv golden: max|a-b|/max|b| ${goldenWorst.fwd.toExponential(2)} (outputs), ${goldenWorst.grad.toExponential(2)} (gradients), bound ${GOLDEN_TOL.toExponential(0)}`);
});

test('conv2d and conv_transpose2d return the pool to its baseline after forward and backward', async () => {
  const x = tensor(randn([2, 5, 6, 7], 5).data, [2, 5, 6, 7]).requireGrad().keep();
  const w = tensor(randn([4, 5, 3, 3], 6).data, [4, 5, 3, 3]).requireGrad().keep();
  const wt = tensor(randn([4, 3, 3, 3], 7).data, [4, 3, 3, 3]).requireGrad().keep();
  const b = tensor(randn([4], 8).data, [4]).requireGrad().keep();
  try {
    const step = () =>
      scope(async () => {
        const y = conv2d(x, w, b, { padding: 1, stride: 2 });
        const z = convTranspose2d(y, wt, { stride: 2, padding: 1, outputPadding: 1 });
        const grads = grad(sum(mul(z, z)), [x, w, wt, b]);
        for (const g of grads) await g.readF32();
      });
    await step();
    const before = engine().memory().bytesInUse;
    for (let i = 0; i < 3; i++) await step();
    assert.is(engine().memory().bytesInUse, before);
  } finally {
    clearTape();
    for (const t of [x, w, wt, b]) t.dispose();
  }
});

test.run();
