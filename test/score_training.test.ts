// Score-model training and sampling: VP-SDE closed forms, SGILO's hot-step constants, a
// whole-network gradient check of a tiny ViT against a float64 reference (random directions; both
// time modes of score_vit.ts), a short DSM run on real-image activations (loss falls, memory flat),
// bit-exact checkpoint resume, `replay score` on the PyTorch fixture from its in.* tensors only,
// and the samplers (shapes, determinism, and the right statistics with the closed-form eps of
// Gaussian data).
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { engine } from '../engine/engine.ts';
import { readFileBytes, writeFileBytes } from '../engine/io/files.ts';
import { readSafetensors, toFloat64, writeSafetensors, type HostTensor } from '../engine/io/index.ts';
import { assertClose, relativeToMax, relToMax } from './helpers.ts';
import { Tensor, scope, tensor } from '../engine/tensor.ts';
import { grad, clearTape } from '../engine/tape.ts';
import { add, affine, div, exp, mul, sqrt, square, sub } from '../engine/ops/elementwise.ts';
import { reshape } from '../engine/ops/layout.ts';
import { HostRandom, host, type HostArray } from '../engine/reference/host.ts';
import { ScoreViT, inferScoreConfig, timeMode, type ScoreViTConfig } from '../nets/score_vit.ts';
import { scoreViTForwardRef } from '../nets/score_vit_reference.ts';
import { loadGenerator } from '../nets/stylegan2_checkpoint.ts';
import { VPSDE } from '../samplers/score/vpsde.ts';
import { annealedLangevin, hotStep, hotStepCoefficients, pcSample, priorDelta, type EpsModel } from '../samplers/score/sample.ts';
import { initScoreStateDict, loadScoreModel, scoreModelConfig, stripTraining, writeScoreModel } from '../samplers/score/checkpoint.ts';
import { activationsFromCodes, computeNormalization, normalizeInPlace, readActivationsFile, readCodesFile, writeActivationsFile } from '../samplers/score/data.ts';
import { ScoreTrainer, shuffle } from '../samplers/score/train.ts';
import { main } from '../cli/main.ts';

const test = suite('score_training');
const root = (f: string) => new URL(`../${f}`, import.meta.url).pathname;
const TINY: ScoreViTConfig = { channels: 3, height: 2, width: 2, dim: 8, depth: 1, heads: 2, dimHead: 4, mlp: 16 };

test('VP-SDE: beta, m(t), std(t) and the discretization match their closed forms', () => {
  const sde = new VPSDE();
  assert.is(sde.beta(0), 0.1);
  assert.ok(Math.abs(sde.beta(1) - 20) < 1e-12);
  for (const t of [1e-5, 0.01, 0.3, 0.77, 1]) {
    // m(t) = exp(-1/2 int_0^t beta), by Simpson's rule on the integral.
    const n = 1000;
    let integral = 0;
    for (let i = 0; i <= n; i++) integral += (i === 0 || i === n ? 1 : i % 2 ? 4 : 2) * sde.beta((t * i) / n);
    integral *= t / (3 * n);
    assert.ok(Math.abs(sde.meanCoeff(t) - Math.exp(-integral / 2)) < 1e-12, `m(${t})`);
    assert.ok(Math.abs(sde.meanCoeff(t) ** 2 + sde.std(t) ** 2 - 1) < 1e-12, `m^2 + std^2 = 1 at ${t}`);
  }
  // 1 - m^2 = 1 - exp(-2L) = 2L - 2L^2 + ..., L = -log m(1e-5) = 5e-7 + 19.9e-10 / 4.
  const L = 5e-7 + 19.9e-10 / 4;
  assert.ok(Math.abs(sde.std(1e-5) / Math.sqrt(2 * L - 2 * L * L) - 1) < 1e-9, 'std at small t keeps its digits');
  assert.ok(Math.abs(sde.meanCoeff(1) - Math.exp(-19.9 / 4 - 0.05)) < 1e-15);
  assert.ok(Math.abs(sde.discreteBeta(0) - 1e-4) < 1e-15 && Math.abs(sde.discreteBeta(999) - 0.02) < 1e-15);
  assert.is(sde.discreteIndex(1), 999);
  assert.is(sde.discreteIndex(0.5), 499);
  assert.throws(() => new VPSDE({ beta0: 1, beta1: 0.5 }), /beta0 < beta1/);
});

