// Hand-made hostile inputs for checkpoint_fuzz.test.ts: pickles that name dangerous globals,
// abuse the interpreter (deep nesting, cycles, huge declared lengths, bad memo use), lie about
// tensors, and archives that lie about their entries. Each states the outcome it must produce.
import * as assert from 'uvu/assert';
import { persistentRecord } from '../engine/io/index.ts';
import { PickleWriter, torchLegacy, torchZip, writeZip } from './checkpoint_util.ts';

export interface HostileCase {
  name: string;
  bytes: Uint8Array;
  /** An error class name, or 'loaded'. */
  expect: string;
  check?: (value: unknown) => void;
}

const P = (protocol = 2) => new PickleWriter().proto(protocol);
const FMT = 'CheckpointFormatError';
const UNSAFE = 'UnsafePickleError';
const UNSUP = 'UnsupportedCheckpointError';
const f32 = (n: number) => new Uint8Array(Float32Array.from({ length: n }, (_, i) => i).buffer);
const u32 = (v: number) => [v & 0xff, (v >>> 8) & 0xff, (v >>> 16) & 0xff, v >>> 24];
const ff = (n: number) => new Array<number>(n).fill(0xff);

/** A one-tensor state dict over storage "0" of 4 floats, with the given view. */
const tensorPkl = (size: number[], stride: number[], offset = 0, type = 'FloatStorage', numel = 4) =>
  P().emptyDict().str('w').tensor({ type, key: '0', numel, size, stride, offset }).setitem().stop().bytes();

