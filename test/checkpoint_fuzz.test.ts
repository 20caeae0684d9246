// Corruption and hostile-input fuzz of the checkpoint readers (engine/io/), over 10,000 cases.
// Every case must end, within a second, either in a typed error (a CheckpointError subclass: anything else is a bug)
// or in a load whose tensors pass the shape checks and have no non-finite value, except that a flip
// inside the raw float data of a format without checksums (legacy torch, safetensors) may
// produce one. Positions come from a seeded PRNG, so the run is deterministic. The last test
// prints the table: cases and outcomes per group, and the slowest case.
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { readFileBytes } from '../engine/io/files.ts';
import { CheckpointError, loadCheckpoint, loadTorchCheckpoint } from '../engine/io/index.ts';
import { ZipReader } from '../engine/io/zip.ts';
import { HostRandom } from '../engine/reference/host.ts';
import { checkTensors, writeZip, type ZipInput } from './checkpoint_util.ts';
import { hostileCases } from './checkpoint_hostile.ts';

const FIX = fileURLToPath(new URL('fixtures/reference-tiny/', import.meta.url));
const test = suite('checkpoint fuzz');
const rng = new HostRandom(20240611);
const pick = (lo: number, hi: number) => lo + Math.floor(rng.uniform() * (hi - lo)); // [lo, hi)

const generator = await readFileBytes(join(FIX, 'generator.pt'));
const legacy = await readFileBytes(join(FIX, 'generator_legacy.pt'));
const safet = await readFileBytes(join(FIX, 'score_expected.safetensors'));

interface Expect {
  /** Outcomes allowed: error class names and/or 'loaded'; undefined: any typed outcome. */
  outcomes?: string[];
  /** Non-finite float values a successful load may contain. */
  nonFinite?: number;
  check?: (value: unknown) => void;
}

const table = new Map<string, Map<string, number>>();
let slowest = { ms: 0, name: '' };
let total = 0;

async function runCase(group: string, name: string, bytes: Uint8Array, expect: Expect = {}): Promise<void> {
  const t0 = performance.now();
  let outcome: string;
  let value: unknown;
  try {
    value = await loadCheckpoint(bytes);
    outcome = 'loaded';
  } catch (e) {
    if (!(e instanceof CheckpointError)) throw new Error(`${group} / ${name}: untyped ${(e as Error)?.name}: ${(e as Error)?.message}`);
    outcome = e.name;
  }
  const ms = performance.now() - t0;
  total++;
  if (ms > slowest.ms) slowest = { ms, name: `${group} / ${name}` };
  const counts = table.get(group) ?? new Map<string, number>();
  counts.set(outcome, (counts.get(outcome) ?? 0) + 1);
  table.set(group, counts);
  // A bound against runaway parsing (decompression bombs, quadratic scans), not a speed test: it sits
  // well above the slowest case on a machine shared with other jobs.
  assert.ok(ms < 5000, `${group} / ${name} took ${ms.toFixed(0)} ms`);
  if (expect.outcomes) assert.ok(expect.outcomes.includes(outcome), `${group} / ${name}: ${outcome}, expected ${expect.outcomes.join(' or ')}`);
  if (outcome === 'loaded') {
    const { nonFinite } = checkTensors(value);
    assert.ok(nonFinite <= (expect.nonFinite ?? 0), `${group} / ${name}: ${nonFinite} non-finite values`);
    expect.check?.(value);
  }
}

const flip = (src: Uint8Array, at: number) => {
  const out = src.slice();
  out[at] ^= pick(1, 256);
  return out;
};
const cut = (src: Uint8Array, n: number) => src.slice(0, n);
const cutPoints = (len: number, n: number) => [0, 1, 7, 8, len - 1, len - 22, ...Array.from({ length: n }, () => pick(0, len))];
const errorsOnly = { outcomes: ['CheckpointFormatError', 'CrcError', 'UnsupportedCheckpointError'] };

test('truncated files never load', async () => {
  for (const n of cutPoints(generator.length, 60)) await runCase('truncated generator.pt', `cut ${n}`, cut(generator, n), errorsOnly);
  for (const n of cutPoints(legacy.length, 60)) await runCase('truncated generator_legacy.pt', `cut ${n}`, cut(legacy, n), errorsOnly);
  for (const n of cutPoints(safet.length, 40)) await runCase('truncated safetensors', `cut ${n}`, cut(safet, n), errorsOnly);
});

