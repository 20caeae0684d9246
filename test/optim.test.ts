// Optimizers: SGD (momentum, dampening, Nesterov, weight decay) and Adam / AdamW against their
// float64 references over several steps with random gradients, a learning-rate schedule and a
// skipped gradient; `.grad` input and zeroGrad; flat memory over 200 steps; bad input. The training
// helpers (Adam.stepScaled, sumOfSquares, emaUpdate) against their float64 references.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { engine } from '../engine/engine.ts';
import { scope, tensor, zeros, type Tensor } from '../engine/tensor.ts';
import { Adam, AdamW, SGD, emaUpdate, rescaleRows, sumOfSquares, type AdamOptions, type SgdOptions } from '../engine/optim.ts';
import { adamReference, adamStateRef, emaReference, rescaleRowsReference, sgdReference, sumOfSquaresReference, type AdamHyper, type AdamStateRef, type SgdHyper, type SgdStateRef } from '../engine/reference/optim.ts';
import { HostRandom } from '../engine/reference/host.ts';
import { randomNormal } from '../engine/random.ts';
import { sizeOf } from '../engine/shape.ts';
import { assertClose } from './helpers.ts';

const test = suite('optim');

/** float32 state after a few steps vs float64: |a - b| <= atol + rtol |b|. */
const OPTIM_TOL = { atol: 1e-6, rtol: 1e-5 };
const SHAPES = [[7, 5], [13], [2, 3, 4]];
const STEPS = 5;
/** At this step the second parameter gets no gradient (it must stay put, its step count too). */
const SKIP = { step: 2, param: 1 };

function f32Array(rng: HostRandom, n: number, scale = 1): Float64Array {
  return Float64Array.from({ length: n }, () => Math.fround(scale * rng.normal()));
}

interface Run<S> {
  /** lr for step k (0-based): a schedule, passed as a uniform every step. */
  lr: (k: number) => number;
  make: (params: Tensor[]) => { step(g: (Tensor | null)[]): void; lr: number };
  refState: (n: number) => S;
  refStep: (p: Float64Array, g: Float64Array, s: S, lr: number) => void;
  /** GPU state tensors of parameter i and their reference counterparts, compared after every step. */
  states: (opt: unknown, p: Tensor, s: S) => [string, Tensor | undefined, Float64Array | null][];
}

async function matchReference<S>(label: string, run: Run<S>, seed: number): Promise<void> {
  const rng = new HostRandom(seed);
  const init = SHAPES.map((s) => f32Array(rng, sizeOf(s)));
  const params = init.map((d, i) => tensor(d, SHAPES[i]).keep());
  const refP = init.map((d) => Float64Array.from(d));
  const refS = init.map((d) => run.refState(d.length));
  const opt = run.make(params);
  for (let k = 0; k < STEPS; k++) {
    const lr = run.lr(k);
    opt.lr = lr;
    const hostGrads = init.map((d) => f32Array(rng, d.length, 0.5 + k));
    const grads = hostGrads.map((g, i) => (k === SKIP.step && i === SKIP.param ? null : tensor(g, SHAPES[i])));
    opt.step(grads);
    grads.forEach((g) => g?.dispose());
    for (let i = 0; i < params.length; i++) {
      if (!(k === SKIP.step && i === SKIP.param)) run.refStep(refP[i], hostGrads[i], refS[i], lr);
      assertClose(await params[i].readF32(), refP[i], OPTIM_TOL, `${label} step ${k} param ${i}`);
      for (const [name, t, ref] of run.states(opt, params[i], refS[i])) {
        if (!ref) continue;
        assert.ok(t, `${label}: ${name} of param ${i} missing`);
        assertClose(await t!.readF32(), ref, OPTIM_TOL, `${label} step ${k} param ${i} ${name}`);
      }
    }
  }
  (opt as unknown as { dispose(): void }).dispose();
  params.forEach((p) => p.dispose());
}

