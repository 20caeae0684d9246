// Builders for the checkpoint tests: a pickle opcode writer, a ZIP writer (STORED or DEFLATE,
// optionally with ZIP64 extras and end records), torch zip / legacy checkpoint assemblers, and a
// structural check of loaded values. Test-only: the engine never writes torch checkpoints.
//
//   storages   Map key -> raw little-endian bytes (zip: `<archive>/data/<key>`)
//   PickleWriter.tensor(...)  emits `_rebuild_tensor_v2((storage pid), offset, size, stride, False, OrderedDict())`

import { deflateRawSync } from 'node:zlib';
import { isHostTensor, numelOf, type HostTensor } from '../engine/io/host_tensor.ts';
import { crc32 } from '../engine/io/zip.ts';

const enc = new TextEncoder();
const u16 = (v: number) => [v & 0xff, (v >>> 8) & 0xff];
const u32 = (v: number) => [v & 0xff, (v >>> 8) & 0xff, (v >>> 16) & 0xff, (v >>> 24) & 0xff];
const u64 = (v: number) => [...u32(v % 2 ** 32), ...u32(Math.floor(v / 2 ** 32))];

/** The byte runs one after another. */
function concatBytes(parts: ArrayLike<number>[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const part of parts) {
    out.set(part, at);
    at += part.length;
  }
  return out;
}

export class PickleWriter {
  private readonly out: number[] = [];
  raw(...b: number[]): this {
    for (const x of b) this.out.push(x);
    return this;
  }
  fill(byte: number, n: number): this {
    for (let i = 0; i < n; i++) this.out.push(byte);
    return this;
  }
  text(s: string): this {
    return this.raw(...enc.encode(s));
  }
  proto(n = 2): this {
    return this.raw(0x80, n);
  }
  str(s: string): this {
    const b = enc.encode(s);
    return this.raw(0x58, ...u32(b.length), ...b);
  }
  /** BINBYTES: a Python bytes object. */
  bin(b: Uint8Array): this {
    return this.raw(0x42, ...u32(b.length), ...b);
  }
  int(n: number): this {
    if (n >= 0 && n < 256) return this.raw(0x4b, n);
    if (n >= 0 && n < 65536) return this.raw(0x4d, ...u16(n));
    return this.raw(0x4a, ...u32(n >>> 0));
  }
  global(module: string, name: string): this {
    return this.raw(0x63).text(`${module}\n${name}\n`);
  }
  mark = () => this.raw(0x28);
  tuple = () => this.raw(0x74);
  emptyDict = () => this.raw(0x7d);
  emptyList = () => this.raw(0x5d);
  emptyTuple = () => this.raw(0x29);
  setitem = () => this.raw(0x73);
  setitems = () => this.raw(0x75);
  append = () => this.raw(0x61);
  reduce = () => this.raw(0x52);
  none = () => this.raw(0x4e);
  stop = () => this.raw(0x2e);
  ints(xs: number[]): this {
    this.mark();
    for (const x of xs) this.int(x);
    return this.tuple();
  }
  /** A tensor over storage `key`; legacy ids carry a sixth field (view metadata or None). */
  tensor(t: { type: string; key: string; numel: number; offset?: number; size: number[]; stride: number[]; legacy?: boolean; view?: [string, number, number] }): this {
    this.global('torch._utils', '_rebuild_tensor_v2').mark();
    this.mark().str('storage').global('torch', t.type).str(t.key).str('cpu').int(t.numel);
    if (t.legacy) {
      if (t.view) this.mark().str(t.view[0]).int(t.view[1]).int(t.view[2]).tuple();
      else this.none();
    }
    this.tuple().raw(0x51); // BINPERSID
    this.int(t.offset ?? 0).ints(t.size).ints(t.stride).raw(0x89);
    this.global('collections', 'OrderedDict').emptyTuple().reduce();
    return this.tuple().reduce();
  }
  bytes(): Uint8Array {
    return Uint8Array.from(this.out);
  }
}

export interface ZipInput {
  name: string;
  data: Uint8Array;
  deflate?: boolean;
}

