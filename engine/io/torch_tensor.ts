// torch storages and tensors as the unpickler sees them, and the allow-list of globals a torch
// checkpoint may name. Tensors are rebuilt from (storage, storage_offset, size, stride) in two
// steps: `rebuild` validates the view when the pickle reduces `_rebuild_tensor_v2`, and
// `materialize` copies the elements once the storage bytes are known (in the legacy format they
// follow the pickle). Non-contiguous views are gathered into a fresh row-major array.
//
//   storage      a flat array of `numel` elements of one dtype (zip: entry `<archive>/data/<key>`)
//   offset       storage index of element [0, ..., 0]
//   size/stride  per dimension, in elements; element [i0, i1, ...] is at offset + sum(i_d * stride_d)

import { CheckpointFormatError, UnsupportedCheckpointError } from './errors.ts';
import { decodeElements, isHostTensor, ITEM_SIZE, numelOf, type HostData, type HostTensor, type StorageDType } from './host_tensor.ts';
import { numpyGlobals } from './numpy_globals.ts';
import { createDict, createRecord, describe, GlobalRef, isPickleDict, setKey, type GlobalImpl } from './pickle.ts';

export const STORAGE_TYPES: Record<string, StorageDType> = {
  FloatStorage: 'float32', HalfStorage: 'float16', BFloat16Storage: 'bfloat16', DoubleStorage: 'float64',
  LongStorage: 'int64', IntStorage: 'int32', ShortStorage: 'int16', CharStorage: 'int8',
  ByteStorage: 'uint8', BoolStorage: 'bool',
};

/** Copies of views sharing elements (stride 0, overlaps) may not grow past this many elements. */
const MAX_EXPANDED = 1 << 24;

export class StorageRef {
  /** Raw bytes (numel * itemsize), set once read; for a view, taken from `base`. */
  bytes?: Uint8Array;
  constructor(
    readonly key: string,
    readonly dtype: StorageDType,
    readonly numel: number,
    readonly base?: { root: StorageRef; offset: number },
  ) {}

  data(): Uint8Array {
    const size = ITEM_SIZE[this.dtype];
    if (this.base) {
      const root = this.base.root.data();
      return root.subarray(this.base.offset * size, (this.base.offset + this.numel) * size);
    }
    if (!this.bytes) throw new CheckpointFormatError(`torch: storage "${this.key}" has no data in the file`);
    return this.bytes;
  }
}

interface Job {
  tensor: HostTensor;
  storage: StorageRef;
  offset: number;
  stride: number[];
}

const fail = (msg: string): never => {
  throw new CheckpointFormatError(`torch: ${msg}`);
};

const intTuple = (x: unknown, what: string): number[] => {
  if (!Array.isArray(x) || !x.every((d) => Number.isSafeInteger(d) && d >= 0)) fail(`${what} is not a tuple of non-negative integers: ${describe(x)}`);
  return [...(x as number[])];
};

export class TensorBuilder {
  private readonly jobs: Job[] = [];
  /** The file's byte order (legacy sys info, or the zip's `byteorder` entry). */
  bigEndian = false;

  /** `_rebuild_tensor_v2(storage, storage_offset, size, stride, requires_grad, hooks[, metadata])`. */
  rebuild(args: readonly unknown[]): HostTensor {
    const [storage, offset, sizeArg, strideArg] = args;
    if (!(storage instanceof StorageRef)) return fail(`tensor storage is a ${describe(storage)}, not a persistent storage`);
    if (!Number.isSafeInteger(offset) || (offset as number) < 0) fail(`bad storage offset ${String(offset)}`);
    const shape = intTuple(sizeArg, 'tensor size');
    const stride = intTuple(strideArg, 'tensor stride');
    if (stride.length !== shape.length) fail(`size [${shape}] and stride [${stride}] differ in length`);
    const where = `tensor [${shape.join(', ')}] on storage "${storage.key}"`;
    const numel = numelOf(shape, `torch: ${where}`);
    if (numel > 0) {
      const last = (offset as number) + shape.reduce((acc, d, i) => acc + (d - 1) * stride[i], 0);
      if (last >= storage.numel) fail(`${where}: offset ${offset} and stride [${stride}] reach element ${last} of a storage of ${storage.numel}`);
      if (numel > storage.numel && numel > MAX_EXPANDED) fail(`${where}: an expanded view of ${numel} elements over ${storage.numel}`);
    }
    const dtype = storage.dtype === 'float16' || storage.dtype === 'bfloat16' ? 'float32' : storage.dtype;
    const tensor: HostTensor = { dtype, shape, data: new Float32Array(0) }; // data set by materialize()
    if (dtype !== storage.dtype) tensor.stored = storage.dtype;
    this.jobs.push({ tensor, storage, offset: offset as number, stride });
    return tensor;
  }