const sgdRun = (o: Omit<SgdOptions, 'lr'>, lr: (k: number) => number): Run<SgdStateRef> => {
  const h = { momentum: o.momentum ?? 0, dampening: o.dampening ?? 0, weightDecay: o.weightDecay ?? 0, nesterov: o.nesterov ?? false };
  return {
    lr,
    make: (params) => new SGD(params, { ...o, lr: lr(0) }),
    refState: () => ({ buf: null }),
    refStep: (p, g, s, lrK) => sgdReference(p, g, s, { ...h, lr: lrK } satisfies SgdHyper),
    states: (opt, p, s) => [['momentum buffer', (opt as SGD).momentumBuffer(p), s.buf]],
  };
};

const SGD_COMBOS: [string, Omit<SgdOptions, 'lr'>, (k: number) => number][] = [
  ['plain', {}, () => 0.1],
  ['plain + weight decay, lr schedule', { weightDecay: 0.05 }, (k) => 0.2 / (k + 1)],
  ['momentum 0.9', { momentum: 0.9 }, () => 0.05],
  ['momentum 0.5, dampening 0.3, weight decay 0.01', { momentum: 0.5, dampening: 0.3, weightDecay: 0.01 }, () => 0.1],
  ['nesterov 0.8 + weight decay, lr schedule', { momentum: 0.8, nesterov: true, weightDecay: 0.02 }, (k) => 0.03 * (k + 1)],
];

for (const [name, o, lr] of SGD_COMBOS) {
  test(`SGD ${name}: ${STEPS} steps match the float64 reference`, async () => {
    await matchReference(`SGD ${name}`, sgdRun(o, lr), 11);
  });
}

const adamRun = (o: AdamOptions, lr: (k: number) => number, W: typeof Adam = Adam): Run<AdamStateRef> => {
  const [beta1, beta2] = o.betas ?? [0.9, 0.999];
  const h = { beta1, beta2, eps: o.eps ?? 1e-8, weightDecay: o.weightDecay ?? (W === AdamW ? 0.01 : 0), decoupled: W === AdamW || !!o.decoupledWeightDecay };
  return {
    lr,
    make: (params) => new W(params, { ...o, lr: lr(0) }),
    refState: (n) => adamStateRef(n),
    refStep: (p, g, s, lrK) => adamReference(p, g, s, { ...h, lr: lrK } satisfies AdamHyper),
    states: (opt, p, s) => {
      const st = (opt as Adam).stateOf(p);
      assert.is(st?.step ?? 0, s.step, 'step count');
      return [
        ['m', st?.m, s.step ? s.m : null],
        ['v', st?.v, s.step ? s.v : null],
      ];
    },
  };
};

const ADAM_COMBOS: [string, AdamOptions, (k: number) => number, typeof Adam][] = [
  ['defaults', {}, () => 1e-2, Adam],
  ['betas (0.5, 0.9), coupled weight decay 0.1, lr schedule', { betas: [0.5, 0.9], weightDecay: 0.1 }, (k) => 0.05 * (1 - k / STEPS), Adam],
  ['beta1 0, eps 1e-3', { betas: [0, 0.5], eps: 1e-3 }, () => 0.02, Adam],
  ['decoupledWeightDecay option', { betas: [0.8, 0.99], weightDecay: 0.2, decoupledWeightDecay: true }, () => 0.1, Adam],
  ['AdamW defaults', {}, (k) => 1e-2 * (k + 1), AdamW],
];

for (const [name, o, lr, W] of ADAM_COMBOS) {
  test(`${W.name} ${name}: ${STEPS} steps match the float64 reference`, async () => {
    await matchReference(`${W.name} ${name}`, adamRun(o, lr, W), 23);
  });
}