test('hot step: x * 1.0001495 - 0.0066976 * eps(x, 0.01), delta in raw units', async () => {
  const { a, b } = hotStepCoefficients();
  assert.ok(Math.abs(a - 1.0001495) < 5e-8, `a = ${a}`);
  assert.ok(Math.abs(b + 0.0066976) < 5e-8, `b = ${b}`);
  // With eps(x, t) = 2x - 1 the step and the prior move have closed forms.
  const model: EpsModel = { forward: (x) => affine(x, 2, -1) };
  await scope(async () => {
    const xs = [0, 0.25, 0.5, 1];
    const x = tensor(xs, [1, 1, 2, 2]);
    const got = await hotStep(model, x).readF32();
    xs.forEach((v, i) => assert.ok(Math.abs(got[i] - (a * v + b * (2 * v - 1))) < 1e-6));
    const [min, max] = [-3, 5];
    const raw = tensor(xs.map((v) => min + v * (max - min)), [1, 1, 2, 2]);
    const delta = await priorDelta(model, raw, { min, max }).readF32();
    xs.forEach((v, i) => assert.ok(Math.abs(delta[i] - (a * v + b * (2 * v - 1) - v) * (max - min)) < 1e-5));
  });
});

/** Every parameter made non-trivial (LayerNorm too), as host float32 values. */
function randomViT(c: ScoreViTConfig, seed: number) {
  const sd = initScoreStateDict(c, seed);
  const rng = new HostRandom(seed);
  for (const [name, t] of sd) if (name.includes('norm.')) t.data = Float32Array.from(t.data, (v) => v + 0.3 * rng.normal());
  return sd;
}