  /** Fills every rebuilt tensor from its storage bytes. */
  materialize(): void {
    for (const { tensor, storage, offset, stride } of this.jobs) {
      const size = ITEM_SIZE[storage.dtype];
      const shape = tensor.shape;
      const numel = numelOf(shape, 'tensor');
      const bytes = storage.data();
      let contiguous = true;
      for (let d = shape.length - 1, expect = 1; d >= 0; d--) {
        if (shape[d] !== 1 && stride[d] !== expect) contiguous = false;
        expect *= shape[d];
      }
      if (numel === 0 || contiguous) {
        tensor.data = decodeElements(bytes.subarray(offset * size), storage.dtype, numel, this.bigEndian).data;
        continue;
      }
      const span = 1 + shape.reduce((acc, d, i) => acc + (d - 1) * stride[i], 0);
      const src = decodeElements(bytes.subarray(offset * size), storage.dtype, span, this.bigEndian).data;
      tensor.data = gather(src, shape, stride, numel);
    }
    this.jobs.length = 0;
  }
}

/** Row-major copy of a strided view: out[i] = src[sum(index_d(i) * stride_d)]. */
function gather(src: HostData, shape: number[], stride: number[], numel: number): HostData {
  const out = new (src.constructor as new (n: number) => HostData)(numel);
  const o = out as unknown as { [i: number]: number | bigint };
  const s = src as unknown as { [i: number]: number | bigint };
  const idx = new Array<number>(shape.length).fill(0);
  let at = 0;
  for (let i = 0; i < numel; i++) {
    o[i] = s[at];
    for (let d = shape.length - 1; d >= 0; d--) {
      at += stride[d];
      if (++idx[d] < shape[d]) break;
      at -= stride[d] * shape[d];
      idx[d] = 0;
    }
  }
  return out;
}

/**
 * The allow-list of globals a torch checkpoint may name: plain-data constructors only. Storage
 * types are data (their dtype), never called; numpy scalars and dtypes are numbers and data
 * (engine/io/numpy_globals.ts); an argparse.Namespace is a record of its fields. Anything else is
 * refused by the unpickler.
 */
export function torchGlobals(builder: TensorBuilder): Map<string, GlobalImpl> {
  const rebuild: GlobalImpl = { call: (args) => builder.rebuild(args) };
  const g = new Map<string, GlobalImpl>([
    ['collections.OrderedDict', { call: orderedDict }],
    ['torch._utils._rebuild_tensor_v2', rebuild],
    ['torch._utils._rebuild_tensor', rebuild],
    ['torch._utils._rebuild_parameter', { call: rebuildParameter }],
  ]);
  for (const [name, dtype] of Object.entries(STORAGE_TYPES)) g.set(`torch.${name}`, { data: dtype });
  for (const [name, impl] of numpyGlobals()) g.set(name, impl);
  // Protocol 2 has no bytes opcode: bytes (a numpy scalar's payload) are `_codecs.encode(str, 'latin1')`.
  g.set('_codecs.encode', { call: latin1Bytes });
  // Training scripts save their argparse options; a Namespace is the record of its fields.
  g.set('argparse.Namespace', { call: (args) => (args.length ? fail('argparse.Namespace takes no arguments') : createRecord()) });
  return g;
}

function latin1Bytes(args: readonly unknown[]): Uint8Array {
  const [text, encoding] = args;
  if (args.length !== 2 || typeof text !== 'string' || encoding !== 'latin1') return fail("_codecs.encode takes a str and 'latin1'");
  const out = new Uint8Array(text.length);
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c > 0xff) fail('_codecs.encode: a character outside latin-1');
    out[i] = c;
  }
  return out;
}

function orderedDict(args: readonly unknown[]): Record<string, unknown> {
  const d = createDict();
  if (args.length === 0) return d;
  const [items] = args;
  if (args.length > 1 || !Array.isArray(items)) return fail('OrderedDict takes no arguments or one list of pairs');
  for (const kv of items) {
    if (!Array.isArray(kv) || kv.length !== 2) fail('OrderedDict item is not a (key, value) pair');
    setKey(d, kv[0], kv[1]);
  }
  return d;
}

/** `_rebuild_parameter(data, requires_grad, backward_hooks)`: a Parameter is its tensor here. */
function rebuildParameter(args: readonly unknown[]): unknown {
  const [data, , hooks] = args;
  if (!isHostTensor(data)) fail(`_rebuild_parameter of a ${describe(data)}, not a tensor`);
  if (hooks !== undefined && !(isPickleDict(hooks) && Object.keys(hooks).length === 0)) {
    throw new UnsupportedCheckpointError('torch: a Parameter with backward hooks');
  }
  return data;
}

/** The dtype of a storage type named in a persistent id (`torch.FloatStorage` ...). */
export function storageDtype(x: unknown): StorageDType {
  if (x instanceof GlobalRef && typeof x.impl.data === 'string' && x.qualname.startsWith('torch.')) return x.impl.data as StorageDType;
  return fail(`persistent id names a ${describe(x)} where a storage type belongs`);
}
