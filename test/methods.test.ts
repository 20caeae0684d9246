// CSGM, ILO, SGILO and SGLD on a tiny random generator: every method's gradient path runs and
// lowers the loss, runs are deterministic for a seed, divergence is reported with its step and
// variable, ILO's l1 balls hold after every round (and change nothing when infinite), and the
// reconstruct CLI fails clearly on bad input.
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { scope, tensor, type Tensor } from '../engine/tensor.ts';
import { affine } from '../engine/ops/elementwise.ts';
import { engine } from '../engine/engine.ts';
import { HostRandom } from '../engine/reference/host.ts';
import { StyleGAN2, parameterShapes, type StateDict } from '../nets/stylegan2.ts';
import { ScoreViT } from '../nets/score_vit.ts';
import { MappingProxy, computeProxyStats } from '../samplers/inverse/mapping_proxy.ts';
import { FeaturePrior, hotStepCoefficients } from '../samplers/inverse/prior.ts';
import { initScoreStateDict } from '../samplers/score/checkpoint.ts';
import { DivergenceError, iloLearningRate, noiseStdAt, runMethod, type MethodConfig, type Problem, type RoundInfo } from '../samplers/inverse/intermediate_layer.ts';
import { makeOperator, measure } from '../samplers/inverse/operators/index.ts';
import { methodConfig } from '../samplers/inverse/fashion.ts';
import { parseL1Radius } from '../cli/l1_options.ts';
import { main } from '../cli/main.ts';

const test = suite('methods');
const CONFIG = { size: 16, styleDim: 8, nMlp: 2, lrMlp: 0.01, channels: { 4: 8, 8: 6, 16: 4 } };

function randomGenerator(seed: number): StyleGAN2 {
  const rng = new HostRandom(seed);
  const sd: StateDict = new Map();
  for (const [name, shape] of parameterShapes(CONFIG)) {
    const n = shape.reduce((a, b) => a * b, 1);
    const bias = name.endsWith('modulation.bias') ? 1 : 0; // the stored affine bias includes +1
    sd.set(name, { dtype: 'float32', shape, data: Float32Array.from({ length: n }, () => bias + (name.includes('bias') ? 0.1 : 1) * rng.normal()) });
  }
  return StyleGAN2.fromStateDict(CONFIG, sd, null);
}

const g = randomGenerator(5);
const proxy = new MappingProxy(await computeProxyStats(g, 512, 1, 256));
const op = makeOperator('inpaint-random:0.3', [3, 16, 16], { seed: 3 }).operator;
// Measurements of two images the generator can make (random W+ through the proxy).
const truth = scope(() => g.synthesis({ wplus: proxy.apply(tensor(Float32Array.from({ length: 2 * 6 * 8 }, (_, i) => Math.sin(i)), [2, 6, 8])) })).keep();
const y = measure(op, truth).keep();
const net = ScoreViT.fromStateDict({ channels: 8, height: 4, width: 4, dim: 16, depth: 1, heads: 2, dimHead: 8, mlp: 32 }, initScoreStateDict({ channels: 8, height: 4, width: 4, dim: 16, depth: 1, heads: 2, dimHead: 8, mlp: 32 }, 9));
const problem: Problem = { generator: g, proxy, forward: (x) => op.apply(x), y, priors: new Map([[1, new FeaturePrior(net, -3, 3)]]) };

for (const method of ['csgm', 'ilo', 'sgilo', 'sgld'] as const) {
  test(`${method}: runs every round, lowers the loss, and is deterministic for a seed`, async () => {
    const config: MethodConfig = { ...methodConfig(method, 12, method === 'csgm' ? [] : [1, 2]) };
    if (method === 'sgld') Object.assign(config, { eta: 1e-4, sigma: 0.1, beta: 1e6 });
    const a = await runMethod(problem, config, { seed: 11 });
    assert.is(a.losses.length, method === 'csgm' ? 1 : 3);
    for (const l of a.losses) assert.ok(l.every(Number.isFinite));
    const first = a.losses[0][0];
    const last = a.losses[0][a.losses[0].length - 1];
    assert.ok(last < first, `${method}: round-0 loss ${first} -> ${last}`);
    const b = await runMethod(problem, config, { seed: 11 });
    assert.equal(Array.from(b.images), Array.from(a.images), 'same seed, same result');
    const c = await runMethod(problem, config, { seed: 12 });
    assert.not.equal(Array.from(c.images), Array.from(a.images), 'another seed, another result');
  });
}

