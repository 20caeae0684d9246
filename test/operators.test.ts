// Measurement operators (samplers/inverse/operators/): for every operator, the GPU forward against its
// float64 reference, and the adjoint through the tape (the gradient of sum(A(x) * y) with respect
// to x) against the reference's A^T y and against the forward, <A x, y> = <x, A^T y>, in float64;
// the bicubic kernel numbers of docs/design.md, "Measurement operators"; inpainting counts and seeded determinism; the
// partial circulant against a float64 DFT of its definition (n = 3072, not a power of two);
// `measure`'s noise; user-supplied operators; and the spec parser's errors.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { engine } from '../engine/engine.ts';
import { scope, tensor } from '../engine/tensor.ts';
import { grad } from '../engine/tape.ts';
import { mul } from '../engine/ops/elementwise.ts';
import { sum } from '../engine/ops/reduce.ts';
import { HostRandom, host, type HostArray } from '../engine/reference/host.ts';
import { circularConvolutionDft } from '../engine/reference/partial_circulant.ts';
import { sizeOf } from '../engine/shape.ts';
import { assertClose, relativeToMax } from './helpers.ts';
import {
  adjoint,
  bicubicMatrix,
  bicubicPadding,
  bicubicTaps,
  checkInput,
  keptPixelCount,
  makeOperator,
  measure,
  operatorHelp,
  parseOperatorSpec,
  randomPixelOperator,
  registerOperator,
  boxOperator,
  circulantCsOperator,
  type MaskOperator,
  type MeasurementOperator,
} from '../samplers/inverse/operators/index.ts';

const test = suite('operators');

const randn = (n: number, seed: number) => {
  const r = new HostRandom(seed);
  return Float64Array.from({ length: n }, () => Math.fround(r.normal()));
};
const dot = (a: ArrayLike<number>, b: ArrayLike<number>) => {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += a[i] * b[i];
  return s;
};

/** |got - want| <= tol * max(1, max |want|) per element (relativeToMax with floor 1). */
const close = (what: string, got: ArrayLike<number>, want: ArrayLike<number>, tol: number) => assertClose(got, want, relativeToMax(want, tol, 1), what);

/** The reference's A^T y, built column by column from the reference forward on unit images. */
function referenceAdjoint(op: MeasurementOperator, y: HostArray): Float64Array {
  const n = sizeOf(op.inShape);
  const m = sizeOf(op.outShape);
  const eye = host([n, ...op.inShape]);
  for (let k = 0; k < n; k++) eye.data[k * n + k] = 1;
  const columns = op.reference!(eye); // row k = A e_k
  const N = y.shape[0];
  const out = new Float64Array(N * n);
  for (let b = 0; b < N; b++) for (let k = 0; k < n; k++) out[b * n + k] = dot(columns.data.subarray(k * m, (k + 1) * m), y.data.subarray(b * m, (b + 1) * m));
  return out;
}

/** Forward vs reference, tape adjoint vs reference adjoint, and <A x, y> = <x, A^T y>. */
async function checkOperator(spec: string, inShape: number[], N = 2, seed = 5): Promise<void> {
  await scope(async () => {
    const { operator: op } = makeOperator(spec, inShape, { seed });
    try {
      const xs = host([N, ...inShape], randn(N * sizeOf(inShape), seed + 1));
      const ys = host([N, ...op.outShape], randn(N * sizeOf(op.outShape), seed + 2));
      const x = tensor(xs.data, xs.shape).requireGrad();
      const y = tensor(ys.data, ys.shape);
      const ax = op.apply(x);
      assert.equal([...ax.shape], [N, ...op.outShape], `${spec}: output shape`);
      const [g] = grad(sum(mul(ax, y)), [x]);
      const axGot = await ax.readF32();
      const gGot = await g.readF32();
      close(`${spec}: forward vs float64 reference`, axGot, op.reference!(xs).data, 2e-5);
      close(`${spec}: tape adjoint vs reference A^T y`, gGot, referenceAdjoint(op, ys), 2e-5);
      const lhs = dot(axGot, ys.data);
      const rhs = dot(xs.data, gGot);
      const scale = Math.sqrt(dot(axGot, axGot) * dot(ys.data, ys.data)) + 1e-12;
      assert.ok(Math.abs(lhs - rhs) <= 1e-5 * scale, `${spec}: <A x, y> = ${lhs} but <x, A^T y> = ${rhs}`);
      // The adjoint helper gives the same A^T y.
      close(`${spec}: adjoint() vs tape gradient`, await adjoint(op, y).readF32(), gGot, 1e-6);
    } finally {
      op.dispose?.();
    }
  });
}

