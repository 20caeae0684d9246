// eval-score and fit-gaussian (samplers/score/evaluate.ts, cli/eval_score.ts): the paired DSM bins
// (a model against itself differs by exactly 0; a wrong model loses by more than its standard
// error), the set distances (MMD^2 near 0 for the same distribution, clearly positive for a shifted
// one), and the two commands end to end on a small activations file (--json's `bins` field, the
// model-beside-Gaussian table, unknown options refused, normalization mismatch refused).
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Tensor } from '../engine/tensor.ts';
import { affine } from '../engine/ops/elementwise.ts';
import { readFileBytes, writeFileBytes } from '../engine/io/files.ts';
import { HostRandom } from '../engine/reference/host.ts';
import { dsmBins, medianBandwidth, setDistance } from '../samplers/score/evaluate.ts';
import { GaussianScore, gaussianConfig, readGaussianModel } from '../samplers/score/gaussian.ts';
import { sampleGaussianHost } from '../samplers/score/gaussian_fit.ts';
import { writeActivationsFile } from '../samplers/score/data.ts';
import { initScoreStateDict, scoreModelConfig, writeScoreModel } from '../samplers/score/checkpoint.ts';
import { main } from '../cli/main.ts';
import type { ScoreViTConfig } from '../nets/score_vit.ts';

const test = suite('score_eval');
const SHAPE: [number, number, number] = [2, 2, 2];
const n = 8;

function planted() {
  const rng = new HostRandom(31);
  const vectors = new Float64Array(n * n);
  for (let i = 0; i < n; i++) vectors[i * n + i] = 1;
  return { mean: Float64Array.from({ length: n }, () => 0.5 + 0.05 * rng.normal()), vectors, values: Float64Array.from({ length: n }, (_, i) => 0.01 * 0.5 ** i), residualVariance: 0 };
}

test('dsmBins: the same model differs by exactly 0; a wrong model loses by many standard errors', async () => {
  const p = planted();
  const g = new GaussianScore(gaussianConfig(SHAPE, p, null), p);
  const wrong = { forward: (x: Tensor, t: Tensor) => affine(g.forward(x, t), 1.3) };
  try {
    const N = 300;
    const x0 = Float32Array.from(sampleGaussianHost(p, N, 2));
    const same = await dsmBins(g, g, x0, [N, ...SHAPE], { times: [0.01, 0.3], seed: 5, batch: 128 });
    for (const b of same) {
      assert.is(b.model, b.gaussian);
      assert.is(b.se, 0);
      assert.ok(Math.abs(b.gaussian - g.analyticDsmLoss(b.t)) < 0.1 * g.analyticDsmLoss(b.t) + 0.01, `t ${b.t}: ${b.gaussian} vs analytic ${g.analyticDsmLoss(b.t)}`);
    }
    const bad = await dsmBins(wrong, g, x0, [N, ...SHAPE], { times: [0.01, 0.3], seed: 5 });
    for (const b of bad) assert.ok(b.model - b.gaussian > 5 * b.se && b.se > 0, `t ${b.t}: ${b.model} - ${b.gaussian} vs se ${b.se}`);
    // The seed (with the batch) fixes the noise: the same call again gives the same numbers.
    const again = await dsmBins(g, g, x0, [N, ...SHAPE], { times: [0.01, 0.3], seed: 5, batch: 128 });
    again.forEach((b, i) => assert.ok(Math.abs(b.model - same[i].model) < 1e-6));
  } finally {
    g.dispose();
  }
});

test('setDistance: MMD^2 ~ 0 within a distribution, positive against a shifted one; NN distance orders them', () => {
  const p = planted();
  const ref = sampleGaussianHost(p, 300, 1);
  const x = sampleGaussianHost(p, 100, 2);
  const shifted = Float64Array.from(sampleGaussianHost(p, 100, 3), (v) => v + 0.1);
  const h = medianBandwidth(ref, n);
  const near = setDistance(x, ref, n, h);
  const far = setDistance(shifted, ref, n, h);
  assert.ok(Math.abs(near.mmd2) < 0.02, `same distribution: ${near.mmd2}`);
  assert.ok(far.mmd2 > 10 * Math.abs(near.mmd2) && far.mmd2 > 0.05, `shifted: ${far.mmd2} vs ${near.mmd2}`);
  assert.ok(far.nn > near.nn);
});

