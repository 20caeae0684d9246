// The closed-form Gaussian prior (samplers/score/gaussian.ts, gaussian_fit.ts, eigen.ts,
// prior_model.ts): the float64 eigendecomposition on matrices with a planted spectrum; the GPU eps
// against a float64 reference that solves (a^2 C + s^2 I) e = s (x - a mu) by Cholesky on the
// explicit covariance (no eigenbasis involved); the DSM loss on data drawn from the Gaussian against
// its analytic value; the score against finite differences of the log density; full and low-rank
// fits against moments computed here; the file format and the loader's dispatch by kind.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { scope, tensor } from '../engine/tensor.ts';
import { noGrad } from '../engine/tape.ts';
import { HostRandom } from '../engine/reference/host.ts';
import { VPSDE } from '../samplers/score/vpsde.ts';
import { symmetricEigen } from '../samplers/score/eigen.ts';
import { GaussianScore, gaussianConfig, gaussianEpsHost, marginalCoefficients, readGaussianModel, writeGaussianModel, type GaussianParams } from '../samplers/score/gaussian.ts';
import { explainedVariance, fitGaussian, sampleGaussianHost } from '../samplers/score/gaussian_fit.ts';
import { loadPrior, priorFileKind } from '../samplers/score/prior_model.ts';
import { initScoreStateDict, scoreModelConfig, writeScoreModel } from '../samplers/score/checkpoint.ts';
import { gaussianTensors } from '../samplers/score/gaussian.ts';
import { FeaturePrior } from '../samplers/inverse/prior.ts';
import { saveModel } from '../engine/io/index.ts';
import { readFileBytes } from '../engine/io/files.ts';
import { setupFromBytes } from '../samplers/inverse/setup.ts';
import type { ScoreViTConfig } from '../nets/score_vit.ts';
import { cholesky, fromSpectrum, randomOrthogonal } from './spd_helpers.ts';

const test = suite('score_gaussian_prior');
const sde = new VPSDE();
const SHAPE: [number, number, number] = [3, 2, 1];
const n = 6;

/** The explicit covariance V^T diag(lam) V + sigma2 (I - V^T V). */
function covarianceOf(p: GaussianParams): Float64Array {
  const c = new Float64Array(n * n);
  for (let i = 0; i < n; i++) c[i * n + i] = p.residualVariance;
  for (let k = 0; k < p.values.length; k++) {
    for (let i = 0; i < n; i++) for (let j = 0; j < n; j++) c[i * n + j] += (p.values[k] - p.residualVariance) * p.vectors[k * n + i] * p.vectors[k * n + j];
  }
  return c;
}

/** M = a^2 C + s^2 I of the marginal at t. */
function marginalCov(c: Float64Array, t: number): Float64Array {
  const a = sde.meanCoeff(t);
  const s = sde.std(t);
  return Float64Array.from(c, (v, k) => a * a * v + (k % (n + 1) === 0 ? s * s : 0));
}

/** A planted Gaussian in R^6: full (rank 6), or rank 2 with an isotropic rest. */
function planted(rank: number): GaussianParams {
  const rng = new HostRandom(rank + 1);
  const q = randomOrthogonal(n, rng);
  const values = [0.04, 0.01, 2e-3, 5e-4, 1e-4, 1e-6].slice(0, rank);
  return { mean: Float64Array.from({ length: n }, () => 0.5 + 0.1 * rng.normal()), vectors: q.slice(0, rank * n), values: Float64Array.from(values), residualVariance: rank < n ? 3e-4 : 0 };
}


/** Runs fn on the planted Gaussian at full rank and at rank 2, as a GPU model, disposing it after. */
async function forPlantedModels(fn: (rank: number, p: ReturnType<typeof planted>, model: GaussianScore) => Promise<void>): Promise<void> {
  for (const rank of [n, 2]) {
    const p = planted(rank);
    const model = new GaussianScore(gaussianConfig(SHAPE, p, null), p);
    try {
      await fn(rank, p, model);
    } finally {
      model.dispose();
    }
  }
}

