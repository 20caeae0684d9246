// Philox 4x32-10 counter-based RNG: the CPU mirror against Random123's known answers, the GPU
// against the mirror (bits and uniforms bit for bit, normals to 1e-6 relative), stream layout
// (independent of the shape, disjoint across offsets, reproducible), normal statistics, bad input.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { engine } from '../engine/engine.ts';
import { scope, type Tensor } from '../engine/tensor.ts';
import { RandomStream, randomBits, randomNormal, randomNormalRows, randomUniform, toWord64 } from '../engine/random.ts';
import { mulhilo32, philox4x32, philoxBitsRef, philoxNormalF64, philoxNormalRef, philoxNormalRowsF64, philoxUniformRef } from '../engine/reference/philox.ts';
import { HostRandom } from '../engine/reference/host.ts';
import { assertClose } from './helpers.ts';

const test = suite('random');

const hex = (a: ArrayLike<number>) => Array.from(a, (x) => (x >>> 0).toString(16).padStart(8, '0')).join(' ');

async function readOnce(t: Tensor): Promise<Float32Array | Uint32Array> {
  const data = await t.read();
  t.dispose();
  return data;
}

/** Index of the first element where a and b differ (as bit patterns), or -1. */
function firstBitDifference(a: Float32Array | Uint32Array, b: Float32Array | Uint32Array): number {
  const ua = new Uint32Array(a.buffer, a.byteOffset, a.length);
  const ub = new Uint32Array(b.buffer, b.byteOffset, b.length);
  if (ua.length !== ub.length) return Math.min(ua.length, ub.length);
  for (let i = 0; i < ua.length; i++) if (ua[i] !== ub[i]) return i;
  return -1;
}

// Random123 kat_vectors, philox4x32_10 (counter, key -> output).
const KAT: { counter: number[]; key: number[]; out: string }[] = [
  { counter: [0, 0, 0, 0], key: [0, 0], out: '6627e8d5 e169c58d bc57ac4c 9b00dbd8' },
  { counter: [0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff], key: [0xffffffff, 0xffffffff], out: '408f276d 41c83b0e a20bc7c6 6d5451fd' },
  { counter: [0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344], key: [0xa4093822, 0x299f31d0], out: 'd16cfe09 94fdcceb 5001e420 24126ea1' },
];

test('CPU mirror: Random123 known-answer vectors for philox4x32_10', () => {
  for (const k of KAT) assert.is(hex(philox4x32(k.counter, k.key)), k.out, `counter ${hex(k.counter)} key ${hex(k.key)}`);
});

test('CPU mirror: 32x32 -> 64 multiply matches BigInt', () => {
  const rng = new HostRandom(7);
  const edge = [0, 1, 0xffff, 0x10000, 0xffffffff, 0x80000000, 0xd2511f53, 0xcd9e8d57];
  const values = [...edge, ...Array.from({ length: 2000 }, () => Math.floor(rng.uniform() * 2 ** 32))];
  for (const a of values) {
    for (const b of edge.concat(values.slice(0, 16))) {
      const p = BigInt(a) * BigInt(b);
      const [hi, lo] = mulhilo32(a, b);
      assert.is(hi, Number(p >> 32n), `hi of ${a} * ${b}`);
      assert.is(lo, Number(p & 0xffffffffn), `lo of ${a} * ${b}`);
    }
  }
});

test('GPU bits equal the CPU mirror bit for bit (odd shapes, 64-bit seeds and offsets)', async () => {
  const cases: { shape: number[]; seed: number | [number, number]; offset: number | [number, number] }[] = [
    { shape: [10007], seed: 0, offset: 0 },
    { shape: [3, 7, 5], seed: 42, offset: 1 },
    { shape: [1], seed: [0xffffffff, 0xffffffff], offset: [0xffffffff, 0xffffffff] },
    { shape: [13, 1, 6], seed: 2 ** 53 - 1, offset: 2 ** 40 + 3 },
  ];
  for (const c of cases) {
    const gpu = await readOnce(randomBits(c.shape, { seed: c.seed, offset: c.offset }));
    const cpu = philoxBitsRef(gpu.length, toWord64(c.seed, 'seed'), toWord64(c.offset, 'offset'));
    const i = firstBitDifference(gpu, cpu);
    assert.is(i, -1, `shape [${c.shape}] seed ${JSON.stringify(c.seed)}: element ${i} gpu ${gpu[i]} cpu ${cpu[i]}`);
  }
});