export function hostileCases(): HostileCase[] {
  const cases: HostileCase[] = [];
  const zipped = (name: string, pkl: PickleWriter | Uint8Array, expect: string, storages = new Map<string, Uint8Array>(), check?: HostileCase['check']) =>
    cases.push({ name, bytes: torchZip(pkl instanceof PickleWriter ? pkl.bytes() : pkl, storages), expect, check });
  const text = (s: string) => new TextEncoder().encode(s);

  // Globals outside the allow-list, however they are named.
  zipped('GLOBAL os.system + REDUCE', text("cos\nsystem\n(S'echo pwned'\ntR."), UNSAFE);
  zipped('GLOBAL posix.system', text("cposix\nsystem\n(S'id'\ntR."), UNSAFE);
  zipped('GLOBAL __builtin__.getattr', P().global('__builtin__', 'getattr').stop(), UNSAFE);
  zipped('GLOBAL builtins.exec', P().global('builtins', 'exec').stop(), UNSAFE);
  zipped('GLOBAL subprocess.Popen', P().global('subprocess', 'Popen').emptyTuple().reduce().stop(), UNSAFE);
  zipped('GLOBAL torch.load', P().global('torch', 'load').stop(), UNSAFE);
  zipped('GLOBAL torch.storage._load_from_bytes', P().global('torch.storage', '_load_from_bytes').stop(), UNSAFE);
  zipped('GLOBAL numpy.core.multiarray._reconstruct', P().global('numpy.core.multiarray', '_reconstruct').stop(), UNSAFE);
  zipped('GLOBAL collections.OrderedDict.__init__ (dotted name)', P().global('collections', 'OrderedDict.__init__').stop(), UNSAFE);
  const sg = P(4).raw(0x8c, 8).text('builtins').raw(0x94, 0x8c, 4).text('eval').raw(0x94, 0x93, 0x94, 0x8c, 3).text('1+1').raw(0x85, 0x52).stop();
  zipped('STACK_GLOBAL builtins.eval', sg, UNSAFE);
  zipped('INST os.system', text('(ios\nsystem\nS\'x\'\n.'), UNSAFE);
  zipped('EXT1 extension registry', P().raw(0x82, 1).stop(), UNSAFE);
  zipped('NEWOBJ of os.system', P().global('os', 'system').emptyTuple().raw(0x81).stop(), UNSAFE);
  zipped('unsafe global after a valid state dict prefix', P().emptyDict().str('a').int(1).setitem().global('os', 'system').stop(), UNSAFE);
  cases.push({ name: 'legacy: unsafe global in the object pickle', bytes: torchLegacy(P().global('os', 'system').stop().bytes(), []), expect: UNSAFE });

  // Allowed globals misused.
  zipped('REDUCE on a storage type', P().global('torch', 'FloatStorage').emptyTuple().reduce().stop(), FMT);
  zipped('REDUCE on a string', P().str('os.system').emptyTuple().reduce().stop(), FMT);
  zipped('OrderedDict with a bad argument', P().global('collections', 'OrderedDict').str('x').raw(0x85).reduce().stop(), FMT);
  zipped('STACK_GLOBAL of a non-string', P(4).int(1).str('x').raw(0x93).stop(), FMT);
  zipped('_rebuild_tensor_v2 on a plain tuple', P().global('torch._utils', '_rebuild_tensor_v2').ints([1, 2]).reduce().stop(), FMT);
  zipped('NEWOBJ_EX with keyword arguments', P(4).global('collections', 'OrderedDict').emptyTuple().emptyDict().str('k').int(1).setitem().raw(0x92).stop(), FMT);

  // Interpreter abuse.
  zipped('list nested 20000 deep', P().fill(0x5d, 20000).fill(0x61, 19999).stop(), FMT);
  zipped('tuple nested 50000 deep', P().none().fill(0x85, 50000).stop(), FMT);
  zipped('50000 unclosed MARKs', P().fill(0x28, 50000).stop(), FMT);
  zipped('a list containing itself', P().emptyList().raw(0x71, 0, 0x68, 0, 0x61).stop(), FMT);
  const laughs = P().emptyList();
  for (let i = 0; i < 60; i++) laughs.raw(0x71, 0, 0x68, 0, 0x86); // [x, x] sixty times: 2^60 leaves if walked naively
  zipped('billion laughs (shared pairs 60 deep) loads quickly', laughs.stop(), 'loaded');
  zipped('BINUNICODE declaring 4 GiB', P().raw(0x58, ...ff(4)).text('abc').stop(), FMT);
  zipped('BINUNICODE8 declaring 2^64-1 bytes', P(4).raw(0x8d, ...ff(8)).stop(), FMT);
  zipped('BINBYTES8 declaring 2^64-1 bytes', P(4).raw(0x8e, ...ff(8)).stop(), FMT);
  zipped('BINBYTES declaring 4 GiB', P(3).raw(0x42, ...ff(4)).stop(), FMT);
  zipped('FRAME declaring 2^64-1 bytes', P(4).raw(0x95, ...ff(8)).stop(), FMT);
  zipped('LONG4 declaring 2 GiB', P().raw(0x8b, 0xff, 0xff, 0xff, 0x7f).stop(), FMT);
  zipped('LONG4 with a negative length', P().raw(0x8b, ...ff(4)).stop(), FMT);
  zipped('LONG4 of 1000 bytes', P().raw(0x8b, ...u32(1000)).fill(7, 1000).stop(), UNSUP);
  zipped('BINGET of a slot never set', P().raw(0x68, 9).stop(), FMT);
  zipped('LONG_BINGET of slot 2^32-1', P().raw(0x6a, ...ff(4)).stop(), FMT);
  zipped('stack underflow (APPEND on empty)', P().raw(0x61).stop(), FMT);
  zipped('SETITEM on a list', P().emptyList().int(1).int(2).raw(0x73).stop(), FMT);
  zipped('APPEND to a tuple', P().emptyTuple().int(1).raw(0x61).stop(), FMT);
  zipped('BUILD on a list', P().emptyList().emptyDict().raw(0x62).stop(), FMT);
  zipped('unknown opcode 0xff', P().raw(0xff).stop(), FMT);
  zipped('protocol 6', P(6).none().stop(), UNSUP);
  zipped('empty data.pkl', new Uint8Array(0), FMT);
  zipped('no STOP', P().none().bytes(), FMT);
  zipped('"__proto__" as a key stays an own property', P().emptyDict().str('__proto__').emptyDict().str('x').int(1).setitem().setitem().stop(), 'loaded', undefined, (v) => {
    assert.is(Object.getPrototypeOf(v), Object.prototype);
    assert.ok(Object.hasOwn(v as object, '__proto__'));
    assert.is(({} as Record<string, unknown>).x, undefined);
  });

  // Tensors that lie about their storage.
  const st = new Map([['0', f32(4)]]);
  zipped('tensor larger than its storage', tensorPkl([1000], [1]), FMT, st);
  zipped('tensor offset past its storage', tensorPkl([2], [1], 3), FMT, st);
  zipped('stride-0 view of 2^30 elements', tensorPkl([1 << 15, 1 << 15], [0, 0]), FMT, st);
  zipped('negative stride', P().emptyDict().str('w').global('torch._utils', '_rebuild_tensor_v2').mark()
    .mark().str('storage').global('torch', 'FloatStorage').str('0').str('cpu').int(4).tuple().raw(0x51)
    .int(0).ints([2]).mark().raw(0x4a, ...ff(4)).tuple().raw(0x89).global('collections', 'OrderedDict').emptyTuple().reduce().tuple().reduce()
    .setitem().stop(), FMT, st);
  zipped('storage element count disagrees with its entry', tensorPkl([2], [1], 0, 'FloatStorage', 8), FMT, st);
  zipped('storage entry missing', tensorPkl([2], [1]), FMT);
  zipped('storage type that is not a storage', tensorPkl([2], [1], 0, 'Tensor'), UNSAFE, st);
  zipped('persistent id of kind "module"', P().mark().str('module').str('x').tuple().raw(0x51).stop(), UNSUP);
  zipped('persistent id with a non-string key', P().mark().str('storage').global('torch', 'FloatStorage').int(3).str('cpu').int(1).tuple().raw(0x51).stop(), FMT);
  zipped('persistent id that is a string', P().str('storage').raw(0x51).stop(), FMT);
  const twoTypes = P().mark()
    .tensor({ type: 'FloatStorage', key: '0', numel: 4, size: [4], stride: [1] })
    .tensor({ type: 'IntStorage', key: '0', numel: 4, size: [4], stride: [1] }).tuple().stop();
  zipped('one storage key with two dtypes', twoTypes, FMT, st);

  // Archives that lie.
  const pkl = P().none().stop().bytes();
  const bomb = writeZip([{ name: 'a/data.pkl', data: pkl, deflate: true }]);
  const dv = new DataView(bomb.buffer);
  const cen = bomb.length - 22 - (46 + 'a/data.pkl'.length);
  dv.setUint32(cen + 24, 0x7fffffff, true); // uncompressed size in the central directory
  cases.push({ name: 'DEFLATE entry declaring 2 GiB (bomb)', bytes: bomb, expect: FMT });
  const garbage = writeZip([{ name: 'a/data.pkl', data: new Uint8Array(64).fill(0x55), deflate: true }]);
  garbage.fill(0xff, 30 + 10, 30 + 10 + 4); // corrupt the start of the DEFLATE stream
  cases.push({ name: 'corrupt DEFLATE stream', bytes: garbage, expect: FMT });
  cases.push({ name: 'two data.pkl archives', bytes: writeZip([{ name: 'a/data.pkl', data: pkl }, { name: 'b/data.pkl', data: pkl }]), expect: FMT });
  cases.push({ name: 'duplicate entry names', bytes: writeZip([{ name: 'a/data.pkl', data: pkl }, { name: 'a/data.pkl', data: pkl }]), expect: FMT });
  cases.push({ name: 'no data.pkl', bytes: writeZip([{ name: 'a/version', data: text('3\n') }]), expect: FMT });
  const enc = writeZip([{ name: 'a/data.pkl', data: pkl }]);
  enc[6] |= 1; // encrypted flag, local header
  enc[enc.length - 22 - 56 + 8] |= 1; // and central directory
  cases.push({ name: 'encrypted entry', bytes: enc, expect: UNSUP });
  const z64 = writeZip([{ name: 'a/data.pkl', data: pkl }], { zip64: true });
  new DataView(z64.buffer).setUint32(z64.length - 22 - 20 + 8, 0x7ffffff0, true); // locator -> far away
  cases.push({ name: 'ZIP64 locator pointing past the file', bytes: z64, expect: FMT });
  const many = writeZip([{ name: 'a/data.pkl', data: pkl }]);
  new DataView(many.buffer).setUint16(many.length - 22 + 10, 60000, true);
  new DataView(many.buffer).setUint16(many.length - 22 + 8, 60000, true);
  cases.push({ name: 'end record claiming 60000 entries', bytes: many, expect: FMT });
  networkPickleCases(cases);
  return cases;
}