const CASES: [string, number[]][] = [
  ['identity', [3, 5, 4]],
  ['denoise:0.1', [1, 6, 6]],
  ['inpaint-random:0.3', [3, 8, 8]],
  ['inpaint-box', [3, 7, 9]],
  ['sr-bicubic:1', [3, 8, 8]],
  ['sr-bicubic:2', [3, 8, 8]],
  ['sr-bicubic:3', [2, 10, 7]],
  ['sr-bicubic:4', [1, 8, 9]],
  ['sr-avgpool:2', [3, 8, 8]],
  ['sr-avgpool:3', [1, 10, 7]],
  ['colorize', [3, 6, 5]],
  ['cs-gaussian:0.25', [3, 8, 8]],
  ['cs-circulant:0.1', [3, 8, 8]],
  ['cs-circulant:0.5', [1, 5, 7]],
];
for (const [spec, shape] of CASES) test(`${spec} on [${shape}]: forward and adjoint`, () => checkOperator(spec, shape));

test("bicubic taps and padding match ILO's downsampler (factor 2, factor 1) and sum to 1", () => {
  const half2 = [-0.01171875, -0.03515625, 0.11328125, 0.43359375];
  close('factor 2 taps', bicubicTaps(2), [...half2, ...[...half2].reverse()], 1e-15);
  close('factor 1 taps', bicubicTaps(1), [-0.0625, 0.5625, 0.5625, -0.0625], 1e-15);
  assert.equal(bicubicPadding(1), [1, 2]);
  assert.equal(bicubicPadding(2), [3, 3]);
  assert.equal(bicubicPadding(3), [4, 5]);
  for (let f = 1; f <= 16; f++) {
    const k = bicubicTaps(f);
    assert.is(k.length, 4 * f);
    assert.ok(Math.abs(k.reduce((a, b) => a + b, 0) - 1) < 1e-12, `factor ${f}: taps sum to 1`);
    k.forEach((v, i) => assert.ok(Math.abs(v - k[4 * f - 1 - i]) < 1e-15, `factor ${f}: symmetric`));
  }
  // Factor 1 with padding 1/2 and reflection: row 0 reads x[1], x[0], x[1], x[2]; row 3 x[2], x[3], x[2], x[1].
  const A = bicubicMatrix(4, 1);
  close('factor 1 matrix row 0 (reflects x[1])', A.subarray(0, 4), [0.5625, 0.5625 - 0.0625, -0.0625, 0], 1e-15);
  close('factor 1 matrix row 3 (reflects x[2] twice)', A.subarray(12, 16), [0, -0.0625, 0.5625 - 0.0625, 0.5625], 1e-15);
  // Rows of every matrix sum to 1 (a constant image stays constant), output floor(size / f).
  for (const [size, f] of [[28, 4], [32, 16], [10, 3], [64, 8]]) {
    const M = bicubicMatrix(size, f);
    const rows = Math.floor(size / f);
    assert.is(M.length, rows * size);
    for (let r = 0; r < rows; r++) assert.ok(Math.abs(M.subarray(r * size, (r + 1) * size).reduce((a, b) => a + b, 0) - 1) < 1e-12);
  }
});