test('symmetricEigen: planted spectra (distinct, repeated, zero) come back with orthonormal eigenvectors', () => {
  const rng = new HostRandom(3);
  for (const [size, values] of [
    [1, [2.5]],
    [4, [3, 1, 1, -2]],
    [7, [5, 4, 3, 0, 0, -1e-3, -7]],
    [40, Array.from({ length: 40 }, (_, i) => Math.exp(-i / 4))],
  ] as [number, number[]][]) {
    const q = randomOrthogonal(size, rng);
    const a = fromSpectrum(q, values, size);
    const { values: got, vectors } = symmetricEigen(a, size);
    const want = [...values].sort((x, y) => y - x);
    got.forEach((v, i) => assert.ok(Math.abs(v - want[i]) < 1e-12 * (1 + Math.abs(want[0])), `size ${size}: value ${i} ${v} vs ${want[i]}`));
    for (let k = 0; k < size; k++) {
      for (let j = 0; j < size; j++) {
        let dot = 0;
        for (let i = 0; i < size; i++) dot += vectors[k * size + i] * vectors[j * size + i];
        assert.ok(Math.abs(dot - (k === j ? 1 : 0)) < 1e-12, `size ${size}: <v${k}, v${j}> = ${dot}`);
      }
      for (let i = 0; i < size; i++) {
        let av = 0;
        for (let j = 0; j < size; j++) av += a[i * size + j] * vectors[k * size + j];
        assert.ok(Math.abs(av - got[k] * vectors[k * size + i]) < 1e-12 * (1 + Math.abs(want[0])), `size ${size}: A v = lambda v`);
      }
    }
  }
  assert.throws(() => symmetricEigen([1, 2, 3, 4], 2), /not symmetric/);
  assert.throws(() => symmetricEigen([1, NaN, NaN, 1], 2), /non-finite/);
});

test('s^2 = 1 - m(t)^2 on the GPU keeps its digits at small t', async () => {
  const ts = [1e-5, 1e-3, 0.01, 0.0503, 0.3, 1];
  const { a, s2 } = await scope(async () => {
    const c = marginalCoefficients(tensor(ts, [ts.length, 1]));
    return { a: await c.a.readF32(), s2: await c.s2.readF32() };
  });
  ts.forEach((t, i) => {
    assert.ok(Math.abs(s2[i] / sde.std(t) ** 2 - 1) < 2e-6, `s^2(${t}) = ${s2[i]} vs ${sde.std(t) ** 2}`);
    assert.ok(Math.abs(a[i] / sde.meanCoeff(t) - 1) < 1e-6, `m(${t})`);
  });
});

test('eps on the GPU matches s (a^2 C + s^2 I)^-1 (x - a mu) solved by Cholesky in float64 (full and low rank)', async () => {
  await forPlantedModels(async (rank, p, model) => {
  const rng = new HostRandom(17);
  const ts = [1e-3, 0.01, 0.03, 0.1, 0.5, 1];
  const x = Float64Array.from({ length: ts.length * n }, () => 0.5 + 0.2 * rng.normal());
  const got = await scope(() => noGrad(() => model.forward(tensor(x, [ts.length, ...SHAPE]), tensor(ts, [ts.length])).readF32()));
  const cov = covarianceOf(p);
  ts.forEach((t, j) => {
    const a = sde.meanCoeff(t);
    const s = sde.std(t);
    const xj = x.subarray(j * n, j * n + n);
    const want = cholesky(marginalCov(cov, t), n).solve(Array.from(xj, (v, i) => s * (v - a * p.mean[i])));
    const host = gaussianEpsHost(p, xj, t);
    const scale = Math.max(...want.map(Math.abs));
    for (let i = 0; i < n; i++) {
      assert.ok(Math.abs(got[j * n + i] - want[i]) <= 2e-5 * scale + 1e-6, `rank ${rank}, t ${t}, i ${i}: GPU ${got[j * n + i]} vs float64 ${want[i]}`);
      assert.ok(Math.abs(host[i] - want[i]) <= 1e-10 * scale, `rank ${rank}, t ${t}: host eps`);
    }
  });
  });
});

