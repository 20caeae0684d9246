// safetensors read/write, and our own model save format on top of it.
//
// File layout (the safetensors format of Hugging Face's `safetensors` library):
//   [0, 8)          N: u64 little-endian, the byte length of the header
//   [8, 8+N)        header: UTF-8 JSON `{name: {dtype, shape, data_offsets: [begin, end]}, ...}`
//                   plus an optional `"__metadata__": {string: string}`; may end in spaces
//   [8+N, EOF)      data: raw little-endian elements; offsets are relative to 8+N, row-major
// Rules checked on read: N within the file; every tensor's [begin, end) within the data; tensors
// contiguous and non-overlapping, covering the data exactly; numel(shape) * itemsize == end - begin.
// dtypes: F32 F64 F16 BF16 I64 I32 I16 I8 U32 U8 BOOL (F16/BF16 become float32 on read).
//
// Our save format (`saveModel` / `loadModel`): one .safetensors file whose `__metadata__.config`
// holds the model configuration as a JSON string, so weights and config travel as one file
// that any safetensors reader opens. Other metadata keys are free-form strings.

import { CheckpointFormatError, UnsupportedCheckpointError } from './errors.ts';
import { decodeElements, encodeElements, ITEM_SIZE, numelOf, type HostTensor, type StorageDType } from './host_tensor.ts';

const CODES: Record<string, StorageDType> = {
  F32: 'float32', F64: 'float64', F16: 'float16', BF16: 'bfloat16', I64: 'int64', I32: 'int32',
  I16: 'int16', I8: 'int8', U32: 'uint32', U8: 'uint8', BOOL: 'bool',
};
const CODE_OF = Object.fromEntries(Object.entries(CODES).map(([k, v]) => [v, k])) as Record<StorageDType, string>;
const MAX_HEADER = 100 * 1024 * 1024; // the reference implementation's limit

export interface SafetensorsFile {
  tensors: Map<string, HostTensor>;
  metadata: Record<string, string>;
}

const fail = (msg: string): never => {
  throw new CheckpointFormatError(`safetensors: ${msg}`);
};

export function readSafetensors(input: Uint8Array | ArrayBuffer): SafetensorsFile {
  const bytes = input instanceof Uint8Array ? input : new Uint8Array(input);
  if (bytes.length < 8) fail(`file of ${bytes.length} bytes is shorter than the 8-byte header length`);
  const n64 = new DataView(bytes.buffer, bytes.byteOffset, 8).getBigUint64(0, true);
  if (n64 > BigInt(bytes.length - 8)) fail(`header length ${n64} exceeds the ${bytes.length - 8} bytes after it (truncated file?)`);
  const n = Number(n64);
  if (n > MAX_HEADER) fail(`header length ${n} exceeds the ${MAX_HEADER}-byte limit`);
  let header: unknown;
  try {
    header = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(bytes.subarray(8, 8 + n)));
  } catch (e) {
    fail(`header is not valid UTF-8 JSON (${(e as Error).message})`);
  }
  if (typeof header !== 'object' || header === null || Array.isArray(header)) fail('header is not a JSON object');
  const data = bytes.subarray(8 + n);

  const metadata: Record<string, string> = {};
  const entries: { name: string; dtype: StorageDType; shape: number[]; begin: number; end: number }[] = [];
  for (const [name, e] of Object.entries(header as Record<string, unknown>)) {
    if (name === '__metadata__') {
      if (typeof e !== 'object' || e === null || Array.isArray(e)) fail('__metadata__ is not an object');
      for (const [k, v] of Object.entries(e as Record<string, unknown>)) {
        if (typeof v !== 'string') fail(`__metadata__["${k}"] is not a string`);
        Object.defineProperty(metadata, k, { value: v, enumerable: true, writable: true, configurable: true });
      }
      continue;
    }
    entries.push(parseEntry(name, e, data.length));
  }

  // Contiguous and non-overlapping: sorted by offset, each tensor starts where the previous ended.
  const sorted = [...entries].sort((a, b) => a.begin - b.begin || a.end - b.end);
  let at = 0;
  for (const e of sorted) {
    if (e.begin !== at) fail(`tensor "${e.name}" starts at data offset ${e.begin}, expected ${at} (${e.begin < at ? 'overlap' : 'gap'})`);
    at = e.end;
  }
  if (at !== data.length) fail(`tensors cover ${at} data bytes but the file has ${data.length}`);

  const tensors = new Map<string, HostTensor>();
  for (const e of entries) {
    const { dtype, data: arr } = decodeElements(data.subarray(e.begin, e.end), e.dtype, numelOf(e.shape, e.name));
    const t: HostTensor = { dtype, shape: e.shape, data: arr };
    if (dtype !== e.dtype) t.stored = e.dtype;
    tensors.set(e.name, t);
  }
  return { tensors, metadata };
}

