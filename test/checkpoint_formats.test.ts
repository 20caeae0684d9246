// Checkpoints as researchers have them, each made by the reference code itself (scripts under
// test/fixtures/<format>/): loaded, replayed from the in.* tensors alone and compared with the
// reference's out.* (<= 1e-4) and grad.* (<= 1e-3, max|a-b| / max|b|). Every weight choice has a
// negative control: the other choice must miss the fixture. The same through the CLI:
// test/checkpoint_cli.test.ts.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { readFileBytes } from '../engine/io/files.ts';
import { isPlainPickle, loadCheckpoint, writeSafetensors } from '../engine/io/index.ts';
import { loadNetworkPickle, persistentRecord } from '../engine/io/network_pickle.ts';
import { moduleStateDict } from '../nets/stylegan2_nvlabs.ts';
import { PickleWriter } from './checkpoint_util.ts';
import { replayGenerator, type TensorMap } from '../nets/replay_generator.ts';
import { compare, inputsOf, NV, path, readTensors, relativeError, ROS, SCORE_SDE } from './checkpoint_fixtures.ts';
import { StyleGAN2 } from '../nets/stylegan2.ts';
import { readGeneratorCheckpoint, withLatentAvg, type GeneratorLoadOptions } from '../nets/stylegan2_checkpoint.ts';
import { replayScore } from '../nets/replay_score.ts';
import { loadScoreModel, parseGrid, parseScoreSidecar, pickScoreWeights, type ScoreLoadOptions } from '../samplers/score/checkpoint.ts';

const test = suite('checkpoint_formats');

async function replayScoreFile(file: string, opts: ScoreLoadOptions, inputs: TensorMap) {
  const model = await loadScoreModel(await readFileBytes(path(file)), opts);
  try {
    return { out: await replayScore(model.net, inputs), model };
  } finally {
    model.net.dispose();
  }
}

const sidecar = async () => parseScoreSidecar(new TextDecoder().decode(await readFileBytes(path(`${SCORE_SDE}.json`))));

test('score_sde checkpoint: the EMA weights by default, replayed within tolerance; said so', async () => {
  const exp = await readTensors('score_sde/expected_ema.safetensors');
  const { out, model } = await replayScoreFile(SCORE_SDE, await sidecar(), inputsOf(exp));
  assert.equal(compare(out, exp).failures, []);
  assert.match(model.source, /score_sde checkpoint \(step 7\), EMA weights/);
  assert.equal([model.config.vit.height, model.config.vit.width, model.config.vit.heads], [6, 2, 2]);
});

test('score_sde checkpoint: --weights raw reproduces the raw fixture; each choice misses the other fixture', async () => {
  const ema = await readTensors('score_sde/expected_ema.safetensors');
  const raw = await readTensors('score_sde/expected_raw.safetensors');
  const opts = await sidecar();
  const r = await replayScoreFile(SCORE_SDE, { ...opts, weights: 'raw' }, inputsOf(raw));
  assert.equal(compare(r.out, raw).failures, []);
  assert.match(r.model.source, /raw weights/);
  // Negative controls: the raw weights against the EMA fixture, and the EMA weights against the raw one.
  assert.ok(compare(r.out, ema).failures.includes('out.eps: ' + relativeError(r.out.get('out.eps')!, ema.get('out.eps')!).toExponential(2) + ' > 0.0001'), 'raw weights must miss the EMA eps');
  const e = await replayScoreFile(SCORE_SDE, opts, inputsOf(raw));
  assert.ok(relativeError(e.out.get('out.eps')!, raw.get('out.eps')!) > 1e-3, 'EMA weights must miss the raw eps');
});

test('score_sde checkpoint: the numpy float64 learning rate is a number; shadow_params follow the trainable order', async () => {
  const root = (await loadCheckpoint(await readFileBytes(path(SCORE_SDE)))) as Record<string, any>;
  const lr = root.optimizer.param_groups[0].lr;
  assert.is(typeof lr, 'number');
  assert.ok(Math.abs(lr - 0.01) < 1e-12, `lr ${lr}`);
  assert.is(root.ema.shadow_params.length, Object.keys(root.model).length - 1);
  // A shadow list that does not line up with the parameters is an error naming both.
  const shifted = { ...root, ema: { ...root.ema, shadow_params: root.ema.shadow_params.slice(1) } };
  assert.throws(() => pickScoreWeights(shifted), /shadow_params holds 30 tensors, the model has 31 trainable/);
  const swapped = { ...root, ema: { ...root.ema, shadow_params: [root.ema.shadow_params[1], root.ema.shadow_params[0], ...root.ema.shadow_params.slice(2)] } };
  assert.throws(() => pickScoreWeights(swapped), /shadow_params\[0\] is \[12, 12\], but parameter 0, "pos_embedding", is \[1, 12, 16\]/);
  assert.throws(() => pickScoreWeights({ model: root.model }, 'ema'), /holds no EMA weights/);
});

