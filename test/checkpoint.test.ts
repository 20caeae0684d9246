// Checkpoint I/O (engine/io/): the reference torch checkpoints in both formats, the shipped Fashion
// model and codes, safetensors round trips and validation, hand-built torch checkpoints covering
// strides, offsets, dtypes, DEFLATE, ZIP64 and legacy views, and the Node / Deno file layer.
// No GPU involved. The corruption fuzz is in checkpoint_fuzz.test.ts.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { inflateRawSync } from 'node:zlib';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { readFileBytes, writeFileBytes } from '../engine/io/files.ts';
import { f16ToF32, f32ToF16, type HostTensor } from '../engine/io/host_tensor.ts';
import {
  CheckpointFormatError, detectTorchFormat, flattenTensors, loadCheckpoint, loadModel, loadTorchCheckpoint,
  readSafetensors, saveModel, UnsupportedCheckpointError, writeSafetensors,
} from '../engine/io/index.ts';
import { bytesOf, checkTensors, PickleWriter, torchLegacy, torchZip } from './checkpoint_util.ts';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const FIX = join(ROOT, 'test/fixtures/reference-tiny');
const MODELS = join(ROOT, 'models/fashion32');
const test = suite('checkpoint');

type Dict = Record<string, unknown>;
const T = (x: unknown) => x as HostTensor;
const same = (a: HostTensor, b: HostTensor) => a.dtype === b.dtype && a.shape.join() === b.shape.join() && bytesOf(a.data).every((v, i) => v === bytesOf(b.data)[i]);

async function throwsType(fn: () => unknown, type: Function, pattern: RegExp): Promise<void> {
  try {
    await fn();
  } catch (e) {
    assert.instance(e, type, `threw ${(e as Error).name}: ${(e as Error).message}`);
    assert.match((e as Error).message, pattern);
    return;
  }
  assert.unreachable(`expected ${type.name} matching ${pattern}`);
}

test('generator.pt (zip) and generator_legacy.pt: same keys, shapes and bit-identical tensors', async () => {
  assert.is(detectTorchFormat(await readFileBytes(join(FIX, 'generator.pt'))), 'zip');
  assert.is(detectTorchFormat(await readFileBytes(join(FIX, 'generator_legacy.pt'))), 'legacy');
  const zip = flattenTensors(await loadTorchCheckpoint(await readFileBytes(join(FIX, 'generator.pt'))));
  const legacy = flattenTensors(await loadTorchCheckpoint(await readFileBytes(join(FIX, 'generator_legacy.pt'))));
  assert.equal([...zip.keys()], [...legacy.keys()]);
  assert.is(zip.size, 70);
  for (const [k, t] of zip) assert.ok(same(t, legacy.get(k)!), `${k} differs between the formats`);
  assert.is(checkTensors([...zip.values()]).nonFinite, 0);
});

test('generator.pt: state-dict layout, shapes, blur kernel values, hidden _metadata', async () => {
  const ck = (await loadTorchCheckpoint(await readFileBytes(join(FIX, 'generator.pt')))) as Dict;
  assert.equal(Object.keys(ck), ['g_ema', 'latent_avg']);
  const g = ck.g_ema as Dict;
  const shapes: Record<string, number[]> = {
    'style.1.weight': [64, 64], 'style.2.bias': [64], 'input.input': [1, 32, 4, 4],
    'conv1.conv.weight': [1, 32, 32, 3, 3], 'conv1.conv.modulation.weight': [32, 64], 'conv1.noise.weight': [1],
    'to_rgb1.bias': [1, 3, 1, 1], 'convs.2.conv.weight': [1, 24, 32, 3, 3], 'convs.5.activate.bias': [16],
    'to_rgbs.2.conv.weight': [1, 3, 16, 1, 1], 'noises.noise_0': [1, 1, 4, 4], 'noises.noise_6': [1, 1, 32, 32],
  };
  for (const [k, s] of Object.entries(shapes)) assert.equal(T(g[k]).shape, s, k);
  assert.equal(T(ck.latent_avg).shape, [64]);
  assert.is(T(ck.latent_avg).dtype, 'float32');
  // make_kernel([1,3,3,1]) * 2^2: outer product / 64 * 4, exactly representable.
  const k1 = [1, 3, 3, 1];
  const blur = k1.flatMap((a) => k1.map((b) => (a * b) / 16));
  assert.equal([...T(g['convs.0.conv.blur.kernel']).data], blur);
  assert.equal([...T(g['to_rgbs.1.upsample.kernel']).data], blur);
  // The state dict's `_metadata` attribute is kept but does not show up among the keys.
  assert.ok(!Object.keys(g).includes('_metadata'));
  assert.equal((g._metadata as Dict)['style.1'], { version: 1 });
});