test('random inpainting: round(fraction * H * W) positions, at least 1, 0.75% of 32x32 keeps 8, seeded', () => {
  assert.is(keptPixelCount(0.0075, 32, 32), 8);
  assert.is(keptPixelCount(0.05, 28, 28), 39);
  assert.is(keptPixelCount(1e-6, 32, 32), 1);
  assert.is(keptPixelCount(1, 5, 7), 35);
  scope(() => {
    const ops: MaskOperator[] = [];
    const make = (seed: number, spec = 'inpaint-random:0.75%') => {
      const op = makeOperator(spec, [3, 32, 32], { seed }).operator as MaskOperator;
      ops.push(op);
      return op;
    };
    const a = make(7);
    assert.is(a.positions.length, 8);
    assert.is(new Set(a.positions).size, 8);
    assert.ok(a.positions.every((p) => p < 1024));
    assert.is(a.maskHost.reduce((s, v) => s + v, 0), 8);
    assert.equal([...make(7).positions], [...a.positions], 'the same seed gives the same positions');
    assert.not.equal([...make(8).positions], [...a.positions], 'another seed gives other positions');
    assert.is(make(7, 'inpaint-random:0.0001').positions.length, 1);
    assert.is(make(7, 'inpaint-random:1').positions.length, 1024);
    // The draw is uniform enough: over 60 seeds of 5% of 16x16, every quarter gets about a quarter.
    const quarters = [0, 0, 0, 0];
    for (let s = 0; s < 60; s++) {
      const op = randomPixelOperator([1, 16, 16], 0.05, s);
      for (const p of op.positions) quarters[(Math.floor(p / 16) >= 8 ? 2 : 0) + (p % 16 >= 8 ? 1 : 0)]++;
      op.dispose!();
    }
    const total = quarters.reduce((x, y) => x + y, 0);
    assert.is(total, 60 * 13);
    quarters.forEach((q) => assert.ok(Math.abs(q / total - 0.25) < 0.06, `quarter counts ${quarters}`));
    ops.forEach((op) => op.dispose!());
  });
});

test('box inpainting removes a centered box of round(side * H) x round(side * W)', () => {
  const op = boxOperator([1, 7, 9], 0.5); // 4 x 5 box (round half up), corner (1, 2)
  const removed: number[] = [];
  op.maskHost.forEach((v, i) => v === 0 && removed.push(i));
  const want: number[] = [];
  for (let r = 1; r < 5; r++) for (let c = 2; c < 7; c++) want.push(r * 9 + c);
  assert.equal(removed, want);
  assert.is(op.positions.length, 63 - 20);
  op.dispose!();
  const def = makeOperator('inpaint-box', [1, 8, 8]).operator as MaskOperator;
  assert.is(def.maskHost.reduce((s, v) => s + v, 0), 64 - 16, 'default: a centered square of half the side');
  def.dispose!();
});

test('partial circulant equals real(IFFT(FFT(x * s) FFT(f)))[idx] for n = 3 * 32 * 32 (not a power of two)', async () => {
  await scope(async () => {
    const op = circulantCsOperator([3, 32, 32], 0.1, 11);
    const n = 3072;
    assert.is(op.outShape[0], 307);
    const { filt, signs, idx } = op.params;
    assert.is(new Set(idx).size, 307);
    assert.ok(signs.every((s) => s === 1 || s === -1));
    assert.ok(Math.abs(signs.reduce((a, b) => a + b, 0)) < 200, 'signs are balanced');
    const x = randn(n, 12);
    const conv = circularConvolutionDft(x.map((v, k) => v * signs[k]), filt);
    const want = Array.from(idx, (i) => conv[i]);
    const got = await op.apply(tensor(x, [1, 3, 32, 32])).readF32();
    close('GPU partial circulant vs DFT definition', got, want, 2e-5);
    // The same seed gives the same operator; the constants are what the seed says.
    const again = circulantCsOperator([3, 32, 32], 0.1, 11);
    assert.equal([...again.params.idx], [...idx]);
    assert.equal([...again.params.filt], [...filt]);
    again.dispose!();
    op.dispose!();
  });
});

