// `sgilo tune` and `sgilo experiment` end to end on tiny settings (1-2 images, 1 step per round):
// tune writes a tuned-values file that experiment and reconstruct then use (and say so), a rerun
// with the same --work resumes from its record instead of recomputing, and the report has its
// sections (paired comparison, the claim's verdict, controls, calibration).

import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { parseTunedFile } from '../samplers/inverse/tuning.ts';
import { runCli } from './cli_run.ts';

const test = suite('cli experiment');
const dir = mkdtempSync(join(tmpdir(), 'sgilo-experiment-'));
const at = (f: string) => join(dir, f);
const TUNE = ['tune', '--setting', 'inpaint-random:0.2', '--variants', 'ilo,sgilo', '--evaluations', '2', '--images', '1', '--steps', '1', '--work', at('tune-work')];

test('tune: a search per variant, tuned.json with the best values, then a resumed rerun that recomputes nothing', async () => {
  const r = await runCli([...TUNE, '--out', at('tune')]);
  assert.is(r.code, 0, r.err);
  const file = parseTunedFile(readFileSync(at('tune/tuned.json'), 'utf8'), 'tuned.json');
  assert.equal(Object.keys(file.settings), ['inpaint-random:0.2']);
  assert.equal(Object.keys(file.settings['inpaint-random:0.2']), ['ilo', 'sgilo']);
  assert.equal(file.about.imageRange, [0, 1]);
  assert.is((r.out.match(/\}: MSE /g) ?? []).length, 4, '2 evaluations for each of 2 variants');
  for (const f of ['report.md', 'tuning.svg']) assert.ok(existsSync(at(`tune/${f}`)), f);
  const again = await runCli([...TUNE, '--out', at('tune-again')]);
  assert.is(again.code, 0, again.err);
  assert.is((again.out.match(/\(recorded\)/g) ?? []).length, 4, again.out);
  assert.equal(readFileSync(at('tune-again/tuned.json'), 'utf8').replace(/"date": "[^"]*"/, ''), readFileSync(at('tune/tuned.json'), 'utf8').replace(/"date": "[^"]*"/, ''));
});

test('experiment: tuned values with their source, the paired comparison, the verdict, calibration; resumable', async () => {
  const args = ['experiment', '--setting', 'inpaint-random:0.2', '--setting', 'inpaint-random:0.1', '--variants', 'ilo,sgilo', '--images', '2', '--first-image', '4', '--steps', '1', '--chains', '2', '--calibration', 'inpaint-random:0.2', '--tuned', at('tune/tuned.json'), '--work', at('exp-work')];
  const r = await runCli([...args, '--out', at('exp')]);
  assert.is(r.code, 0, r.err);
  const report = readFileSync(at('exp/report.md'), 'utf8');
  assert.match(report, /\| inpaint-random:0.2 \| [0-9.]+ \+- [0-9.]+ \| [0-9.]+ \+- [0-9.]+ \| [+-][0-9.]+ \+- [0-9.]+/);
  assert.match(report, /tuned at inpaint-random:0.2, the nearest tuned level/, 'the 10% cells use the 20% values');
  assert.match(report, /It holds in \d of 2 settings/);
  assert.match(report, /\| SGILO \| -?[0-9.]+ \+- [0-9.]+ \| [0-9.]+ \|/);
  const results = JSON.parse(readFileSync(at('exp/results.json'), 'utf8'));
  assert.is(results.rows.length, 4);
  for (const row of results.rows) assert.is(row.perImage.length, 2);
  assert.ok(existsSync(at('exp/diversity.png')) && existsSync(at('exp/mse.svg')));
  const again = await runCli([...args, '--out', at('exp-again')]);
  assert.is(again.code, 0, again.err);
  assert.is((again.out.match(/\(recorded;/g) ?? []).length, 6, '4 cells and 2 calibration runs read back');
  assert.equal(JSON.parse(readFileSync(at('exp-again/results.json'), 'utf8')).rows, results.rows);
});

test('experiment refuses evaluation images that overlap the tuning images; reconstruct names its values', async () => {
  const r = await runCli(['experiment', '--first-image', '0', '--tuned', at('tune/tuned.json'), '--work', at('w'), '--out', at('never')]);
  assert.is(r.code, 1);
  assert.match(r.err, /overlap the tuning images 0-0/);
  const rec = await runCli(['reconstruct', '--image-index', '3', '--operator', 'inpaint-random:0.3', '--method', 'ilo,sgilo', '--steps', '1', '--blocks', '1', '--chains', '1', '--tuned', at('tune/tuned.json'), '--out', at('rec')]);
  assert.is(rec.code, 0, rec.err);
  assert.match(rec.out, /sgilo: values tuned at inpaint-random:0.2, the nearest tuned level/);
  const presets = await runCli(['reconstruct', '--image-index', '3', '--operator', 'inpaint-random:0.3', '--method', 'sgilo', '--steps', '1', '--blocks', '1', '--chains', '1', '--presets', '--out', at('rec-presets')]);
  assert.is(presets.code, 0, presets.err);
  assert.match(presets.out, /sgilo: the presets/);
});

test.run();