test('fit-gaussian and eval-score end to end: JSON bins, the table, refusals', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'sgilo-eval-'));
  const log = console.log;
  const lines: string[] = [];
  try {
    const p = planted();
    const raw = (count: number, seed: number) => Float32Array.from(sampleGaussianHost(p, count, seed), (v) => 4 * v - 1); // raw units: min -1, span 4
    await writeFileBytes(join(dir, 'train.safetensors'), writeActivationsFile({ data: raw(400, 7), shape: [400, ...SHAPE], meta: { block: '0' } }));
    await writeFileBytes(join(dir, 'held.safetensors'), writeActivationsFile({ data: raw(80, 8), shape: [80, ...SHAPE], meta: { block: '0' } }));
    const vit: ScoreViTConfig = { channels: 2, height: 2, width: 2, dim: 8, depth: 1, heads: 2, dimHead: 4, mlp: 16, time: 'vector' };
    await writeFileBytes(join(dir, 'vit.safetensors'), writeScoreModel(scoreModelConfig(vit, { min: -1, max: 3 }, { block: '0' }), initScoreStateDict(vit, 3)));
    console.log = (s: string) => lines.push(String(s));
    assert.is(await main(['fit-gaussian', join(dir, 'train.safetensors'), '--like', join(dir, 'vit.safetensors'), '--out', join(dir, 'gaussian-block0.safetensors')]), 0);
    const fitted = readGaussianModel(await readFileBytes(join(dir, 'gaussian-block0.safetensors')));
    assert.equal(fitted.config.normalization, { min: -1, max: 3 });
    assert.is(fitted.config.rank, n);
    lines.length = 0;
    // The baseline is found beside the model (gaussian-block0.safetensors).
    assert.is(await main(['eval-score', join(dir, 'vit.safetensors'), join(dir, 'held.safetensors'), '--json', '--samples', '4', '--steps', '20', '--times', '0.01,0.1', '--out', join(dir, 'ev')]), 0);
    const report = JSON.parse(lines[lines.length - 1]);
    assert.is(report.bins.length, 2);
    for (const b of report.bins) for (const k of ['t', 'model', 'gaussian', 'se']) assert.type(b[k], 'number');
    // An untrained network is far worse than the fitted Gaussian on Gaussian data.
    for (const b of report.bins) assert.ok(b.model > b.gaussian + 3 * b.se, JSON.stringify(b));
    assert.is(report.samples.length, 5);
    lines.length = 0;
    assert.is(await main(['eval-score', join(dir, 'gaussian-block0.safetensors'), join(dir, 'held.safetensors'), '--samples', '0', '--times', '0.03', '--out', join(dir, 'ev2')]), 0);
    assert.match(lines.join('\n'), /\| 0\.03 \| [0-9.]+ \| [0-9.]+ \| 0\.00+ \(0\.0\) \| 1\.00 \|/);
    const errors: string[] = [];
    const err = console.error;
    console.error = (s: string) => errors.push(String(s));
    try {
      assert.is(await main(['eval-score', join(dir, 'vit.safetensors'), join(dir, 'held.safetensors'), '--bogus', '1']), 1);
      assert.match(errors.join('\n'), /unknown option --bogus/);
      await writeFileBytes(join(dir, 'other.safetensors'), writeScoreModel(scoreModelConfig(vit, { min: -2, max: 3 }, { block: '0' }), initScoreStateDict(vit, 3)));
      assert.is(await main(['eval-score', join(dir, 'other.safetensors'), join(dir, 'held.safetensors'), '--gaussian', join(dir, 'gaussian-block0.safetensors'), '--samples', '0']), 1);
      assert.match(errors.join('\n'), /normalization/);
    } finally {
      console.error = err;
    }
  } finally {
    console.log = log;
    rmSync(dir, { recursive: true, force: true });
  }
});

test.run();