test('score grid and heads: 6x2 accepted, mismatches are clear errors, sidecar validated', async () => {
  assert.equal(parseGrid('6x2'), [6, 2]);
  assert.throws(() => parseGrid('6*2'), /HxW/);
  assert.throws(() => parseGrid('0x4'), /HxW/);
  const bytes = await readFileBytes(path(SCORE_SDE));
  const err = (o: ScoreLoadOptions) => loadScoreModel(bytes, o).then(() => '', (e: Error) => e.message);
  assert.match(await err({ heads: 2, grid: [5, 2] }), /grid 5x2 has 10 tokens, but pos_embedding \[1, 12, 16\] holds 12/);
  assert.match(await err({ heads: 3, grid: [6, 2] }), /not divisible by 3 heads/);
  // Without the sidecar the 12 tokens are read as a 12x1 column: the shapes of a 6x2 input then fail.
  const plain = await loadScoreModel(bytes, { heads: 2 });
  assert.equal([plain.config.vit.height, plain.config.vit.width], [12, 1]);
  plain.net.dispose();
  assert.equal(parseScoreSidecar('{"heads": 2, "grid": [6, 2]}'), { heads: 2, grid: [6, 2] });
  assert.throws(() => parseScoreSidecar('{"heads": 0}'), /heads must be a positive integer/);
  assert.throws(() => parseScoreSidecar('{"grid": [6]}'), /grid must be \[H, W\]/);
  assert.throws(() => parseScoreSidecar('{"head": 2}'), /unknown key "head"/);
  assert.throws(() => parseScoreSidecar('heads=2'), /not JSON/);
});

async function replayGeneratorFile(file: string, opts: GeneratorLoadOptions, inputs: TensorMap, log: string[] = []) {
  const loaded = await withLatentAvg(await readGeneratorCheckpoint(await readFileBytes(path(file)), opts), (l) => log.push(l));
  const g = StyleGAN2.fromStateDict(loaded.config, loaded.stateDict, loaded.latentAvg);
  try {
    return { out: await replayGenerator(g, inputs), loaded };
  } finally {
    g.dispose();
  }
}


test('rosinality train.py checkpoint: g_ema by default, replayed within tolerance; the Namespace is a record', async () => {
  const exp = await readTensors('rosinality_train/expected_g_ema.safetensors');
  const { out, loaded } = await replayGeneratorFile(ROS, {}, inputsOf(exp));
  assert.equal(compare(out, exp).failures, []);
  assert.is(loaded.format, 'rosinality train.py checkpoint');
  assert.is(loaded.network, 'g_ema');
  assert.equal(loaded.config, { size: 16, styleDim: 32, nMlp: 2, lrMlp: 0.01, channels: { 4: 24, 8: 16, 16: 12 } });
  const root = (await loadCheckpoint(await readFileBytes(path(ROS)))) as Record<string, any>;
  assert.equal([root.args.size, root.args.latent, root.args.n_mlp, root.args.arch], [16, 32, 2, 'stylegan2']);
  assert.ok(Object.keys(root.args).includes('path_regularize'), 'the Namespace fields are its keys');
});

test('rosinality train.py checkpoint: --network g reproduces g; each choice misses the other fixture', async () => {
  const ema = await readTensors('rosinality_train/expected_g_ema.safetensors');
  const gExp = await readTensors('rosinality_train/expected_g.safetensors');
  const g = await replayGeneratorFile(ROS, { network: 'g' }, inputsOf(gExp));
  assert.equal(compare(g.out, gExp).failures, []);
  assert.is(g.loaded.network, 'g');
  assert.ok(compare(g.out, ema).failures.some((f) => f.startsWith('out.image_from_z:')), 'g must miss the g_ema images');
  const e = await replayGeneratorFile(ROS, {}, inputsOf(gExp));
  assert.ok(compare(e.out, gExp).failures.some((f) => f.startsWith('out.image_from_z:')), 'g_ema must miss the g images');
  await readGeneratorCheckpoint(await readFileBytes(path(ROS)), { network: 'd' }).then(
    () => assert.unreachable('--network d accepted'),
    (err: Error) => assert.match(err.message, /--network must be G_ema or G/),
  );
});

