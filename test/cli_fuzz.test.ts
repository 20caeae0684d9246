// Fuzz of the whole command line: 200 generated argument vectors per command (random flags, values
// in and out of range, file kinds: PNGs, models, random bytes, missing files, folders, /proc), at
// least a quarter of them valid, step counts capped at 2. Every vector goes through main() with
// its output captured: parsing, the checks and the output preparation run for real and stop before
// the work (dry run); a sample of the valid ones runs to the end (in-process, sharing the test
// runner's engine), and a few run as real subprocesses. Each case must end in exit 0 (with
// complete outputs when it ran) or exit 1 with a one-line "sgilo <command>: ..." message, never a
// hang (a time limit per case), a stack trace, another exit code, or a partial file.

import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PNG } from 'pngjs';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { allOptions, type CommandDecl, type OptionDecl } from '../cli/args.ts';
import { COMMANDS } from '../cli/commands.ts';
import { HostRandom } from '../engine/reference/host.ts';
import { writeActivationsFile } from '../samplers/score/data.ts';
import { initScoreStateDict, scoreModelConfig, writeScoreModel } from '../samplers/score/checkpoint.ts';
import { gaussianConfig, writeGaussianModel } from '../samplers/score/gaussian.ts';
import { ROOT, runCli, runSgilo, type CliResult } from './cli_run.ts';

const test = suite('cli fuzz');
const tmp = mkdtempSync(join(tmpdir(), 'sgilo-fuzz-'));
const rng = new HostRandom(20261206);
const pick = <T>(list: readonly T[]): T => list[Math.floor(rng.uniform() * list.length)];
const chance = (p: number) => rng.uniform() < p;
const PER_COMMAND = 200;
const started = performance.now();

// Files of every kind the options may name.
const png = (name: string, w: number, h: number) => {
  const p = new PNG({ width: w, height: h });
  p.data.fill(180);
  const f = join(tmp, name);
  writeFileSync(f, PNG.sync.write(p));
  return f;
};
const FILES = {
  png: [png('28.png', 28, 28), png('40x20.png', 40, 20), join(ROOT, 'models/fashion32/test-images/test-002.png')],
  generator: [join(ROOT, 'models/fashion32/fashion32-stylegan2.pt'), join(ROOT, 'test/fixtures/reference-tiny/generator.pt')],
  score: [join(ROOT, 'models/fashion32/score-block1.safetensors')],
  // PyTorch score files (a score_sde checkpoint with its sidecar, a plain state dict) for inspect and replay score.
  scorePt: [join(ROOT, 'test/fixtures/score_sde/checkpoint.pth'), join(ROOT, 'test/fixtures/reference-tiny/score.pt')],
  log: [join(ROOT, 'models/fashion32/training/block1-run4.log')],
  // Tiny priors on [2, 2, 2] features (a ViT with its Gaussian beside it) and features to match:
  // eval-score and fit-gaussian run to the end in well under a second on them.
  prior: [join(tmp, 'prior/score-block0.safetensors'), join(tmp, 'prior/gaussian-block0.safetensors')],
  features: [join(tmp, 'features.safetensors')],
  // A tuned-values file (sgilo tune) on tuning images 0-3.
  tuned: [join(tmp, 'tuned.json')],
  bad: [join(tmp, 'random.bin'), join(tmp, 'empty.png'), join(tmp, 'missing.png'), tmp, '/proc/sgilo-fuzz', join(ROOT, 'package.json')],
};
writeFileSync(join(tmp, 'tuned.json'), JSON.stringify({ kind: 'sgilo-tuned', steps: 2, blocks: [1, 2], about: { imageRange: [0, 4] }, settings: { 'inpaint-random:0.02': { csgm: { lr: 0.2 }, ilo: { lr: 0.1, radiusScale: 2 } } } }));
writeFileSync(join(tmp, 'random.bin'), Uint8Array.from({ length: 999 }, (_, i) => (i * 97 + 5) & 255));
writeFileSync(join(tmp, 'empty.png'), new Uint8Array(0));
{
  const norm = { min: -1, max: 3 };
  const vit = { channels: 2, height: 2, width: 2, dim: 8, depth: 1, heads: 2, dimHead: 4, mlp: 16, time: 'vector' as const };
  const eye = new Float64Array(64).map((_, i) => (i % 9 === 0 ? 1 : 0));
  const gaussian = { mean: new Float64Array(8), vectors: eye, values: new Float64Array(8).fill(0.05), residualVariance: 0 };
  mkdirSync(join(tmp, 'prior'));
  writeFileSync(FILES.prior[0], writeScoreModel(scoreModelConfig(vit, norm, { block: '0' }), initScoreStateDict(vit, 1)));
  writeFileSync(FILES.prior[1], writeGaussianModel(gaussianConfig([2, 2, 2], gaussian, norm, { block: '0' }), gaussian));
  writeFileSync(FILES.features[0], writeActivationsFile({ data: Float32Array.from({ length: 16 * 8 }, (_, i) => ((i * 37) % 17) / 4 - 1), shape: [16, 2, 2, 2], meta: { block: '0' } }));
}

