// The CLI's argument layer and output rules without running any command's work: every declared
// command prints its help and exits 0, rejects unknown flags, out-of-range values and conflicts
// before any work (naming the flag and the range), and the README's command list is the one
// generated from the declarations. Outputs: special file systems, files in the way, existing
// outputs (refused, or with --force replaced whole), atomic writes.

import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { allOptions, parseCommand, UsageError } from '../cli/args.ts';
import { COMMANDS, commandByName } from '../cli/commands.ts';
import { BEGIN, commandsMarkdown, END } from '../cli/command_list.ts';
import { checkOutputPath, prepareOutput, writeAtomic } from '../cli/outputs.ts';
import { assertFinite } from '../cli/checks.ts';
import { ROOT, runCli } from './cli_run.ts';

const test = suite('cli arguments');
const tmp = mkdtempSync(join(tmpdir(), 'sgilo-args-'));

test('every command: --help prints usage, every option and an example, exits 0, and runs nothing', async () => {
  for (const c of COMMANDS) {
    const r = await runCli([c.name, '--help']);
    assert.is(r.code, 0, c.name);
    assert.match(r.out, new RegExp(`^usage: sgilo ${c.name}`), c.name);
    assert.match(r.out, /\nexample:\n  sgilo /, c.name);
    for (const o of allOptions(c)) assert.ok(r.out.includes(`--${o.name}`), `${c.name} --help lacks --${o.name}`);
    assert.ok(r.ms < 2000, `${c.name} --help took ${r.ms.toFixed(0)} ms`);
  }
  // theory --help used to start the run; now it returns at once.
  const t = await runCli(['theory', '--help', '--quick']);
  assert.is(t.code, 0);
  assert.ok(t.ms < 500, `${t.ms} ms`);
  const h = await runCli(['help']);
  assert.is(h.code, 0);
  for (const c of COMMANDS) assert.ok(h.out.includes(`  ${c.name}`), c.name);
});

test('every command: an unknown flag is rejected before any work, naming it (exit 1)', async () => {
  for (const c of COMMANDS) {
    const r = await runCli([c.name, '--bogus-flag', '1']);
    assert.is(r.code, 1, c.name);
    assert.match(r.err, new RegExp(`sgilo ${c.name}: unknown option --bogus-flag`), c.name);
    assert.ok(r.ms < 2000, `${c.name}: ${r.ms} ms`);
  }
  const typo = await runCli(['sample', 'm.safetensors', '--stpes', '5']);
  assert.is(typo.code, 1);
  assert.match(typo.err, /unknown option --stpes; did you mean --steps/);
  const unknownCmd = await runCli(['frobnicate']);
  assert.is(unknownCmd.code, 1);
  assert.match(unknownCmd.err, /unknown command "frobnicate"/);
});

test('out-of-range and malformed values name the flag and the allowed range (exit 1, before any work)', async () => {
  const cases: [string[], RegExp][] = [
    [['generate', 'g.pt', '--cols', '0'], /--cols: must be an integer >= 1 and <= 64, got 0/],
    [['train-score', 'g.pt', '--steps', '1e9'], /--steps: must be an integer >= 1 and <= 100000, got 1e9/],
    [['train-score', 'g.pt', '--steps', '-3'], /--steps: must be an integer >= 1/],
    [['train-score', 'g.pt', '--lr', '1e30'], /--lr: must be a number > 0 and <= 1, got 1e30/],
    [['demo', '--steps', '0'], /--steps: must be an integer >= 1 and <= 10000, got 0/],
    [['experiment', '--steps', '-1'], /--steps: must be an integer >= 1 and <= 1000, got -1/],
    [['tune', '--variants', 'csgm,magic'], /--variants: unknown variant "magic"/],
    [['tune', '--setting', 'blur:3'], /--setting: unknown operator "blur"/],
    [['experiment', '--images', '1'], /--images: must be an integer >= 2/],
    [['reconstruct', '--image-index', '1', '--operator', 'denoise:0.1', '--steps', '1e9'], /--steps: must be an integer >= 1 and <= 10000/],
    [['reconstruct', '--image-index', '1', '--operator', 'denoise:0.1', '--chains', 'NaN'], /--chains: must be an integer/],
    [['reconstruct', '--image-index', '1', '--operator', 'blur:3'], /--operator: unknown operator "blur"/],
    [['reconstruct', '--image-index', '1', '--operator', 'denoise:0.1', '--method', 'magic'], /unknown method "magic"/],
    [['reconstruct', '--image-index', '1', '--operator', 'denoise:0.1', '--fit', 'squash'], /--fit: must be one of pad, resize, crop/],
    [['reconstruct', '--image-index', '1', '--operator', 'denoise:0.1', '--l1-features', 'big'], /radii must be numbers >= 0 or "inf"/],
    [['reconstruct', '--image-index', '1', '--operator', 'denoise:0.1', '--steps'], /--steps needs a value/],
    [['reconstruct', '--image-index', '1', '--operator', 'denoise:0.1', '--lr', '0'], /--lr: must be a number > 0/],
    [['sample', 'm.safetensors', '--n', '0'], /--n: must be an integer >= 1/],
    [['serve', '--port', '70000'], /--port: must be an integer >= 0 and <= 65535/],
    [['bench', 'nope'], /<which> must be one of matmul/],
    [['gradcheck', 'a', 'b'], /unexpected argument "b"/],
  ];
  for (const [argv, re] of cases) {
    const r = await runCli(argv);
    assert.is(r.code, 1, argv.join(' '));
    assert.match(r.err, re, argv.join(' '));
    assert.ok(!/\n\s+at /.test(r.err), `a stack trace: ${r.err}`);
  }
});

