// Host-side tensors as checkpoint readers return them (the type: engine/host_tensor.ts), always a
// fresh copy that owns its buffer (never a view into the file bytes), and the element codecs.
//
// Legend
//   StorageDType  a dtype as stored on disk (safetensors F16 / torch HalfStorage are 'float16')
//   HostDType     a dtype as held in memory: float16 and bfloat16 are widened to float32 on read
//                 (the engine computes in f32), and the tensor remembers `stored` for writing back
//   int64         BigInt64Array (exact); `toFloat64` converts to numbers, refusing |v| > 2^53
//   numel         product of the shape (1 for a scalar, shape [])

import { CheckpointFormatError } from './errors.ts';
import type { HostData, HostDType, HostTensor, StorageDType } from '../host_tensor.ts';

export type { HostData, HostDType, HostTensor, StorageDType } from '../host_tensor.ts';

export const ITEM_SIZE: Record<StorageDType, number> = {
  float32: 4, float64: 8, int64: 8, int32: 4, int16: 2, int8: 1, uint8: 1, uint32: 4, bool: 1, float16: 2, bfloat16: 2,
};

const HOST_LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

/** Product of a shape, checking every dimension is a non-negative safe integer. */
export function numelOf(shape: readonly number[], what: string): number {
  let n = 1;
  for (const d of shape) {
    if (!Number.isSafeInteger(d) || d < 0) throw new CheckpointFormatError(`${what}: bad dimension ${String(d)} in shape [${shape.join(', ')}]`);
    n *= d;
  }
  if (!Number.isSafeInteger(n)) throw new CheckpointFormatError(`${what}: shape [${shape.join(', ')}] has too many elements`);
  return n;
}

export function isHostTensor(v: unknown): v is HostTensor {
  if (typeof v !== 'object' || v === null) return false;
  const t = v as Partial<HostTensor>;
  return typeof t.dtype === 'string' && Array.isArray(t.shape) && ArrayBuffer.isView(t.data);
}

/** Copies `numel` little-endian (or big-endian) elements out of `bytes` into a host array. */
export function decodeElements(bytes: Uint8Array, dtype: StorageDType, numel: number, bigEndian = false): { dtype: HostDType; data: HostData } {
  const size = ITEM_SIZE[dtype];
  if (bytes.length < numel * size) throw new CheckpointFormatError(`decode ${dtype}: ${bytes.length} bytes for ${numel} elements`);
  // An aligned copy that owns its buffer. Not bytes.slice(): on a Node Buffer that is a view into
  // the (pooled) buffer, not a copy, and the typed arrays below would read from its start.
  const raw = new Uint8Array(bytes.subarray(0, numel * size));
  if (size > 1 && bigEndian === HOST_LITTLE_ENDIAN) swapBytes(raw, size);
  const buf = raw.buffer;
  switch (dtype) {
    case 'float32': return { dtype, data: new Float32Array(buf) };
    case 'float64': return { dtype, data: new Float64Array(buf) };
    case 'int64': return { dtype, data: new BigInt64Array(buf) };
    case 'int32': return { dtype, data: new Int32Array(buf) };
    case 'int16': return { dtype, data: new Int16Array(buf) };
    case 'int8': return { dtype, data: new Int8Array(buf) };
    case 'uint32': return { dtype, data: new Uint32Array(buf) };
    case 'uint8':
    case 'bool': return { dtype, data: raw };
    case 'float16': return { dtype: 'float32', data: Float32Array.from(new Uint16Array(buf), f16ToF32) };
    case 'bfloat16': return { dtype: 'float32', data: Float32Array.from(new Uint16Array(buf), bf16ToF32) };
  }
}

/** Little-endian bytes of a host tensor, optionally narrowed to float16 / bfloat16. */
export function encodeElements(t: HostTensor, as: StorageDType = t.stored ?? t.dtype): Uint8Array {
  let out: Uint8Array;
  if ((as === 'float16' || as === 'bfloat16') && t.dtype === 'float32') {
    const f = as === 'float16' ? f32ToF16 : f32ToBf16;
    out = new Uint8Array(Uint16Array.from(t.data as Float32Array, f).buffer);
  } else if (as === t.dtype) {
    out = new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength).slice();
  } else {
    throw new CheckpointFormatError(`encode: cannot store a ${t.dtype} tensor as ${as}`);
  }
  if (!HOST_LITTLE_ENDIAN && ITEM_SIZE[as] > 1) swapBytes(out, ITEM_SIZE[as]);
  return out;
}

function swapBytes(b: Uint8Array, size: number): void {
  for (let i = 0; i + size <= b.length; i += size) b.subarray(i, i + size).reverse();
}