test('Adam.stepScaled: gradients times a factor on the GPU, 5 steps, match the reference on the scaled gradients', async () => {
  const rng = new HostRandom(31);
  const init = SHAPES.map((s) => f32Array(rng, sizeOf(s)));
  const params = init.map((d, i) => tensor(d, SHAPES[i]).keep());
  const refP = init.map((d) => Float64Array.from(d));
  const refS = init.map((d) => adamStateRef(d.length));
  const opt = new Adam(params, { lr: 0.02, weightDecay: 0.05 });
  for (let k = 0; k < STEPS; k++) {
    const factor = Math.fround(0.3 + 0.2 * k);
    const hostGrads = init.map((d) => f32Array(rng, d.length, 1 + k));
    await scope(async () => {
      opt.stepScaled(hostGrads.map((g, i) => tensor(g, SHAPES[i])), tensor([factor], [1]));
    });
    for (let i = 0; i < params.length; i++) {
      // The kernel rounds g * factor to float32 before Adam sees it, as a separate multiply would.
      adamReference(refP[i], hostGrads[i].map((g) => Math.fround(g * factor)), refS[i], { lr: 0.02, beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0.05, decoupled: false });
      assertClose(await params[i].readF32(), refP[i], OPTIM_TOL, `stepScaled step ${k} param ${i}`);
    }
  }
  assert.throws(() => opt.stepScaled([null, null, null], tensor([1, 2], [2])), /scale must be an f32 tensor of one element/);
  opt.dispose();
  params.forEach((p) => p.dispose());
});

test('Adam.stepScaled with an average: the same weights and averages, bit for bit, as stepScaled then emaUpdate, a skipped gradient included', async () => {
  const rng = new HostRandom(34);
  const init = SHAPES.map((sh) => f32Array(rng, sizeOf(sh)));
  const twin = () => init.map((d, i) => tensor(d, SHAPES[i]).keep());
  const [fusedP, fusedAvg, plainP, plainAvg] = [twin(), twin(), twin(), twin()];
  const fused = new Adam(fusedP, { lr: 0.03 });
  const plain = new Adam(plainP, { lr: 0.03 });
  const refAvg = init.map((d) => Float64Array.from(d));
  for (let k = 0; k < 3; k++) {
    const decay = [0.1, 0.5, 0.9][k];
    const hostGrads = init.map((d) => f32Array(rng, d.length, 1 + k));
    const skip = (i: number) => k === 1 && i === SKIP.param;
    await scope(async () => {
      const gs = () => hostGrads.map((g, i) => (skip(i) ? null : tensor(g, SHAPES[i])));
      const factor = tensor([0.7], [1]);
      fused.stepScaled(gs(), factor, { tensors: fusedAvg, decay });
      plain.stepScaled(gs(), factor);
      plainAvg.forEach((a, i) => emaUpdate(a, plainP[i], decay));
    });
    for (let i = 0; i < init.length; i++) {
      const [fp, pp, fa, pa] = await Promise.all([fusedP[i], plainP[i], fusedAvg[i], plainAvg[i]].map((t) => t.readF32()));
      assert.ok(fp.every((v, j) => Object.is(v, pp[j])), `step ${k} param ${i}: weights differ`);
      assert.ok(fa.every((v, j) => Object.is(v, pa[j])), `step ${k} param ${i}: averages differ`);
      emaReference(refAvg[i], pp, decay);
      assertClose(fa, refAvg[i], OPTIM_TOL, `step ${k} average ${i} against the reference`);
    }
  }
  assert.throws(() => fused.stepScaled([null, null, null], tensor([1], [1]), { tensors: fusedAvg.slice(1), decay: 0.5 }), /2 averages for 3 parameters/);
  assert.throws(() => fused.stepScaled([null, null, null], tensor([1], [1]), { tensors: fusedP, decay: 0.5 }), /not the parameter itself/);
  for (const o of [fused, plain]) o.dispose();
  for (const t of [...fusedP, ...fusedAvg, ...plainP, ...plainAvg]) t.dispose();
});

