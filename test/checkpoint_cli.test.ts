// The CLI on checkpoints as researchers have them (the reference-code fixtures of
// test/checkpoint_formats.test.ts): inspect names the format, network, config and weights; convert
// writes the engine's format; replay generator|score take the loader choices as flags (score: else the
// sidecar <checkpoint>.json), say what they loaded, and each wrong choice misses its fixture.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { readFileBytes } from '../engine/io/files.ts';
import { readSafetensors } from '../engine/io/index.ts';
import { replayGenerator, type TensorMap } from '../nets/replay_generator.ts';
import { StyleGAN2 } from '../nets/stylegan2.ts';
import { readGeneratorCheckpoint } from '../nets/stylegan2_checkpoint.ts';
import { compare, inputsOf, NV, path, readTensors, ROS, SCORE_SDE } from './checkpoint_fixtures.ts';
import { runCli } from './cli_run.ts';

const test = suite('checkpoint cli');


/** `sgilo replay <what> <checkpoint> <fixture> --out <fresh file in dir> ...flags`, asserted to exit 0: its output and the fixture's tensors. */
function replayRunner(dir: string, what: 'generator' | 'score', checkpoint: string) {
  return async (fixture: string, flags: string[]) => {
    const o = join(dir, `${Math.random().toString(36).slice(2)}.safetensors`);
    const r = await runCli(['replay', what, path(checkpoint), path(fixture), '--out', o, ...flags]);
    assert.is(r.code, 0, r.err);
    return { r, got: readSafetensors(await readFileBytes(o)).tensors as unknown as TensorMap, exp: await readTensors(fixture) };
  };
}

test('sgilo inspect names the format, the network, its config and the weights used', async () => {
  const nv = await runCli(['inspect', path(NV)]);
  assert.is(nv.code, 0, nv.err);
  assert.match(nv.out, /format: NVlabs pickle\nnetwork: StyleGAN2 generator G_ema \(the file holds G_ema, G; --network picks\)\nconfig: \{"size":16,.*"convClamp":0.75\}/);
  assert.match((await runCli(['inspect', path(NV), '--network', 'G', '--no-clamp'])).out, /format: NVlabs pickle, conv_clamp 0.75 dropped.*\nnetwork: StyleGAN2 generator G /);
  assert.match((await runCli(['inspect', path(ROS)])).out, /format: rosinality train.py checkpoint\nnetwork: StyleGAN2 generator g_ema/);
  assert.match((await runCli(['inspect', path('reference-tiny/generator.pt')])).out, /format: rosinality generator checkpoint\n/);
  const sde = await runCli(['inspect', path(SCORE_SDE)]);
  assert.is(sde.code, 0, sde.err);
  assert.match(sde.out, /format: score_sde checkpoint \(step 7\), EMA weights.*\nnetwork: SGILO score ViT\nconfig: \{"channels":4,"height":6,"width":2,"dim":16,"depth":2,"heads":2,"dimHead":8,"mlp":32\}/);
  assert.match((await runCli(['inspect', path(SCORE_SDE), '--weights', 'raw'])).out, /raw weights/);
  assert.match((await runCli(['inspect', path('reference-tiny/score.pt')])).out, /format: PyTorch state dict\n/);
  const bad = await runCli(['inspect', path(NV), '--nope']);
  assert.is(bad.code, 1);
  assert.match(bad.err, /unknown option --nope/);
});

test('sgilo inspect: generator flags and score flags are for one kind of file each', async () => {
  const mixed = await runCli(['inspect', path(SCORE_SDE), '--no-clamp', '--heads', '2']);
  assert.is(mixed.code, 1);
  assert.match(mixed.err, /--no-clamp read generators and --heads score files; give one kind/);
  // Score flags on a generator file: read as a score model, which it is not.
  const asScore = await runCli(['inspect', path(NV), '--heads', '2']);
  assert.is(asScore.code, 1);
  assert.match(asScore.err, /network-snapshot\.pkl: not an SGILO score model/);
  assert.match((await runCli(['inspect', path(NV), '--weights', 'ema'])).err, /network-snapshot\.pkl: score checkpoint: --weights ema, but the file holds no EMA weights/);
  // Generator flags on a score file: read as a generator, which it is not.
  const asGen = await runCli(['inspect', path(SCORE_SDE), '--network', 'G_ema']);
  assert.is(asGen.code, 1);
  assert.match(asGen.err, /checkpoint\.pth: not a StyleGAN2 generator/);
  assert.match((await runCli(['inspect', path(NV), '--network', 'D'])).err, /--network: must be one of G_ema, G, g_ema, g, got "D"/);
  // A choice the file cannot meet names the file and the flag (not "not a generator").
  const noClamp = await runCli(['inspect', path('reference-tiny/generator.pt'), '--no-clamp']);
  assert.is(noClamp.code, 1);
  assert.match(noClamp.err, /generator\.pt: --no-clamp applies to NVlabs pickles/);
  const rawOfModel = await runCli(['inspect', path('score-gaussian-vector.safetensors'), '--weights', 'raw']);
  assert.is(rawOfModel.code, 1);
  assert.match(rawOfModel.err, /score-gaussian-vector\.safetensors: score model: --weights raw: a model file holds one set of weights/);
  assert.match((await runCli(['inspect', path(SCORE_SDE), '--grid', '6by2'])).err, /--grid: must be HxW with positive integers/);
});