/** Per-row l1 distances between two snapshots [rows, ...]. */
function rowL1(a: Float32Array, b: Float32Array, rows: number): { dist: number[]; scale: number[] } {
  const n = a.length / rows;
  const dist: number[] = [];
  const scale: number[] = [];
  for (let r = 0; r < rows; r++) {
    let d = 0;
    let s = 0;
    for (let i = r * n; i < (r + 1) * n; i++) {
      d += Math.abs(a[i] - b[i]);
      s += Math.abs(b[i]);
    }
    dist.push(d);
    scale.push(s);
  }
  return { dist, scale };
}

test('ILO l1 balls: each variable ends every round within its radius of where the round started', async () => {
  // Radii per round (round 0 = CSGM; its features radius is unused), small enough to bind.
  const l1 = { latent: [3, 2, 1], noise: 1.5, features: [0, 2, 0.5] };
  const config: MethodConfig = { ...methodConfig('ilo', 12, [1, 2]), l1 };
  const starts = new Map<string, Float32Array>();
  const checked: string[] = [];
  let binding = 0;
  const onRound = async (r: RoundInfo) => {
    const vars: [string, Float32Array, number][] = [['latent', await r.z.readF32(), l1.latent[r.round]]];
    for (const i of r.noiseIdx) vars.push([`noise ${i}`, await r.noise[i].readF32(), l1.noise]);
    if (r.features) vars.push(['features', await r.features.readF32(), l1.features[r.round]]);
    for (const [name, v, radius] of vars) {
      if (r.when === 'start') {
        starts.set(name, v);
        continue;
      }
      const { dist, scale } = rowL1(v, starts.get(name)!, 2);
      dist.forEach((d, row) => {
        assert.ok(d <= radius * (1 + 1e-5) + 1e-6 * scale[row], `round ${r.round} ${name} row ${row}: l1 distance ${d} > radius ${radius}`);
        if (d >= radius * 0.99) binding++;
      });
      checked.push(`${r.round}:${name}`);
    }
  };
  const before = engine().memory().bytesInUse;
  const run = await runMethod(problem, config, { seed: 11, onRound });
  assert.is(engine().memory().bytesInUse, before, 'the balls\' centers and projections are freed');
  for (const l of run.losses) assert.ok(l.every(Number.isFinite));
  assert.ok(checked.includes('0:latent') && checked.includes('1:features') && checked.includes('2:features') && checked.includes('2:noise 3'), checked.join(' '));
  assert.ok(binding >= 10, `the balls should bind (${binding} variable rows on the boundary)`);
  // Without balls, the same run moves further than the radii.
  const free = await runMethod(problem, methodConfig('ilo', 12, [1, 2]), { seed: 11 });
  assert.not.equal(Array.from(free.images), Array.from(run.images));
});

test('ILO l1 balls: infinite or huge radii change nothing; bad radii fail clearly', async () => {
  const base = methodConfig('ilo', 6, [1]);
  const plain = await runMethod(problem, base, { seed: 4 });
  const inf = await runMethod(problem, { ...base, l1: { latent: Infinity, noise: [Infinity, Infinity], features: Infinity } }, { seed: 4 });
  assert.equal(Array.from(inf.images), Array.from(plain.images), 'r = inf');
  const huge = await runMethod(problem, { ...base, l1: { latent: 1e30, noise: 1e30, features: 1e30 } }, { seed: 4 });
  assert.equal(Array.from(huge.images), Array.from(plain.images), 'r = 1e30 (projection runs, every row inside)');
  const rejects = async (l1: MethodConfig['l1'], pattern: RegExp) => {
    let err: unknown;
    try {
      await runMethod(problem, { ...base, l1 }, { seed: 4 });
    } catch (e) {
      err = e;
    }
    assert.ok(err instanceof RangeError, String(err));
    assert.match((err as Error).message, pattern);
  };
  await rejects({ features: -1 }, /l1\.features: radii must be numbers >= 0/);
  await rejects({ latent: [1] }, /l1\.latent: 1 radii for 2 rounds/);
  await rejects({ noise: [1, NaN] }, /l1\.noise: radii must be numbers >= 0 .*NaN/);
  assert.equal(parseL1Radius('--l1-features', '5'), 5);
  assert.equal(parseL1Radius('--l1-features', 'inf,2.5,1e3'), [Infinity, 2.5, 1000]);
  assert.throws(() => parseL1Radius('--l1-latent', '1,-2'), /--l1-latent: radii must be numbers >= 0 or "inf", got "-2"/);
  assert.throws(() => parseL1Radius('--l1-noise', '1,,2'), /got "" in "1,,2"/);
});