test('sumOfSquares: one tensor and several, sizes around the 64-lane workgroup and large, match the float64 sum', async () => {
  const rng = new HostRandom(32);
  for (const sizes of [[1], [63], [64, 65], [70_000, 5, 128 * 384]]) {
    const arrays = sizes.map((n) => f32Array(rng, n, 2));
    const got = await scope(() => sumOfSquares(arrays.map((a) => tensor(a, [a.length]))).readF32());
    assertClose(got, [sumOfSquaresReference(arrays)], { atol: 0, rtol: 1e-5 }, `sizes ${sizes.join(', ')}`);
  }
  assert.throws(() => sumOfSquares([]), /no tensors/);
});

test('emaUpdate: three in-place updates with changing decay match the float64 reference', async () => {
  const rng = new HostRandom(33);
  const n = 1000;
  const start = f32Array(rng, n);
  const avg = tensor(start, [10, 100]).keep();
  const ref = Float64Array.from(start);
  for (const decay of [0.1, 0.9, 0.999]) {
    const src = f32Array(rng, n);
    await scope(async () => emaUpdate(avg, tensor(src, [10, 100]), decay));
    emaReference(ref, src, decay);
    assertClose(await avg.readF32(), ref, OPTIM_TOL, `decay ${decay}`);
  }
  await scope(async () => {
    assert.throws(() => emaUpdate(avg, tensor(new Float32Array(n), [n]), 0.5), /must be f32 tensors of one shape/);
    assert.throws(() => emaUpdate(avg, tensor(new Float32Array(n), [10, 100]), 1.5), /decay must be in \[0, 1\]/);
    assert.throws(() => emaUpdate(avg, avg, 0.5), /the same tensor/);
  });
  avg.dispose();
});

test('rescaleRows: rows of the last axis (one to 128 long) rescaled in place to their norms match the float64 reference', async () => {
  const rng = new HostRandom(21);
  for (const shape of [[3, 2, 128], [4, 1, 8, 8], [5, 1], [70, 3]]) {
    await scope(async () => {
      const len = shape[shape.length - 1];
      const n = sizeOf(shape);
      const x0 = f32Array(rng, n);
      const norms = Float64Array.from({ length: n / len }, () => Math.fround(0.5 + rng.uniform()));
      const x = tensor(Float32Array.from(x0), shape);
      rescaleRows(x, tensor(Float32Array.from(norms), [...shape.slice(0, -1), 1]));
      const want = Float64Array.from(x0);
      rescaleRowsReference(want, norms, len);
      assertClose(await x.readF32(), want, { atol: 1e-6, rtol: 1e-5 }, `rescaleRows ${shape.join('x')}`);
    });
  }
});

test('step() reads .grad when no gradients are given; zeroGrad() drops them', async () => {
  const rng = new HostRandom(5);
  const init = f32Array(rng, 12);
  const gHost = f32Array(rng, 12);
  const a = tensor(init, [3, 4]).keep();
  const b = tensor(init, [3, 4]).keep();
  const optA = new Adam([a], { lr: 0.1 });
  const optB = new Adam([b], { lr: 0.1 });
  const g = tensor(gHost, [3, 4]);
  optA.step([g]);
  b.grad = tensor(gHost, [3, 4]);
  optB.step();
  assert.equal(Array.from(await b.readF32()), Array.from(await a.readF32()));
  optB.zeroGrad();
  assert.is(b.grad, null);
  assert.throws(() => optB.step(), /no parameter has a \.grad/);
  for (const t of [g, a, b]) t.dispose();
  optA.dispose();
  optB.dispose();
});