test('rosinality train.py checkpoint: no latent_avg, so mean_latent(4096) from the seeded engine, deterministic and said so', async () => {
  const exp = await readTensors('rosinality_train/expected_g_ema.safetensors');
  const noAvg = inputsOf(exp);
  noAvg.delete('in.latent_avg');
  const log: string[] = [];
  const a = await replayGeneratorFile(ROS, {}, noAvg, log);
  const b = await replayGeneratorFile(ROS, {}, noAvg);
  assert.match(log.join(), /latent_avg: not in the file \(rosinality train.py checkpoint\); computed as mean_latent\(4096\).*deterministic/);
  assert.equal([...a.loaded.latentAvg!.data], [...b.loaded.latentAvg!.data]);
  // Only the truncated image depends on the centre: the explicit fixture centre differs from ours.
  const failures = compare(a.out, exp).failures;
  assert.equal(failures.map((f) => f.split(':')[0]), ['out.image_truncated']);
});


test('NVlabs pickle: G_ema by default with conv_clamp, replayed within tolerance', async () => {
  const exp = await readTensors('nvlabs/expected_G_ema.safetensors');
  const { out, loaded } = await replayGeneratorFile(NV, {}, inputsOf(exp));
  const r = compare(out, exp);
  assert.equal(r.failures, []);
  assert.is(loaded.format, 'NVlabs pickle');
  assert.equal([loaded.network, loaded.networks], ['G_ema', ['G_ema', 'G']]);
  assert.equal(loaded.config, { size: 16, styleDim: 32, nMlp: 2, lrMlp: 0.01, channels: { 4: 24, 8: 16, 16: 8 }, convClamp: 0.75 });
});

test('NVlabs pickle: --network G and --no-clamp reproduce their fixtures; every wrong choice misses', async () => {
  const ema = await readTensors('nvlabs/expected_G_ema.safetensors');
  const gExp = await readTensors('nvlabs/expected_G.safetensors');
  const noClamp = await readTensors('nvlabs/expected_G_ema_noclamp.safetensors');
  const g = await replayGeneratorFile(NV, { network: 'G' }, inputsOf(gExp));
  assert.equal(compare(g.out, gExp).failures, []);
  const nc = await replayGeneratorFile(NV, { clamp: false }, inputsOf(noClamp));
  assert.equal(compare(nc.out, noClamp).failures, []);
  assert.match(nc.loaded.format, /conv_clamp 0.75 dropped \(--no-clamp\)/);
  const misses = (got: TensorMap, exp: TensorMap) => compare(got, exp).failures.some((f) => f.startsWith('out.image_from_wplus:'));
  assert.ok(misses(g.out, ema), 'G must miss the G_ema images');
  assert.ok(misses(nc.out, ema), 'the unclamped network must miss the clamped images');
  const e = await replayGeneratorFile(NV, {}, inputsOf(noClamp));
  assert.ok(misses(e.out, noClamp), 'the clamped network must miss the unclamped images');
});

test('NVlabs pickle: the persistence records, numpy scalars and EasyDicts read as data', async () => {
  const root = loadNetworkPickle(await readFileBytes(path(NV))) as Record<string, any>;
  assert.equal(Object.keys(root), ['training_set_kwargs', 'G', 'D', 'G_ema', 'augment_pipe']);
  assert.equal(root.training_set_kwargs.resolution, 16);
  const G = root.G_ema;
  const rec = persistentRecord(G)!;
  assert.is(rec.className, 'Generator');
  assert.match(rec.moduleSrc, /class SynthesisLayer\(torch\.nn\.Module\)/);
  assert.equal(G._init_kwargs.synthesis_kwargs, { channel_base: 128, channel_max: 24, num_fp16_res: 2, conv_clamp: 0.75 });
  assert.is(G._modules.synthesis._modules.b8._modules.torgb.weight_gain, 0.25); // numpy float64 1 / sqrt(16)
  assert.is(persistentRecord(root.augment_pipe)!.className, 'AugmentPipe');
  // The mapping's stored biases and w_avg are nonzero, so a dropped bias or centre would show.
  const sd = moduleStateDict(G);
  for (const n of ['mapping.fc0.bias', 'mapping.w_avg', 'synthesis.b8.conv0.bias', 'synthesis.b8.torgb.bias']) assert.ok(sd.get(n)!.data.some((v) => Math.abs(v) > 1e-3), n);
  assert.ok(Math.abs(sd.get('synthesis.b8.conv0.noise_strength')!.data[0]) > 1e-3);
});