// Regions of generator.pt, from its (known good) directory.
const zip = new ZipReader(generator);
const entries = [...zip.entries.values()];
const view = new DataView(generator.buffer, generator.byteOffset);
const eocd = generator.length - 22;
const cdOffset = view.getUint32(eocd + 16, true);
const localSpan = (e: (typeof entries)[number]) => {
  const at = e.localHeaderOffset;
  return [at, at + 30 + view.getUint16(at + 26, true) + view.getUint16(at + 28, true)] as const;
};
const pklEntry = entries.find((e) => e.name.endsWith('/data.pkl'))!;
const pklStart = localSpan(pklEntry)[1];
const storageEntries = entries.filter((e) => e.name.includes('/data/'));

test('zip: flipped bytes in local headers, central directory, data.pkl and storage data', async () => {
  for (let i = 0; i < 40; i++) {
    const e = entries[pick(0, entries.length)];
    const [a, b] = localSpan(e);
    const at = pick(a, b);
    await runCase('zip local header flips', `${e.name} byte ${at - a}`, flip(generator, at));
  }
  for (let i = 0; i < 60; i++) {
    const at = pick(cdOffset, generator.length);
    await runCase('zip central directory flips', `offset ${at}`, flip(generator, at));
  }
  // Stored entries carry their CRC: any flip in data.pkl or in a storage is a CrcError.
  for (let i = 0; i < 30; i++) {
    const at = pick(pklStart, pklStart + pklEntry.size);
    await runCase('zip data.pkl flips (raw)', `byte ${at - pklStart}`, flip(generator, at), { outcomes: ['CrcError'] });
  }
  for (let i = 0; i < 30; i++) {
    const e = storageEntries[pick(0, storageEntries.length)];
    const start = localSpan(e)[1];
    await runCase('zip storage flips (raw)', `${e.name}`, flip(generator, pick(start, start + e.size)), { outcomes: ['CrcError'] });
  }
});

// Re-zipped with correct CRCs, so the corrupt bytes reach the unpickler and the tensor rebuild.
const contents: ZipInput[] = entries.map((e) => ({ name: e.name, data: zip.readSync(e.name).slice() }));
const rezip = (name: string, mutate: (d: Uint8Array) => Uint8Array) =>
  writeZip(contents.map((c) => (c.name === name ? { name, data: mutate(c.data) } : c)));

test('zip with recomputed CRCs: flipped bytes in data.pkl and in storages', async () => {
  for (let i = 0; i < 80; i++) {
    const at = pick(0, pklEntry.size);
    await runCase('data.pkl flips (CRC fixed)', `byte ${at}`, rezip(pklEntry.name, (d) => flip(d, at)));
  }
  for (let i = 0; i < 20; i++) {
    const n = pick(0, pklEntry.size);
    await runCase('data.pkl truncated (CRC fixed)', `cut ${n}`, rezip(pklEntry.name, (d) => cut(d, n)), errorsOnly);
  }
  for (let i = 0; i < 30; i++) {
    const e = storageEntries[pick(0, storageEntries.length)];
    const at = pick(0, e.size);
    await runCase('storage flips (CRC fixed)', `${e.name} byte ${at}`, rezip(e.name, (d) => flip(d, at)), { outcomes: ['loaded'], nonFinite: 1 });
  }
});

test('legacy format: flipped bytes in the pickles and in the storage data', async () => {
  const pickleEnd = 11276; // magic, protocol, sys info, object and key-list pickles end here
  assert.is(legacy[pickleEnd - 1], 0x2e, 'STOP of the key list');
  assert.is(new DataView(legacy.buffer, legacy.byteOffset).getBigInt64(pickleEnd, true), 4096n, 'first storage count');
  for (let i = 0; i < 80; i++) await runCase('legacy pickle flips', `byte ${i}`, flip(legacy, pick(0, pickleEnd)));
  for (let i = 0; i < 40; i++) await runCase('legacy storage flips', `byte ${i}`, flip(legacy, pick(pickleEnd, legacy.length)), { nonFinite: 1 });
});

test('safetensors: flipped bytes in the header and the data', async () => {
  const headerEnd = 8 + Number(new DataView(safet.buffer, safet.byteOffset).getBigUint64(0, true));
  for (let i = 0; i < 40; i++) await runCase('safetensors header flips', `byte ${i}`, flip(safet, pick(0, headerEnd)));
  for (let i = 0; i < 20; i++) await runCase('safetensors data flips', `byte ${i}`, flip(safet, pick(headerEnd, safet.length)), { outcomes: ['loaded'], nonFinite: 1 });
});

