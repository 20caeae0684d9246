// The CLI's reported failures, each reproduced and checked (in-process through main(), sharing the
// test runner's engine; two real subprocesses): outputs never written over or mixed, NaN/Inf an
// error naming the step and the variable, loader errors naming the file and what was expected,
// own images of any size (--image, --measured, --mask), `sample` from any folder, Dawn's notices
// filtered unless --verbose.

import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PNG } from 'pngjs';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { ROOT, runCli, runSgilo } from './cli_run.ts';
import { patchSafetensors } from './cli_fixtures.ts';

const test = suite('cli cases');
const tmp = mkdtempSync(join(tmpdir(), 'sgilo-cases-'));
const SCORE = join(ROOT, 'models/fashion32/score-block1.safetensors');
const GEN = join(ROOT, 'models/fashion32/fashion32-stylegan2.pt');
const hash = (f: string) => createHash('sha256').update(readFileSync(f)).digest('hex');
const quick = ['--steps', '1', '--chains', '1', '--blocks', '1'];
const noStack = (s: string) => assert.ok(!/\n\s+at .*:\d+:\d+/.test(s), `a stack trace:\n${s}`);

function pngFile(name: string, width: number, height: number, pixel: (x: number, y: number) => [number, number, number]): string {
  const png = new PNG({ width, height });
  for (let y = 0; y < height; y++)
    for (let x = 0; x < width; x++) {
      const o = (y * width + x) * 4;
      png.data.set([...pixel(x, y), 255], o);
    }
  const f = join(tmp, name);
  writeFileSync(f, PNG.sync.write(png));
  return f;
}

/** The RGB of a grid pixel. */
function pixelAt(file: string, x: number, y: number): number[] {
  const png = PNG.sync.read(readFileSync(file));
  return [...png.data.subarray((y * png.width + x) * 4, (y * png.width + x) * 4 + 3)];
}

test('a reused --out is refused (old files intact); --force replaces it whole, never mixed', async () => {
  const out = join(tmp, 'rec');
  let r = await runCli(['reconstruct', '--image-index', '1', '--operator', 'inpaint-random:0.25', '--method', 'csgm,ilo', ...quick, '--out', out]);
  assert.is(r.code, 0, r.err);
  const first = readdirSync(out).sort();
  assert.ok(first.includes('ilo-mean.png') && first.includes('grid.png') && first.includes('report.json'), first.join());
  r = await runCli(['reconstruct', '--image-index', '1', '--operator', 'inpaint-random:0.25', '--method', 'csgm', ...quick, '--out', out]);
  assert.is(r.code, 1);
  assert.match(r.err, /--out .*: exists and is not empty; give --force/);
  assert.equal(readdirSync(out).sort(), first);
  r = await runCli(['reconstruct', '--image-index', '1', '--operator', 'inpaint-random:0.25', '--method', 'csgm', ...quick, '--out', out, '--force']);
  assert.is(r.code, 0, r.err);
  const second = readdirSync(out);
  assert.ok(!second.some((f) => f.startsWith('ilo-')), `the previous run's files are gone: ${second.join()}`);
  assert.equal(readdirSync(tmp).filter((f) => f.includes('.partial-')), []);
  // The grid is readable: >= 128 px panels, 2 rows of labels; gray input stays gray.
  const grid = PNG.sync.read(readFileSync(join(out, 'grid.png')));
  assert.ok(grid.width >= 5 * 128 && grid.height >= 128, `${grid.width}x${grid.height}`);
  const single = PNG.sync.read(readFileSync(join(out, 'csgm-mean.png')));
  assert.ok(single.width >= 128, `single panel ${single.width} px`);
  const [pr, pg, pb] = pixelAt(join(out, 'csgm-mean.png'), single.width >> 1, single.height >> 1);
  assert.ok(pr === pg && pg === pb, `gray input, gray output: ${[pr, pg, pb]}`);
});