test('conflicting and missing flags are rejected before any work', async () => {
  const cases: [string[], RegExp][] = [
    [['reconstruct', '--operator', 'denoise:0.1'], /give exactly one of --image, --image-index or --measured/],
    [['reconstruct', '--image', 'a.png', '--image-index', '1', '--operator', 'denoise:0.1'], /got --image and --image-index/],
    [['reconstruct', '--image-index', '1'], /--operator is required/],
    [['reconstruct', '--image-index', '1', '--operator', 'denoise:0.1', '--method', 'csgm', '--save-features', join(tmp, 'f.safetensors')], /--save-features: the last method \(csgm\) optimizes no intermediate features/],
    [['reconstruct', '--image-index', '1', '--operator', 'inpaint-mask'], /--operator inpaint-mask needs --mask/],
    [['reconstruct', '--image-index', '1', '--operator', 'denoise:0.1', '--mask', 'm.png'], /--mask needs --operator inpaint-mask/],
    [['reconstruct', '--image-index', '1', '--operator', 'denoise:0.1', '--method', 'ilo', '--temperature', '1'], /--temperature applies to sgilo only/],
    [['sample', 'm.safetensors', '--sampler', 'ald', '--steps', '5'], /--steps applies to --sampler pc/],
    [['train-score'], /give the generator checkpoint/],
    [['training-curve'], /give at least one log file or --series/],
    [['inspect'], /missing <checkpoint>/],
    [['reconstruct', '--image-index', '1', '--operator', 'denoise:0.1', '--steps', '2', '--steps', '3'], /--steps is given twice/],
  ];
  for (const [argv, re] of cases) {
    const r = await runCli(argv);
    assert.is(r.code, 1, argv.join(' '));
    assert.match(r.err, re, argv.join(' '));
    assert.ok(r.ms < 2000, `${argv.join(' ')}: ${r.ms} ms`);
  }
});

test('parseCommand: defaults, given flags, --name=value, repeatable lists', () => {
  const p = parseCommand(commandByName('reconstruct')!, ['--image-index=3', '--operator', 'sr-bicubic:4', '--score', 'a', '--score', 'b']);
  assert.is(p.values['image-index'], 3);
  assert.is(p.values.steps, 100);
  assert.is(p.values.fit, 'pad');
  assert.is(p.values.out, 'out/reconstruct');
  assert.equal(p.values.score, ['a', 'b']);
  assert.ok(p.given.has('image-index') && !p.given.has('steps'));
  assert.throws(() => parseCommand(commandByName('demo')!, ['--force=1']), (e: Error) => e instanceof UsageError && /--force takes no value/.test(e.message));
});

test('every command with an output writes under out/<command>/ by default (never a tracked folder)', () => {
  for (const c of COMMANDS) {
    if (!c.output) continue;
    assert.ok(c.output.default.startsWith(`out/${c.name}`), `${c.name}: ${c.output.default}`);
  }
});