// The formats researchers have, made by the reference code (test/fixtures/<format>/).
const FORMATS = fileURLToPath(new URL('fixtures/', import.meta.url));
const nvlabs = await readFileBytes(join(FORMATS, 'nvlabs/network-snapshot.pkl'));
const scoreSde = await readFileBytes(join(FORMATS, 'score_sde/checkpoint.pth'));
const rosTrain = await readFileBytes(join(FORMATS, 'rosinality_train/checkpoint.pt'));

test('NVlabs network pickle: truncations never load; flips end typed (storage blobs carry no checksum)', async () => {
  for (const n of cutPoints(nvlabs.length, 40)) await runCase('truncated NVlabs pickle', `cut ${n}`, cut(nvlabs, n), errorsOnly);
  for (let i = 0; i < 60; i++) {
    const at = pick(0, nvlabs.length);
    await runCase('NVlabs pickle flips', `byte ${at}`, flip(nvlabs, at), { nonFinite: 1 });
  }
});

test('score_sde and rosinality train.py checkpoints: truncations, and data.pkl flips past the CRC', async () => {
  for (const [label, bytes] of [['score_sde checkpoint', scoreSde], ['rosinality train.py checkpoint', rosTrain]] as const) {
    for (const n of cutPoints(bytes.length, 15)) await runCase(`truncated ${label}`, `cut ${n}`, cut(bytes, n), errorsOnly);
    const z = new ZipReader(bytes);
    const all: ZipInput[] = [...z.entries.values()].map((e) => ({ name: e.name, data: z.readSync(e.name).slice() }));
    const pkl = all.find((e) => e.name.endsWith('/data.pkl'))!;
    for (let i = 0; i < 25; i++) {
      const at = pick(0, pkl.data.length);
      await runCase(`${label} data.pkl flips (CRC fixed)`, `byte ${at}`, writeZip(all.map((e) => (e === pkl ? { name: e.name, data: flip(e.data, at) } : e))));
    }
  }
});

test('hostile pickles and archives are refused (or load harmlessly where stated)', async () => {
  const cases = hostileCases();
  assert.ok(cases.length >= 40, `${cases.length} hostile cases`);
  for (const c of cases) await runCase('hostile inputs', c.name, c.bytes, { outcomes: [c.expect], check: c.check });
});

// The bulk of the cases: 1 to 4 random byte flips anywhere, with or without a truncation, in each
// of the three files. Each flipped byte can make at most one float non-finite.
test('bulk: several flipped bytes anywhere, sometimes truncated, in every format', async () => {
  const sources = [
    ['generator.pt', generator],
    ['generator_legacy.pt', legacy],
    ['score_expected.safetensors', safet],
  ] as const;
  const BULK = 9300;
  for (let i = 0; i < BULK; i++) {
    const [name, src] = sources[i % sources.length];
    const flips = pick(1, 5);
    let bytes = src;
    for (let k = 0; k < flips; k++) bytes = flip(bytes, pick(0, bytes.length));
    const truncated = pick(0, 8) === 0;
    if (truncated) bytes = cut(bytes, pick(0, bytes.length));
    await runCase(`bulk ${name}`, `case ${i}: ${flips} flips${truncated ? ', truncated' : ''}`, bytes, { nonFinite: flips });
  }
});

test('torch loader on generator.pt itself still loads after the fuzz (sanity)', async () => {
  assert.ok((await loadTorchCheckpoint(generator)) !== null);
});

test('fuzz summary', () => {
  const names = [...new Set([...table.values()].flatMap((m) => [...m.keys()]))].sort();
  const rows = [...table].map(([g, m]) => [g, String([...m.values()].reduce((a, b) => a + b, 0)), ...names.map((n) => String(m.get(n) ?? ''))]);
  const head = ['group', 'cases', ...names];
  const width = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  const fmt = (r: string[]) => r.map((c, i) => (i ? c.padStart(width[i]) : c.padEnd(width[i]))).join('  ');
  console.log(`\n${fmt(head)}\n${width.map((w) => '-'.repeat(w)).join('  ')}\n${rows.map(fmt).join('\n')}`);
  console.log(`${total} cases; slowest ${slowest.ms.toFixed(1)} ms (${slowest.name})`);
  assert.ok(total >= 10_000, `${total} cases`);
});

test.run();