test('score.pt: the ViT state dict', async () => {
  const s = flattenTensors(await loadTorchCheckpoint(await readFileBytes(join(FIX, 'score.pt'))));
  assert.is(s.size, 32);
  assert.equal(s.get('pos_embedding')!.shape, [1, 16, 32]);
  assert.equal(s.get('embed.0.W')!.shape, [8]);
  assert.equal(s.get('transformer.layers.1.0.fn.fn.to_qkv.weight')!.shape, [48, 32]);
  assert.equal(s.get('projector.weight')!.shape, [16, 32]);
  assert.is(checkTensors([...s.values()]).nonFinite, 0);
});

test('generator_expected.safetensors: the golden tensors read', async () => {
  const { tensors } = readSafetensors(await readFileBytes(join(FIX, 'generator_expected.safetensors')));
  assert.equal(tensors.get('in.z')!.shape, [2, 64]);
  assert.equal(tensors.get('in.wplus')!.shape, [2, 8, 64]);
  assert.equal(tensors.get('out.image_from_z')!.shape, [2, 3, 32, 32]);
  assert.is(checkTensors([...tensors.values()]).nonFinite, 0);
});

test('fashion32-stylegan2.pt: g_ema, latent_avg, encoder and the plain args dict', async () => {
  const ck = (await loadCheckpoint(await readFileBytes(join(MODELS, 'fashion32-stylegan2.pt')))) as Dict;
  assert.equal(Object.keys(ck), ['g_ema', 'latent_avg', 'encoder', 'args']);
  assert.equal(ck.args, {
    size: 32, latent: 128, n_mlp: 4, channels: { 4: 128, 8: 128, 16: 64, 32: 32 }, step: 1829, batch: 64,
    training: 'Wasserstein autoencoder (MMD, IMQ kernel), MSE + 3-level pyramid L1, constant noise buffers',
  });
  assert.equal(T(ck.latent_avg).shape, [128]);
  const g = ck.g_ema as Dict;
  assert.equal(T(g['style.4.weight']).shape, [128, 128]);
  assert.equal(T(g['input.input']).shape, [1, 128, 4, 4]);
  assert.equal(T((ck.encoder as Dict)['7.weight']).shape, [128, 2048]);
  const { tensors, nonFinite } = checkTensors(ck);
  assert.is(tensors.length, 82);
  assert.is(nonFinite, 0);
});

test('fashion32-codes.safetensors: z [10000, 128] on the sphere of radius sqrt(128)', async () => {
  const { tensors, metadata } = readSafetensors(await readFileBytes(join(MODELS, 'fashion32-codes.safetensors')));
  const z = tensors.get('z')!;
  assert.equal(z.shape, [10000, 128]);
  assert.is(metadata.step, '1829');
  for (const row of [0, 1, 4567, 9999]) {
    const r = (z.data as Float32Array).subarray(row * 128, row * 128 + 128);
    const norm = Math.hypot(...r);
    assert.ok(Math.abs(norm - Math.sqrt(128)) < 1e-3, `row ${row}: norm ${norm}`);
  }
});

test('safetensors: a Node Buffer from readFileSync (a view into a shared pool) reads like a Uint8Array', () => {
  const file = join(ROOT, 'models/fashion32/mapping-proxy.safetensors');
  readFileSync(join(ROOT, 'package.json')); // other reads share the pool
  const viaBuffer = readSafetensors(readFileSync(file));
  const viaCopy = readSafetensors(new Uint8Array(readFileSync(file)));
  for (const [name, t] of viaCopy.tensors) assert.equal(Array.from(viaBuffer.tensors.get(name)!.data as Float32Array), Array.from(t.data as Float32Array), name);
});