test('the DSM loss on data drawn from the Gaussian equals its analytic value', async () => {
  await forPlantedModels(async (rank, p, model) => {
  const count = 4096;
  const x0 = sampleGaussianHost(p, count, 9);
  const z = new HostRandom(10);
  for (const t of [1e-3, 0.01, 0.1, 1]) {
    const a = sde.meanCoeff(t);
    const s = sde.std(t);
    const zs = Float64Array.from({ length: count * n }, () => z.normal());
    const xt = Float64Array.from(x0, (v, i) => a * v + s * zs[i]);
    const eps = await scope(() => noGrad(() => model.forward(tensor(xt, [count, ...SHAPE]), tensor(new Float64Array(count).fill(t), [count])).readF32()));
    const per = Array.from({ length: count }, (_, j) => {
      let e = 0;
      for (let i = 0; i < n; i++) e += (eps[j * n + i] - zs[j * n + i]) ** 2;
      return e / n;
    });
    const mean = per.reduce((acc, v) => acc + v, 0) / count;
    const se = Math.sqrt(per.reduce((acc, v) => acc + (v - mean) ** 2, 0) / (count - 1) / count);
    const want = model.analyticDsmLoss(t);
    assert.ok(Math.abs(mean - want) < 4 * se + 1e-5, `rank ${rank}, t ${t}: DSM ${mean} +- ${se} vs analytic ${want}`);
    // The analytic value is not trivially met: predicting zero gives 1.
    assert.ok(want < 0.9, `rank ${rank}, t ${t}: analytic ${want}`);
  }
  });
});

test('score = -eps / s is the gradient of the marginal log density (finite differences)', async () => {
  await forPlantedModels(async (rank, p, model) => {
  const cov = covarianceOf(p);
  const rng = new HostRandom(23);
  for (const t of [0.003, 0.05, 0.7]) {
    const a = sde.meanCoeff(t);
    const s = sde.std(t);
    const chol = cholesky(marginalCov(cov, t), n);
    const logp = (x: ArrayLike<number>) => {
      const d = Array.from(x, (v, i) => v - a * p.mean[i]);
      const sol = chol.solve(d);
      return -0.5 * d.reduce((acc, v, i) => acc + v * sol[i], 0) - 0.5 * chol.logDet() - (n / 2) * Math.log(2 * Math.PI);
    };
    const x = Float64Array.from({ length: n }, (_, i) => a * p.mean[i] + 0.05 * rng.normal());
    const eps = await scope(() => noGrad(() => model.forward(tensor(x, [1, ...SHAPE]), tensor([t], [1])).readF32()));
    const h = 1e-6;
    for (let i = 0; i < n; i++) {
      const up = Float64Array.from(x);
      const dn = Float64Array.from(x);
      up[i] += h;
      dn[i] -= h;
      const fd = (logp(up) - logp(dn)) / (2 * h);
      const score = -eps[i] / s;
      assert.ok(Math.abs(score - fd) <= 1e-4 * Math.abs(fd) + 1e-3, `rank ${rank}, t ${t}, i ${i}: score ${score} vs finite differences ${fd}`);
    }
  }
  });
});

