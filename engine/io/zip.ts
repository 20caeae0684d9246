// A minimal ZIP reader for torch checkpoints: central directory, STORED entries (what torch
// writes), DEFLATE through an inflater (DecompressionStream('deflate-raw') where the runtime has
// one, or an injected function such as node:zlib's inflateRawSync), ZIP64 records and extras, and a
// CRC-32 check of every entry read. Offsets below are byte offsets into the archive.
//
//   EOCD (end of central directory)   sig 0x06054b50, 22 bytes + comment, at the very end
//   ZIP64 EOCD locator                sig 0x07064b50, 20 bytes just before the EOCD
//   ZIP64 EOCD record                 sig 0x06064b50, 64-bit entry count / directory size / offset
//   central directory header          sig 0x02014b50, 46 bytes + name + extra + comment
//   local file header                 sig 0x04034b50, 30 bytes + name + extra, then the data
//   ZIP64 extra field (id 0x0001)     64-bit size, compressed size, local offset: present only for
//                                     the 32-bit fields that read 0xffffffff, in that order
// torch sets flag bit 3 (sizes in a data descriptor, zeros in the local header), so sizes and CRCs
// come from the central directory only. Entries returned by read() are views into the archive.

import { CheckpointFormatError, CrcError, UnsupportedCheckpointError } from './errors.ts';

export interface ZipEntry {
  name: string;
  method: number; // 0 stored, 8 deflate
  flags: number;
  crc32: number;
  compressedSize: number;
  size: number;
  localHeaderOffset: number;
}

/** Inflates raw DEFLATE data to exactly `size` bytes. */
export type InflateRaw = (data: Uint8Array, size: number) => Uint8Array | Promise<Uint8Array>;

const SIG_EOCD = 0x06054b50;
const SIG_LOC64 = 0x07064b50;
const SIG_EOCD64 = 0x06064b50;
const SIG_CEN = 0x02014b50;
const SIG_LOC = 0x04034b50;
const U16_MAX = 0xffff;
const U32_MAX = 0xffffffff;

const fail = (msg: string): never => {
  throw new CheckpointFormatError(`zip: ${msg}`);
};

export function isZip(bytes: Uint8Array): boolean {
  return bytes.length >= 4 && bytes[0] === 0x50 && bytes[1] === 0x4b && bytes[2] === 0x03 && bytes[3] === 0x04;
}

export class ZipReader {
  readonly entries = new Map<string, ZipEntry>();
  private readonly view: DataView;

  constructor(private readonly bytes: Uint8Array, private readonly inflateRaw: InflateRaw | undefined = defaultInflateRaw()) {
    this.view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    this.readDirectory();
  }

  /** A 64-bit field; offsets and stored sizes cannot exceed the archive, inflated sizes may. */
  private u64(at: number, what: string, max = this.bytes.length): number {
    const v = this.view.getBigUint64(at, true);
    if (v > BigInt(max)) fail(`${what} ${v} exceeds ${max === this.bytes.length ? `the archive size ${max}` : max}`);
    return Number(v);
  }