test('safetensors: write then read round trip for every dtype, scalars, empty tensors, metadata', async () => {
  const tensors: Record<string, HostTensor> = {
    f32: { dtype: 'float32', shape: [2, 3], data: Float32Array.from([1, -2.5, 3e-38, 1e38, 0, -0]) },
    f64: { dtype: 'float64', shape: [3], data: Float64Array.from([Math.PI, -1e300, 5e-324]) },
    i64: { dtype: 'int64', shape: [3], data: BigInt64Array.from([1n, -(2n ** 63n), 2n ** 62n + 1n]) },
    i32: { dtype: 'int32', shape: [2], data: Int32Array.from([-7, 2 ** 31 - 1]) },
    i16: { dtype: 'int16', shape: [2], data: Int16Array.from([-32768, 5]) },
    i8: { dtype: 'int8', shape: [1, 2], data: Int8Array.from([-128, 127]) },
    u32: { dtype: 'uint32', shape: [1], data: Uint32Array.from([4294967295]) },
    u8: { dtype: 'uint8', shape: [3], data: Uint8Array.from([0, 255, 7]) },
    flag: { dtype: 'bool', shape: [2], data: Uint8Array.from([1, 0]) },
    half: { dtype: 'float32', stored: 'float16', shape: [4], data: Float32Array.from([1, -2, 0.5, 65504]) },
    bf: { dtype: 'float32', stored: 'bfloat16', shape: [2], data: Float32Array.from([1.5, -3]) },
    scalar: { dtype: 'float32', shape: [], data: Float32Array.from([42]) },
    empty: { dtype: 'float32', shape: [0, 5], data: new Float32Array(0) },
  };
  const bytes = writeSafetensors(tensors, { note: 'hi', json: '{"a":1}' });
  const headerLength = Number(new DataView(bytes.buffer).getBigUint64(0, true));
  assert.is((8 + headerLength) % 8, 0, 'data section 8-byte aligned');
  const back = readSafetensors(bytes);
  assert.equal(back.metadata, { note: 'hi', json: '{"a":1}' });
  assert.equal([...back.tensors.keys()], Object.keys(tensors));
  for (const [k, t] of Object.entries(tensors)) assert.ok(same(back.tensors.get(k)!, t), k);
  assert.is(back.tensors.get('half')!.stored, 'float16');
  // And again from what was read (stored dtypes survive), and through loadCheckpoint.
  assert.equal(writeSafetensors(back.tensors, back.metadata), bytes);
  assert.equal(Object.keys((await loadCheckpoint(bytes)) as Dict), Object.keys(tensors));
});

test('float16: every bit pattern survives f16 -> f32 -> f16; rounding is to nearest even', () => {
  for (let h = 0; h < 65536; h++) {
    const x = f16ToF32(h);
    if (Number.isNaN(x)) assert.ok(Number.isNaN(f16ToF32(f32ToF16(x))));
    else assert.is(f32ToF16(x), h, `bits 0x${h.toString(16)}`);
  }
  assert.is(f32ToF16(65520), 0x7c00); // rounds up to infinity
  assert.is(f32ToF16(2 ** -25), 0); // a tie, to even (zero)
  assert.is(f32ToF16(3 * 2 ** -26), 1);
  assert.is(f32ToF16(1 + 2 ** -11), 0x3c00); // tie between 1 and 1+2^-10, to even
  assert.is(f32ToF16(1 + 3 * 2 ** -11), 0x3c02);
});

test('our model format: safetensors with the JSON config in __metadata__.config', () => {
  const config = { size: 32, style_dim: 64, channels: { 4: 32 } };
  const w: HostTensor = { dtype: 'float32', shape: [2, 2], data: Float32Array.from([1, 2, 3, 4]) };
  const m = loadModel(saveModel({ w }, config, { source: 'test' }));
  assert.equal(m.config, config);
  assert.is(m.metadata.source, 'test');
  assert.ok(same(m.tensors.get('w')!, w));
  assert.throws(() => loadModel(writeSafetensors({ w })), (e: Error) => e instanceof CheckpointFormatError && /no "config"/.test(e.message));
});