/** The whole-network gradient check of one configuration (both time modes, see score_vit.ts). */
async function gradcheckViT(TINY: ScoreViTConfig, trainableCount: number) {
  const sd = randomViT(TINY, 11);
  const rng = new HostRandom(5);
  const B = 2;
  const xShape = [B, TINY.channels, TINY.height, TINY.width];
  const draw = (shape: number[]) => host(shape, Float64Array.from({ length: shape.reduce((p, d) => p * d, 1) }, () => Math.fround(rng.normal())));
  const x = draw(xShape);
  const t = host([B], [Math.fround(0.3), Math.fround(0.05)]);
  const R = draw(xShape);
  const params = new Map<string, HostArray>([...sd].map(([k, v]) => [k, host(v.shape, v.data)]));
  const net = ScoreViT.fromStateDict(TINY, sd);
  const names = net.trainable().map(([n]) => n);
  try {
    const gpu = await scope(async () => {
      const xt = tensor(x.data, x.shape).requireGrad();
      for (const [, p] of net.trainable()) p.requireGrad();
      const eps = net.forward(xt, tensor(t.data, [B]));
      const gs = grad(eps, [xt, ...net.trainable().map(([, p]) => p)], { upstream: tensor(R.data, R.shape) });
      for (const [, p] of net.trainable()) p.requireGrad(false);
      return { eps: await eps.readF32(), grads: await Promise.all(gs.map((g) => g.readF32())) };
    }).finally(clearTape);
    const ref = scoreViTForwardRef(TINY, params, x, t);
    assertClose(gpu.eps, ref.data, relativeToMax(ref.data, 1e-5), 'forward vs float64 reference');

    const objective = (px: HostArray, pp: Map<string, HostArray>) => scoreViTForwardRef(TINY, pp, px, t).data.reduce((s, v, i) => s + v * R.data[i], 0);
    const h = 1e-4;
    const report: string[] = [];
    // got: <gpu grad, d>; want: (f(+h d) - f(-h d)) / 2h; tolerance relative to |g| |d|.
    const check = (g: Float32Array, dirs: Float64Array[], fd: (d: Float64Array) => number, scale = 1) =>
      dirs.every((d) => {
        let dot = 0;
        let gn = 0;
        let dn = 0;
        for (let i = 0; i < d.length; i++) (dot += scale * g[i] * d[i]), (gn += g[i] * g[i]), (dn += d[i] * d[i]);
        const want = fd(d);
        const ok = Math.abs(dot - want) <= 1e-4 * Math.sqrt(gn * dn) + 1e-9;
        if (!ok) report.push(`<g, d> = ${dot}, finite differences ${want}`);
        return ok;
      });
    const dirsFor = (n: number) => Array.from({ length: 3 }, () => Float64Array.from({ length: n }, () => rng.normal()));
    const shift = (a: HostArray, d: Float64Array, s: number) => host(a.shape, a.data.map((v, i) => v + s * d[i]));
    const fdX = (d: Float64Array) => (objective(shift(x, d, h), params) - objective(shift(x, d, -h), params)) / (2 * h);
    assert.ok(check(gpu.grads[0], dirsFor(x.data.length), fdX), `grad.x: ${report.join('; ')}`);
    names.forEach((name, j) => {
      const p = params.get(name)!;
      const fd = (d: Float64Array) => {
        const plus = new Map(params).set(name, shift(p, d, h));
        const minus = new Map(params).set(name, shift(p, d, -h));
        return (objective(x, plus) - objective(x, minus)) / (2 * h);
      };
      assert.ok(check(gpu.grads[j + 1], dirsFor(p.data.length), fd), `grad.param.${name}: ${report.join('; ')}`);
      // The check is sharp enough to catch a 1% error in a gradient.
      if (j === 0) assert.not.ok(check(gpu.grads[j + 1], dirsFor(p.data.length), fd, 1.01), `a 1% error in ${name} went unnoticed`);
    });
    assert.is(names.length, trainableCount, 'every trainable parameter of a depth-1 ViT');
  } finally {
    net.dispose();
  }
}

test('gradcheck: tiny ViT, GPU gradients of sum(eps * R) vs float64 finite differences along random directions', async () => {
  await gradcheckViT(TINY, 7 + 11 + 2);
});

test("gradcheck: tiny ViT with time: 'vector' (time vector on the tokens, FiLM-modulated LayerNorms)", async () => {
  // Two LayerNorm modulations (weight, bias) per block on top of the token model's parameters.
  await gradcheckViT({ ...TINY, time: 'vector' }, 7 + 11 + 4 + 2);
});

test("gradcheck: one-token ViT (1 x 1 grid, 2 heads; attention reduces to v), time: 'vector'", async () => {
  await gradcheckViT({ ...TINY, height: 1, width: 1, time: 'vector' }, 7 + 11 + 4 + 2);
});

/** Real-image activations after block 0 for the first n codes, normalized. */
async function codesData(n: number) {
  const g = await loadGenerator(await readFileBytes(root('models/fashion32/fashion32-stylegan2.pt')));
  try {
    const codes = readCodesFile(await readFileBytes(root('models/fashion32/fashion32-codes.safetensors')));
    const set = await activationsFromCodes(g, codes.z.subarray(0, n * codes.dim), 0);
    const norm = computeNormalization(set.data);
    normalizeInPlace(set.data, norm);
    return { set, norm };
  } finally {
    g.dispose();
  }
}

const SMALL = (C: number): ScoreViTConfig => ({ channels: C, height: 4, width: 4, dim: 32, depth: 1, heads: 2, dimHead: 16, mlp: 64 });

