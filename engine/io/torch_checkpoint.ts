// torch.save checkpoints -> nested plain objects, with tensors as host arrays `{dtype, shape, data}`
// (engine/io/host_tensor.ts). Nothing in the file is executed (engine/io/pickle.ts).
//
// Zip format (torch >= 1.6), detected by the local-header magic "PK\x03\x04":
//   <archive>/data.pkl        the object, a pickle whose tensors reference storages through
//                             persistent ids ('storage', torch.<T>Storage, key, location, numel)
//   <archive>/data/<key>      each storage's raw elements (numel * itemsize bytes, little-endian)
//   <archive>/byteorder       optional, "little" or "big"; <archive>/version etc. are ignored
// Legacy format (torch < 1.6 or `_use_new_zipfile_serialization=False`), detected by its first
// pickle being the magic number 0x1950a86a20f9469cfc6c: a sequence of pickles
//   magic, protocol version (1001), sys info {little_endian, type_sizes},
//   the object (persistent ids ('storage', torch.<T>Storage, root_key, location, numel, view)
//   with view None or (view_key, offset, size)), the list of storage keys,
//   then for each key in that order: int64 element count + the raw elements.
// Python dicts become plain objects with string keys (ints such as `args.channels` keys -> "4").

import { CheckpointFormatError, UnsupportedCheckpointError } from './errors.ts';
import { ITEM_SIZE } from './host_tensor.ts';
import { describe, unpickle } from './pickle.ts';
import { StorageRef, storageDtype, TensorBuilder, torchGlobals } from './torch_tensor.ts';
import { isZip, ZipReader, type InflateRaw } from './zip.ts';

export interface TorchLoadOptions {
  /** Inflater for DEFLATE entries (default: DecompressionStream('deflate-raw') if available). */
  inflateRaw?: InflateRaw;
}

const LEGACY_MAGIC = 0x1950a86a20f9469cfc6cn;
const LEGACY_PROTOCOL = 1001;

const fail = (msg: string): never => {
  throw new CheckpointFormatError(`torch: ${msg}`);
};

export type TorchFormat = 'zip' | 'legacy';

export function detectTorchFormat(bytes: Uint8Array): TorchFormat {
  if (isZip(bytes)) return 'zip';
  // PROTO 2, LONG1 of 10 bytes: the little-endian magic number.
  const head = [0x80, 0x02, 0x8a, 0x0a, 0x6c, 0xfc, 0x9c, 0x46, 0xf9, 0x20, 0x6a, 0xa8, 0x50, 0x19];
  if (bytes.length >= head.length && head.every((b, i) => bytes[i] === b)) return 'legacy';
  if (bytes.length > 262 && new TextDecoder().decode(bytes.subarray(257, 262)) === 'ustar') {
    throw new UnsupportedCheckpointError('torch: the tar-based format of torch < 0.4 is not supported');
  }
  const hex = [...bytes.subarray(0, 8)].map((b) => b.toString(16).padStart(2, '0')).join(' ');
  return fail(`not a torch checkpoint (neither a zip archive nor the legacy pickle magic; first bytes ${hex || 'none'})`);
}

/** Loads a torch checkpoint (zip or legacy format, detected from the bytes). */
export async function loadTorchCheckpoint(input: Uint8Array | ArrayBuffer, opts: TorchLoadOptions = {}): Promise<unknown> {
  const bytes = input instanceof Uint8Array ? input : new Uint8Array(input);
  return detectTorchFormat(bytes) === 'zip' ? loadZip(bytes, opts) : loadLegacy(bytes);
}

function pidTuple(pid: unknown, length: number): readonly unknown[] {
  if (!Array.isArray(pid)) return fail(`persistent id is a ${describe(pid)}, not a tuple`);
  if (pid[0] !== 'storage') {
    if (pid[0] === 'module') throw new UnsupportedCheckpointError('torch: whole-module pickles (persistent id "module") are not supported; save a state_dict');
    fail(`persistent id of unknown kind ${typeof pid[0] === 'string' ? JSON.stringify(pid[0]) : describe(pid[0])}`);
  }
  if (pid.length !== length) fail(`storage persistent id has ${pid.length} fields, expected ${length}`);
  if (typeof pid[2] !== 'string') fail('storage key is not a string');
  if (!Number.isSafeInteger(pid[4]) || (pid[4] as number) < 0) fail(`storage "${pid[2]}" has a bad element count`);
  return pid;
}

/** One StorageRef per key; a key reused with another dtype or size is an error. */
function storageTable() {
  const byKey = new Map<string, StorageRef>();
  return {
    byKey,
    get(key: string, dtype: ReturnType<typeof storageDtype>, numel: number): StorageRef {
      const s = byKey.get(key) ?? new StorageRef(key, dtype, numel);
      if (s.dtype !== dtype || s.numel !== numel) fail(`storage "${key}" is referenced as ${s.numel} x ${s.dtype} and as ${numel} x ${dtype}`);
      byKey.set(key, s);
      return s;
    },
  };
}