test('safetensors: malformed files give typed errors naming the tensor', async () => {
  const good = writeSafetensors({ a: { dtype: 'float32', shape: [2], data: Float32Array.from([1, 2]) }, b: { dtype: 'int32', shape: [1], data: Int32Array.from([3]) } });
  const withHeader = (h: unknown, dataBytes: number) => {
    const json = new TextEncoder().encode(JSON.stringify(h));
    const out = new Uint8Array(8 + json.length + dataBytes);
    new DataView(out.buffer).setBigUint64(0, BigInt(json.length), true);
    out.set(json, 8);
    return out;
  };
  const cases: [Uint8Array, RegExp][] = [
    [good.subarray(0, 5), /shorter than the 8-byte/],
    [good.subarray(0, 20), /header length \d+ exceeds/],
    [good.subarray(0, good.length - 1), /tensor "b": data_offsets \[8, 12\] outside the 11 data bytes/],
    [withHeader({ a: { dtype: 'F32', shape: [3], data_offsets: [0, 8] } }, 8), /tensor "a": shape \[3\] x 4 bytes \(F32\) = 12 bytes, but data_offsets span 8/],
    [withHeader({ a: { dtype: 'F32', shape: [1], data_offsets: [0, 4] }, b: { dtype: 'F32', shape: [1], data_offsets: [2, 6] } }, 6), /tensor "b" starts at data offset 2, expected 4 \(overlap\)/],
    [withHeader({ a: { dtype: 'F32', shape: [1], data_offsets: [4, 8] } }, 8), /tensor "a" starts at data offset 4, expected 0 \(gap\)/],
    [withHeader({ a: { dtype: 'F32', shape: [1], data_offsets: [0, 4] } }, 8), /cover 4 data bytes but the file has 8/],
    [withHeader({ a: { dtype: 'F32', shape: [-1], data_offsets: [0, 4] } }, 4), /tensor "a": bad dimension -1/],
    [withHeader({ a: { dtype: 'F32', shape: [1], data_offsets: [0] } }, 4), /tensor "a": data_offsets must be two/],
    [withHeader({ __metadata__: { k: 1 } }, 0), /__metadata__\["k"\] is not a string/],
    [withHeader([1, 2], 0), /not a JSON object/],
    [Uint8Array.from([3, 0, 0, 0, 0, 0, 0, 0, 0x7b, 0x22, 0xff]), /not valid UTF-8 JSON/],
  ];
  for (const [bytes, re] of cases) await throwsType(() => readSafetensors(bytes), CheckpointFormatError, re);
  await throwsType(() => readSafetensors(withHeader({ a: { dtype: 'C64', shape: [1], data_offsets: [0, 8] } }, 8)), UnsupportedCheckpointError, /tensor "a": unsupported dtype "C64"/);
});

// ---- hand-built torch checkpoints: every dtype, strides, offsets, shared storages ----

const f32 = (xs: number[]) => bytesOf(Float32Array.from(xs));
const S0 = Array.from({ length: 12 }, (_, i) => i);
const STORAGES: [key: string, type: string, numel: number, bytes: Uint8Array][] = [
  ['s0', 'FloatStorage', 12, f32(S0)],
  ['h', 'HalfStorage', 4, bytesOf(Uint16Array.from([1, -2, 0.5, 65504], f32ToF16))],
  ['d', 'DoubleStorage', 3, bytesOf(Float64Array.from([Math.PI, -1e300, 5e-324]))],
  ['l', 'LongStorage', 3, bytesOf(BigInt64Array.from([1n, -2n, 2n ** 62n + 1n]))],
  ['i', 'IntStorage', 2, bytesOf(Int32Array.from([-7, 2 ** 31 - 1]))],
  ['b', 'ByteStorage', 3, Uint8Array.from([0, 255, 7])],
  ['q', 'BoolStorage', 2, Uint8Array.from([1, 0])],
];
const typeOf = Object.fromEntries(STORAGES.map(([k, t, n]) => [k, { type: t, numel: n }]));