test('GPU uniforms equal the CPU mirror bit for bit and lie in [0, 1)', async () => {
  for (const [shape, seed, offset] of [[[10001], 5, 0], [[7, 11], 123456789, 99]] as [number[], number, number][]) {
    const gpu = (await readOnce(randomUniform(shape, { seed, offset }))) as Float32Array;
    const cpu = philoxUniformRef(gpu.length, toWord64(seed, 'seed'), toWord64(offset, 'offset'));
    const i = firstBitDifference(gpu, cpu);
    assert.is(i, -1, `shape [${shape}]: element ${i} gpu ${gpu[i]} cpu ${cpu[i]}`);
    assert.ok(gpu.every((u) => u >= 0 && u < 1));
  }
});

/**
 * Normals: relative tolerance; the tiny absolute floor only absorbs the float64 reference's own
 * rounding where z crosses 0 (cos(pi/2) = 6e-17 in float64, exactly 0 on the GPU).
 */
const NORMAL_TOL = { atol: 1e-12, rtol: 1e-6 };

test('GPU normals match the CPU mirror to 1e-6 relative', async () => {
  for (const [shape, seed, offset] of [[[10003], 11, 0], [[5, 3], 8, 2 ** 33]] as [number[], number, number][]) {
    const gpu = (await readOnce(randomNormal(shape, { seed, offset }))) as Float32Array;
    const cpu = philoxNormalF64(gpu.length, toWord64(seed, 'seed'), toWord64(offset, 'offset'));
    // The tally's max rel err, max |a - b| / max(|b|, atol/rtol), within rtol: a bound per element
    // of max(rtol |b|, atol), tighter than atol + rtol |b|.
    const c = assertClose(gpu, cpu, NORMAL_TOL, `normals seed ${seed} offset ${offset}`);
    assert.ok(c.maxRelErr <= NORMAL_TOL.rtol, `max rel err ${c.maxRelErr.toExponential(2)}`);
  }
  // mean and std: |a - b| <= 1e-6 (|mean| + std |z|) with z the float64 normal
  const [mean, std] = [-3, 0.25];
  const gpu = (await readOnce(randomNormal([999], { seed: 3, offset: 4, mean, std }))) as Float32Array;
  const z = philoxNormalF64(999, [3, 0], [4, 0]);
  const ref = philoxNormalRef(999, [3, 0], [4, 0], mean, std);
  for (let i = 0; i < gpu.length; i++) {
    assert.ok(Math.abs(gpu[i] - (mean + std * z[i])) <= 1e-6 * (Math.abs(mean) + std * Math.abs(z[i])), `element ${i}: ${gpu[i]} vs ${ref[i]}`);
  }
});

test('element i depends only on (seed, offset, i): prefixes of larger draws agree', async () => {
  const big = (await readOnce(randomBits([4099], { seed: 9, offset: 7 }))) as Uint32Array;
  for (const shape of [[1], [2, 3], [4097], [3, 5, 7]]) {
    const small = await readOnce(randomBits(shape, { seed: 9, offset: 7 }));
    assert.is(firstBitDifference(small, big.subarray(0, small.length)), -1, `shape [${shape}]`);
  }
  const nBig = (await readOnce(randomNormal([1001], { seed: 9, offset: 7 }))) as Float32Array;
  const nSmall = (await readOnce(randomNormal([3, 3], { seed: 9, offset: 7 }))) as Float32Array;
  assert.is(firstBitDifference(nSmall, nBig.subarray(0, 9)), -1, 'normals');
});

