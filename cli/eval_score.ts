// `sgilo eval-score` and `sgilo fit-gaussian`: thin wrappers over samplers/score/evaluate.ts and
// gaussian_fit.ts (argument parsing, files, printing). See EVAL_USAGE and FIT_USAGE.

import { readFileBytes, writeFileBytes } from '../engine/io/files.ts';
import { scope, tensor, type Tensor } from '../engine/tensor.ts';
import { affine } from '../engine/ops/elementwise.ts';
import { loadGenerator } from '../nets/stylegan2_checkpoint.ts';
import { numBlocks, type StyleGAN2 } from '../nets/stylegan2.ts';
import { activationsFromCodes, computeNormalization, normalizeInPlace, readActivationsFile, readCodesFile, type ActivationSet, type Normalization } from '../samplers/score/data.ts';
import { loadPrior, type LoadedPrior } from '../samplers/score/prior_model.ts';
import { DEFAULT_EVAL_TIMES, dsmBins, medianBandwidth, setDistance, type DsmBin } from '../samplers/score/evaluate.ts';
import { fitGaussian, explainedVariance } from '../samplers/score/gaussian_fit.ts';
import { gaussianConfig, writeGaussianModel } from '../samplers/score/gaussian.ts';
import { pcSample, type EpsModel } from '../samplers/score/sample.ts';
import { VPSDE } from '../samplers/score/vpsde.ts';
import { parseArgs, render } from './score_commands.ts';
import { writeLabelledGrid } from './label_grid.ts';
import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';

const DEFAULT_CODES = 'models/fashion32/fashion32-codes.safetensors';

export const EVAL_USAGE = `usage: sgilo eval-score <model> <features> [options]
  held-out DSM loss per t of a score model (ViT, residual or Gaussian file) beside the closed-form
  Gaussian baseline on the same noise draws, and a sample check; prints a table (or --json) and
  writes <out>/report.json and <out>/samples.png.
  <features>        an activations file (sgilo-activations, raw units), or codes:A-B (codes A..B-1 of
                    --codes through the generator, split after the model's block)
  --gaussian FILE   the baseline (default: a residual model's own base, else gaussian-block<k>.safetensors
                    beside the model)
  --generator F     for codes:A-B and the PNG (default: the model's data.generator)
  --codes F         codes file for codes:A-B (default ${DEFAULT_CODES})
  --times LIST      comma-separated t bins (default ${DEFAULT_EVAL_TIMES.join(',')})
  --seed S          noise and sampler seed (default 0)
  --batch B         evaluation batch (default 64)
  --samples N       sample-check size (default 16; 0 skips the sample check)
  --steps N         reverse-SDE predictor steps from t = 1 (default: the SDE's N, 1000; fewer steps
                    are unstable in low-variance directions near t = 1e-3, where beta dt / std^2 > 2)
  --sdedit T        SDEdit start time for held-out features (default 0.1)
  --out DIR         output folder (default out/eval-score)
  --json            print one JSON object instead of the table`;

export const FIT_USAGE = `usage: sgilo fit-gaussian <features> [options]
  fits the closed-form Gaussian prior (mean, covariance by eigendecomposition) to features
  <features>        an activations file or codes:A-B (as in eval-score)
  --like MODEL      take the normalization, block and generator from this score model (so the two compare)
  --block K         features after block K (codes:A-B without --like)
  --generator F     generator for codes:A-B (default: --like's data.generator)
  --codes F         codes file (default ${DEFAULT_CODES})
  --rank R          stored directions (default: all up to 2048 values, else 256)
  --out FILE        default out/gaussian-block<k>.safetensors`;

/** parseArgs plus: every --flag must be known, and --help prints usage. */
function strictArgs(argv: string[], known: string[], switches: string[], usage: string) {
  if (argv.includes('--help') || argv.includes('-h')) return null;
  for (const a of argv) if (a.startsWith('--') && !known.includes(a.slice(2)) && !switches.includes(a.slice(2))) throw new Error(`unknown option ${a}\n${usage}`);
  return parseArgs(argv, switches);
}