  private readDirectory(): void {
    const b = this.bytes;
    const v = this.view;
    // The EOCD is the last record whose comment runs exactly to the end of the file.
    let eocd = -1;
    for (let p = b.length - 22; p >= Math.max(0, b.length - 22 - U16_MAX); p--) {
      if (v.getUint32(p, true) === SIG_EOCD && p + 22 + v.getUint16(p + 20, true) === b.length) {
        eocd = p;
        break;
      }
    }
    if (eocd < 0) fail(`no end-of-central-directory record in ${b.length} bytes (truncated or not a zip file)`);
    if (v.getUint16(eocd + 4, true) !== 0 || v.getUint16(eocd + 6, true) !== 0) {
      throw new UnsupportedCheckpointError('zip: multi-disk archives are not supported');
    }
    let count: number = v.getUint16(eocd + 10, true);
    let cdSize: number = v.getUint32(eocd + 12, true);
    let cdOffset: number = v.getUint32(eocd + 16, true);
    const loc = eocd - 20;
    const hasLoc = loc >= 0 && v.getUint32(loc, true) === SIG_LOC64;
    if (hasLoc) {
      const rec = this.u64(loc + 8, 'ZIP64 end record offset');
      if (rec + 56 > loc || v.getUint32(rec, true) !== SIG_EOCD64) fail(`no ZIP64 end record at offset ${rec}`);
      const c64 = this.u64(rec + 32, 'ZIP64 entry count');
      const s64 = this.u64(rec + 40, 'ZIP64 directory size');
      const o64 = this.u64(rec + 48, 'ZIP64 directory offset');
      // Fields the 32-bit record saturates come from ZIP64; the others must agree with it.
      if ((count !== U16_MAX && count !== c64) || (cdSize !== U32_MAX && cdSize !== s64) || (cdOffset !== U32_MAX && cdOffset !== o64)) {
        fail('the ZIP64 end record disagrees with the end-of-central-directory record');
      }
      [count, cdSize, cdOffset] = [c64, s64, o64];
    } else if (count === U16_MAX || cdSize === U32_MAX || cdOffset === U32_MAX) {
      fail('the end record needs ZIP64 values but there is no ZIP64 locator');
    }
    const cdEnd = cdOffset + cdSize;
    if (cdEnd > (hasLoc ? loc : eocd)) fail(`central directory [${cdOffset}, ${cdEnd}) runs past its end record`);
    if (count * 46 > cdSize) fail(`${count} entries cannot fit in a ${cdSize}-byte central directory`);

    let p = cdOffset;
    for (let i = 0; i < count; i++) {
      if (p + 46 > cdEnd || v.getUint32(p, true) !== SIG_CEN) fail(`central directory entry ${i} at offset ${p} is missing or cut`);
      const nameLen = v.getUint16(p + 28, true);
      const extraLen = v.getUint16(p + 30, true);
      const commentLen = v.getUint16(p + 32, true);
      const next = p + 46 + nameLen + extraLen + commentLen;
      if (next > cdEnd) fail(`central directory entry ${i} runs past the directory`);
      const name = new TextDecoder().decode(b.subarray(p + 46, p + 46 + nameLen));
      const e: ZipEntry = {
        name,
        flags: v.getUint16(p + 8, true),
        method: v.getUint16(p + 10, true),
        crc32: v.getUint32(p + 16, true),
        compressedSize: v.getUint32(p + 20, true),
        size: v.getUint32(p + 24, true),
        localHeaderOffset: v.getUint32(p + 42, true),
      };
      this.applyZip64Extra(e, p + 46 + nameLen, extraLen);
      if (this.entries.has(name)) fail(`duplicate entry "${name}"`);
      this.entries.set(name, e);
      p = next;
    }
    if (p !== cdEnd) fail(`central directory holds ${cdEnd - p} bytes after its ${count} entries`);
  }

  private applyZip64Extra(e: ZipEntry, at: number, len: number): void {
    const need = [e.size === U32_MAX, e.compressedSize === U32_MAX, e.localHeaderOffset === U32_MAX];
    if (!need.some(Boolean)) return;
    for (let p = at; p + 4 <= at + len; ) {
      const id = this.view.getUint16(p, true);
      const size = this.view.getUint16(p + 2, true);
      if (p + 4 + size > at + len) break;
      if (id === 0x0001) {
        let q = p + 4;
        const take = (what: string, max?: number) => {
          if (q + 8 > p + 4 + size) fail(`entry "${e.name}": ZIP64 extra field too short for the ${what}`);
          const val = this.u64(q, `entry "${e.name}": ZIP64 ${what}`, max);
          q += 8;
          return val;
        };
        if (need[0]) e.size = take('size', Number.MAX_SAFE_INTEGER);
        if (need[1]) e.compressedSize = take('compressed size');
        if (need[2]) e.localHeaderOffset = take('local header offset');
        return;
      }
      p += 4 + size;
    }
    fail(`entry "${e.name}": 32-bit fields are saturated but there is no ZIP64 extra field`);
  }

  /** The compressed bytes of an entry, after checking its local header. */
  private raw(name: string): { e: ZipEntry; data: Uint8Array } {
    const e = this.entries.get(name);
    if (!e) throw new CheckpointFormatError(`zip: no entry "${name}"`);
    if (e.flags & 1) throw new UnsupportedCheckpointError(`zip: entry "${name}" is encrypted`);
    const v = this.view;
    const at = e.localHeaderOffset;
    if (at + 30 > this.bytes.length || v.getUint32(at, true) !== SIG_LOC) fail(`entry "${name}": no local header at offset ${at}`);
    const nameLen = v.getUint16(at + 26, true);
    const start = at + 30 + nameLen + v.getUint16(at + 28, true);
    const localName = new TextDecoder().decode(this.bytes.subarray(at + 30, Math.min(at + 30 + nameLen, this.bytes.length)));
    if (localName !== name) fail(`entry "${name}": the local header names "${localName}"`);
    if (v.getUint16(at + 8, true) !== e.method) fail(`entry "${name}": local and central headers disagree on the compression method`);
    if (start + e.compressedSize > this.bytes.length) fail(`entry "${name}": data [${start}, ${start + e.compressedSize}) runs past the end of the archive`);
    return { e, data: this.bytes.subarray(start, start + e.compressedSize) };
  }

