// Network pickles as stylegan2-ada-pytorch writes them: plain `pickle.dump` output (protocol 2-5) of
// a dict {G, D, G_ema, augment_pipe, training_set_kwargs}. Nothing in the file is executed (see
// engine/io/pickle.ts); these globals are read as data:
//   torch_utils.persistence._reconstruct_persistent_obj(meta)   meta = {type: 'class', version,
//       module_src, class_name, state}: the class's module source is kept as an opaque string and
//       never run; the object is a dict of its `state` (an nn.Module's __dict__: _parameters,
//       _buffers, _modules, attributes) with the record under PERSISTENT (non-enumerable)
//   torch.storage._load_from_bytes(b)    a storage: `b` is a nested legacy torch.save blob holding it
//   torch._utils._rebuild_tensor_v2 / _rebuild_parameter, collections.OrderedDict   as in torch files
//   dnnlib.util.EasyDict                 a dict
//   numpy scalars and dtypes             numbers (engine/io/numpy_globals.ts)
// Everything else is refused by name, persistence records included: a record's state is unpickled
// with the same allow-list.

import { CheckpointFormatError } from './errors.ts';
import { createDict, describe, isPickleDict, unpickle, type GlobalImpl } from './pickle.ts';
import { loadLegacy } from './torch_checkpoint.ts';
import { StorageRef, TensorBuilder, torchGlobals } from './torch_tensor.ts';

export const PERSISTENT = Symbol('persistent class record');

export interface PersistentRecord {
  className: string;
  /** The class's module source, as the pickle holds it; never executed. */
  moduleSrc: string;
  version: number;
}

const fail = (msg: string): never => {
  throw new CheckpointFormatError(`network pickle: ${msg}`);
};

const LEGACY_HEAD = [0x80, 0x02, 0x8a, 0x0a, 0x6c, 0xfc, 0x9c, 0x46, 0xf9, 0x20, 0x6a, 0xa8, 0x50, 0x19];

/**
 * A plain pickle (PROTO 2-5 first) that is neither torch's legacy format (whose first pickle is its
 * magic) nor a safetensors file whose header length happens to start with the same two bytes.
 */
export function isPlainPickle(bytes: Uint8Array): boolean {
  if (bytes.length < 2 || bytes[0] !== 0x80 || bytes[1] < 2 || bytes[1] > 5) return false;
  if (bytes.length >= LEGACY_HEAD.length && LEGACY_HEAD.every((b, i) => bytes[i] === b)) return false;
  if (bytes.length >= 9 && bytes[8] === 0x7b) {
    const n = new DataView(bytes.buffer, bytes.byteOffset, 8).getBigUint64(0, true);
    if (n <= BigInt(bytes.length - 8)) return false; // safetensors: u64 header length, then '{'
  }
  return true;
}

/** The persistence record of an object from a network pickle, or null for plain data. */
export function persistentRecord(x: unknown): PersistentRecord | null {
  return isPickleDict(x) ? ((x as { [PERSISTENT]?: PersistentRecord })[PERSISTENT] ?? null) : null;
}

function reconstruct(args: readonly unknown[]): Record<string, unknown> {
  const [meta] = args;
  if (args.length !== 1 || !isPickleDict(meta)) return fail(`_reconstruct_persistent_obj takes one dict, got ${args.length} argument(s)`);
  const m = meta as Record<string, unknown>;
  if (m.type !== 'class') fail(`persistence record of type ${JSON.stringify(m.type)} (only "class" is read)`);
  if (typeof m.class_name !== 'string' || typeof m.module_src !== 'string') fail('persistence record without class_name / module_src strings');
  if (typeof m.version !== 'number') fail('persistence record without a version');
  if (m.state !== null && !isPickleDict(m.state)) fail(`persistence record "${m.class_name}": state is a ${describe(m.state)}`);
  const obj = createDict();
  for (const [k, v] of Object.entries((m.state ?? {}) as Record<string, unknown>)) Object.defineProperty(obj, k, { value: v, enumerable: true, writable: true, configurable: true });
  const record: PersistentRecord = { className: m.class_name as string, moduleSrc: m.module_src as string, version: m.version as number };
  Object.defineProperty(obj, PERSISTENT, { value: record });
  return obj;
}

function loadFromBytes(args: readonly unknown[]): StorageRef {
  const [blob] = args;
  if (args.length !== 1 || !(blob instanceof Uint8Array)) return fail(`_load_from_bytes takes one bytes object, got a ${describe(blob)}`);
  const s = loadLegacy(blob);
  if (!(s instanceof StorageRef)) return fail(`a nested storage blob holds a ${describe(s)}, not a storage`);
  s.data(); // its bytes were read with the blob; a view of a storage outside the blob fails here
  return s;
}

export function networkPickleGlobals(builder: TensorBuilder): Map<string, GlobalImpl> {
  const g = torchGlobals(builder);
  g.set('torch_utils.persistence._reconstruct_persistent_obj', { call: reconstruct });
  g.set('torch.storage._load_from_bytes', { call: loadFromBytes });
  g.set('dnnlib.util.EasyDict', { call: (a) => (a.length ? fail('EasyDict takes no positional arguments') : createDict()) });
  return g;
}

/** Loads a network pickle into plain objects (tensors as host arrays). */
export function loadNetworkPickle(bytes: Uint8Array): unknown {
  if (!isPlainPickle(bytes)) fail('not a plain pickle (no PROTO 2-5 opcode first)');
  const builder = new TensorBuilder();
  const { value, end } = unpickle(bytes, 0, { globals: networkPickleGlobals(builder) });
  if (end !== bytes.length) fail(`${bytes.length - end} bytes after the STOP opcode`);
  builder.materialize();
  return value;
}