/** A valid value for an option (step-like counts capped at 2, sizes small). */
function validValue(cmd: string, o: OptionDecl): string | undefined {
  if (o.type === 'flag') return undefined;
  if (o.type === 'enum') return pick(o.choices!);
  if (o.type === 'int' || o.type === 'number') {
    const small = ['steps', 'n', 'chains', 'images', 'evaluations', 'levels', 'steps-per-level', 'corrector', 'real', 'samples', 'batch', 'depth', 'heads', 'profile', 'cols', 'ckpt-every', 'log-every', 'warmup', 'image-index', 'rank', 'limit'];
    const lo = o.min ?? 0;
    const hi = small.includes(o.name) ? Math.min(o.max ?? 2, Math.max(lo, 2)) : (o.max ?? lo + 10);
    let v = lo + rng.uniform() * (hi - lo);
    if (o.minExclusive && v === lo) v = (lo + hi) / 2;
    return String(o.type === 'int' ? Math.max(lo + (o.minExclusive ? 1 : 0), Math.min(hi, Math.round(v))) : Number(v.toPrecision(3)));
  }
  const byName: Record<string, () => string> = {
    image: () => pick(FILES.png),
    measured: () => pick(FILES.png),
    mask: () => pick(FILES.png),
    generator: () => pick(FILES.generator),
    score: () => pick(FILES.score),
    resume: () => pick(FILES.score),
    operator: () => pick(['denoise:0.1', 'inpaint-random:0.2', 'sr-bicubic:4', 'inpaint-box', 'sr-avgpool:2,noise=0.01']),
    method: () => pick(['csgm', 'ilo', 'sgilo', 'csgm,sgilo']),
    blocks: () => pick(['1', '1,2']),
    seeds: () => pick(['0', '0-2', '1,5']),
    data: () => (cmd === 'encode-fashion' ? '/usr/share/datasets/fashion-mnist' : pick(['codes', 'gaussian'])),
    gaussian: () => (cmd === 'train-score' ? 'none' : FILES.prior[1]),
    like: () => pick(FILES.prior),
    times: () => pick(['0.1', '0.01,0.5,1']),
    spaces: () => pick(['latent', 'block0', 'latent,block1']),
    series: () => `a=${FILES.log[0]}`,
    title: () => 'fuzz',
    time: () => 'token',
    grid: () => pick(['6x2', '4x4', '2x6']),
    targets: () => pick(['out.w', 'out.image_from_wplus,grad.wplus', 'grad.noise.*']),
    host: () => '127.0.0.1',
    setting: () => pick(['inpaint-random:0.2', 'cs-gaussian:0.05', 'inpaint-random:0.01']),
    calibration: () => pick(['inpaint-random:0.2', 'cs-gaussian:0.05']),
    variants: () => pick(['csgm', 'csgm,ilo', 'ilo']),
    tuned: () => FILES.tuned[0],
    work: () => join(tmp, `work-${Math.floor(rng.uniform() * 1e9)}`),
    // Dry runs only (worker and experiment --queue are never run to the end here): nothing connects.
    queue: () => pick(['redis://127.0.0.1:6390/fuzz', 'redis://localhost/fuzz-2', 'redis://user:pw@127.0.0.1:6391/f_3']),
    report: () => join(tmp, `report-${Math.floor(rng.uniform() * 1e9)}`),
  };
  if (o.name.startsWith('l1-')) return pick(['inf', '100', '100,200,300']);
  return byName[o.name]?.() ?? 'x';
}

const INVALID = ['-1', '0', '1e9', 'NaN', 'Infinity', '', 'abc', '2.5', '--', '-', '1e-400', '0x10', ' 3', 'redis://h:1/', 'http://h/q'];

