// sgilo tune's search, the tuned-values file and its lookup, and the protocol's statistics
// (paired differences, posterior calibration), on hand-made inputs with hand-computed answers.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { configFromValues, lookupTuned, nextPoint, parseTunedFile, patternSearch, searchSpace, startValues, VARIANTS, type Ladder, type TunedFile } from '../samplers/inverse/tuning.ts';
import { methodConfig } from '../samplers/inverse/setup.ts';
import { calibration, meanSem, pairedDifference, pearson } from '../samplers/inverse/protocol.ts';
import type { MethodRun } from '../samplers/inverse/reconstruct.ts';

const test = suite('tuning');

const LADDERS: Ladder[] = [
  { name: 'a', values: [0, 1, 2, 3, 4, 5, 6], start: 1 },
  { name: 'b', values: [10, 20, 30, 40], start: 0 },
];
// A bowl with its minimum at a = 5, b = 30, off the start point.
const bowl = (c: Record<string, number | string>) => (Number(c.a) - 5) ** 2 + ((Number(c.b) - 30) / 10) ** 2;

test('the search starts at the start point, never repeats a point, keeps to its budget and walks to the minimum', async () => {
  const seen: string[] = [];
  const r = await patternSearch(LADDERS, 40, async (c) => (seen.push(JSON.stringify(c)), bowl(c)));
  assert.equal(seen[0], JSON.stringify({ a: 1, b: 10 }));
  assert.is(new Set(seen).size, seen.length, 'no point twice');
  assert.equal(r.best, { a: 5, b: 30 });
  assert.is(r.bestScore, 0);
  const few = await patternSearch(LADDERS, 3, async (c) => bowl(c));
  assert.is(few.trials.length, 3);
  // Every point of the 7 x 4 grid is reachable: a budget above it stops at 28.
  assert.is((await patternSearch(LADDERS, 100, async () => 1)).trials.length, 28);
});

test('the next point is the nearest untried one: larger moves of earlier parameters first', () => {
  assert.equal(nextPoint(LADDERS, [1, 0], new Set(['1,0'])), [2, 0]);
  assert.equal(nextPoint(LADDERS, [1, 0], new Set(['1,0', '2,0'])), [0, 0]);
  assert.equal(nextPoint(LADDERS, [1, 0], new Set(['1,0', '2,0', '0,0'])), [1, 1]);
  // Distance 1 exhausted: distance 2, the first parameter's move first.
  assert.equal(nextPoint(LADDERS, [1, 0], new Set(['1,0', '2,0', '0,0', '1,1'])), [3, 0]);
  assert.is(nextPoint([{ name: 'x', values: [1], start: 0 }], [0], new Set(['0'])), null);
});

test('a diverged candidate (non-finite score) counts as an evaluation and never wins', async () => {
  const r = await patternSearch(LADDERS, 5, async (c) => (Number(c.a) === 2 ? NaN : bowl(c)));
  assert.is(r.trials.length, 5);
  assert.ok(Number.isFinite(r.bestScore));
  assert.is.not(r.best.a, 2);
});

test('values: {} gives the presets (ILO with its balls); ILO scales its balls; the score-off control has temperature 0', () => {
  for (const v of ['csgm', 'sgilo'] as const) assert.equal(configFromValues(v, {}, 7, [1, 2]), methodConfig(v, 7, v === 'csgm' ? [] : [1, 2]));
  assert.equal(configFromValues('ilo', {}, 7, [1, 2]), { ...methodConfig('ilo', 7, [1, 2]), l1: { features: [Infinity, 100, 200] } });
  assert.equal(configFromValues('ilo', { lr: 0.2, radiusScale: 2 }, 7, [1, 2]).l1, { features: [Infinity, 200, 400] });
  const off = configFromValues('sgilo-off', { lr: 0.02, noiseScale: 0.01, noiseSchedule: 'annealed' }, 7, [1, 2]);
  assert.is(off.temperature, 0);
  assert.is(off.noiseSchedule, 'annealed');
  for (const v of VARIANTS) assert.equal(Object.keys(startValues(v)), searchSpace(v).map((l) => l.name));
});

