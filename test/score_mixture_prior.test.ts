// The Gaussian-mixture prior (samplers/score/mixture.ts, mixture_fit.ts): the GPU eps and the host
// formula against a float64 reference that builds each component's full covariance in R^n and
// solves with Cholesky (no eigenbasis, no subspace split); a one-component mixture equal to its
// Gaussian; the score against finite differences of the mixture's log density; EM recovering a
// planted mixture; the file round trip and the loader's dispatch.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { scope, tensor } from '../engine/tensor.ts';
import { noGrad } from '../engine/tape.ts';
import { HostRandom } from '../engine/reference/host.ts';
import { VPSDE } from '../samplers/score/vpsde.ts';
import { GaussianScore, gaussianConfig, gaussianEpsHost, type GaussianParams } from '../samplers/score/gaussian.ts';
import { MIXTURE_MODEL_KIND, MixtureScore, mixtureEpsHost, readMixtureModel, writeMixtureModel, type MixtureConfig, type MixtureParams } from '../samplers/score/mixture.ts';
import { fitMixture } from '../samplers/score/mixture_fit.ts';
import { loadPrior } from '../samplers/score/prior_model.ts';
import { cholesky, fromSpectrum, randomOrthogonal } from './spd_helpers.ts';

const test = suite('score_mixture_prior');
const sde = new VPSDE();
const SHAPE: [number, number, number] = [3, 2, 1];
const n = 6;
const P = 3;
const K = 3;

function plantedBase(rank: number, rng: HostRandom): GaussianParams {
  const q = randomOrthogonal(n, rng);
  const values = [0.04, 0.01, 2e-3, 5e-4, 1e-4, 1e-6].slice(0, rank);
  return { mean: Float64Array.from({ length: n }, () => 0.5 + 0.1 * rng.normal()), vectors: q.slice(0, rank * n), values: Float64Array.from(values), residualVariance: rank < n ? 3e-4 : 0 };
}

function plantedMixture(rng: HostRandom): MixtureParams {
  const vectors = new Float64Array(K * P * P);
  const values = new Float64Array(K * P);
  for (let k = 0; k < K; k++) {
    vectors.set(randomOrthogonal(P, rng), k * P * P);
    values.set([0.02, 4e-3, 5e-4].map((v) => v * (1 + 0.5 * k)), k * P);
  }
  return { weights: Float64Array.from([0.5, 0.3, 0.2]), means: Float64Array.from({ length: K * P }, () => 0.15 * rng.normal()), vectors, values };
}

function config(base: GaussianParams): MixtureConfig {
  return { ...gaussianConfig(SHAPE, base, null), kind: MIXTURE_MODEL_KIND, components: K, subspace: P };
}

/** Component k in R^n: mean mu + V_P^T m_k, covariance V_P^T S_k V_P + the Gaussian's other directions. */
function componentInR(base: GaussianParams, m: MixtureParams, k: number): { mean: Float64Array; cov: Float64Array } {
  const r = base.values.length;
  const row = (j: number) => base.vectors.subarray(j * n, j * n + n);
  const mean = Float64Array.from(base.mean);
  for (let j = 0; j < P; j++) for (let i = 0; i < n; i++) mean[i] += m.means[k * P + j] * row(j)[i];
  const sk = fromSpectrum(m.vectors.slice(k * P * P, (k + 1) * P * P), Array.from(m.values.subarray(k * P, k * P + P)), P);
  const cov = new Float64Array(n * n);
  for (let i = 0; i < n; i++) cov[i * n + i] = base.residualVariance;
  for (let j = 0; j < r; j++) for (let i = 0; i < n; i++) for (let l = 0; l < n; l++) cov[i * n + l] -= base.residualVariance * row(j)[i] * row(j)[l];
  for (let j = P; j < r; j++) for (let i = 0; i < n; i++) for (let l = 0; l < n; l++) cov[i * n + l] += base.values[j] * row(j)[i] * row(j)[l];
  for (let p = 0; p < P; p++) for (let q = 0; q < P; q++) for (let i = 0; i < n; i++) for (let l = 0; l < n; l++) cov[i * n + l] += sk[p * P + q] * row(p)[i] * row(q)[l];
  return { mean, cov };
}