/** Raw features from an activations file or codes:A-B through the generator. */
async function readFeatures(spec: string, g: () => Promise<StyleGAN2>, block: number, codesPath: string): Promise<ActivationSet> {
  const m = /^codes:(\d+)-(\d+)$/.exec(spec);
  if (!m) return readActivationsFile(await readFileBytes(spec), spec);
  const [from, to] = [Number(m[1]), Number(m[2])];
  const codes = readCodesFile(await readFileBytes(codesPath), codesPath);
  if (!(from < to && to <= codes.n)) throw new RangeError(`${spec}: need A < B <= ${codes.n} (the codes in ${codesPath})`);
  const gen = await g();
  if (!(block >= 0 && block < numBlocks(gen.config) - 1)) throw new RangeError(`${spec}: block ${block} is not a feature block of the generator`);
  const set = await activationsFromCodes(gen, codes.z.subarray(from * codes.dim, to * codes.dim), block);
  return { ...set, meta: { ...set.meta, codes: codesPath, from: String(from), to: String(to) } };
}

function checkFinite(what: string, data: Float32Array): void {
  const i = data.findIndex((v) => !Number.isFinite(v));
  if (i >= 0) throw new Error(`${what}: value ${i} is ${data[i]}`);
}

export async function fitGaussianCommand(argv: string[]): Promise<number> {
  const a = strictArgs(argv, ['like', 'block', 'generator', 'codes', 'rank', 'out'], [], FIT_USAGE);
  if (!a) return console.log(FIT_USAGE), 0;
  const spec = a.pos[0];
  if (!spec || a.pos.length > 1) throw new Error(FIT_USAGE);
  const like = a.get('like') ? await loadPrior(await readFileBytes(a.get('like')!), a.get('like')) : null;
  like?.model.dispose();
  const block = a.num('block', Number(like?.data.block ?? NaN));
  const genPath = a.get('generator') ?? like?.data.generator;
  let gen: StyleGAN2 | null = null;
  const getGen = async () => (gen ??= await loadGenerator(await readFileBytes(genPath ?? (() => { throw new Error('codes:A-B needs --generator (or --like with data.generator)'); })())));
  try {
    const set = await readFeatures(spec, getGen, block, a.get('codes') ?? like?.data.codes ?? DEFAULT_CODES);
    checkFinite(spec, set.data);
    const norm: Normalization = like?.normalization ?? computeNormalization(set.data);
    normalizeInPlace(set.data, norm);
    const [N, C, H, W] = set.shape;
    const t0 = performance.now();
    const rank = a.get('rank') !== undefined ? a.num('rank', 0) : undefined;
    const params = await fitGaussian(set.data, N, { rank, onProgress: (m) => console.log(`  ${m} (${((performance.now() - t0) / 1000).toFixed(1)} s)`) });
    const k = set.meta.block ?? String(block);
    const out = a.get('out') ?? `out/gaussian-block${k}.safetensors`;
    const data = { ...set.meta, block: k, source: spec, samples: String(N), ...(genPath ? { generator: genPath } : {}) };
    mkdirSync(dirname(out), { recursive: true });
    await writeFileBytes(out, writeGaussianModel(gaussianConfig([C, H, W], params, norm, data), params));
    const ev = explainedVariance(params);
    const at = (f: number) => ev.findIndex((v) => v >= f) + 1 || `> ${ev.length}`;
    console.log(`wrote ${out}: N(mu, C) of ${N} x [${C}, ${H}, ${W}] (rank ${params.values.length}${params.residualVariance ? `, residual variance ${params.residualVariance.toExponential(3)}` : ''}), mean variance ${(params.values.reduce((s, v) => s + v, 0) / (C * H * W) + (params.residualVariance * (C * H * W - params.values.length)) / (C * H * W)).toExponential(3)}; 90/99/99.9% of the variance in ${at(0.9)}/${at(0.99)}/${at(0.999)} directions; ${((performance.now() - t0) / 1000).toFixed(1)} s`);
  } finally {
    (gen as StyleGAN2 | null)?.dispose();
  }
  return 0;
}