test('divergence is reported with the step and the variable', async () => {
  const config: MethodConfig = { method: 'sgld', blocks: [], steps: 50, lr: 0, eta: 1e30, sigma: 1e-3, beta: 1 };
  let err: unknown;
  try {
    await runMethod(problem, config, { seed: 1 });
  } catch (e) {
    err = e;
  }
  assert.ok(err instanceof DivergenceError, String(err));
  const d = err as DivergenceError;
  assert.ok(d.step < 50 && d.round === 0);
  assert.match(d.message, /divergence at round 0, step \d+: (the latent z|noise map \d|the measurement loss) is not finite/);
});

test('the SGILO hot step constants and the ILO schedule', () => {
  const { a, b } = hotStepCoefficients(0.01);
  assert.ok(Math.abs(a - 1.0001495) < 1e-9, String(a));
  assert.ok(Math.abs(b - 0.0066976) < 1e-7, String(b));
  assert.is(iloLearningRate(0, 0.1), 0);
  assert.ok(Math.abs(iloLearningRate(0.05, 0.1) - 0.1) < 1e-12);
  assert.ok(Math.abs(iloLearningRate(0.25, 0.1) - 0.1) < 1e-12);
  assert.ok(iloLearningRate(0.9, 0.1) < 0.05);
  assert.throws(() => methodConfig('nope' as never, 1, []), /unknown method "nope"/);
});

async function cli(args: string[]): Promise<{ code: number; err: string }> {
  const errs: string[] = [];
  const log = console.error;
  console.error = (s: string) => errs.push(String(s));
  try {
    // A fresh output folder each time: the default out/reconstruct may hold a developer's run.
    return { code: await main([...args, '--out', join(mkdtempSync(join(tmpdir(), 'sgilo-methods-')), 'out')]), err: errs.join('\n') };
  } finally {
    console.error = log;
  }
}