test('sgilo convert: an NVlabs pickle once into our safetensors format, which replays the same', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'sgilo-convert-'));
  try {
    const out = join(dir, 'g.safetensors');
    const r = await runCli(['convert', path(NV), '--out', out]);
    assert.is(r.code, 0, r.err);
    assert.match(r.err, /generator: .*network-snapshot\.pkl: NVlabs pickle, network G_ema \(of G_ema, G\), conv_clamp 0.75/);
    const exp = await readTensors('nvlabs/expected_G_ema.safetensors');
    const loaded = await readGeneratorCheckpoint(await readFileBytes(out));
    assert.is(loaded.format, 'sgilo safetensors (converted from NVlabs pickle, G_ema)');
    assert.equal(loaded.config.convClamp, 0.75);
    const g = StyleGAN2.fromStateDict(loaded.config, loaded.stateDict, loaded.latentAvg);
    try {
      assert.equal(compare(await replayGenerator(g, inputsOf(exp)), exp).failures, []);
    } finally {
      g.dispose();
    }
    const inspected = await runCli(['inspect', out]);
    assert.match(inspected.out, /format: sgilo safetensors \(converted from NVlabs pickle, G_ema\)/);
    // The converted file replays through the CLI too, and the training network's conversion misses G_ema's fixture.
    const replayed = join(dir, 'r.safetensors');
    assert.is((await runCli(['replay', 'generator', out, path('nvlabs/expected_G_ema.safetensors'), '--out', replayed])).code, 0);
    assert.equal(compare(readSafetensors(await readFileBytes(replayed)).tensors as unknown as TensorMap, exp).failures, []);
    const gOut = join(dir, 'G.safetensors');
    assert.is((await runCli(['convert', path(NV), '--network', 'G', '--out', gOut])).code, 0);
    const gLoaded = await readGeneratorCheckpoint(await readFileBytes(gOut));
    assert.is(gLoaded.format, 'sgilo safetensors (converted from NVlabs pickle, G)');
    const gNet = StyleGAN2.fromStateDict(gLoaded.config, gLoaded.stateDict, gLoaded.latentAvg);
    try {
      assert.ok(compare(await replayGenerator(gNet, inputsOf(exp)), exp).failures.length > 0, 'G converted must miss the G_ema fixture');
    } finally {
      gNet.dispose();
    }
    const wrongSuffix = await runCli(['convert', path(NV), '--out', join(dir, 'g.pt')]);
    assert.is(wrongSuffix.code, 1);
    assert.match(wrongSuffix.err, /the output must be a \.safetensors file/);
    const exists = await runCli(['convert', path(NV), '--out', out]);
    assert.is(exists.code, 1, 'an existing output needs --force');
    assert.is((await runCli(['convert', path(NV), '--out', out, '--force'])).code, 0);
    assert.match((await runCli(['convert', path(NV), '--out', out, '--force', '--heads', '2'])).err, /unknown option --heads/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('sgilo replay generator: --network G and --no-clamp through the CLI; each wrong choice misses', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'sgilo-replay-g-'));
  const run = replayRunner(dir, 'generator', NV);
  try {
    const g = await run('nvlabs/expected_G.safetensors', ['--network', 'G']);
    assert.match(g.r.err, /NVlabs pickle, network G \(of G_ema, G\)/);
    assert.equal(compare(g.got, g.exp).failures, []);
    const gDefault = await run('nvlabs/expected_G.safetensors', []);
    assert.ok(compare(gDefault.got, gDefault.exp).failures.length > 0, 'G_ema (the default) must miss the G fixture');
    const nc = await run('nvlabs/expected_G_ema_noclamp.safetensors', ['--no-clamp']);
    assert.match(nc.r.err, /conv_clamp 0.75 dropped/);
    assert.equal(compare(nc.got, nc.exp).failures, []);
    const clamped = await run('nvlabs/expected_G_ema_noclamp.safetensors', []);
    assert.ok(compare(clamped.got, clamped.exp).failures.length > 0, 'with conv_clamp the no-clamp fixture must be missed');
    const ros = await runCli(['replay', 'generator', path(ROS), path('rosinality_train/expected_g_ema.safetensors'), '--out', join(dir, 'ros.safetensors')]);
    assert.is(ros.code, 0, ros.err);
    assert.match(ros.err, /latent_avg: not in the file \(rosinality train\.py checkpoint\); computed as mean_latent\(4096\)/);
    const bad = await runCli(['replay', 'generator', path(NV), path('nvlabs/expected_G.safetensors'), '--weights', 'raw']);
    assert.is(bad.code, 1);
    assert.match(bad.err, /--weights: for score files \(replay score\), not replay generator/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('sgilo replay generator --targets writes only the named quantities, with the full replay\'s values; refused for score files', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'sgilo-targets-'));
  try {
    const out = join(dir, 'r.safetensors');
    const fixture = path('reference-tiny/generator_expected.safetensors');
    const r = await runCli(['replay', 'generator', path('reference-tiny/generator.pt'), fixture, '--targets', 'out.w,grad.noise.*', '--out', out]);
    assert.is(r.code, 0, r.err);
    const got = readSafetensors(await readFileBytes(out)).tensors;
    const want = readSafetensors(await readFileBytes(fixture)).tensors;
    assert.ok([...got.keys()].every((k) => k === 'out.w' || k.startsWith('grad.noise.')), [...got.keys()].join(', '));
    assert.ok(got.has('out.w') && got.has('grad.noise.0'), [...got.keys()].join(', '));
    const failures = compare(new Map([...got].map(([k, t]) => [k, { dtype: 'float32' as const, shape: t.shape, data: t.data as Float32Array }])), new Map([...want].filter(([k]) => got.has(k)).map(([k, t]) => [k, { dtype: 'float32' as const, shape: t.shape, data: t.data as Float32Array }]))).failures;
    assert.equal(failures, []);
    const none = await runCli(['replay', 'generator', path('reference-tiny/generator.pt'), fixture, '--targets', 'out.nothing', '--out', join(dir, 'n.safetensors')]);
    assert.is(none.code, 1);
    assert.match(none.err, /names no quantity/);
    const score = await runCli(['replay', 'score', path(SCORE_SDE), path('score_sde/expected_ema.safetensors'), '--targets', 'out.eps']);
    assert.is(score.code, 1);
    assert.match(score.err, /--targets applies to replay generator only/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('sgilo replay score: --help, unknown flags and bad --weights rejected, the loaded weights said; the sidecar and flags choose', async () => {
  const h = await runCli(['replay', 'score', '--help']);
  assert.is(h.code, 0);
  assert.match(h.out, /--grid HxW/);
  assert.match(h.out, /--weights ema\|raw/);
  assert.match((await runCli(['replay', 'score', path(SCORE_SDE), 'a', '--frobnicate', '1'])).err, /unknown option --frobnicate/);
  assert.match((await runCli(['replay', 'score', path(SCORE_SDE), 'a', '--weights', 'best'])).err, /--weights: must be one of ema, raw, got "best"/);
  assert.match((await runCli(['replay', 'score', path(SCORE_SDE), 'a', '--no-clamp'])).err, /--no-clamp: for generators \(replay generator\), not replay score/);
  assert.match((await runCli(['replay', 'score', path(SCORE_SDE), 'a', 'b'])).err, /unexpected argument "b"/);
  const dir = mkdtempSync(join(tmpdir(), 'sgilo-replay-'));
  const run = replayRunner(dir, 'score', SCORE_SDE);
  try {
    // Heads and grid from the sidecar checkpoint.pth.json (2 heads, 6x2), the EMA weights by default.
    const ema = await run('score_sde/expected_ema.safetensors', []);
    assert.match(ema.r.err, /score_sde checkpoint \(step 7\), EMA weights .*; 2 head\(s\), grid 6x2/);
    assert.equal(compare(ema.got, ema.exp).failures, []);
    const raw = await run('score_sde/expected_raw.safetensors', ['--weights', 'raw']);
    assert.match(raw.r.err, /raw weights/);
    assert.equal(compare(raw.got, raw.exp).failures, []);
    const rawAsEma = await run('score_sde/expected_ema.safetensors', ['--weights', 'raw']);
    assert.ok(compare(rawAsEma.got, rawAsEma.exp).failures.length > 0, 'the raw weights must miss the EMA fixture');
    // Flags override the sidecar: the transposed grid 2x6 is refused by the fixture's 6x2 input, 1 head misses.
    const transposed = await runCli(['replay', 'score', path(SCORE_SDE), path('score_sde/expected_ema.safetensors'), '--grid', '2x6', '--out', join(dir, 't.safetensors')]);
    assert.is(transposed.code, 1);
    assert.match(transposed.err, /grid 2x6[^]*input must be \[B, 4, 2, 6\], got \[2, 4, 6, 2\]/);
    const oneHead = await run('score_sde/expected_ema.safetensors', ['--heads', '1']);
    assert.match(oneHead.r.err, /1 head\(s\), grid 6x2/);
    assert.ok(compare(oneHead.got, oneHead.exp).failures.length > 0, '1 head must miss the 2-head fixture');
    const badGrid = await runCli(['replay', 'score', path(SCORE_SDE), path('score_sde/expected_ema.safetensors'), '--grid', '5x2', '--out', join(dir, 'x.safetensors')]);
    assert.is(badGrid.code, 1);
    assert.match(badGrid.err, /grid 5x2 has 10 tokens/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test.run();