/** A ZIP archive; `zip64` saturates the 32-bit fields and writes ZIP64 extras and end records. */
export function writeZip(entries: ZipInput[], opts: { zip64?: boolean } = {}): Uint8Array {
  const parts: number[][] = [];
  const central: number[] = [];
  let at = 0;
  for (const e of entries) {
    const name = [...enc.encode(e.name)];
    const body = e.deflate ? new Uint8Array(deflateRawSync(e.data)) : e.data;
    const method = e.deflate ? 8 : 0;
    const crc = crc32(e.data);
    const local = [...u32(0x04034b50), ...u16(45), ...u16(0x0800), ...u16(method), 0, 0, 0, 0, ...u32(crc), ...u32(body.length), ...u32(e.data.length), ...u16(name.length), ...u16(0), ...name];
    parts.push(local, [...body]);
    const big = opts.zip64;
    const extra = big ? [...u16(1), ...u16(24), ...u64(e.data.length), ...u64(body.length), ...u64(at)] : [];
    const sat = (v: number) => (big ? 0xffffffff : v);
    central.push(...u32(0x02014b50), ...u16(0x031e), ...u16(45), ...u16(0x0800), ...u16(method), 0, 0, 0, 0, ...u32(crc),
      ...u32(sat(body.length)), ...u32(sat(e.data.length)), ...u16(name.length), ...u16(extra.length), ...u16(0), ...u16(0), ...u16(0), ...u32(0),
      ...u32(sat(at)), ...name, ...extra);
    at += local.length + body.length;
  }
  const cdOffset = at;
  const tail: number[] = [...central];
  if (opts.zip64) {
    const rec = cdOffset + central.length;
    tail.push(...u32(0x06064b50), ...u64(44), ...u16(45), ...u16(45), ...u32(0), ...u32(0), ...u64(entries.length), ...u64(entries.length), ...u64(central.length), ...u64(cdOffset));
    tail.push(...u32(0x07064b50), ...u32(0), ...u64(rec), ...u32(1));
    tail.push(...u32(0x06054b50), 0, 0, 0, 0, ...u16(0xffff), ...u16(0xffff), ...u32(0xffffffff), ...u32(0xffffffff), 0, 0);
  } else {
    tail.push(...u32(0x06054b50), 0, 0, 0, 0, ...u16(entries.length), ...u16(entries.length), ...u32(central.length), ...u32(cdOffset), 0, 0);
  }
  parts.push(tail);
  return concatBytes(parts);
}

export function torchZip(pkl: Uint8Array, storages: Map<string, Uint8Array>, opts: { deflate?: boolean; zip64?: boolean; archive?: string } = {}): Uint8Array {
  const a = opts.archive ?? 'archive';
  return writeZip(
    [
      { name: `${a}/data.pkl`, data: pkl, deflate: opts.deflate },
      ...[...storages].map(([k, d]) => ({ name: `${a}/data/${k}`, data: d, deflate: opts.deflate })),
      { name: `${a}/version`, data: enc.encode('3\n') },
    ],
    { zip64: opts.zip64 },
  );
}

/** Legacy format: magic, protocol, sys info, object, key list, then count + bytes per storage. */
export function torchLegacy(objPkl: Uint8Array, storages: [key: string, numel: number, bytes: Uint8Array][]): Uint8Array {
  const magic = new PickleWriter().proto().raw(0x8a, 10, 0x6c, 0xfc, 0x9c, 0x46, 0xf9, 0x20, 0x6a, 0xa8, 0x50, 0x19).stop();
  const protocol = new PickleWriter().proto().int(1001).stop();
  const info = new PickleWriter().proto().emptyDict().mark().str('protocol_version').int(1001).str('little_endian').raw(0x88).setitems().stop();
  const keys = new PickleWriter().proto().emptyList().mark();
  for (const [k] of storages) keys.str(k);
  keys.raw(0x65).stop(); // APPENDS
  const chunks = [magic.bytes(), protocol.bytes(), info.bytes(), objPkl, keys.bytes()];
  for (const [, n, b] of storages) chunks.push(Uint8Array.from(u64(n)), b);
  return concatBytes(chunks);
}

export const bytesOf = (a: ArrayBufferView) => new Uint8Array(a.buffer, a.byteOffset, a.byteLength);

/**
 * Every HostTensor reachable from `value` (each container once, so shared structure is cheap):
 * throws unless numel(shape) == data.length and the typed array matches the dtype. Returns the
 * tensors and how many float values are not finite.
 */
export function checkTensors(value: unknown): { tensors: HostTensor[]; nonFinite: number } {
  const seen = new Set<object>();
  const tensors: HostTensor[] = [];
  let nonFinite = 0;
  const todo: unknown[] = [value];
  while (todo.length) {
    const v = todo.pop();
    if (typeof v !== 'object' || v === null || seen.has(v)) continue;
    seen.add(v);
    if (isHostTensor(v)) {
      const n = numelOf(v.shape, 'checkTensors');
      if (n !== v.data.length) throw new Error(`tensor [${v.shape}] holds ${v.data.length} values`);
      const want = { float32: Float32Array, float64: Float64Array, int64: BigInt64Array, int32: Int32Array, int16: Int16Array, int8: Int8Array, uint8: Uint8Array, uint32: Uint32Array, bool: Uint8Array }[v.dtype];
      if (!(v.data instanceof want)) throw new Error(`dtype ${v.dtype} with a ${v.data.constructor.name}`);
      if (v.data instanceof Float32Array || v.data instanceof Float64Array) for (const x of v.data) if (!Number.isFinite(x)) nonFinite++;
      tensors.push(v);
    } else if (Array.isArray(v)) for (const x of v) todo.push(x);
    else if (!ArrayBuffer.isView(v)) for (const x of Object.values(v)) todo.push(x);
  }
  return { tensors, nonFinite };
}