  private check(e: ZipEntry, out: Uint8Array): Uint8Array {
    if (out.length !== e.size) fail(`entry "${e.name}": ${out.length} bytes after decompression, the directory says ${e.size}`);
    const c = crc32(out);
    if (c !== e.crc32) throw new CrcError(e.name, e.crc32, c);
    return out;
  }

  /** A STORED entry, synchronously (DEFLATE entries need `read`). */
  readSync(name: string): Uint8Array {
    const { e, data } = this.raw(name);
    if (e.method !== 0) throw new UnsupportedCheckpointError(`zip: entry "${name}" is compressed (method ${e.method}); use read()`);
    return this.check(e, data);
  }

  async read(name: string): Promise<Uint8Array> {
    const { e, data } = this.raw(name);
    if (e.method === 0) return this.check(e, data);
    if (e.method !== 8) throw new UnsupportedCheckpointError(`zip: entry "${name}" uses compression method ${e.method}; only STORED and DEFLATE are read`);
    // DEFLATE expands at most ~1032:1; a larger declared size is a lie (or a bomb): refuse to allocate.
    if (e.size > e.compressedSize * 1032 + 64) fail(`entry "${name}": declared size ${e.size} is impossible for ${e.compressedSize} DEFLATE bytes`);
    if (!this.inflateRaw) throw new UnsupportedCheckpointError(`zip: entry "${name}" is DEFLATE-compressed and this runtime has no inflater; pass one`);
    let out: Uint8Array;
    try {
      out = await this.inflateRaw(data, e.size);
    } catch (err) {
      if (err instanceof CheckpointFormatError) throw err;
      throw new CheckpointFormatError(`zip: entry "${name}": corrupt DEFLATE data (${(err as Error).message})`);
    }
    return this.check(e, out);
  }
}

let probed: { inflate?: InflateRaw } | undefined;

/** DecompressionStream('deflate-raw') where the runtime has it (browsers, Deno, Node >= 20.12). */
export function defaultInflateRaw(): InflateRaw | undefined {
  if (probed) return probed.inflate;
  probed = {};
  if (typeof DecompressionStream === 'undefined') return undefined;
  try {
    new DecompressionStream('deflate-raw' as CompressionFormat);
  } catch {
    return undefined;
  }
  return (probed.inflate = async (data, size) => {
    const stream = new Blob([data as Uint8Array<ArrayBuffer>]).stream().pipeThrough(new DecompressionStream('deflate-raw' as CompressionFormat));
    const reader = stream.getReader();
    const out = new Uint8Array(size);
    let n = 0;
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      if (n + value.length > size) {
        await reader.cancel(); // a zip bomb or a lying directory: stop at the declared size
        fail(`DEFLATE data inflates past the declared ${size} bytes`);
      }
      out.set(value, n);
      n += value.length;
    }
    return out.subarray(0, n);
  });
}

const CRC_TABLE = (() => {
  const t = new Uint32Array(256 * 4); // slicing-by-4 tables
  for (let i = 0; i < 256; i++) {
    let c = i;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    t[i] = c;
  }
  for (let i = 0; i < 256; i++) {
    for (let s = 1; s < 4; s++) t[s * 256 + i] = (t[(s - 1) * 256 + i] >>> 8) ^ t[t[(s - 1) * 256 + i] & 0xff];
  }
  return t;
})();

/** CRC-32 (IEEE 802.3, as ZIP uses it). */
export function crc32(b: Uint8Array, seed = 0): number {
  const t = CRC_TABLE;
  let c = ~seed >>> 0;
  let i = 0;
  for (; i + 4 <= b.length; i += 4) {
    c ^= b[i] | (b[i + 1] << 8) | (b[i + 2] << 16) | (b[i + 3] << 24);
    c = t[768 + (c & 0xff)] ^ t[512 + ((c >>> 8) & 0xff)] ^ t[256 + ((c >>> 16) & 0xff)] ^ t[c >>> 24];
  }
  for (; i < b.length; i++) c = t[(c ^ b[i]) & 0xff] ^ (c >>> 8);
  return ~c >>> 0;
}