/** eps* and log p_t(x) of the mixture in R^n, by Cholesky of a^2 C_k + s^2 I per component. */
function reference(base: GaussianParams, m: MixtureParams, x: ArrayLike<number>, t: number): { eps: Float64Array; logp: number } {
  const a = sde.meanCoeff(t);
  const s = sde.std(t);
  const logs: number[] = [];
  const eps: Float64Array[] = [];
  for (let k = 0; k < K; k++) {
    const { mean, cov } = componentInR(base, m, k);
    const chol = cholesky(Float64Array.from(cov, (v, i) => a * a * v + (i % (n + 1) === 0 ? s * s : 0)), n);
    const d = Array.from(x, (v, i) => v - a * mean[i]);
    const sol = chol.solve(d);
    logs.push(Math.log(m.weights[k]) - 0.5 * d.reduce((acc, v, i) => acc + v * sol[i], 0) - 0.5 * chol.logDet() - (n / 2) * Math.log(2 * Math.PI));
    eps.push(sol.map((v) => s * v));
  }
  const top = Math.max(...logs);
  const w = logs.map((l) => Math.exp(l - top));
  const z = w.reduce((u, v) => u + v, 0);
  const out = new Float64Array(n);
  for (let k = 0; k < K; k++) for (let i = 0; i < n; i++) out[i] += (w[k] / z) * eps[k][i];
  return { eps: out, logp: top + Math.log(z) };
}

test('eps: GPU and host formula against the Cholesky reference in R^n (full and low rank, small to large t)', async () => {
  for (const rank of [n, 4]) {
    const rng = new HostRandom(rank);
    const base = plantedBase(rank, rng);
    const m = plantedMixture(rng);
    const model = new MixtureScore(config(base), base, m);
    try {
      for (const t of [1e-3, 0.01, 0.1, 0.5, 1]) {
        const a = sde.meanCoeff(t);
        const s = sde.std(t);
        const B = 4;
        // Points near each component (and one between them), so the responsibilities vary.
        const xs = Array.from({ length: B }, (_, b) => {
          const c = componentInR(base, m, b % K).mean;
          return Float64Array.from(c, (v) => a * v + s * rng.normal() + (b === 3 ? 0.05 * rng.normal() : 0));
        });
        const got = await scope(() => noGrad(() => model.forward(tensor(Float32Array.from(xs.flatMap((x) => [...x])), [B, ...SHAPE]), tensor(new Float32Array(B).fill(t), [B])).readF32()));
        for (let b = 0; b < B; b++) {
          const want = reference(base, m, xs[b], t).eps;
          const host = mixtureEpsHost(base, m, P, xs[b], t, sde);
          const scale = Math.max(...want.map(Math.abs));
          want.forEach((v, i) => {
            assert.ok(Math.abs(host[i] - v) <= 1e-9 * (1 + scale), `rank ${rank} t ${t} sample ${b} [${i}]: host ${host[i]} vs ${v}`);
            assert.ok(Math.abs(got[b * n + i] - v) <= 2e-3 * scale + 1e-5, `rank ${rank} t ${t} sample ${b} [${i}]: GPU ${got[b * n + i]} vs ${v}`);
          });
        }
      }
    } finally {
      model.dispose();
    }
  }
});

test('a one-component mixture that is the Gaussian gives the Gaussian eps', async () => {
  const rng = new HostRandom(9);
  const base = plantedBase(4, rng);
  const one: MixtureParams = { weights: Float64Array.of(1), means: new Float64Array(P), vectors: Float64Array.from({ length: P * P }, (_, i) => (i % (P + 1) === 0 ? 1 : 0)), values: base.values.slice(0, P) };
  const model = new MixtureScore({ ...config(base), components: 1 }, base, one);
  try {
    const x = Float64Array.from(base.mean, (v) => 0.9 * v + 0.1 * rng.normal());
    for (const t of [0.002, 0.3]) {
      const got = await scope(() => noGrad(() => model.forward(tensor(x, [1, ...SHAPE]), tensor([t], [1])).readF32()));
      const want = gaussianEpsHost(base, x, t, sde);
      want.forEach((v, i) => assert.ok(Math.abs(got[i] - v) < 2e-3 * Math.max(...want.map(Math.abs)) + 1e-6, `t ${t} [${i}]: ${got[i]} vs ${v}`));
    }
  } finally {
    model.dispose();
  }
});

test('score = -eps / s is the gradient of the mixture log density (finite differences of the reference)', () => {
  const rng = new HostRandom(31);
  const base = plantedBase(n, rng);
  const m = plantedMixture(rng);
  for (const t of [0.003, 0.05, 0.7]) {
    const s = sde.std(t);
    const x = Float64Array.from(componentInR(base, m, 1).mean, (v) => sde.meanCoeff(t) * v + 0.05 * rng.normal());
    const eps = mixtureEpsHost(base, m, P, x, t, sde);
    for (let i = 0; i < n; i++) {
      const h = 1e-6;
      const up = Float64Array.from(x);
      const down = Float64Array.from(x);
      up[i] += h;
      down[i] -= h;
      const grad = (reference(base, m, up, t).logp - reference(base, m, down, t).logp) / (2 * h);
      assert.ok(Math.abs(-eps[i] / s - grad) < 1e-5 * (1 + Math.abs(grad)), `t ${t} [${i}]: -eps/s ${-eps[i] / s} vs d log p ${grad}`);
    }
  }
});