test('NVlabs pickle: a conditional generator is refused by name', async () => {
  const bytes = await readFileBytes(path('nvlabs/conditional.pkl'));
  await readGeneratorCheckpoint(bytes).then(
    () => assert.unreachable('a conditional generator loaded'),
    (e: Error) => assert.match(e.message, /conditional generator \(c_dim = 4\), which is not supported/),
  );
});

/** A persistence record as torch_utils.persistence pickles it: {type, version, module_src, class_name, state}. */
function record(w: PickleWriter, cls: string, src: string, state: (w: PickleWriter) => PickleWriter): PickleWriter {
  w.global('torch_utils.persistence', '_reconstruct_persistent_obj').emptyDict().mark();
  w.str('type').str('class').str('version').int(4).str('module_src').str(src).str('class_name').str(cls).str('state');
  return state(w).setitems().raw(0x85).reduce();
}

test('NVlabs pickle: a StyleGAN3 generator and a non-skip architecture are refused by name', async () => {
  const modules = (w: PickleWriter, kids: [string, (w: PickleWriter) => PickleWriter][]) => {
    w.emptyDict().str('_modules').emptyDict();
    for (const [k, f] of kids) f(w.str(k)).setitem();
    return w.setitem();
  };
  const src3 = 'class SynthesisInput(torch.nn.Module):\n    pass\n';
  const g3 = new PickleWriter().proto(4).emptyDict().str('G_ema');
  record(g3, 'Generator', src3, (w) => modules(w, [
    ['mapping', (x) => record(x, 'MappingNetwork', src3, (y) => y.emptyDict())],
    ['synthesis', (x) => record(x, 'SynthesisNetwork', src3, (y) => modules(y, [['input', (z) => record(z, 'SynthesisInput', src3, (q) => q.emptyDict())]]))],
  ])).setitem().stop();
  await readGeneratorCheckpoint(g3.bytes()).then(
    () => assert.unreachable('a StyleGAN3 generator loaded'),
    (e: Error) => assert.match(e.message, /StyleGAN3 \(alias-free\) generator, which is not supported/),
  );
  // The real fixture with a block's architecture string patched in place (same length) to 'orig'.
  const bytes = (await readFileBytes(path(NV))).slice();
  const at = indexOf(bytes, Uint8Array.from([0x8c, 4, ...new TextEncoder().encode('skip')])); // SHORT_BINUNICODE 'skip'
  assert.ok(at > 0, 'an architecture string in the fixture');
  bytes.set(new TextEncoder().encode('orig'), at + 2);
  await readGeneratorCheckpoint(bytes).then(
    () => assert.unreachable("architecture 'orig' loaded"),
    (e: Error) => assert.match(e.message, /architecture "orig" \(only 'skip'/),
  );
});

function indexOf(hay: Uint8Array, needle: Uint8Array): number {
  outer: for (let i = 0; i + needle.length <= hay.length; i++) {
    for (let j = 0; j < needle.length; j++) if (hay[i + j] !== needle[j]) continue outer;
    return i;
  }
  return -1;
}

test('a safetensors file whose header length begins 0x80 0x02 (like PROTO 2) is still read as safetensors', async () => {
  const t = { dtype: 'float32' as const, shape: [2], data: Float32Array.of(1, 2) };
  let bytes = writeSafetensors({ w: t }, { pad: '' });
  const base = Number(new DataView(bytes.buffer, bytes.byteOffset).getBigUint64(0, true));
  bytes = writeSafetensors({ w: t }, { pad: 'x'.repeat(0x280 - base) });
  assert.equal([bytes[0], bytes[1]], [0x80, 0x02]);
  assert.is(isPlainPickle(bytes), false);
  assert.equal([...((await loadCheckpoint(bytes)) as Record<string, { data: Float32Array }>).w.data], [1, 2]);
});

test.run();
