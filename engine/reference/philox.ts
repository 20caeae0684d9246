// CPU mirror of the counter-based RNG (engine/random.ts, shaders/philox.wgsl): Philox 4x32-10
// (Salmon, Moraes, Dror, Shaw, "Parallel random numbers: as easy as 1, 2, 3", SC 2011).
//
// Legend: key = (k0, k1), the 64-bit seed as two u32 (k0 = low word); counter = (c0, c1, c2, c3);
// a stream = (seed, offset) with offset a 64-bit stream index (o0 = low word, o1 = high word);
// i = element index in a tensor (row-major), b = floor(i / 4) = Philox block of element i.
//
// The stream layout (the GPU does exactly the same, so element i depends only on (seed, offset, i)):
//   block b of stream (seed, offset) = philox4x32_10(counter = (b, 0, o0, o1), key = (k0, k1));
//   element i of randomBits        = word i % 4 of block b;
//   element i of randomUniform     = (bits_i >> 8) * 2^-24, in [0, 1 - 2^-24] (exact in float32);
//   element i of randomNormal      = Box-Muller on the pair of words (2j, 2j+1) of block b, where
//     j = (i % 4) >> 1: u1 = 1 - uniform(word 2j) in (0, 1] (never 0, so log is finite),
//     u2 = uniform(word 2j + 1); r = sqrt(-2 ln u1); even i gets r cos(2 pi u2), odd i r sin(2 pi u2).
// Different offsets use different counters (c2, c3), so their streams never share a block.
//
// Everything here is u32 arithmetic on JS numbers: Math.imul for the low product, and the high
// product from 16-bit halves (each 16x16 product is exact in a double). Bits and uniforms are bit
// for bit what the GPU computes; normals are computed in float64 from the same uniforms and then
// rounded to float32 (the GPU evaluates log/sin/cos in float32: measured agreement 3e-7 relative
// on lavapipe and on an NVIDIA H200, over 1.7e7 values).

/** Philox 4x32 multipliers and Weyl key increments (Random123's PHILOX_M4x32_*, PHILOX_W32_*). */
export const PHILOX_M0 = 0xd2511f53;
export const PHILOX_M1 = 0xcd9e8d57;
export const PHILOX_W0 = 0x9e3779b9;
export const PHILOX_W1 = 0xbb67ae85;
export const PHILOX_ROUNDS = 10;

/** The 64-bit product of two u32 as [hi, lo] u32 words. */
export function mulhilo32(a: number, b: number): [number, number] {
  a >>>= 0;
  b >>>= 0;
  const lo = Math.imul(a, b) >>> 0;
  const aLo = a & 0xffff;
  const aHi = a >>> 16;
  const bLo = b & 0xffff;
  const bHi = b >>> 16;
  const ll = aLo * bLo; // each partial product < 2^32: exact
  const lh = aLo * bHi;
  const hl = aHi * bLo;
  const hh = aHi * bHi;
  // Carry out of the low word: bits 16..31 of ll plus the low halves of the cross products (< 3 * 2^16).
  const mid = (ll >>> 16) + (lh & 0xffff) + (hl & 0xffff);
  const hi = (hh + (lh >>> 16) + (hl >>> 16) + (mid >>> 16)) >>> 0;
  return [hi, lo];
}

/** One Philox 4x32-10 block: 10 rounds of the S-box, bumping the key by (W0, W1) between rounds. */
export function philox4x32(counter: ArrayLike<number>, key: ArrayLike<number>, rounds = PHILOX_ROUNDS): Uint32Array {
  let c0 = counter[0] >>> 0;
  let c1 = counter[1] >>> 0;
  let c2 = counter[2] >>> 0;
  let c3 = counter[3] >>> 0;
  let k0 = key[0] >>> 0;
  let k1 = key[1] >>> 0;
  for (let r = 0; r < rounds; r++) {
    if (r > 0) {
      k0 = (k0 + PHILOX_W0) >>> 0;
      k1 = (k1 + PHILOX_W1) >>> 0;
    }
    const [hi0, lo0] = mulhilo32(PHILOX_M0, c0);
    const [hi1, lo1] = mulhilo32(PHILOX_M1, c2);
    const n0 = (hi1 ^ c1 ^ k0) >>> 0;
    const n2 = (hi0 ^ c3 ^ k1) >>> 0;
    c0 = n0;
    c1 = lo1;
    c2 = n2;
    c3 = lo0;
  }
  return Uint32Array.of(c0, c1, c2, c3);
}

/** A 64-bit value as [low, high] u32 words. */
export type Word64 = readonly [number, number];

/** The first `n` u32 words of stream (seed, offset). */
export function philoxBitsRef(n: number, seed: Word64, offset: Word64): Uint32Array {
  const out = new Uint32Array(n);
  for (let b = 0; 4 * b < n; b++) {
    const block = philox4x32([b, 0, offset[0], offset[1]], seed);
    for (let w = 0; w < 4 && 4 * b + w < n; w++) out[4 * b + w] = block[w];
  }
  return out;
}

/** The uniform in [0, 1) made from one u32 word: its top 24 bits times 2^-24 (exact in float32). */
export function wordToUniform(x: number): number {
  return (x >>> 8) * 2 ** -24;
}

export function philoxUniformRef(n: number, seed: Word64, offset: Word64): Float32Array {
  return Float32Array.from(philoxBitsRef(n, seed, offset), wordToUniform);
}

/** Standard normals (mean 0, std 1) in float64, before the float32 rounding and the mean/std affine map. */
export function philoxNormalF64(n: number, seed: Word64, offset: Word64): Float64Array {
  const bits = philoxBitsRef(4 * Math.ceil(n / 4), seed, offset);
  const out = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    const pair = i - (i % 2); // words (pair, pair + 1) feed elements pair and pair + 1
    const u1 = 1 - wordToUniform(bits[pair]);
    const u2 = wordToUniform(bits[pair + 1]);
    const r = Math.sqrt(-2 * Math.log(u1));
    out[i] = i % 2 === 0 ? r * Math.cos(2 * Math.PI * u2) : r * Math.sin(2 * Math.PI * u2);
  }
  return out;
}

export function philoxNormalRef(n: number, seed: Word64, offset: Word64, mean = 0, std = 1): Float32Array {
  return Float32Array.from(philoxNormalF64(n, seed, offset), (z) => mean + std * z);
}

/**
 * Row streams: row r of rowLen standard normals is drawn as the plain stream would be, except that
 * its blocks count from 0 within the row, counter word c1 is rows[r][0], and rows[r][1] is added to
 * the key's high word (mod 2^32). Row [0, 0] is the plain stream's first rowLen normals.
 */
export function philoxNormalRowsF64(rowLen: number, rows: readonly Word64[], seed: Word64, offset: Word64): Float64Array {
  const out = new Float64Array(rowLen * rows.length);
  rows.forEach(([id, keyAdd], r) => {
    const key: Word64 = [seed[0], (seed[1] + keyAdd) >>> 0];
    for (let b = 0; 4 * b < rowLen; b++) {
      const w = philox4x32([b, id, offset[0], offset[1]], key);
      for (let j = 0; j < 2; j++) {
        const u1 = 1 - wordToUniform(w[2 * j]);
        const u2 = wordToUniform(w[2 * j + 1]);
        const rad = Math.sqrt(-2 * Math.log(u1));
        out[r * rowLen + 4 * b + 2 * j] = rad * Math.cos(2 * Math.PI * u2);
        out[r * rowLen + 4 * b + 2 * j + 1] = rad * Math.sin(2 * Math.PI * u2);
      }
    }
  });
  return out;
}