function parseEntry(name: string, e: unknown, dataLength: number) {
  const where = `tensor "${name}"`;
  if (typeof e !== 'object' || e === null) return fail(`${where}: entry is not an object`);
  const { dtype: code, shape, data_offsets: offs } = e as Record<string, unknown>;
  if (typeof code !== 'string') return fail(`${where}: missing dtype`);
  if (!Object.hasOwn(CODES, code)) throw new UnsupportedCheckpointError(`safetensors: ${where}: unsupported dtype "${code}"`);
  const dtype = CODES[code];
  if (!Array.isArray(shape)) return fail(`${where}: shape is not an array`);
  const numel = numelOf(shape as number[], `safetensors: ${where}`);
  if (!Array.isArray(offs) || offs.length !== 2 || !offs.every((o) => Number.isSafeInteger(o) && o >= 0)) {
    return fail(`${where}: data_offsets must be two non-negative integers`);
  }
  const [begin, end] = offs as [number, number];
  if (begin > end || end > dataLength) fail(`${where}: data_offsets [${begin}, ${end}] outside the ${dataLength} data bytes`);
  if (numel * ITEM_SIZE[dtype] !== end - begin) {
    fail(`${where}: shape [${shape.join(', ')}] x ${ITEM_SIZE[dtype]} bytes (${code}) = ${numel * ITEM_SIZE[dtype]} bytes, but data_offsets span ${end - begin}`);
  }
  return { name, dtype, shape: [...(shape as number[])], begin, end };
}

/** Serializes tensors (in the given order) and string metadata. */
export function writeSafetensors(tensors: Map<string, HostTensor> | Record<string, HostTensor>, metadata?: Record<string, string>): Uint8Array {
  const list = tensors instanceof Map ? [...tensors] : Object.entries(tensors);
  const header: Record<string, unknown> = {};
  if (metadata && Object.keys(metadata).length) header.__metadata__ = metadata;
  const blobs: Uint8Array[] = [];
  let at = 0;
  for (const [name, t] of list) {
    if (name === '__metadata__') throw new RangeError('safetensors: "__metadata__" cannot name a tensor');
    const numel = numelOf(t.shape, `safetensors: tensor "${name}"`);
    if (t.data.length !== numel) throw new RangeError(`safetensors: tensor "${name}" has ${t.data.length} values for shape [${t.shape.join(', ')}]`);
    const as = t.stored ?? t.dtype;
    const blob = encodeElements(t, as);
    header[name] = { dtype: CODE_OF[as], shape: t.shape, data_offsets: [at, at + blob.length] };
    blobs.push(blob);
    at += blob.length;
  }
  const json = new TextEncoder().encode(JSON.stringify(header));
  const padded = Math.ceil(json.length / 8) * 8; // keeps the data 8-byte aligned in the file
  const out = new Uint8Array(8 + padded + at);
  new DataView(out.buffer).setBigUint64(0, BigInt(padded), true);
  out.fill(0x20, 8, 8 + padded);
  out.set(json, 8);
  let p = 8 + padded;
  for (const b of blobs) {
    out.set(b, p);
    p += b.length;
  }
  return out;
}

/** Our model format: safetensors with the JSON config in `__metadata__.config`. */
export function saveModel(tensors: Map<string, HostTensor> | Record<string, HostTensor>, config: unknown, metadata: Record<string, string> = {}): Uint8Array {
  return writeSafetensors(tensors, { ...metadata, config: JSON.stringify(config) });
}

export function loadModel(input: Uint8Array | ArrayBuffer): SafetensorsFile & { config: unknown } {
  const file = readSafetensors(input);
  const text = file.metadata.config;
  if (text === undefined) throw new CheckpointFormatError('model file: no "config" entry in the safetensors __metadata__');
  try {
    return { ...file, config: JSON.parse(text) };
  } catch (e) {
    throw new CheckpointFormatError(`model file: __metadata__.config is not JSON (${(e as Error).message})`);
  }
}