test('training on real-image activations: the loss falls, memory stays flat, resume continues exactly', async () => {
  const { set, norm } = await codesData(128);
  assert.equal(set.shape, [128, 128, 4, 4]);
  assert.ok(norm.max > norm.min);
  const vit = SMALL(set.shape[1]);
  const config = scoreModelConfig(vit, norm, { ...set.meta, generator: 'fashion32-stylegan2.pt' });
  const data = { data: set.data, shape: set.shape };
  const trainer = new ScoreTrainer(ScoreViT.fromStateDict(vit, initScoreStateDict(vit, 3)), config, data, { lr: 2e-3, batch: 16, seed: 7, warmup: 0 });
  let resumed: ScoreTrainer | null = null;
  try {
    let bytesAt5 = 0;
    for (let s = 0; s < 30; s++) {
      await trainer.trainStep();
      if (s === 4) bytesAt5 = engine().memory().bytesInUse;
    }
    assert.is(engine().memory().bytesInUse, bytesAt5, 'bytes in use after step 5 and after step 30');
    const L = trainer.losses;
    const avg = (a: number[]) => a.reduce((s, v) => s + v, 0) / a.length;
    assert.ok(L.every(Number.isFinite), 'finite losses');
    assert.ok(avg(L.slice(-5)) < 0.8 * avg(L.slice(0, 5)), `loss falls: first ${avg(L.slice(0, 5))}, last ${avg(L.slice(-5))}`);

    const ckpt = await trainer.checkpoint();
    const loaded = await loadScoreModel(ckpt);
    assert.equal(loaded.config.normalization, norm);
    resumed = ScoreTrainer.resume(loaded, data);
    loaded.net.dispose();
    assert.is(resumed.step, 30);
    const a: number[] = [];
    const b: number[] = [];
    for (let s = 0; s < 3; s++) a.push(await trainer.trainStep());
    for (let s = 0; s < 3; s++) b.push(await resumed.trainStep());
    assert.equal(b, a, 'the resumed run repeats the uninterrupted one');
    // The shipped form: the same model without the training state, which cannot be resumed.
    const model = await loadScoreModel(stripTraining(ckpt));
    assert.ok([...model.tensors.keys()].every((k) => !k.startsWith('train.')) && model.metadata.train === undefined);
    assert.equal(Array.from(await model.net.p('projector.weight').readF32()), Array.from(loaded.tensors.get('projector.weight')!.data));
    assert.throws(() => ScoreTrainer.resume(model, data), /not a checkpoint/);
    model.net.dispose();
    const ema1 = await trainer.ema.get('projector.weight')!.readF32();
    const ema2 = await resumed.ema.get('projector.weight')!.readF32();
    assert.equal(Array.from(ema2), Array.from(ema1), 'EMA weights agree');
  } finally {
    for (const t of [trainer, resumed]) {
      t?.dispose();
      t?.net.dispose();
    }
  }
});

test("time mode: saved with the model config, absent means 'token', an unknown mode is named", async () => {
  const vector: ScoreViTConfig = { ...TINY, time: 'vector' };
  const sd = initScoreStateDict(vector, 2);
  assert.equal(inferScoreConfig(sd, TINY.heads), vector, 'a state dict with time_mod weights is a vector model');
  assert.equal(inferScoreConfig(initScoreStateDict(TINY, 2), TINY.heads), TINY);
  const loaded = await loadScoreModel(writeScoreModel(scoreModelConfig(vector, null), sd));
  try {
    assert.is(loaded.config.vit.time, 'vector');
    assert.is(loaded.net.params.size, sd.size);
  } finally {
    loaded.net.dispose();
  }
  const token = await loadScoreModel(writeScoreModel(scoreModelConfig(TINY, null), initScoreStateDict(TINY, 2)));
  assert.is(token.config.vit.time, undefined, "models in SGILO's layout keep their config as it was");
  assert.is(timeMode(token.config.vit), 'token');
  token.net.dispose();
  const bad = writeScoreModel(scoreModelConfig({ ...TINY, time: 'film' as never }, null), initScoreStateDict(TINY, 2));
  const message = await loadScoreModel(bad).then(() => '', (e: Error) => e.message);
  assert.match(message, /config\.vit\.time must be "token" or "vector"/);
  assert.throws(() => ScoreViT.fromStateDict({ ...TINY, time: 'film' as never }, sd), /config\.time must be "token" or "vector"/);
});