test('reconstruct: unknown operators, wrong sizes and unreadable files fail clearly', async () => {
  const img = new URL('../models/fashion32/test-images/test-000.png', import.meta.url).pathname;
  let r = await cli(['reconstruct', '--image', img, '--operator', 'blur:3']);
  assert.is(r.code, 1);
  assert.match(r.err, /--operator: unknown operator "blur" in spec "blur:3"; valid operators: .*inpaint-random/);
  r = await cli(['reconstruct', '--image', '/nonexistent.png', '--operator', 'denoise:0.1']);
  assert.is(r.code, 1);
  assert.match(r.err, /nonexistent\.png/);
  // Any size is accepted now (--fit); a file that is not a PNG is named with what was expected.
  r = await cli(['reconstruct', '--image', new URL('../package.json', import.meta.url).pathname, '--operator', 'denoise:0.1']);
  assert.is(r.code, 1);
  assert.match(r.err, /package\.json: not a PNG file \(expected the 8-byte PNG signature/);
  r = await cli(['reconstruct', '--image', img, '--operator', 'denoise:0.1', '--method', 'magic']);
  assert.is(r.code, 1);
  assert.match(r.err, /unknown method "magic"/);
  r = await cli(['reconstruct', '--image', img, '--operator', 'denoise:0.1', '--bogus', '1']);
  assert.is(r.code, 1);
  assert.match(r.err, /unknown option --bogus/);
  r = await cli(['reconstruct', '--image', img, '--operator', 'denoise:0.1', '--method', 'ilo', '--l1-features', 'big']);
  assert.is(r.code, 1);
  assert.match(r.err, /--l1-features: radii must be numbers >= 0 or "inf", got "big"/);
  r = await cli(['reconstruct', '--image', img, '--operator', 'denoise:0.1', '--method', 'ilo', '--blocks', '1,2', '--l1-latent', '1,2']);
  assert.is(r.code, 1);
  assert.match(r.err, /l1\.latent: 2 radii for 3 rounds/);
});

test.after(() => {
  truth.dispose();
  y.dispose();
  proxy.dispose();
  net.dispose();
  op.dispose?.();
  g.dispose();
});

test.run();

/** eps(x, t) = c (x - m): the noise predictor of a Gaussian centred at m (a prior the host can follow). */
const linearEps = (c: number, m: number) => ({ forward: (x: Tensor) => affine(x, c, -c * m), dispose() {} });

test("SGILO's round 0 moves the W+ rows by the latent prior, through MappingProxy and back", async () => {
  const [min, max, T] = [-2, 3, 4];
  const prior = new FeaturePrior(linearEps(0.5, 0.2), min, max);
  const { a, b } = hotStepCoefficients(0.01);
  const [mean, std] = [await proxy.mean.readF32(), await proxy.std.readF32()];
  const S = mean.length;
  const lrelu = (u: number, s: number) => (u >= 0 ? u : s * u);
  // The host's prior move in raw units: ((a - 1) x - b eps(x)) (max - min), x = (w - min) / (max - min).
  const move = (w: number) => {
    const x = (w - min) / (max - min);
    return ((a - 1) * x - b * 0.5 * (x - 0.2)) * (max - min);
  };
  for (const priorSteps of [1, 2]) {
    const seen: Record<string, Float32Array> = {};
    // One step whose learning rate is ~0 (the schedule's end): only the prior moves the latent.
    const config: MethodConfig = { method: 'sgilo', blocks: [], steps: 1, lr: 0.05, temperature: T, noiseScale: 0, priorSteps };
    await runMethod({ ...problem, priors: new Map([[0, prior]]) }, config, { seed: 4, onRound: async (r) => void (seen[r.when] = await r.z.readF32()) });
    let worst = 0;
    for (let i = 0; i < seen.start.length; i++) {
      let w = lrelu(std[i % S] * seen.start[i] + mean[i % S], 0.2);
      for (let k = 0; k < priorSteps; k++) w += T * move(w);
      const z = (lrelu(w, 5) - mean[i % S]) / std[i % S];
      worst = Math.max(worst, Math.abs(z - seen.end[i]) / (1 + Math.abs(z)));
    }
    assert.ok(worst < 1e-4, `priorSteps ${priorSteps}: latent off the host's move by ${worst}`);
    assert.ok(Math.max(...seen.start.map((v, i) => Math.abs(v - seen.end[i]))) > 1e-3, 'the prior moved the latent');
  }
});

test("SGILO's noise: constant, or annealed with the learning rate to zero at the round's end", () => {
  const c = { lr: 0.1, noiseScale: 0.02 };
  assert.is(noiseStdAt(0.9, { ...c, noiseSchedule: 'constant' }), 0.02);
  assert.is(noiseStdAt(0.9, c), 0.02, 'constant by default (the authors code)');
  assert.ok(Math.abs(noiseStdAt(0.25, { ...c, noiseSchedule: 'annealed' }) - 0.02) < 1e-12, 'full noise at the full learning rate');
  // t = 0.625: the cosine ramp is at 0.5, so the noise is sqrt(0.5) of its scale.
  assert.ok(Math.abs(noiseStdAt(0.625, { ...c, noiseSchedule: 'annealed' }) - 0.02 * Math.SQRT1_2) < 1e-12);
  assert.is(noiseStdAt(1, { ...c, noiseSchedule: 'annealed' }), 0, 'the round ends noise-free');
});