async function loadZip(bytes: Uint8Array, opts: TorchLoadOptions): Promise<unknown> {
  const zip = new ZipReader(bytes, opts.inflateRaw);
  const pkls = [...zip.entries.keys()].filter((n) => /^[^/]+\/data\.pkl$/.test(n));
  if (pkls.length !== 1) fail(`expected one "<archive>/data.pkl" entry, found ${pkls.length ? pkls.join(', ') : 'none'}`);
  const prefix = pkls[0].slice(0, -'data.pkl'.length);

  const builder = new TensorBuilder();
  if (zip.entries.has(`${prefix}byteorder`)) {
    const order = new TextDecoder().decode(await zip.read(`${prefix}byteorder`)).trim();
    if (order !== 'little' && order !== 'big') fail(`byteorder entry says "${order}"`);
    builder.bigEndian = order === 'big';
  }
  const storages = storageTable();
  const pkl = await zip.read(pkls[0]);
  const { value, end } = unpickle(pkl, 0, {
    globals: torchGlobals(builder),
    persistentLoad: (pid) => {
      const [, type, key, , numel] = pidTuple(pid, 5);
      return storages.get(key as string, storageDtype(type), numel as number);
    },
  });
  if (end !== pkl.length) fail(`${pkls[0]} has ${pkl.length - end} bytes after its STOP opcode`);

  for (const s of storages.byKey.values()) {
    const name = `${prefix}data/${s.key}`;
    if (!zip.entries.has(name)) fail(`storage "${s.key}" has no entry "${name}"`);
    const data = await zip.read(name);
    if (data.length !== s.numel * ITEM_SIZE[s.dtype]) fail(`entry "${name}" holds ${data.length} bytes for ${s.numel} x ${s.dtype}`);
    s.bytes = data;
  }
  builder.materialize();
  return value;
}

export function loadLegacy(bytes: Uint8Array): unknown {
  let at = 0;
  const next = (opts: Parameters<typeof unpickle>[2] = { globals: new Map() }) => {
    const r = unpickle(bytes, at, opts);
    at = r.end;
    return r.value;
  };
  const magic = next();
  if (magic !== LEGACY_MAGIC) fail(`legacy magic number is ${String(magic)}`);
  const protocol = next();
  if (protocol !== LEGACY_PROTOCOL) throw new UnsupportedCheckpointError(`torch: legacy protocol version ${String(protocol)}`);
  const info = next() as { little_endian?: unknown } | null;
  if (typeof info?.little_endian !== 'boolean') fail('legacy sys info has no little_endian flag');

  const builder = new TensorBuilder();
  builder.bigEndian = !info!.little_endian;
  const roots = storageTable();
  const value = next({
    globals: torchGlobals(builder),
    persistentLoad: (pid) => {
      const [, type, key, , numel, view] = pidTuple(pid, 6);
      const root = roots.get(key as string, storageDtype(type), numel as number);
      if (view === null) return root;
      if (!Array.isArray(view) || view.length !== 3) return fail(`storage "${key}": bad view metadata`);
      const [viewKey, offset, size] = view as [unknown, number, number];
      if (!Number.isSafeInteger(offset) || !Number.isSafeInteger(size) || offset < 0 || size < 0 || offset + size > root.numel) {
        fail(`view "${String(viewKey)}" [${offset}, ${offset + size}) outside storage "${key}" of ${root.numel}`);
      }
      return new StorageRef(String(viewKey), root.dtype, size, { root, offset });
    },
  });

  const keys = next();
  if (!Array.isArray(keys) || !keys.every((k) => typeof k === 'string')) fail('legacy storage key list is not a list of strings');
  const v = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  for (const key of keys as string[]) {
    const s = roots.byKey.get(key);
    if (!s) fail(`storage "${key}" is listed but no tensor references it`);
    if (s!.bytes) fail(`storage "${key}" is listed twice`);
    if (at + 8 > bytes.length) fail(`storage "${key}": the file ends before its element count`);
    const count = v.getBigInt64(at, !builder.bigEndian);
    if (count !== BigInt(s!.numel)) fail(`storage "${key}": ${count} elements in the file, ${s!.numel} in its persistent id`);
    const len = s!.numel * ITEM_SIZE[s!.dtype];
    if (at + 8 + len > bytes.length) fail(`storage "${key}": ${len} bytes of data run past the end of the file (truncated?)`);
    s!.bytes = bytes.subarray(at + 8, at + 8 + len);
    at += 8 + len;
  }
  builder.materialize(); // a storage no key announced fails here, naming it
  return value;
}