test('minibatch order and activation files', () => {
  const p = shuffle(10, [1, 0], 0);
  assert.equal([...p].sort((x, y) => x - y), [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
  assert.equal(Array.from(shuffle(10, [1, 0], 0)), Array.from(p), 'reproducible');
  assert.not.equal(Array.from(shuffle(10, [1, 0], 1)), Array.from(p), 'a new order each epoch');
  const set = { data: Float32Array.from({ length: 2 * 3 * 2 * 2 }, (_, i) => i), shape: [2, 3, 2, 2] as [number, number, number, number], meta: { generator: 'g.pt', block: '1', source: 'test' } };
  const back = readActivationsFile(writeActivationsFile(set));
  assert.equal(back.shape, set.shape);
  assert.equal(Array.from(back.data), Array.from(set.data));
  assert.is(back.meta.block, '1');
  assert.is(back.meta.kind, 'sgilo-activations');
  assert.throws(() => readActivationsFile(writeSafetensors({ x: { dtype: 'float32', shape: [1], data: new Float32Array(1) } })), /no tensor "activations"/);
});

test('replay score: score.pt fed only in.* reproduces score_expected.safetensors', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'replay-score-'));
  try {
    const expected = readSafetensors(await readFileBytes(root('test/fixtures/reference-tiny/score_expected.safetensors'))).tensors;
    const inputs = new Map<string, HostTensor>([...expected].filter(([k]) => k.startsWith('in.')));
    assert.equal([...inputs.keys()].sort(), ['in.t', 'in.upstream', 'in.x']);
    await writeFileBytes(join(dir, 'in.safetensors'), writeSafetensors(inputs));
    const log = console.log;
    console.log = () => {};
    try {
      assert.is(await main(['replay', 'score', root('test/fixtures/reference-tiny/score.pt'), join(dir, 'in.safetensors'), '--out', join(dir, 'out.safetensors')]), 0);
    } finally {
      console.log = log;
    }
    const got = readSafetensors(await readFileBytes(join(dir, 'out.safetensors'))).tensors;
    const wanted = [...expected.keys()].filter((k) => !k.startsWith('in.'));
    assert.equal([...got.keys()].sort(), wanted.sort(), 'every out.* and grad.* tensor, nothing else');
    // max|a - b| / max|b| per tensor (relativeToMax): <= 1e-4 for out.*, <= 1e-3 for grad.*.
    const worst = { out: 0, grad: 0 };
    for (const k of wanted) {
      const [g, w] = [got.get(k)!, expected.get(k)!];
      assert.equal(g.shape, w.shape, `${k}: shape`);
      const [a, b] = [toFloat64(g), toFloat64(w)];
      const kind = k.startsWith('out.') ? 'out' : 'grad';
      worst[kind] = Math.max(worst[kind], relToMax(assertClose(a, b, relativeToMax(b, kind === 'out' ? 1e-4 : 1e-3), k)));
    }
    console.log(`  score fixture (replay score): max|a-b|/max|b| ${worst.out.toExponential(2)} (out.eps, bound 1e-4), ${worst.grad.toExponential(2)} (gradients, bound 1e-3)`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

/**
 * The exact eps of Gaussian data N(mu, s0^2 I) under the VP-SDE: x_t ~ N(m mu, m^2 s0^2 + std^2), so
 * eps(x, t) = std (x - m mu) / (m^2 s0^2 + std^2), built from GPU ops on the time tensor.
 */
function gaussianEps(mu: number, s0: number, sde = new VPSDE()): EpsModel {
  return {
    forward: (x: Tensor, t: Tensor) => {
      const d = sde.beta1 - sde.beta0;
      const m = reshape(exp(mul(affine(t, -d / 4, -sde.beta0 / 2), t)), [t.shape[0], 1, 1, 1]);
      const m2 = square(m);
      const std = sqrt(affine(m2, -1, 1));
      return div(mul(std, sub(x, affine(m, mu))), affine(m2, s0 * s0 - 1, 1));
    },
  };
}

function moments(v: Float32Array): { mean: number; std: number } {
  const mean = v.reduce((s, x) => s + x, 0) / v.length;
  return { mean, std: Math.sqrt(v.reduce((s, x) => s + (x - mean) ** 2, 0) / v.length) };
}

test('samplers: shapes, determinism from the seed, SDEdit start, and Gaussian statistics', async () => {
  const model = gaussianEps(0.5, 0.2);
  const shape = [256, 1, 2, 2];
  await scope(async () => {
    const a = await pcSample(model, { shape, seed: 3, steps: 100 });
    assert.equal(a.shape, shape);
    const va = await a.readF32();
    const st = moments(va);
    assert.ok(Math.abs(st.mean - 0.5) < 0.03 && Math.abs(st.std - 0.2) < 0.03, `PC samples: mean ${st.mean}, std ${st.std}`);
    const again = await (await pcSample(model, { shape, seed: 3, steps: 100 })).readF32();
    assert.equal(Array.from(again), Array.from(va), 'same seed, same samples');
    const other = await (await pcSample(model, { shape, seed: 4, steps: 100 })).readF32();
    assert.not.equal(Array.from(other), Array.from(va));
    const pc = moments(await (await pcSample(model, { shape, seed: 5, steps: 50, correctorSteps: 1, snr: 0.16 })).readF32());
    assert.ok(Math.abs(pc.mean - 0.5) < 0.03 && Math.abs(pc.std - 0.2) < 0.04, `PC with corrector: mean ${pc.mean}, std ${pc.std}`);
    const ald = moments(await (await annealedLangevin(model, { shape, seed: 6, levels: 50, stepsPerLevel: 5, epsilon: 1e-4 })).readF32());
    assert.ok(Math.abs(ald.mean - 0.5) < 0.03 && Math.abs(ald.std - 0.2) < 0.04, `annealed Langevin: mean ${ald.mean}, std ${ald.std}`);
    // SDEdit: from a constant state at t = 0.3 the samples move towards the data distribution.
    const start = tensor(new Float32Array(256 * 4).fill(2), shape);
    const ed = moments(await (await pcSample(model, { start: { x: start, t: 0.3 }, seed: 7, steps: 100 })).readF32());
    assert.ok(ed.mean < 1.5 && ed.mean > 0.5, `SDEdit from 2 at t = 0.3: mean ${ed.mean}`);
    const missing = await pcSample(model, { seed: 1 }).then(() => '', (e: Error) => e.message);
    assert.match(missing, /shape/);
  });
});

test('samplers run the ViT: tiny random model, finite output of the requested shape', async () => {
  const net = ScoreViT.fromStateDict(TINY, initScoreStateDict(TINY, 1));
  try {
    await scope(async () => {
      const x = await pcSample(net, { shape: [2, 3, 2, 2], seed: 1, steps: 10, correctorSteps: 1 });
      const v = await x.readF32();
      assert.equal(x.shape, [2, 3, 2, 2]);
      assert.ok(v.every(Number.isFinite));
      const y = hotStep(net, add(x, tensor([0], [1])));
      assert.equal(y.shape, x.shape);
    });
  } finally {
    net.dispose();
  }
});

test.run();