const FILE: TunedFile = {
  kind: 'sgilo-tuned',
  steps: 40,
  blocks: [1, 2],
  about: {},
  settings: { 'inpaint-random:0.02': { sgilo: { lr: 0.01 } }, 'inpaint-random:0.2': { sgilo: { lr: 0.2 } }, 'cs-gaussian:0.02': { ilo: { lr: 0.3 } } },
};

test('lookup: the same setting, else the nearest level (log scale) of the operator, else the presets', () => {
  assert.equal(lookupTuned(FILE, 'sgilo', 'inpaint-random:0.02'), { values: { lr: 0.01 }, source: 'tuned at inpaint-random:0.02' });
  // |ln 0.05 - ln 0.02| = 0.92 < |ln 0.05 - ln 0.2| = 1.39
  assert.equal(lookupTuned(FILE, 'sgilo', 'inpaint-random:0.05').values, { lr: 0.01 });
  assert.match(lookupTuned(FILE, 'sgilo', 'inpaint-random:0.05').source, /nearest/);
  assert.equal(lookupTuned(FILE, 'sgilo', 'inpaint-random:0.1').values, { lr: 0.2 });
  assert.equal(lookupTuned(FILE, 'sgilo', 'cs-gaussian:0.02').values, {});
  assert.match(lookupTuned(FILE, 'sgilo', 'cs-gaussian:0.02').source, /^presets/);
  assert.equal(lookupTuned(null, 'csgm', 'denoise:0.1').values, {});
  assert.equal(lookupTuned(FILE, 'sgilo', 'inpaint-mask').values, {}, 'a mask operator: no level, no tuned values');
  assert.throws(() => parseTunedFile('{"kind": "other"}', 'x.json'), /x.json: not a tuned-values file/);
  assert.throws(() => parseTunedFile('{', 'x.json'), /x.json: not JSON/);
});

test('statistics: mean and standard error, the paired difference, Pearson correlation', () => {
  const m = meanSem([1, 2, 3, 4]);
  assert.is(m.mean, 2.5);
  assert.ok(Math.abs(m.sem - Math.sqrt(5 / 3) / 2) < 1e-12);
  const d = pairedDifference([1, 2, 3], [0.5, 2.5, 2]);
  assert.ok(Math.abs(d.mean - 1 / 3) < 1e-12);
  assert.ok(Math.abs(d.sem - Math.sqrt(7 / 12 / 3)) < 1e-12); // differences 0.5, -0.5, 1: squared deviations 7/6, sd^2 = 7/12
  assert.throws(() => pairedDifference([1], [1, 2]), /paired difference/);
  assert.ok(Math.abs(pearson([1, 2, 3], [2, 4, 6]) - 1) < 1e-12);
  assert.ok(Math.abs(pearson([1, 2, 3], [3, 2, 1]) + 1) < 1e-12);
});

test('calibration of two chains on a 1x2 image: correlation, 2-sigma coverage, spread', () => {
  // One channel of two pixels, repeated on 3 channels; chains 0 and 1.
  const img = (p0: number, p1: number) => Float32Array.from([p0, p1, p0, p1, p0, p1]);
  const samples = [img(0, 0), img(0, 2)];
  const mean = img(0, 1);
  const std = Float32Array.from([0, 1]); // per pixel, over chains (population std)
  const run = { images: [{ samples, mean, std }] } as unknown as MethodRun;
  // Reference 0.5 at pixel 0 (error 0.5 > 2 * 0): not covered; 2.5 at pixel 1 (error 1.5 <= 2): covered.
  const c = calibration(run, img(0.5, 2.5));
  assert.is(c.coverage2sigma, 0.5);
  assert.ok(Math.abs(c.stdErrorCorrelation - 1) < 1e-12, 'std (0, 1) and error (0.5, 1.5) rise together');
  assert.ok(Math.abs(c.pairwiseRms - Math.sqrt(2)) < 1e-12, 'chains differ by 2 on half the values');
  assert.ok(Math.abs(c.meanMse - (0.25 + 2.25) / 2) < 1e-12);
});

test.run();