function handPickle(legacy: boolean): Uint8Array {
  const p = new PickleWriter().proto().emptyDict().mark();
  const t = (key: string, size: number[], stride: number[], offset = 0, view?: [string, number, number]) =>
    p.tensor({ ...typeOf[key], key, size, stride, offset, legacy, view });
  p.str('contig'); t('s0', [3, 4], [4, 1]);
  p.str('transposed'); t('s0', [4, 3], [1, 4]);
  p.str('offset'); t('s0', [2, 3], [1, 2], 5);
  p.str('expanded'); t('s0', [2, 3], [0, 1], 2);
  p.str('scalar'); t('s0', [], [], 7);
  p.str('empty'); t('s0', [0, 5], [5, 1]);
  // A view: legacy files carry it in the persistent id; the zip format as a plain offset.
  p.str('view'); if (legacy) t('s0', [5], [1], 1, ['v1', 4, 6]); else t('s0', [5], [1], 5);
  p.str('param').global('torch._utils', '_rebuild_parameter').mark();
  t('s0', [2], [1], 10);
  p.raw(0x88).global('collections', 'OrderedDict').emptyTuple().reduce().tuple().reduce();
  for (const k of ['h', 'd', 'l', 'i', 'b', 'q']) { p.str(k); t(k, [typeOf[k].numel], [1]); }
  p.str('n').int(5).str('f').raw(0x47, ...new Uint8Array(new Float64Array([1.5]).buffer).reverse());
  p.str('big').raw(0x8a, 9, 0, 0, 0, 0, 0, 0, 0, 0, 0x40); // LONG1 2^70
  p.str('neg').raw(0x8a, 1, 0xff); // LONG1 -1
  p.str('list').emptyList().mark().int(1).str('a').none().raw(0x88).raw(0x65);
  p.str('tuple').int(1).int(2).raw(0x86);
  p.str('py2').raw(0x55, 3, 0x41, 0x80, 0xe9); // SHORT_BINSTRING, read as latin1 like torch does
  return p.setitems().stop().bytes();
}

function checkHand(ck: Dict): void {
  const data = (k: string) => [...T(ck[k]).data];
  assert.equal(data('contig'), S0);
  assert.equal(T(ck.transposed).shape, [4, 3]);
  assert.equal(data('transposed'), [0, 4, 8, 1, 5, 9, 2, 6, 10, 3, 7, 11]);
  assert.equal(data('offset'), [5, 7, 9, 6, 8, 10]);
  assert.equal(data('expanded'), [2, 3, 4, 2, 3, 4]);
  assert.equal(T(ck.scalar).shape, []);
  assert.equal(data('scalar'), [7]);
  assert.equal(T(ck.empty).shape, [0, 5]);
  assert.equal(data('view'), [5, 6, 7, 8, 9]);
  assert.equal(data('param'), [10, 11]);
  assert.equal(T(ck.h), { dtype: 'float32', shape: [4], data: Float32Array.from([1, -2, 0.5, 65504]), stored: 'float16' });
  assert.equal(data('d'), [Math.PI, -1e300, 5e-324]);
  assert.instance(T(ck.l).data, BigInt64Array);
  assert.equal(data('l'), [1n, -2n, 2n ** 62n + 1n]);
  assert.equal(data('i'), [-7, 2 ** 31 - 1]);
  assert.equal([T(ck.b).dtype, data('b')], ['uint8', [0, 255, 7]]);
  assert.equal([T(ck.q).dtype, data('q')], ['bool', [1, 0]]);
  assert.equal([ck.n, ck.f, ck.big, ck.neg, ck.list, ck.tuple, ck.py2], [5, 1.5, 2n ** 70n, -1, [1, 'a', null, true], [1, 2], 'A\u0080\u00e9']);
  // Fresh copies: no tensor is a view into the file or shares a buffer with another.
  const buffers = checkTensors(ck).tensors.map((x) => x.data.buffer);
  assert.is(new Set(buffers).size, buffers.length);
}

