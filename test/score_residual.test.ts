// The residual score model (samplers/score/train.ts with a Gaussian base, checkpoint.ts,
// prior_model.ts): a ViT whose output is added to the closed-form Gaussian eps. Asserted: with the
// zero-initialized last layer it starts exactly at the Gaussian (same per-sample DSM losses on the
// same noise); a checkpoint loads as kind "residual" with the base inside, and resuming it continues
// with the same losses as an uninterrupted run; the network receives gradients (its weights move)
// while the base stays fixed.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { HostRandom } from '../engine/reference/host.ts';
import { ScoreViT, type ScoreViTConfig } from '../nets/score_vit.ts';
import { initScoreStateDict, loadScoreModel, scoreModelConfig } from '../samplers/score/checkpoint.ts';
import { GaussianScore, gaussianConfig } from '../samplers/score/gaussian.ts';
import { fitGaussian, sampleGaussianHost } from '../samplers/score/gaussian_fit.ts';
import { loadPrior } from '../samplers/score/prior_model.ts';
import { dsmBins } from '../samplers/score/evaluate.ts';
import { ScoreTrainer } from '../samplers/score/train.ts';

const test = suite('score_residual');
const SHAPE: [number, number, number] = [2, 2, 2];
const n = 8;
const VIT: ScoreViTConfig = { channels: 2, height: 2, width: 2, dim: 16, depth: 1, heads: 2, dimHead: 8, mlp: 32, time: 'vector' };

async function setup() {
  const rng = new HostRandom(41);
  const truth = { mean: Float64Array.from({ length: n }, () => 0.5 + 0.05 * rng.normal()), vectors: Float64Array.from({ length: n * n }, (_, i) => (i % (n + 1) === 0 ? 1 : 0)), values: Float64Array.from({ length: n }, (_, i) => 0.02 * 0.6 ** i), residualVariance: 0 };
  const N = 512;
  const data = Float32Array.from(sampleGaussianHost(truth, N, 1));
  const params = await fitGaussian(data, N);
  const base = new GaussianScore(gaussianConfig(SHAPE, params, { min: 0, max: 1 }), params);
  const config = { ...scoreModelConfig(VIT, { min: 0, max: 1 }, { block: '0' }), gaussian: { shape: SHAPE, rank: n, residualVariance: 0 } };
  const init = () => {
    const sd = initScoreStateDict(VIT, 2);
    for (const name of ['projector.weight', 'projector.bias']) sd.get(name)!.data.fill(0);
    return ScoreViT.fromStateDict(VIT, sd);
  };
  return { base, config, init, data: { data, shape: [N, ...SHAPE] as [number, number, number, number] }, held: Float32Array.from(sampleGaussianHost(truth, 200, 2)) };
}

test('a residual model starts exactly at its Gaussian, learns, and resumes exactly', async () => {
  const { base, config, init, data, held } = await setup();
  const options = { lr: 3e-3, batch: 32, seed: 3, warmup: 0 };
  const a = new ScoreTrainer(init(), config, data, options, base);
  let b: ScoreTrainer | null = null;
  let loadedNet: { dispose(): void } | null = null;
  try {
    const ckpt0 = await a.checkpoint();
    const start = await loadPrior(ckpt0, 'step0');
    assert.is(start.kind, 'residual');
    try {
      const bins = await dsmBins(start.model, base, held, [200, ...SHAPE], { times: [0.003, 0.1], seed: 9 });
      for (const bin of bins) assert.is(bin.model, bin.gaussian, `t ${bin.t}: the residual model at step 0 is the Gaussian`);
    } finally {
      start.vit!.net.dispose();
      start.gaussian!.dispose();
    }
    const before = await a.net.p('projector.weight').readF32();
    for (let s = 0; s < 2; s++) await a.trainStep();
    const ckpt = await a.checkpoint();
    const tail: number[] = [];
    for (let s = 0; s < 3; s++) tail.push(await a.trainStep());
    const after = await a.net.p('projector.weight').readF32();
    assert.ok(after.some((v, i) => v !== before[i]), 'the network learns (its last layer leaves zero)');
    const loaded = await loadScoreModel(ckpt);
    loadedNet = loaded.net;
    assert.ok(loaded.base, 'the checkpoint carries its base');
    b = ScoreTrainer.resume(loaded, data);
    const again: number[] = [];
    for (let s = 0; s < 3; s++) again.push(await b.trainStep());
    assert.equal(again, tail, 'resumed losses equal the uninterrupted run');
    loaded.base!.dispose();
  } finally {
    a.dispose();
    a.net.dispose();
    b?.dispose();
    b?.net.dispose();
    loadedNet?.dispose();
    base.dispose();
  }
});

test('a Gaussian base without config.gaussian (or the reverse) is refused', async () => {
  const { base, config, init, data } = await setup();
  const net = init();
  try {
    const { gaussian: _g, ...plain } = config;
    assert.throws(() => new ScoreTrainer(net, plain, data, {}, base), /config\.gaussian/);
    assert.throws(() => new ScoreTrainer(net, config, data, {}, null), /Gaussian base/);
  } finally {
    net.dispose();
    base.dispose();
  }
});

test.run();
