// The score-prior commands through the declared CLI: train-score's Gaussian base (--gaussian fit by
// default, none, or a fit-gaussian file) and vector time; sample with a Gaussian prior; fit-gaussian
// and eval-score outputs (--force rules, NaN features an error naming the file, --json bins);
// encode-fashion's splits; and the refusals each declaration adds. Tiny [2, 2, 2] features keep it cheap.

import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { loadPrior } from '../samplers/score/prior_model.ts';
import { readActivationsFile, readCodesFile, writeActivationsFile } from '../samplers/score/data.ts';
import { readGaussianModel } from '../samplers/score/gaussian.ts';
import { HostRandom } from '../engine/reference/host.ts';
import { DEFAULT_EVAL_TIMES } from '../samplers/score/evaluate.ts';
import { commandByName } from '../cli/commands.ts';
import { ROOT, runCli } from './cli_run.ts';

const test = suite('cli priors');
const dir = mkdtempSync(join(tmpdir(), 'sgilo-priors-'));
const at = (f: string) => join(dir, f);
const rng = new HostRandom(7);
// Raw features: a correlated Gaussian in [2, 2, 2], so the fitted base is not the identity.
const features = (n: number) =>
  Float32Array.from({ length: n * 8 }, (_, i) => {
    const shared = Math.sin(Math.floor(i / 8) * 1.7);
    return 0.5 + shared * (i % 2 ? 1 : 0.5) + 0.2 * rng.normal();
  });
writeFileSync(at('train.safetensors'), writeActivationsFile({ data: features(64), shape: [64, 2, 2, 2], meta: { block: '0' } }));
writeFileSync(at('held.safetensors'), writeActivationsFile({ data: features(24), shape: [24, 2, 2, 2], meta: { block: '0' } }));
const nan = features(8);
nan[5] = NaN;
writeFileSync(at('nan.safetensors'), writeActivationsFile({ data: nan, shape: [8, 2, 2, 2], meta: { block: '0' } }));
const TINY = ['--steps', '2', '--batch', '4', '--dim', '8', '--depth', '1', '--heads', '2', '--log-every', '1'];
const prior = async (f: string) => {
  const p = await loadPrior(new Uint8Array(readFileSync(f)), f);
  p.model.dispose();
  return p;
};

test('train-score: a residual model on a fitted Gaussian by default, vector time; none and a file', async () => {
  let r = await runCli(['train-score', '--data', at('train.safetensors'), ...TINY, '--out', at('fit.safetensors')]);
  assert.is(r.code, 0, r.err);
  assert.match(r.out, /gaussian base: fitted to the 64 training activations \(rank 8\)/);
  const fit = await prior(at('fit.safetensors'));
  assert.is(fit.kind, 'residual');
  assert.is(fit.vit!.config.vit.time, 'vector');
  r = await runCli(['train-score', '--data', at('train.safetensors'), ...TINY, '--gaussian', 'none', '--time', 'token', '--out', at('plain.safetensors')]);
  assert.is(r.code, 0, r.err);
  const plain = await prior(at('plain.safetensors'));
  assert.is(plain.kind, 'vit');
  assert.not.ok(plain.vit!.config.vit.time);
  // A fit-gaussian file as the base: its normalization is the model's.
  r = await runCli(['fit-gaussian', at('train.safetensors'), '--out', at('g.safetensors')]);
  assert.is(r.code, 0, r.err);
  r = await runCli(['train-score', '--data', at('train.safetensors'), ...TINY, '--gaussian', at('g.safetensors'), '--out', at('onfile.safetensors')]);
  assert.is(r.code, 0, r.err);
  const onFile = await prior(at('onfile.safetensors'));
  assert.is(onFile.kind, 'residual');
  assert.equal(onFile.normalization, readGaussianModel(new Uint8Array(readFileSync(at('g.safetensors')))).config.normalization);
  // A base of another shape is refused, naming the flag.
  writeFileSync(at('other.safetensors'), writeActivationsFile({ data: features(8).subarray(0, 32), shape: [8, 1, 2, 2], meta: { block: '0' } }));
  r = await runCli(['train-score', '--data', at('other.safetensors'), ...TINY, '--gaussian', at('g.safetensors'), '--out', at('bad.safetensors')]);
  assert.is(r.code, 1);
  assert.match(r.err, /--gaussian .*shape \[2, 2, 2\] differs/);
  assert.not.ok(existsSync(at('bad.safetensors')));
});