/** The baseline: --gaussian, a residual model's base, or gaussian-block<k>.safetensors beside the model. */
async function baselineFor(modelPath: string, model: LoadedPrior, flag: string | undefined): Promise<{ model: EpsModel & { dispose(): void }; name: string; normalization: Normalization | null; own: boolean }> {
  if (flag === undefined && model.kind === 'residual') return { model: model.gaussian!, name: `${modelPath} (its Gaussian base)`, normalization: model.normalization, own: false };
  const path = flag ?? `${modelPath.includes('/') ? modelPath.slice(0, modelPath.lastIndexOf('/')) : '.'}/gaussian-block${model.data.block}.safetensors`;
  let bytes: Uint8Array;
  try {
    bytes = await readFileBytes(path);
  } catch {
    throw new Error(`no Gaussian baseline at ${path}; make one with \`sgilo fit-gaussian <training features> --like ${modelPath}\` and pass --gaussian FILE`);
  }
  const g = await loadPrior(bytes, path);
  if (g.kind !== 'gaussian') throw (g.model.dispose(), new Error(`${path}: not a Gaussian prior (kind ${g.kind})`));
  return { model: g.model, name: path, normalization: g.normalization, own: true };
}

export async function evalScoreCommand(argv: string[]): Promise<number> {
  const a = strictArgs(argv, ['gaussian', 'generator', 'codes', 'times', 'seed', 'batch', 'samples', 'steps', 'sdedit', 'out'], ['json'], EVAL_USAGE);
  if (!a) return console.log(EVAL_USAGE), 0;
  const [modelPath, spec] = a.pos;
  if (!modelPath || !spec || a.pos.length > 2) throw new Error(EVAL_USAGE);
  const times = a.get('times') ? a.get('times')!.split(',').map(Number) : DEFAULT_EVAL_TIMES;
  if (!times.every((t) => t > 0 && t <= 1)) throw new RangeError(`--times must be numbers in (0, 1], got "${a.get('times')}"`);
  const seed = a.num('seed', 0);
  const nSamples = a.num('samples', 16);
  const sdeditT = a.num('sdedit', 0.1);
  const outDir = a.get('out') ?? 'out/eval-score';
  const json = a.has('json');
  const log = (s: string) => (json ? console.error(s) : console.log(s));
  const model = await loadPrior(await readFileBytes(modelPath), modelPath);
  let base: Awaited<ReturnType<typeof baselineFor>> | null = null;
  let gen: StyleGAN2 | null = null;
  try {
    base = await baselineFor(modelPath, model, a.get('gaussian'));
    const norm = model.normalization;
    if (!norm) throw new Error(`${modelPath}: the model has no normalization; it was not trained on features`);
    if (!base.normalization || base.normalization.min !== norm.min || base.normalization.max !== norm.max) {
      throw new Error(`${base.name}: its normalization ${JSON.stringify(base.normalization)} differs from the model's ${JSON.stringify(norm)}; fit it with --like ${modelPath}`);
    }
    const genPath = a.get('generator') ?? model.data.generator;
    const getGen = async () => (gen ??= await loadGenerator(await readFileBytes(genPath ?? (() => { throw new Error('codes:A-B and the PNG need --generator (the model names no data.generator)'); })())));
    const set = await readFeatures(spec, getGen, Number(model.data.block), a.get('codes') ?? model.data.codes ?? DEFAULT_CODES);
    checkFinite(spec, set.data);
    const [N, C, H, W] = set.shape;
    if ([C, H, W].join() !== model.shape.join()) throw new RangeError(`${spec}: features [${C}, ${H}, ${W}] do not match the model's [${model.shape.join(', ')}]`);
    normalizeInPlace(set.data, norm);
    const sde = new VPSDE(model.sde);
    const steps = a.num('steps', sde.N);
    const t0 = performance.now();
    log(`eval-score: ${modelPath} (${model.kind}) vs ${base.name} on ${N} held-out features [${C}, ${H}, ${W}] (${spec}), seed ${seed}`);
    const bins = await dsmBins(model.model, base.model, set.data, set.shape, { times, seed, batch: a.num('batch', 64), sde, onBin: (b) => log(`  t ${b.t}: model ${b.model.toFixed(5)}, gaussian ${b.gaussian.toFixed(5)} (${((performance.now() - t0) / 1000).toFixed(1)} s)`) });
    const report: Record<string, unknown> = { model: modelPath, kind: model.kind, gaussian: base.name, features: spec, heldOut: N, seed, bins };
    if (nSamples > 0) report.samples = await sampleCheck(model.model, base.model, set, nSamples, { seed, steps, sdeditT, sde, outDir, log, render: genPath ? async (x: Tensor) => render(await getGen(), affine(x, norm.max - norm.min, norm.min), Number(model.data.block), 'avg', seed) : null });
    report.seconds = (performance.now() - t0) / 1000;
    mkdirSync(outDir, { recursive: true });
    await writeFileBytes(`${outDir}/report.json`, new TextEncoder().encode(JSON.stringify(report, null, 2) + '\n'));
    if (json) console.log(JSON.stringify(report));
    else console.log(formatReport(bins, report.samples as SampleRow[] | undefined));
  } finally {
    model.model.dispose();
    if (base?.own) base.model.dispose();
    (gen as StyleGAN2 | null)?.dispose();
  }
  return 0;
}