/** One argument vector: valid (a base that satisfies the command's rules plus valid options) or mutated. */
function vector(c: CommandDecl, i: number, valid: boolean): string[] {
  const base: Record<string, string[]> = {
    reconstruct: ['--image-index', String(i % 8), '--operator', 'inpaint-random:0.2', '--method', 'sgilo', '--steps', '1', '--chains', '1', '--blocks', '1'],
    inspect: [pick([...FILES.generator, ...FILES.score, ...FILES.scorePt])],
    convert: [pick(FILES.generator)],
    generate: [pick(FILES.generator), '--seeds', '0'],
    sample: [FILES.score[0], '--steps', '2', '--n', '1'],
    'train-score': [FILES.generator[0], '--steps', '1', '--samples', '4', '--batch', '2', '--dim', '16', '--depth', '1', '--gaussian', 'none'],
    'eval-score': [pick(FILES.prior), FILES.features[0], '--samples', '2', '--steps', '2'],
    'fit-gaussian': [FILES.features[0]],
    'encode-fashion': ['--limit', '2'],
    'training-curve': [FILES.log[0]],
    replay: i % 2 ? ['score', FILES.scorePt[0], join(ROOT, 'test/fixtures/score_sde/expected_ema.safetensors')] : ['generator', FILES.generator[1], join(ROOT, 'test/fixtures/reference-tiny/generator_expected.safetensors')],
    demo: ['--steps', '1', '--images', '1'],
    tune: ['--steps', '1', '--images', '1', '--evaluations', '1', '--variants', 'csgm', '--setting', 'inpaint-random:0.2', '--work', join(tmp, 'tune-work')],
    experiment: ['--steps', '1', '--images', '2', '--variants', 'csgm', '--setting', 'inpaint-random:0.2', '--work', join(tmp, 'experiment-work')],
    theory: ['--quick'],
    worker: ['--queue', 'redis://127.0.0.1:6390/fuzz'],
    gradcheck: ['exp'],
    bench: ['matmul'],
  };
  const args = [...(base[c.name] ?? [])];
  // A valid replay vector takes only its kind's flags (the other kind's are a conflict, left to the mutations).
  const otherKind = !valid || c.name !== 'replay' ? [] : args[0] === 'score' ? ['network', 'no-clamp', 'targets'] : ['heads', 'grid', 'weights'];
  const opts = allOptions(c).filter((o) => !['help', 'out', 'force', 'verbose', ...otherKind].includes(o.name));
  const n = Math.floor(rng.uniform() * 4);
  for (let k = 0; k < n && opts.length; k++) {
    const o = pick(opts);
    if (args.includes(`--${o.name}`) && o.type !== 'list') continue;
    const v = validValue(c.name, o);
    args.push(`--${o.name}`, ...(v === undefined ? [] : [v]));
  }
  if (!valid) {
    const m = Math.floor(rng.uniform() * 6);
    const o = opts.length ? pick(opts) : undefined;
    if (m === 0) args.push(`--${pick(['bogus', 'stpes', 'out-dir', 'forcee', 'x'])}`, '1');
    else if (m === 1 && o) args.push(`--${o.name}`, pick(INVALID));
    else if (m === 2 && o) args.push(`--${o.name}`);
    else if (m === 3) args.push(pick([...FILES.bad, 'extra-positional']));
    else if (m === 4 && o && o.type !== 'flag') args.push(`--${o.name}`, pick(FILES.bad));
    else args.splice(0, Math.ceil(rng.uniform() * args.length));
  }
  // convert writes .safetensors only (any other name is a usage error, which the mutations cover).
  if (c.output) args.push('--out', valid || chance(0.7) ? join(tmp, `${c.name}-${i}${c.name === 'convert' ? '.safetensors' : ''}`) : pick(FILES.bad));
  if (chance(0.05)) args.push('--verbose');
  return args;
}

function withLimit(p: Promise<CliResult>, ms: number, what: string): Promise<CliResult> {
  let timer: ReturnType<typeof setTimeout>;
  return Promise.race([p, new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`hang: ${what} ran over ${ms} ms`)), ms)))]).finally(() => clearTimeout(timer));
}