const zipStorages = () => new Map(STORAGES.map(([k, , , b]) => [k, b]));

test('hand-built zip checkpoint: strides, offsets, expanded views, every storage dtype, Parameter', async () => {
  checkHand((await loadTorchCheckpoint(torchZip(handPickle(false), zipStorages()))) as Dict);
});

test('zip variants: DEFLATE (DecompressionStream and an injected zlib), ZIP64 extras and end records', async () => {
  const pkl = handPickle(false);
  const deflated = torchZip(pkl, zipStorages(), { deflate: true });
  checkHand((await loadTorchCheckpoint(deflated)) as Dict);
  let calls = 0;
  const inflateRaw = (d: Uint8Array) => (calls++, new Uint8Array(inflateRawSync(d)));
  checkHand((await loadTorchCheckpoint(deflated, { inflateRaw })) as Dict);
  assert.is(calls, 1 + STORAGES.length, 'the injected inflater read data.pkl and every storage');
  checkHand((await loadTorchCheckpoint(torchZip(pkl, zipStorages(), { zip64: true }))) as Dict);
  checkHand((await loadTorchCheckpoint(torchZip(pkl, zipStorages(), { zip64: true, deflate: true }))) as Dict);
});

test('hand-built legacy checkpoint with a storage view', async () => {
  const bytes = torchLegacy(handPickle(true), STORAGES.map(([k, , n, b]) => [k, n, b]));
  assert.is(detectTorchFormat(bytes), 'legacy');
  checkHand((await loadTorchCheckpoint(bytes)) as Dict);
});

test('not a checkpoint: typed errors', async () => {
  await throwsType(() => loadTorchCheckpoint(new Uint8Array(0)), CheckpointFormatError, /not a torch checkpoint.*none/);
  await throwsType(() => loadCheckpoint(new Uint8Array(0)), CheckpointFormatError, /empty/);
  await throwsType(() => loadTorchCheckpoint(new TextEncoder().encode('hello world')), CheckpointFormatError, /first bytes 68 65 6c/);
  const tar = new Uint8Array(1024);
  tar.set(new TextEncoder().encode('ustar'), 257);
  await throwsType(() => loadTorchCheckpoint(tar), UnsupportedCheckpointError, /tar-based format/);
});

test('files.ts: write and read bytes in Node', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'sgilo-io-'));
  try {
    const bytes = Uint8Array.from({ length: 1000 }, (_, i) => (i * 7) & 255);
    await writeFileBytes(join(dir, 'x.bin'), bytes);
    assert.equal(await readFileBytes(join(dir, 'x.bin')), bytes);
  } finally {
    rmSync(dir, { recursive: true });
  }
});

const DENO = process.env.SGILO_DENO ?? join(ROOT, 'node_modules/.bin/deno');
test('files.ts and the torch loader on Deno: generator.pt gives the same tensors', async () => {
  assert.ok(existsSync(DENO), `no Deno binary at ${DENO} (npm ci installs the devDependency)`);
  const code = `
    import { readFileBytes } from './engine/io/files.ts';
    import { loadTorchCheckpoint } from './engine/io/torch_checkpoint.ts';
    import { flattenTensors } from './engine/io/host_tensor.ts';
    const m = flattenTensors(await loadTorchCheckpoint(await readFileBytes('test/fixtures/reference-tiny/generator.pt')));
    let sum = 0;
    for (const t of m.values()) for (const x of t.data) sum += Number(x);
    console.log(JSON.stringify({ n: m.size, sum }));`;
  const r = spawnSync(DENO, ['eval', '--ext=ts', code], { cwd: ROOT, encoding: 'utf8', timeout: 60_000, env: { ...process.env, NO_COLOR: '1' } });
  assert.is(r.status, 0, `deno eval failed: ${r.error?.message ?? ''}\n${r.stderr}`);
  const m = flattenTensors(await loadTorchCheckpoint(await readFileBytes(join(FIX, 'generator.pt'))));
  let sum = 0;
  for (const t of m.values()) for (const x of t.data) sum += Number(x);
  assert.equal(JSON.parse(r.stdout.trim()), { n: m.size, sum });
});

test.run();