async function flatOver200Steps(make: (params: Tensor[]) => { step(g: Tensor[]): void; dispose(): void }): Promise<void> {
  const eng = engine();
  const start = eng.memory().bytesInUse;
  const params = SHAPES.map((s, i) => randomNormal(s, { seed: 1, offset: i }).keep());
  const opt = make(params);
  let k = 0;
  const oneStep = () => scope(() => opt.step(params.map((p) => randomNormal(p.shape, { seed: 2, offset: k++, std: 0.1 }))));
  oneStep(); // the first step creates the optimizer state
  const afterFirst = eng.memory().bytesInUse;
  for (let s = 1; s < 200; s++) {
    oneStep();
    assert.is(eng.memory().bytesInUse, afterFirst, `bytes in use changed at step ${s}`);
  }
  const values = await params[0].readF32();
  assert.ok(values.every(Number.isFinite));
  opt.dispose();
  params.forEach((p) => p.dispose());
  assert.is(eng.memory().bytesInUse, start, 'state and parameters are freed');
}

test('bytes in use stay flat across 200 Adam steps', async () => {
  await flatOver200Steps((params) => new Adam(params, { lr: 1e-3, weightDecay: 0.01 }));
});

test('bytes in use stay flat across 200 SGD momentum steps', async () => {
  await flatOver200Steps((params) => new SGD(params, { lr: 1e-2, momentum: 0.9 }));
});

test('bad input gives clear errors', () => {
  const p = zeros([2, 3]).keep();
  const q = zeros([4]).keep();
  assert.throws(() => new Adam([p], { lr: 0 }), /Adam: lr must be a positive finite number, got 0/);
  assert.throws(() => new SGD([p], { lr: -1 }), /SGD: lr must be a positive finite number/);
  assert.throws(() => new SGD([p], {} as SgdOptions), /SGD: lr must be a positive finite number, got undefined/);
  assert.throws(() => new Adam([p], { lr: NaN }), /lr must be a positive finite number/);
  assert.throws(() => new Adam([p], { betas: [1, 0.999] }), /Adam: betas\[0\] must be in \[0, 1\), got 1/);
  assert.throws(() => new Adam([p], { betas: [-0.1, 0.999] }), /betas\[0\] must be in \[0, 1\)/);
  assert.throws(() => new AdamW([p], { betas: [0.9, 1] }), /AdamW: betas\[1\] must be in \[0, 1\)/);
  assert.throws(() => new Adam([p], { eps: 0 }), /eps must be > 0/);
  assert.throws(() => new Adam([p], { weightDecay: -1 }), /weightDecay must be >= 0/);
  assert.throws(() => new SGD([p], { lr: 0.1, momentum: -0.5 }), /momentum must be >= 0/);
  assert.throws(() => new SGD([p], { lr: 0.1, nesterov: true }), /Nesterov momentum requires momentum > 0 and dampening 0/);
  assert.throws(() => new SGD([p], { lr: 0.1, momentum: 0.9, dampening: 0.1, nesterov: true }), /Nesterov/);
  assert.throws(() => new SGD([], { lr: 0.1 }), /non-empty array/);
  assert.throws(() => new SGD([p, p], { lr: 0.1 }), /appears twice/);
  const u = zeros([3], 'u32');
  assert.throws(() => new SGD([u], { lr: 0.1 }), /only f32 tensors can be optimized/);

  const opt = new Adam([p, q], { lr: 0.1 });
  assert.throws(() => (opt.lr = -0.5), /Adam: lr must be a positive finite number, got -0.5/);
  assert.is(opt.lr, 0.1, 'a rejected lr leaves the old one');
  const gWrong = zeros([3, 2]);
  const gq = zeros([4]);
  assert.throws(() => opt.step([gWrong, gq]), /gradient 0 has shape \[3, 2\] but its parameter has shape \[2, 3\]/);
  assert.throws(() => opt.step([gq]), /got 1 gradients for 2 parameters/);
  assert.throws(() => opt.step([p, gq]), /gradient 0 is the parameter tensor itself/);
  assert.throws(() => opt.step([u, gq]), /shape \[3\] but its parameter has shape \[2, 3\]/);
  const gU32 = zeros([2, 3], 'u32');
  assert.throws(() => opt.step([gU32, gq]), /gradient 0 is u32, expected f32/);
  for (const t of [p, q, u, gWrong, gq, gU32]) t.dispose();
  opt.dispose();
});

test.run();