test('measure: seeded noise, zero outside the inpainting mask, exact without noise', async () => {
  await scope(async () => {
    const { operator: op, noiseStd } = makeOperator('inpaint-random:0.5,noise=0.2', [2, 32, 32], { seed: 3 });
    assert.is(noiseStd, 0.2);
    const x = tensor(randn(2 * 2 * 1024, 4), [2, 2, 32, 32]);
    const clean = await measure(op, x).readF32();
    const a = await measure(op, x, { noiseStd, seed: 9 }).readF32();
    const b = await measure(op, x, { noiseStd, seed: 9 }).readF32();
    const c = await measure(op, x, { noiseStd, seed: 10 }).readF32();
    assert.equal([...a], [...b], 'the same seed gives the same measurement');
    assert.not.equal([...a], [...c]);
    const mask = (op as MaskOperator).maskHost;
    let s2 = 0;
    let count = 0;
    a.forEach((v, i) => {
      if (mask[i % 1024] === 0) assert.is(v, 0, 'unobserved pixels stay 0');
      else {
        s2 += (v - clean[i]) ** 2;
        count++;
      }
    });
    assert.is(count, 2 * 2 * 512);
    const std = Math.sqrt(s2 / count);
    assert.ok(Math.abs(std - 0.2) < 0.02, `noise std ${std}`);
    let message = '';
    try {
      measure(op, x, { noiseStd: 0.1 });
    } catch (e) {
      message = (e as Error).message;
    }
    assert.match(message, /a seed is required/);
    op.dispose!();
  });
});

test('a user-supplied operator works through the interface, the registry and the tape', async () => {
  const channelSum = (inShape: number[]): MeasurementOperator => {
    const op: MeasurementOperator = {
      name: 'channel-sum',
      inShape,
      outShape: [1, inShape[1], inShape[2]],
      apply: (x) => (checkInput(op, x), sum(x, [1], { keepdims: true })),
    };
    return op;
  };
  registerOperator({ name: 'channel-sum', summary: 'sum over channels', make: (_l, s) => channelSum(s) });
  assert.match(operatorHelp(), /channel-sum\s+sum over channels/);
  await scope(async () => {
    const { operator } = makeOperator('channel-sum', [3, 2, 2]);
    const x = tensor(Array.from({ length: 12 }, (_, i) => i), [1, 3, 2, 2]);
    assert.equal([...(await measure(operator, x).readF32())], [12, 15, 18, 21]);
    const y = tensor([1, -2, 3, 0.5], [1, 1, 2, 2]);
    assert.equal([...(await adjoint(operator, y).readF32())], [1, -2, 3, 0.5, 1, -2, 3, 0.5, 1, -2, 3, 0.5]);
  });
  assert.throws(() => registerOperator({ name: 'channel-sum', summary: '', make: (_l, s) => channelSum(s) }), /already registered/);
});

test('the spec parser reads levels, percentages, defaults and the noise option', () => {
  assert.equal(parseOperatorSpec('inpaint-random:0.05'), { text: 'inpaint-random:0.05', family: 'inpaint-random', level: 0.05, noiseStd: 0 });
  assert.is(parseOperatorSpec('inpaint-random:0.75%').level, 0.0075);
  assert.is(parseOperatorSpec('inpaint-box').level, 0.5);
  assert.is(parseOperatorSpec(' sr-bicubic:4 ').level, 4);
  assert.equal(parseOperatorSpec('denoise:0.1'), { text: 'denoise:0.1', family: 'denoise', level: 0.1, noiseStd: 0.1 });
  assert.is(parseOperatorSpec('sr-avgpool:4, noise=0.01').noiseStd, 0.01);
  assert.is(parseOperatorSpec('colorize').level, undefined);
  assert.is(parseOperatorSpec('cs-circulant:10%').level, 0.1);
});