test('same seed and offset reproduce; other offsets and seeds give disjoint streams', async () => {
  const draw = async (seed: number, offset: number) => (await readOnce(randomBits([4096], { seed, offset }))) as Uint32Array;
  const a = await draw(1, 0);
  assert.is(firstBitDifference(a, await draw(1, 0)), -1, 'reproducible');
  const seen = new Set(a);
  // Distinct counters (or keys) per block: any shared word would be a 2^-32 coincidence
  // (expected 4096^2 / 2^32 = 0.004 per pair of draws).
  for (const [seed, offset] of [[1, 1], [1, 2], [2, 0], [1, 2 ** 32]]) {
    const b = await draw(seed, offset);
    const shared = b.filter((x) => seen.has(x)).length;
    assert.ok(shared <= 1, `seed ${seed} offset ${offset}: ${shared} words shared with seed 1 offset 0`);
  }
  // RandomStream counts the offset up by one per draw.
  const s = new RandomStream(1);
  assert.is(firstBitDifference(await readOnce(s.bits([4096])), a), -1);
  assert.is(s.offset, 1);
  const next = await readOnce(s.bits([4096]));
  assert.is(firstBitDifference(next, await draw(1, 1)), -1);
});

test('10^5 normals and uniforms have the right moments', async () => {
  const n = 100_000;
  const z = (await readOnce(randomNormal([n], { seed: 2024, offset: 0 }))) as Float32Array;
  let s1 = 0;
  let s2 = 0;
  let s4 = 0;
  let within1 = 0;
  for (const v of z) {
    s1 += v;
    s2 += v * v;
    s4 += v ** 4;
    if (Math.abs(v) < 1) within1++;
  }
  const mean = s1 / n;
  const variance = s2 / n - mean * mean;
  // 5 standard errors: se(mean) = 1/sqrt(n), se(var) = sqrt(2/n), se(E z^4) = sqrt(96/n).
  assert.ok(Math.abs(mean) < 5 / Math.sqrt(n), `mean ${mean}`);
  assert.ok(Math.abs(variance - 1) < 5 * Math.sqrt(2 / n), `variance ${variance}`);
  assert.ok(Math.abs(s4 / n - 3) < 5 * Math.sqrt(96 / n), `fourth moment ${s4 / n}`);
  assert.ok(Math.abs(within1 / n - 0.682689) < 5 * Math.sqrt(0.2166 / n), `P(|z| < 1) ${within1 / n}`);
  assert.ok(z.every(Number.isFinite));

  const u = (await readOnce(randomUniform([n], { seed: 2024, offset: 1 }))) as Float32Array;
  const um = u.reduce((a, b) => a + b, 0) / n;
  const uv = u.reduce((a, b) => a + (b - um) ** 2, 0) / n;
  assert.ok(Math.abs(um - 0.5) < 5 * Math.sqrt(1 / 12 / n), `uniform mean ${um}`);
  assert.ok(Math.abs(uv - 1 / 12) < 5 * Math.sqrt(1 / 180 / n), `uniform variance ${uv}`);
});

// Offsets (seed 0) whose block 0 holds extreme words, found by searching with the CPU mirror:
// element e's pair of words is (u1 source, angle source); see engine/reference/philox.ts.
const EDGES: [string, number, number][] = [
  ['u1 = 2^-24 (largest radius)', 1205178, 0],
  ['u1 = 1 (radius 0)', 18189822, 2],
  ['angle 0', 9373564, 0],
  ['angle pi/2', 12919292, 2],
  ['angle just below a quadrant edge', 1918735, 2],
  ['angle on a quadrant edge', 8903149, 2],
  ['angle just below 2 pi', 10174669, 0],
];

test('extreme words: finite normals at u1 = 2^-24 and u1 = 1 (no log(0)), accurate at quadrant edges', async () => {
  const rMax = Math.sqrt(-2 * Math.log(2 ** -24));
  for (const [what, offset, e] of EDGES) {
    const words = philoxBitsRef(4, [0, 0], [offset, 0]);
    const hi = [words[e] >>> 8, words[e + 1] >>> 8];
    const gpu = (await readOnce(randomNormal([4], { seed: 0, offset }))) as Float32Array;
    const cpu = philoxNormalF64(4, [0, 0], [offset, 0]);
    for (let i = 0; i < 4; i++) assert.ok(Number.isFinite(gpu[i]) && Math.abs(gpu[i]) <= rMax * (1 + 1e-6), `${what}: element ${i} = ${gpu[i]}`);
    assertClose(gpu, cpu, NORMAL_TOL, `${what} (words ${hi.map((x) => x.toString(16))})`);
  }
  const [z0, z1] = await readOnce(randomNormal([2], { seed: 0, offset: 1205178 }));
  assert.ok(Math.abs(Math.hypot(z0, z1) - rMax) < 1e-5, `the largest radius ${rMax} is reached: ${Math.hypot(z0, z1)}`);
});