test('README: the command list is the one generated from the declarations, and names every option', () => {
  const readme = readFileSync(join(ROOT, 'README.md'), 'utf8');
  const begin = readme.indexOf(BEGIN);
  const end = readme.indexOf(END);
  assert.ok(begin >= 0 && end > begin, 'README.md lacks the generated command list');
  assert.fixture(readme.slice(begin, end + END.length), commandsMarkdown(), 'README.md: paste the output of node --import ./scripts/register-ts.mjs cli/command_list.ts');
  const section = readme.slice(begin, end);
  for (const c of COMMANDS) {
    assert.ok(section.includes(`sgilo ${c.name}`), c.name);
    for (const o of allOptions(c)) if (o.name !== 'help' && o.name !== 'verbose') assert.ok(section.includes(`--${o.name}`), `${c.name} --${o.name}`);
  }
  // Nothing stale: every --flag in the list belongs to some command.
  const known = new Set(COMMANDS.flatMap((c) => allOptions(c).map((o) => o.name)));
  const optionLines = section.split('\n').filter((l) => l.startsWith('  Options:') || l.startsWith('  Example:')).join('\n');
  for (const m of optionLines.matchAll(/--([a-z][a-z0-9-]*)/g)) assert.ok(known.has(m[1]), `README lists --${m[1]}, which no command declares`);
});

test('outputs: special file systems, a file in the way and existing outputs are refused before any work', () => {
  for (const p of ['/proc/x', '/sys/kernel/x', '/dev/sgilo-out']) assert.throws(() => checkOutputPath('--out', p, 'dir', true), /is a special file system/);
  const file = join(tmp, 'a-file');
  writeFileSync(file, 'x');
  assert.throws(() => checkOutputPath('--out', join(file, 'sub'), 'dir', false), /is a file, not a folder/);
  assert.throws(() => checkOutputPath('--out', file, 'dir', true), /exists and is a file/);
  assert.throws(() => checkOutputPath('--out', file, 'file', false), /exists; give --force/);
  checkOutputPath('--out', file, 'file', true);
  const dir = join(tmp, 'full');
  mkdirSync(dir);
  writeFileSync(join(dir, 'old.png'), 'old');
  assert.throws(() => checkOutputPath('--out', dir, 'dir', false), /exists and is not empty; give --force/);
  const empty = join(tmp, 'empty');
  mkdirSync(empty);
  checkOutputPath('--out', empty, 'dir', false);
});

test('outputs: --force replaces a folder whole (no old file left); a failed run leaves nothing', () => {
  const dir = join(tmp, 'replace');
  mkdirSync(dir);
  writeFileSync(join(dir, 'old-sample-7.png'), 'old');
  const o = prepareOutput('--out', dir, 'dir', true);
  writeFileSync(join(o.path, 'new.png'), 'new');
  assert.ok(existsSync(join(dir, 'old-sample-7.png')), 'the old output stays until the new one is complete');
  o.commit();
  assert.equal(readdirSync(dir), ['new.png']);
  const failed = prepareOutput('--out', join(tmp, 'failed'), 'dir', false);
  writeFileSync(join(failed.path, 'half.png'), 'x');
  failed.abort();
  assert.ok(!existsSync(join(tmp, 'failed')));
  assert.equal(readdirSync(tmp).filter((f) => f.includes('.partial-')), []);
  const f = join(tmp, 'atomic.bin');
  writeAtomic(f, new Uint8Array([1, 2, 3]));
  assert.equal([...readFileSync(f)], [1, 2, 3]);
  assert.equal(readdirSync(tmp).filter((n) => n.includes('.partial-')), []);
});

test('assertFinite names the place and the variable', () => {
  assertFinite(new Float32Array([1, 2]), 'x', 'step 1');
  assert.throws(() => assertFinite(new Float32Array([1, NaN, Infinity]), 'the sample', 'pc sampler after step 5'), /pc sampler after step 5: the sample is not finite \(1 NaN and 1 Inf of 3 values, first at index 1\)/);
  assert.throws(() => assertFinite(NaN, 'the loss', 'train-score step 2'), /train-score step 2: the loss is not finite \(NaN\)/);
});

test.after(() => rmSync(tmp, { recursive: true, force: true }));
test.run();