test('sample: a Gaussian prior renders through the generator', async () => {
  const r = await runCli(['sample', join(ROOT, 'models/fashion32/gaussian-block0.safetensors'), '--n', '2', '--steps', '2', '--out', at('sample')]);
  assert.is(r.code, 0, r.err);
  assert.ok(existsSync(at('sample/samples.png')));
});

test('fit-gaussian and eval-score: --force rules, NaN features, --json bins', async () => {
  let r = await runCli(['fit-gaussian', at('nan.safetensors'), '--out', at('nan-g.safetensors')]);
  assert.is(r.code, 1);
  assert.match(r.err, /nan\.safetensors: the features is not finite \(1 NaN/);
  assert.not.ok(existsSync(at('nan-g.safetensors')));
  mkdirSync(at('m'));
  r = await runCli(['fit-gaussian', at('train.safetensors'), '--rank', '3', '--out', at('m/gaussian-block0.safetensors')]);
  assert.is(r.code, 0, r.err);
  assert.is(readGaussianModel(new Uint8Array(readFileSync(at('m/gaussian-block0.safetensors')))).config.rank, 3);
  r = await runCli(['fit-gaussian', at('train.safetensors'), '--out', at('m/gaussian-block0.safetensors')]);
  assert.is(r.code, 1);
  assert.match(r.err, /exists; give --force/);
  r = await runCli(['fit-gaussian', at('train.safetensors'), '--out', at('m/gaussian-block0.safetensors'), '--force']);
  assert.is(r.code, 0, r.err);
  // eval-score of the Gaussian against itself: equal losses, zero difference in every bin.
  mkdirSync(at('ev'));
  writeFileSync(at('ev/old.txt'), 'x');
  const argv = ['eval-score', at('m/gaussian-block0.safetensors'), at('held.safetensors'), '--json', '--samples', '2', '--steps', '2', '--times', '0.01,0.5', '--out', at('ev')];
  r = await runCli(argv);
  assert.is(r.code, 1);
  assert.match(r.err, /not empty; give --force/);
  r = await runCli([...argv, '--force']);
  assert.is(r.code, 0, r.err);
  const lines = r.out.trim().split('\n');
  assert.is(lines.length, 1, 'stdout holds the JSON object alone');
  const report = JSON.parse(lines[0]);
  assert.equal(report.bins.map((b: Record<string, number>) => Object.keys(b).sort()), [['gaussian', 'model', 'se', 't'], ['gaussian', 'model', 'se', 't']]);
  assert.equal(report.bins.map((b: { t: number }) => b.t), [0.01, 0.5]);
  for (const b of report.bins) assert.is(b.model, b.gaussian);
  assert.ok(existsSync(at('ev/report.json')) && !existsSync(at('ev/old.txt')), 'the old output is replaced whole');
});

test('fit-gaussian --components: a mixture file; eval-score takes its Gaussian as the baseline; a residual model on it', async () => {
  // Two clusters, so the mixture differs from the Gaussian.
  const two = features(64).map((v, i) => v + (Math.floor(i / 8) % 2 ? 0.8 : -0.8));
  writeFileSync(at('two.safetensors'), writeActivationsFile({ data: two, shape: [64, 2, 2, 2], meta: { block: '0' } }));
  let r = await runCli(['fit-gaussian', at('two.safetensors'), '--components', '2', '--subspace', '3', '--em-iterations', '4', '--out', at('mix.safetensors')]);
  assert.is(r.code, 0, r.err);
  assert.match(r.out, /mixture of 2 in 3 coordinates: mean log-likelihood/);
  const mix = await prior(at('mix.safetensors'));
  assert.is(mix.kind, 'mixture');
  r = await runCli(['eval-score', at('mix.safetensors'), at('two.safetensors'), '--json', '--samples', '0', '--times', '0.01,0.5', '--out', at('ev-mix')]);
  assert.is(r.code, 0, r.err);
  const report = JSON.parse(r.out.trim());
  assert.match(report.gaussian, /its Gaussian base/);
  // On the training clusters the mixture must beat its own Gaussian at t = 0.01.
  assert.ok(report.bins[0].model < report.bins[0].gaussian, JSON.stringify(report.bins[0]));
  r = await runCli(['train-score', '--data', at('two.safetensors'), ...TINY, '--gaussian', at('mix.safetensors'), '--out', at('onmix.safetensors')]);
  assert.is(r.code, 0, r.err);
  const onMix = await prior(at('onmix.safetensors'));
  assert.is(onMix.kind, 'residual');
  assert.ok(onMix.mixture, 'the residual model keeps its mixture base');
  r = await runCli(['fit-gaussian', at('two.safetensors'), '--subspace', '3', '--out', at('x.safetensors')], { dryRun: true });
  assert.is(r.code, 1);
  assert.match(r.err, /--subspace applies to a mixture fit/);
});

test('encode-fashion: codes and features per split under --out', async () => {
  if (!existsSync('/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz')) return console.log('  (skipped: no dataset-fashion-mnist)');
  const r = await runCli(['encode-fashion', '--limit', '2', '--spaces', 'latent,block0', '--out', at('fashion')]);
  assert.is(r.code, 0, r.err);
  for (const split of ['train', 'val', 'test']) {
    const codes = readCodesFile(new Uint8Array(readFileSync(at(`fashion/${split}-codes.safetensors`))), split);
    assert.is(codes.n, 2);
    const block0 = readActivationsFile(new Uint8Array(readFileSync(at(`fashion/${split}-block0.safetensors`))), split);
    assert.is(block0.shape[0], 2);
    assert.is(block0.meta.split, split);
    assert.ok(existsSync(at(`fashion/${split}-latent.safetensors`)));
  }
});

test("eval-score's declared --times default is the evaluator's", () => {
  // Written out in cli/commands.ts (the web page bundles the declarations, not the GPU evaluator).
  const times = commandByName('eval-score')!.options.find((o) => o.name === 'times')!.default;
  assert.equal(String(times).split(',').map(Number), DEFAULT_EVAL_TIMES);
});

test('refusals before any work', async () => {
  const cases: [string[], RegExp][] = [
    [['fit-gaussian', 'codes:0-4', '--out', at('x.safetensors')], /codes:A-B needs --block/],
    [['train-score', '--resume', at('fit.safetensors'), '--gaussian', 'none'], /--gaussian applies to new models/],
    [['encode-fashion', '--spaces', 'latent,pixels'], /--spaces: must be a comma-separated list/],
    [['encode-fashion', '--val', '60000'], /--val: must be an integer >= 1 and <= 59999/],
    [['eval-score', 'm', 'f', '--samples', '0', '--steps', '3'], /--steps applies to the sample check/],
    [['eval-score', 'm', 'f', '--times', '0,0.5'], /--times: must be a comma-separated list of times in \(0, 1\]/],
    [['eval-score', 'm'], /missing <features>/],
  ];
  for (const [argv, msg] of cases) {
    const r = await runCli(argv, { dryRun: true });
    assert.is(r.code, 1, argv.join(' '));
    assert.match(r.err, msg);
  }
});

test.after(() => rmSync(dir, { recursive: true, force: true }));
test.run();