test('EM recovers a planted mixture; the file round-trips and loads as kind "mixture"', async () => {
  const rng = new HostRandom(5);
  const base = plantedBase(n, rng);
  const planted = plantedMixture(rng);
  // Separate the planted means so the components are identifiable from 3000 draws.
  planted.means.set([0.3, 0, 0, -0.3, 0.1, 0, 0, -0.3, 0.05]);
  const N = 3000;
  const data = new Float32Array(N * n);
  const label = new Int32Array(N);
  for (let j = 0; j < N; j++) {
    const u = rng.uniform();
    const k = u < 0.5 ? 0 : u < 0.8 ? 1 : 2;
    label[j] = k;
    const { mean, cov } = componentInR(base, planted, k);
    // x = mean + L z with L the Cholesky factor of the component covariance.
    const l = choleskyFactor(cov);
    const z = Array.from({ length: n }, () => rng.normal());
    for (let i = 0; i < n; i++) {
      let v = mean[i];
      for (let q = 0; q <= i; q++) v += l[i * n + q] * z[q];
      data[j * n + i] = v;
    }
  }
  const fit = await fitMixture(data, N, base, { components: K, subspace: P, iterations: 30, seed: 1 });
  assert.ok(fit.logLikelihood.at(-1)! >= fit.logLikelihood[0] - 1e-6, `EM log-likelihood must not fall: ${fit.logLikelihood[0]} -> ${fit.logLikelihood.at(-1)}`);
  // Match each planted component to the nearest fitted mean.
  for (let k = 0; k < K; k++) {
    const want = planted.means.subarray(k * P, k * P + P);
    let best = Infinity;
    let at = -1;
    for (let f = 0; f < K; f++) {
      const d = Math.hypot(...Array.from(want, (v, i) => v - fit.mixture.means[f * P + i]));
      if (d < best) (best = d), (at = f);
    }
    assert.ok(best < 0.03, `component ${k}: nearest fitted mean is ${best} away`);
    assert.ok(Math.abs(fit.mixture.weights[at] - planted.weights[k]) < 0.04, `component ${k}: weight ${fit.mixture.weights[at]} vs ${planted.weights[k]}`);
  }
  const bytes = writeMixtureModel(config(base), base, fit.mixture);
  const back = readMixtureModel(bytes);
  assert.is(back.config.components, K);
  back.mixture.means.forEach((v, i) => assert.ok(Math.abs(v - fit.mixture.means[i]) < 1e-6));
  const prior = await loadPrior(bytes, 'planted');
  try {
    assert.is(prior.kind, 'mixture');
    const x = Float64Array.from(data.subarray(0, n));
    const got = await scope(() => noGrad(() => prior.model.forward(tensor(x, [1, ...SHAPE]), tensor([0.05], [1])).readF32()));
    const want = mixtureEpsHost(back.base, back.mixture, P, x, 0.05, sde);
    want.forEach((v, i) => assert.ok(Math.abs(got[i] - v) < 2e-3 * Math.max(...want.map(Math.abs)) + 1e-6, `loaded model [${i}]: ${got[i]} vs ${v}`));
    // Negative control: the Gaussian alone is a different predictor on the same point.
    const gauss = new GaussianScore(gaussianConfig(SHAPE, base, null), base);
    const g = await scope(() => noGrad(() => gauss.forward(tensor(x, [1, ...SHAPE]), tensor([0.05], [1])).readF32()));
    gauss.dispose();
    assert.ok(Math.max(...Array.from(g, (v, i) => Math.abs(v - want[i]))) > 1e-2 * Math.max(...want.map(Math.abs)), 'the mixture must differ from its Gaussian');
  } finally {
    prior.model.dispose();
  }
  assert.throws(() => readMixtureModel(writeMixtureModel({ ...config(base), subspace: n + 1 }, base, fit.mixture)), /subspace/);
});

function choleskyFactor(a: Float64Array): Float64Array {
  const l = new Float64Array(n * n);
  for (let i = 0; i < n; i++) {
    for (let j = 0; j <= i; j++) {
      let s = a[i * n + j];
      for (let k = 0; k < j; k++) s -= l[i * n + k] * l[j * n + k];
      l[i * n + j] = i === j ? Math.sqrt(Math.max(s, 0)) : s / l[j * n + j];
    }
  }
  return l;
}

test.run();