test('fits: the full fit reproduces the sample covariance; the low-rank fit finds the planted directions', async () => {
  const truth = planted(n);
  const N = 3000;
  const data = Float32Array.from(sampleGaussianHost(truth, N, 4));
  const fit = await fitGaussian(data, N, { chunk: 700 });
  // The sample moments in float64, directly.
  const mean = new Float64Array(n);
  for (let j = 0; j < N; j++) for (let i = 0; i < n; i++) mean[i] += data[j * n + i] / N;
  const cov = new Float64Array(n * n);
  for (let j = 0; j < N; j++) for (let i = 0; i < n; i++) for (let k = 0; k < n; k++) cov[i * n + k] += ((data[j * n + i] - mean[i]) * (data[j * n + k] - mean[k])) / N;
  mean.forEach((v, i) => assert.ok(Math.abs(fit.mean[i] - v) < 1e-12));
  const back = covarianceOf(fit);
  const scale = Math.max(...cov.map(Math.abs));
  cov.forEach((v, i) => assert.ok(Math.abs(back[i] - v) < 1e-5 * scale, `cov ${i}: ${back[i]} vs ${v}`));
  assert.is(fit.values.length, n);
  assert.is(fit.residualVariance, 0);

  // Low rank: two strong directions over an isotropic floor of 3e-4; rank 2 must find them.
  const low = planted(2);
  const lowData = Float32Array.from(sampleGaussianHost(low, N, 5));
  const lfit = await fitGaussian(lowData, N, { rank: 2, chunk: 1000 });
  lfit.values.forEach((v, k) => assert.ok(Math.abs(v / low.values[k] - 1) < 0.1, `eigenvalue ${k}: ${v} vs ${low.values[k]}`));
  for (let k = 0; k < 2; k++) {
    let dot = 0;
    for (let i = 0; i < n; i++) dot += lfit.vectors[k * n + i] * low.vectors[k * n + i];
    assert.ok(Math.abs(Math.abs(dot) - 1) < 0.02, `direction ${k}: |<fit, planted>| = ${Math.abs(dot)}`);
  }
  assert.ok(Math.abs(lfit.residualVariance / low.residualVariance - 1) < 0.1, `residual variance ${lfit.residualVariance}`);
  const ev = explainedVariance(lfit);
  assert.ok(ev[1] > ev[0] && ev[1] < 1);
  const refused = await fitGaussian(data, N, { rank: 0 }).then(() => '', (e: Error) => e.message);
  assert.match(refused, /rank must be an integer/);
});