/** NVlabs network pickles (plain pickles, engine/io/network_pickle.ts): persistence records and nested blobs. */
function networkPickleCases(cases: HostileCase[]): void {
  const plain = (name: string, w: PickleWriter, expect: string, check?: HostileCase['check']) => cases.push({ name: `network pickle: ${name}`, bytes: w.bytes(), expect, check });
  const record = (state: (w: PickleWriter) => PickleWriter, meta: { type?: string; src?: string; cls?: string | null } = {}) => {
    const w = P(4).global('torch_utils.persistence', '_reconstruct_persistent_obj').emptyDict().mark();
    w.str('type').str(meta.type ?? 'class').str('version').int(4).str('module_src').str(meta.src ?? 'class G: pass\n');
    if (meta.cls !== null) w.str('class_name').str(meta.cls ?? 'G');
    return state(w.str('state')).setitems().raw(0x85).reduce();
  };
  const emptyState = (w: PickleWriter) => w.emptyDict();
  plain('os.system inside a persistence record\'s state', record((w) => w.emptyDict().str('x').global('os', 'system').str('id').raw(0x85).reduce().setitem()).stop(), UNSAFE);
  const src = "import os\nos.system('echo pwned')\nclass G: pass\n";
  plain('hostile module source: kept as a string, never run', record(emptyState, { src }).stop(), 'loaded', (v) => {
    const rec = persistentRecord(v);
    assert.ok(rec && rec.moduleSrc === src && rec.className === 'G', 'the module source is data');
  });
  plain('persistence record of type "module"', record(emptyState, { type: 'module' }).stop(), FMT);
  plain('persistence record without class_name', record(emptyState, { cls: null }).stop(), FMT);
  plain('persistence record whose state is a list', record((w) => w.emptyList()).stop(), FMT);
  plain('_reconstruct_persistent_obj with two arguments', P(4).global('torch_utils.persistence', '_reconstruct_persistent_obj').emptyDict().emptyDict().raw(0x86).reduce().stop(), FMT);
  plain('builtins.exec', P(4).global('builtins', 'exec').str('1').raw(0x85).reduce().stop(), UNSAFE);
  const blob = (inner: Uint8Array) => P(4).global('torch.storage', '_load_from_bytes').bin(inner).raw(0x85).reduce().stop();
  plain('nested storage blob naming os.system', blob(torchLegacy(P().global('os', 'system').stop().bytes(), [])), UNSAFE);
  plain('nested storage blob naming _load_from_bytes again', blob(torchLegacy(P().global('torch.storage', '_load_from_bytes').stop().bytes(), [])), UNSAFE);
  plain('nested blob holding a dict, not a storage', blob(torchLegacy(P().emptyDict().stop().bytes(), [])), FMT);
  const good = torchLegacy(P().mark().str('storage').global('torch', 'FloatStorage').str('k').str('cpu').int(4).none().tuple().raw(0x51).stop().bytes(), [['k', 4, f32(4)]]);
  plain('nested storage blob, well formed, then rebuilt as a tensor', P(4).global('torch._utils', '_rebuild_tensor_v2').mark()
    .global('torch.storage', '_load_from_bytes').bin(good).raw(0x85).reduce()
    .int(1).ints([3]).ints([1]).raw(0x89).global('collections', 'OrderedDict').emptyTuple().reduce().tuple().reduce().stop(), 'loaded', (v) => {
    assert.equal([...(v as { data: Float32Array }).data], [1, 2, 3]);
  });
  plain('nested storage blob truncated', blob(good.slice(0, good.length - 3)), FMT);
  plain('_load_from_bytes of a str', P(4).global('torch.storage', '_load_from_bytes').str('x').raw(0x85).reduce().stop(), FMT);
  const dtype = (code: string, order = '<') => (w: PickleWriter) =>
    w.global('numpy', 'dtype').str(code).raw(0x89, 0x88, 0x87).reduce().mark().int(3).str(order).none().none().none().int(0xffffffff).int(0xffffffff).int(0).tuple().raw(0x62);
  const scalar = (code: string, payload: Uint8Array, order?: string) => dtype(code, order)(P(4).global('numpy.core.multiarray', 'scalar').mark()).bin(payload).tuple().reduce().stop();
  const f64 = (x: number, le = true) => { const b = new Uint8Array(8); new DataView(b.buffer).setFloat64(0, x, le); return b; };
  plain('numpy float64 scalar', scalar('f8', f64(0.25)), 'loaded', (v) => assert.is(v, 0.25));
  plain('numpy big-endian float64 scalar', scalar('f8', f64(-3.5, false), '>'), 'loaded', (v) => assert.is(v, -3.5));
  plain('numpy scalar of dtype object (O8)', scalar('O8', f64(0)), FMT);
  plain('numpy f8 scalar of 3 bytes', scalar('f8', new Uint8Array(3)), FMT);
  const structured = P(4).global('numpy', 'dtype').str('V8').raw(0x89, 0x88, 0x87).reduce().mark().int(3).str('|').none().emptyTuple().none().int(8).int(1).int(0).tuple().raw(0x62).stop();
  plain('numpy structured dtype', structured, UNSUP);
  plain('EasyDict with arguments', P(4).global('dnnlib.util', 'EasyDict').str('x').raw(0x85).reduce().stop(), FMT);
  plain('bytes after STOP', P(4).none().stop().raw(0x4e), FMT);
  // The network-pickle globals are not torch checkpoint globals.
  cases.push({ name: 'torch zip naming _reconstruct_persistent_obj', bytes: torchZip(P().global('torch_utils.persistence', '_reconstruct_persistent_obj').stop().bytes(), new Map()), expect: UNSAFE });
  cases.push({ name: 'torch zip: argparse.Namespace with arguments', bytes: torchZip(P().global('argparse', 'Namespace').str('x').raw(0x85).reduce().stop().bytes(), new Map()), expect: FMT });
  cases.push({ name: "torch zip: _codecs.encode with 'utf-8'", bytes: torchZip(P().global('_codecs', 'encode').str('x').str('utf-8').raw(0x86).reduce().stop().bytes(), new Map()), expect: FMT });
}