test('bad specs and bad shapes give errors that name the problem and the valid choices', () => {
  const err = (fn: () => unknown) => {
    try {
      scope(fn);
    } catch (e) {
      return (e as Error).message;
    }
    return '';
  };
  const spec = (s: string) => err(() => parseOperatorSpec(s));
  assert.match(spec('blur:3'), /unknown operator "blur".*valid operators: identity, denoise:0.1, inpaint-random:0.05, inpaint-box:0.5, sr-bicubic:4, sr-avgpool:4, colorize, cs-gaussian:0.1, cs-circulant:0.1/);
  assert.match(spec(''), /empty operator spec; valid operators/);
  assert.match(spec('inpaint-random:abc'), /level "abc" is not a number; expected the kept fraction of pixel positions, \(0, 1\]/);
  assert.match(spec('inpaint-random:1.5'), /level 1.5 is out of range; the kept fraction of pixel positions must be \(0, 1\]/);
  assert.match(spec('inpaint-random:0'), /out of range/);
  assert.match(spec('inpaint-random'), /needs a level \(kept fraction of pixel positions, \(0, 1\]\), e.g. "inpaint-random:0.05"/);
  assert.match(spec('sr-bicubic:2.5'), /downsampling factor must be an integer from 1 to 16/);
  assert.match(spec('sr-bicubic:17'), /out of range/);
  assert.match(spec('sr-bicubic:4%'), /not a number/);
  assert.match(spec('inpaint-box:1'), /must be \(0, 1\)/);
  assert.match(spec('colorize:3'), /takes no level/);
  assert.match(spec('denoise:-1'), /noise standard deviation must be >= 0/);
  assert.match(spec('denoise:0.1,noise=0.2'), /already sets the noise std/);
  assert.match(spec('sr-bicubic:4,blur=1'), /unknown option "blur=1"; the only option is noise=<std>/);
  assert.match(spec('sr-bicubic:4,noise=-1'), /noise std "-1" must be a number >= 0/);
  const make = (s: string, shape: number[]) => err(() => makeOperator(s, shape).operator.dispose?.());
  assert.match(make('colorize', [1, 28, 28]), /colorize: needs RGB images \(3 channels\), got 1 channel/);
  assert.match(make('sr-bicubic:8', [1, 8, 8]), /reflect padding of 12\/12 needs H and W > 12/);
  assert.match(make('sr-avgpool:16', [1, 8, 8]), /smaller than the factor 16/);
  assert.match(make('inpaint-box:0.9', [1, 2, 2]), /removes the whole 2x2 image/);
  assert.match(make('cs-gaussian:1', [3, 256, 256]), /more than this device binds.*use cs-circulant:1/);
  assert.match(make('identity', [3, 8]), /image shape must be \[C, H, W\]/);
  const before = engine().memory().bytesInUse;
  assert.match(
    err(() => {
      const { operator } = makeOperator('sr-bicubic:2', [3, 8, 8]);
      try {
        operator.apply(tensor(new Float32Array(3 * 64), [3, 8, 8]));
      } finally {
        operator.dispose!();
      }
    }),
    /operator sr-bicubic:2: expected input \[N, 3, 8, 8\].*got \[3, 8, 8\]/,
  );
  assert.is(engine().memory().bytesInUse, before, 'nothing leaks from a failed call');
});

test('operators release their GPU memory on dispose()', async () => {
  const before = engine().memory().bytesInUse;
  for (const s of ['inpaint-random:0.1', 'sr-bicubic:2', 'colorize', 'cs-gaussian:0.1', 'cs-circulant:0.1']) {
    await scope(async () => {
      const { operator } = makeOperator(s, [3, 8, 8], { seed: 1 });
      await measure(operator, tensor(randn(2 * 192, 1), [2, 3, 8, 8]), { noiseStd: 0.1, seed: 2 }).read();
      operator.dispose!();
    });
  }
  assert.is(engine().memory().bytesInUse, before);
});

test.run();