test('file round trip, dispatch by kind, SGILO prior move, and a residual model that starts at its Gaussian', async () => {
  const p = planted(2);
  const config = gaussianConfig(SHAPE, p, { min: -1, max: 3 }, { block: '0', source: 'test' });
  const bytes = writeGaussianModel(config, p);
  assert.is(priorFileKind(bytes), 'sgilo-score-gaussian');
  const back = readGaussianModel(bytes);
  assert.equal(back.config.shape, SHAPE);
  assert.is(back.config.rank, 2);
  assert.ok(Math.abs(back.params.residualVariance - p.residualVariance) < 1e-15);
  const prior = await loadPrior(bytes, 'g.safetensors');
  assert.is(prior.kind, 'gaussian');
  assert.equal(prior.normalization, { min: -1, max: 3 });

  // A residual ViT whose projector is zero outputs exactly the Gaussian's eps.
  const vit: ScoreViTConfig = { channels: 3, height: 2, width: 1, dim: 8, depth: 1, heads: 2, dimHead: 4, mlp: 16, time: 'vector' };
  const sd = initScoreStateDict(vit, 1);
  for (const name of ['projector.weight', 'projector.bias']) sd.get(name)!.data.fill(0);
  const resCfg = { ...scoreModelConfig(vit, { min: -1, max: 3 }, { block: '0' }), gaussian: { shape: SHAPE, rank: 2, residualVariance: p.residualVariance } };
  const extra = new Map([...gaussianTensors(p, 'gaussian.')].map(([k, t]) => [k, { dtype: 'float32' as const, shape: t.shape, data: t.data as Float32Array }]));
  const residual = await loadPrior(writeScoreModel(resCfg, sd, extra), 'r.safetensors');
  assert.is(residual.kind, 'residual');
  try {
    const x = Float64Array.from({ length: 2 * n }, (_, i) => 0.3 + 0.05 * i);
    const [g, r] = await scope(async () =>
      noGrad(async () => {
        const xt = tensor(x, [2, ...SHAPE]);
        const t = tensor([0.01, 0.2], [2]);
        return [await prior.model.forward(xt, t).readF32(), await residual.model.forward(xt, t).readF32()];
      }),
    );
    g.forEach((v, i) => assert.ok(Math.abs(v - r[i]) < 1e-6, `residual at init ${r[i]} vs Gaussian ${v}`));
    // SGILO's prior move with the Gaussian: delta = ((a - 1) x + b eps(x, 0.01)) (max - min), raw units.
    const fp = new FeaturePrior(prior.model, -1, 3);
    const raw = Float64Array.from(x, (v) => -1 + 4 * v);
    const delta = await scope(() => noGrad(() => fp.delta(tensor(raw.subarray(0, n), [1, ...SHAPE])).readF32()));
    const { a, b } = sde.reverseStepCoefficients(0.01, -1 / sde.N);
    const eps = gaussianEpsHost(p, x.subarray(0, n), 0.01);
    for (let i = 0; i < n; i++) assert.ok(Math.abs(delta[i] - ((a - 1) * x[i] + b * eps[i]) * 4) < 1e-5, `delta ${i}`);
  } finally {
    prior.model.dispose();
    residual.model.dispose();
  }
  // A config whose rank disagrees with the tensors is refused, naming the file and the tensor.
  const broken = saveModel(gaussianTensors(p), { ...config, rank: 3 });
  const message = await loadPrior(broken, 'broken.safetensors').then(() => '', (e: Error) => e.message);
  assert.match(message, /broken\.safetensors/);
  assert.match(message, /eigvecs/);
});

test('setupFromBytes takes a Gaussian file as the prior of the round after its block', async () => {
  const root = (f: string) => new URL(`../${f}`, import.meta.url).pathname;
  const C = 128;
  const shape: [number, number, number] = [C, 4, 4];
  const dim = C * 16;
  // An isotropic Gaussian of the right shape (rank 1 plus the rest): only the wiring is under test here.
  const vectors = new Float64Array(dim);
  vectors[0] = 1;
  const p: GaussianParams = { mean: new Float64Array(dim).fill(0.3), vectors, values: Float64Array.from([0.01]), residualVariance: 1e-3 };
  const bytes = writeGaussianModel(gaussianConfig(shape, p, { min: -1, max: 3 }, { block: '0' }), p);
  const setup = await setupFromBytes({ generator: await readFileBytes(root('models/fashion32/fashion32-stylegan2.pt')), proxy: await readFileBytes(root('models/fashion32/mapping-proxy.safetensors')), scores: [{ name: 'g0', bytes }] });
  try {
    const prior = setup.priors.get(1);
    assert.ok(prior, 'round 1 (features after block 0) has the Gaussian prior');
    const v = Float32Array.from({ length: dim }, (_, i) => -1 + 4 * (0.3 + 0.01 * Math.sin(i)));
    const delta = await scope(() => noGrad(() => prior!.delta(tensor(v, [1, ...shape])).readF32()));
    const { a, b } = sde.reverseStepCoefficients(0.01, -1 / sde.N);
    const x = Float64Array.from(v, (r) => (r + 1) / 4);
    const eps = gaussianEpsHost(p, x, 0.01);
    let worst = 0;
    for (let i = 0; i < dim; i++) worst = Math.max(worst, Math.abs(delta[i] - ((a - 1) * x[i] + b * eps[i]) * 4));
    assert.ok(worst < 1e-5, `prior move vs float64: ${worst}`);
  } finally {
    setup.dispose();
  }
});

test.run();