interface SampleRow {
  set: string;
  mmd2: number;
  nn: number;
}

/** Reverse-SDE and SDEdit samples of both models against held-out real features; the labelled PNG. */
async function sampleCheck(model: EpsModel, gaussian: EpsModel, set: ActivationSet, n: number, o: { seed: number; steps: number; sdeditT: number; sde: VPSDE; outDir: string; log: (s: string) => void; render: ((x: Tensor) => Promise<Float32Array[]>) | null }): Promise<SampleRow[]> {
  const [N, C, H, W] = set.shape;
  const dim = C * H * W;
  if (N < n + 2) throw new RangeError(`the sample check needs at least ${n + 2} held-out features (--samples ${n}), got ${N}`);
  // The last n rows are the real comparison set and the SDEdit starts; up to 512 others the reference.
  const real = set.data.subarray((N - n) * dim);
  const ref = set.data.subarray(0, Math.min(512, N - n) * dim);
  const h = medianBandwidth(ref, dim);
  const rows: SampleRow[] = [];
  const pictures: { label: string; images: Float32Array[] }[] = [];
  const add = async (label: string, x: Tensor | null, values: Float32Array) => {
    checkFinite(`sample check: ${label}`, values);
    rows.push({ set: label, ...setDistance(values, ref, dim, h) });
    if (o.render) pictures.push({ label, images: (await scope(() => o.render!(x ?? tensor(values, [n, C, H, W])))).slice(0, 8) });
  };
  await add('real held-out', null, real);
  for (const [name, m] of [['model', model], ['gaussian', gaussian]] as const) {
    for (const sdedit of [false, true]) {
      const label = sdedit ? `sdedit ${name} t=${o.sdeditT}` : `${name}`;
      const t0 = performance.now();
      const start = sdedit ? { x: tensor(real, [n, C, H, W]), t: o.sdeditT } : undefined;
      const x = await pcSample(m, { shape: [n, C, H, W], seed: o.seed, steps: o.steps, sde: o.sde, start });
      start?.x.dispose();
      await add(label, x, await x.readF32());
      x.dispose();
      o.log(`  samples: ${label} (${((performance.now() - t0) / 1000).toFixed(1)} s)`);
    }
  }
  if (o.render) await writeLabelledGrid(`${o.outDir}/samples.png`, pictures, Math.round(Math.sqrt(pictures[0].images[0].length / 3)));
  return rows;
}

function formatReport(bins: DsmBin[], samples: SampleRow[] | undefined): string {
  const lines = ['| t | model | gaussian | model - gaussian (se) | model / gaussian |', '|---|---|---|---|---|'];
  for (const b of bins) lines.push(`| ${b.t} | ${b.model.toPrecision(4)} | ${b.gaussian.toPrecision(4)} | ${(b.model - b.gaussian).toPrecision(3)} (${b.se.toPrecision(2)}) | ${(b.model / b.gaussian).toFixed(2)} |`);
  if (samples) {
    lines.push('', '| samples | MMD^2 to held-out | mean NN distance (RMS per value) |', '|---|---|---|');
    for (const s of samples) lines.push(`| ${s.set} | ${s.mmd2.toExponential(3)} | ${s.nn.toExponential(3)} |`);
  }
  return lines.join('\n');
}