const F32 = new Float32Array(1);
const U32 = new Uint32Array(F32.buffer);

export function f16ToF32(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const exp = (h >> 10) & 0x1f;
  const frac = h & 0x3ff;
  if (exp === 0) return sign * frac * 2 ** -24; // zero and subnormals
  if (exp === 31) return frac ? NaN : sign * Infinity;
  return sign * (1 + frac / 1024) * 2 ** (exp - 15);
}

function bf16ToF32(h: number): number {
  U32[0] = h << 16;
  return F32[0];
}

/** float32 -> float16 bits, round to nearest even (overflow to infinity, NaN kept). */
export function f32ToF16(x: number): number {
  F32[0] = x;
  const b = U32[0];
  const sign = (b >>> 16) & 0x8000;
  const exp = (b >>> 23) & 0xff;
  let mant = b & 0x7fffff;
  if (exp === 0xff) return sign | 0x7c00 | (mant ? 0x200 : 0);
  let e = exp - 127 + 15;
  if (e >= 31) return sign | 0x7c00;
  if (e <= 0) {
    if (e < -10) return sign; // below half the smallest subnormal
    mant |= 0x800000; // implicit bit, then shift into the subnormal range
    const shift = 14 - e;
    const half = 1 << (shift - 1);
    const rest = mant & ((1 << shift) - 1);
    let m = mant >>> shift;
    if (rest > half || (rest === half && m & 1)) m++;
    return sign | m; // a carry into bit 10 correctly yields the smallest normal
  }
  let m = mant >>> 13;
  const rest = mant & 0x1fff;
  if (rest > 0x1000 || (rest === 0x1000 && m & 1)) m++;
  if (m === 0x400) {
    m = 0;
    e++;
    if (e >= 31) return sign | 0x7c00;
  }
  return sign | (e << 10) | m;
}

function f32ToBf16(x: number): number {
  F32[0] = x;
  const b = U32[0];
  if ((b & 0x7fffffff) > 0x7f800000) return ((b >>> 16) | 0x40) & 0xffff; // quiet NaN
  return ((b + 0x7fff + ((b >>> 16) & 1)) >>> 16) & 0xffff;
}

/** Numbers of any host tensor as float64; int64 values beyond 2^53 are an error, not a rounding. */
export function toFloat64(t: HostTensor): Float64Array {
  if (!(t.data instanceof BigInt64Array)) return Float64Array.from(t.data as ArrayLike<number>);
  const out = new Float64Array(t.data.length);
  for (let i = 0; i < out.length; i++) {
    const v = t.data[i];
    if (v > BigInt(Number.MAX_SAFE_INTEGER) || v < BigInt(Number.MIN_SAFE_INTEGER)) throw new RangeError(`toFloat64: int64 value ${v} is not exactly representable`);
    out[i] = Number(v);
  }
  return out;
}

/**
 * A floating-point tensor as float32 (float32 as it is, float64 narrowed; int64 too when `integers`,
 * for files that store buffers as integers), or null for any other dtype: the caller names the file.
 */
export function asFloat32(t: HostTensor, integers = false): HostTensor<Float32Array> | null {
  if (t.dtype === 'float32') return { dtype: 'float32', shape: t.shape, data: t.data as Float32Array };
  if (t.dtype === 'float64') return { dtype: 'float32', shape: t.shape, data: Float32Array.from(t.data as Float64Array) };
  if (integers && t.dtype === 'int64') return { dtype: 'float32', shape: t.shape, data: Float32Array.from(toFloat64(t)) };
  return null;
}

/**
 * Every tensor of a nested checkpoint object, by dotted path: `{g_ema: {"style.1.weight": T}}`
 * gives `g_ema.style.1.weight`; list items are numbered. Insertion order is kept.
 */
export function flattenTensors(value: unknown, prefix = ''): Map<string, HostTensor> {
  const out = new Map<string, HostTensor>();
  const walk = (v: unknown, path: string, depth: number): void => {
    if (depth > 1000) throw new CheckpointFormatError(`flattenTensors: nesting deeper than 1000 at "${path}"`);
    if (isHostTensor(v)) out.set(path, v);
    else if (Array.isArray(v)) v.forEach((x, i) => walk(x, path ? `${path}.${i}` : String(i), depth + 1));
    else if (typeof v === 'object' && v !== null && !ArrayBuffer.isView(v)) {
      for (const [k, x] of Object.entries(v)) walk(x, path ? `${path}.${k}` : k, depth + 1);
    }
  };
  walk(value, prefix, 0);
  return out;
}