test('random ops allocate nothing beyond their outputs', async () => {
  const before = engine().memory().bytesInUse;
  for (let k = 0; k < 20; k++) scope(() => void randomNormal([257], { seed: k }));
  await engine().sync();
  assert.is(engine().memory().bytesInUse, before);
});

test('row streams: the GPU matches the mirror, row [0, 0] is the plain stream, a row is the same at any place in any batch', async () => {
  const rows: [number, number][] = [[5, 1], [0, 0], [9, 2], [2 ** 32 - 1, 7]];
  const seed = 2 ** 33 + 17;
  const gpu = (await readOnce(randomNormalRows([4, 3, 4], rows, { seed, offset: 3 }))) as Float32Array;
  const cpu = philoxNormalRowsF64(12, rows, toWord64(seed, 'seed'), [3, 0]);
  const c = assertClose(gpu, cpu, NORMAL_TOL, 'row normals');
  assert.ok(c.maxRelErr <= NORMAL_TOL.rtol, `max rel err ${c.maxRelErr.toExponential(2)}`);
  // Mirror: the row streams differ from each other, and the key addend wraps mod 2^32.
  assert.is.not(cpu[0], cpu[24], 'rows [5, 1] and [9, 2] differ');
  const plain = (await readOnce(randomNormal([12], { seed, offset: 3 }))) as Float32Array;
  assert.is(firstBitDifference(gpu.subarray(12, 24), plain), -1, 'row [0, 0] = the plain stream');
  for (const [r, row] of rows.entries()) {
    const alone = await readOnce(randomNormalRows([1, 3, 4], [row], { seed, offset: 3 }));
    assert.is(firstBitDifference(alone, gpu.subarray(12 * r, 12 * r + 12)), -1, `row ${r} alone`);
  }
  const s = new RandomStream(seed, 3);
  const viaStream = await readOnce(s.normalRows([4, 12], rows, 0, 1));
  assert.is(firstBitDifference(viaStream, gpu), -1, 'RandomStream.normalRows uses the stream offset');
  assert.is(s.offset, 4);
});

test('bad input gives clear errors', () => {
  assert.throws(() => randomNormalRows([2, 3], [[0, 0], [1, 0]], { seed: 1 }), /hold 3 elements, not a multiple of 4/);
  assert.throws(() => randomNormalRows([2, 4], [[0, 0]], { seed: 1 }), /1 row streams for 2 rows/);
  assert.throws(() => randomNormalRows([1, 4], [[0, -1]], { seed: 1 }), /pair \[id, keyAdd\] of u32/);
  assert.throws(() => randomUniform([4], {} as never), /seed is required/);
  assert.throws(() => randomUniform([4], { seed: -1 }), /seed must be an integer/);
  assert.throws(() => randomUniform([4], { seed: 1.5 }), /seed must be an integer/);
  assert.throws(() => randomUniform([4], { seed: 2 ** 53 }), /seed must be an integer/);
  assert.throws(() => randomBits([4], { seed: [1, 2 ** 32] }), /seed must be .* pair/);
  assert.throws(() => randomBits([4], { seed: 1, offset: -3 }), /offset must be an integer/);
  assert.throws(() => randomNormal([4], { seed: 1, std: -1 }), /std must be finite and >= 0/);
  assert.throws(() => randomNormal([4], { seed: 1, mean: NaN }), /mean must be finite/);
  assert.throws(() => randomNormal([0, 3], { seed: 1 }), /randomNormal: every dimension must be a positive integer/);
  const s = new RandomStream(5);
  assert.throws(() => s.uniform([2, -1]), /positive integer/);
  assert.is(s.offset, 0, 'a failed draw does not consume an offset');
  assert.throws(() => new RandomStream(5, -1), /offset must be an integer/);
});

test.run();