function checkResult(cmd: string, argv: string[], r: CliResult): void {
  const what = `sgilo ${cmd} ${argv.join(' ')}`;
  assert.ok(r.code === 0 || r.code === 1, `${what}: exit ${r.code}`);
  assert.ok(!/\n\s+at .+:\d+:\d+\)?$/m.test(r.err) || argv.includes('--verbose'), `${what}: a stack trace:\n${r.err}`);
  if (r.code === 1) assert.match(r.err, new RegExp(`(^|\\n)sgilo ${cmd}: \\S`), `${what}: exit 1 without a message:\n${r.err}`);
  const partial = readdirSync(tmp).filter((f) => f.includes('.partial-'));
  assert.equal(partial, [], `${what}: partial files left`);
}

/** Outputs of a successful run are complete: every file non-empty, PNGs decodable, JSON parseable. */
function checkOutputs(dir: string, what: string): void {
  if (!existsSync(dir)) return;
  const files = statSync(dir).isDirectory() ? readdirSync(dir).map((f) => join(dir, f)) : [dir];
  for (const f of files) {
    if (statSync(f).isDirectory()) continue;
    const bytes = readFileSync(f);
    assert.ok(bytes.length > 0, `${what}: empty ${f}`);
    if (f.endsWith('.png')) PNG.sync.read(bytes);
    if (f.endsWith('.json')) JSON.parse(bytes.toString('utf8'));
  }
}

// Real runs per command (the cheap ones all; the rest a few, within the suite's time).
const REAL: Record<string, number> = { inspect: 6, convert: 2, 'training-curve': 6, replay: 4, memory: 2, help: 6, generate: 3, reconstruct: 3, sample: 1, 'train-score': 1, adapter: 1, gradcheck: 1, 'eval-score': 2, 'fit-gaussian': 2, 'encode-fashion': 1 };
const tally = { cases: 0, valid: 0, ran: 0, ok: 0, failed: 0 };

for (const c of COMMANDS) {
  test(`${c.name}: ${PER_COMMAND} argument vectors`, async () => {
    let real = REAL[c.name] ?? 0;
    let valid = 0;
    for (let i = 0; i < PER_COMMAND; i++) {
      const argv = vector(c, i, i < PER_COMMAND * 0.4);
      const dry = await withLimit(runCli([c.name, ...argv], { dryRun: true }), 5000, `${c.name} ${argv.join(' ')} (dry run)`);
      checkResult(c.name, argv, dry);
      tally.cases++;
      if (dry.code !== 0) continue;
      valid++;
      if (real <= 0 || c.name === 'serve') continue;
      real--;
      const out = argv[argv.indexOf('--out') + 1];
      const r = await withLimit(runCli([c.name, ...argv]), 60_000, `${c.name} ${argv.join(' ')}`);
      checkResult(c.name, argv, r);
      if (r.code === 0 && c.output) checkOutputs(out, `${c.name} ${argv.join(' ')}`);
      tally.ran++;
      tally[r.code === 0 ? 'ok' : 'failed']++;
    }
    tally.valid += valid;
    assert.ok(valid >= PER_COMMAND / 4, `${c.name}: only ${valid} of ${PER_COMMAND} vectors valid`);
  });
}

test('subprocesses: the real entry ends in 0 or 1 with a message, never a hang', () => {
  const cases = [
    ['generate', FILES.generator[1], '--seeds', '0-1', '--out', join(tmp, 'sub-gen')],
    ['reconstruct', '--image', FILES.png[1], '--operator', 'denoise:0.2', '--method', 'csgm', '--steps', '2', '--chains', '1', '--out', join(tmp, 'sub-rec')],
    ['sample', FILES.bad[0], '--steps', '2'],
  ];
  for (const argv of cases) {
    const r = runSgilo(argv, { timeoutMs: 120_000 });
    assert.is(r.signal, null, `${argv.join(' ')}: killed (hang)`);
    assert.ok(r.code === 0 || (r.code === 1 && /^sgilo \S+: /m.test(r.err)), `${argv.join(' ')}: exit ${r.code}\n${r.err}`);
    assert.not.match(r.err, /maxDynamic|\n\s+at /);
  }
});

test('fuzz summary', () => {
  console.log(`\n${((performance.now() - started) / 1000).toFixed(1)} s: ${tally.cases} argument vectors, ${tally.valid} valid (${((100 * tally.valid) / tally.cases).toFixed(0)}%); ${tally.ran} run to the end: ${tally.ok} exit 0, ${tally.failed} exit 1`);
  assert.ok(tally.cases >= PER_COMMAND * COMMANDS.length);
});

test.after(() => rmSync(tmp, { recursive: true, force: true }));
test.run();