test('an unwritable or special --out fails before any work; nothing is left behind', async () => {
  for (const [out, re] of [['/proc/sgilo-x', /\/proc is a special file system/], [join(ROOT, 'package.json', 'x'), /package\.json is a file, not a folder/]] as const) {
    const r = await runCli(['reconstruct', '--image-index', '1', '--operator', 'denoise:0.1', '--out', out]);
    assert.is(r.code, 1);
    assert.match(r.err, re);
    assert.ok(r.ms < 1000, `${r.ms} ms: before loading anything`);
  }
  const r = await runCli(['generate', GEN, '--seeds', '0', '--out', '/sys/sgilo']);
  assert.is(r.code, 1);
  assert.match(r.err, /\/sys is a special file system/);
});

test('loader errors name the file and what was expected', async () => {
  const junk = join(tmp, 'junk.bin');
  writeFileSync(junk, Uint8Array.from({ length: 300 }, (_, i) => (i * 37 + 11) & 255));
  let r = await runCli(['inspect', junk]);
  assert.is(r.code, 1);
  assert.match(r.err, /junk\.bin: not a PyTorch \.pt \(zip or legacy pickle\) or \.safetensors file \(300 bytes; /);
  r = await runCli(['generate', junk, '--out', join(tmp, 'gen-junk')]);
  assert.is(r.code, 1);
  assert.match(r.err, /junk\.bin: not a StyleGAN2 generator: an NVlabs pickle/);
  r = await runCli(['sample', junk, '--out', join(tmp, 'sample-junk')]);
  assert.match(r.err, /junk\.bin: not an SGILO score model/);
  r = await runCli(['reconstruct', '--image', join(tmp, 'missing.png'), '--operator', 'denoise:0.1', '--out', join(tmp, 'rec-missing')]);
  assert.is(r.code, 1);
  assert.match(r.err, /missing\.png: cannot read the image file \(no such file\)/);
  writeFileSync(join(tmp, 'empty.png'), new Uint8Array(0));
  r = await runCli(['reconstruct', '--image', join(tmp, 'empty.png'), '--operator', 'denoise:0.1', '--out', join(tmp, 'rec-empty')]);
  assert.match(r.err, /empty\.png: not a PNG file \(expected the 8-byte PNG signature; the file has 0 bytes\)/);
  assert.ok(!existsSync(join(tmp, 'rec-empty')) && !existsSync(join(tmp, 'gen-junk')));
  noStack(r.err);
});

test('NaN is an error: a NaN score model in sample (no PNG written)', async () => {
  const bad = join(tmp, 'nan-score.safetensors');
  patchSafetensors(SCORE, bad, 'pos_embedding', NaN);
  const out = join(tmp, 'sample-nan');
  const r = await runCli(['sample', bad, '--steps', '2', '--n', '2', '--out', out]);
  assert.is(r.code, 1);
  assert.match(r.err, /nan-score\.safetensors: tensor "pos_embedding" is not finite \(\d+ NaN/);
  assert.ok(!existsSync(out));
  const r2 = await runCli(['reconstruct', '--image-index', '0', '--operator', 'denoise:0.1', '--score', bad, '--out', join(tmp, 'rec-nan')]);
  assert.is(r2.code, 1);
  assert.match(r2.err, /tensor "pos_embedding" is not finite/);
});

test('train-score: --resume writes to --out, never over the resumed file; a NaN loss stops with the step, no checkpoint', async () => {
  // A tiny model of our own (2 steps), then resumed.
  const base = join(tmp, 'tiny.safetensors');
  const common = ['--samples', '16', '--batch', '4', '--dim', '16', '--depth', '1', '--log-every', '1'];
  let r = await runCli(['train-score', GEN, '--steps', '2', ...common, '--out', base]);
  assert.is(r.code, 0, r.err);
  const before = hash(base);
  r = await runCli(['train-score', '--resume', base, '--steps', '1', '--out', base]);
  assert.is(r.code, 1);
  assert.match(r.err, /--out .*tiny\.safetensors: exists; give --force/);
  const next = join(tmp, 'tiny-more.safetensors');
  r = await runCli(['train-score', '--resume', base, '--steps', '1', '--samples', '16', '--out', next]);
  assert.is(r.code, 0, r.err);
  assert.is(hash(base), before, 'the resumed file is unchanged');
  assert.ok(existsSync(next));
  // Adam's second moment negative: finite in the file, NaN after one update.
  const poisoned = join(tmp, 'tiny-poisoned.safetensors');
  patchSafetensors(next, poisoned, 'train.adam_v.pos_embedding', -1);
  const nanOut = join(tmp, 'tiny-nan.safetensors');
  r = await runCli(['train-score', '--resume', poisoned, '--steps', '3', '--samples', '16', '--out', nanOut]);
  assert.is(r.code, 1);
  assert.match(r.err, /train-score step \d+: the loss is not finite \(NaN\)/);
  assert.ok(!existsSync(nanOut), 'no NaN checkpoint');
  assert.equal(readdirSync(tmp).filter((f) => f.includes('.partial-')), []);
});

test('own images: a 28x28 gray PNG, a real 8x8 low-resolution measurement, an inpainting mask', async () => {
  const small = pngFile('small.png', 28, 28, (x, y) => (Math.abs(x - 14) < 6 && Math.abs(y - 14) < 9 ? [200, 200, 200] : [0, 0, 0]));
  let r = await runCli(['reconstruct', '--image', small, '--operator', 'inpaint-random:0.3', '--method', 'csgm', ...quick, '--out', join(tmp, 'own-small')]);
  assert.is(r.code, 0, r.err);
  const report = JSON.parse(readFileSync(join(tmp, 'own-small/report.json'), 'utf8'));
  assert.is(report.settings.gray, true);
  const lowres = pngFile('lowres.png', 8, 8, (x, y) => [x * 30, y * 30, 90]);
  r = await runCli(['reconstruct', '--measured', lowres, '--operator', 'sr-bicubic:4', '--method', 'csgm', ...quick, '--out', join(tmp, 'own-sr')]);
  assert.is(r.code, 0, r.err);
  r = await runCli(['reconstruct', '--measured', lowres, '--operator', 'cs-gaussian:0.1', '--method', 'csgm', ...quick, '--out', join(tmp, 'own-cs')]);
  assert.is(r.code, 1);
  assert.match(r.err, /--measured: cs-gaussian:0\.1 measures \[\d+\] values, not a square image/);
  const mask = pngFile('mask.png', 32, 32, (x) => (x < 16 ? [255, 255, 255] : [0, 0, 0]));
  r = await runCli(['reconstruct', '--image-index', '3', '--operator', 'inpaint-mask', '--mask', mask, '--method', 'csgm', ...quick, '--out', join(tmp, 'own-mask')]);
  assert.is(r.code, 0, r.err);
  const meas = PNG.sync.read(readFileSync(join(tmp, 'own-mask/measurement.png')));
  // The right half is unobserved: the measurement is 0 (mid gray) there.
  assert.equal(pixelAt(join(tmp, 'own-mask/measurement.png'), meas.width - 16, meas.height >> 1), [128, 128, 128]);
  const big = pngFile('big.png', 300, 120, (x) => [x % 256, 40, 200]);
  r = await runCli(['reconstruct', '--image', big, '--fit', 'crop', '--operator', 'denoise:0.1', '--method', 'csgm', ...quick, '--out', join(tmp, 'own-big')]);
  assert.is(r.code, 0, r.err);
});

test('subprocess: sample runs from any folder; Dawn notices only with --verbose; exit codes', () => {
  const out = join(tmp, 'sample-elsewhere');
  mkdirSync(join(tmp, 'cwd'));
  const r = runSgilo(['sample', SCORE, '--steps', '2', '--n', '2', '--out', out], { cwd: join(tmp, 'cwd') });
  assert.is(r.code, 0, r.err);
  assert.ok(existsSync(join(out, 'samples.png')));
  assert.not.match(r.err, /maxDynamic/);
  const v = runSgilo(['adapter', '--verbose']);
  assert.is(v.code, 0, v.err);
  assert.match(v.err, /maxDynamicUniformBuffersPerPipelineLayout artificially reduced/);
  const bad = runSgilo(['demo', '--steps', '0']);
  assert.is(bad.code, 1);
  assert.match(bad.err, /^sgilo demo: --steps: must be an integer >= 1/);
  assert.not.match(bad.err, /maxDynamic/);
});

test.after(() => rmSync(tmp, { recursive: true, force: true }));
test.run();
