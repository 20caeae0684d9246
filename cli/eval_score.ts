// `sgilo eval-score` and `sgilo fit-gaussian` (options: cli/commands.ts): thin wrappers over
// samplers/score/evaluate.ts and gaussian_fit.ts that read the files, check every number and print.

import { scope, tensor, type Tensor } from '../engine/tensor.ts';
import { affine } from '../engine/ops/elementwise.ts';
import { writeFigure } from '../engine/io/png.ts';
import type { FigureSpec } from '../engine/io/figure.ts';
import { loadGenerator } from '../nets/stylegan2_checkpoint.ts';
import { numBlocks, type StyleGAN2 } from '../nets/stylegan2.ts';
import { activationsFromCodes, computeNormalization, normalizeInPlace, readActivationsFile, readCodesFile, type ActivationSet, type Normalization } from '../samplers/score/data.ts';
import { loadPrior, type LoadedPrior } from '../samplers/score/prior_model.ts';
import { dsmBins, medianBandwidth, setDistance, type DsmBin } from '../samplers/score/evaluate.ts';
import { fitGaussian, explainedVariance } from '../samplers/score/gaussian_fit.ts';
import { gaussianConfig, readGaussianModel, writeGaussianModel } from '../samplers/score/gaussian.ts';
import { MIXTURE_MODEL_KIND, writeMixtureModel } from '../samplers/score/mixture.ts';
import { fitMixture } from '../samplers/score/mixture_fit.ts';
import { pcSample, type EpsModel } from '../samplers/score/sample.ts';
import { VPSDE } from '../samplers/score/vpsde.ts';
import type { Parsed } from './args.ts';
import { prepareOutput, writeAtomic, type Output } from './outputs.ts';
import { assertFinite, loadAs } from './checks.ts';
import { fromRoot, render } from './score_commands.ts';

const DEFAULT_CODES = 'models/fashion32/fashion32-codes.safetensors';

/** Raw features from an activations file or codes:A-B through the generator. */
async function readFeatures(spec: string, g: () => Promise<StyleGAN2>, block: number, codesPath: string): Promise<ActivationSet> {
  const m = /^codes:(\d+)-(\d+)$/.exec(spec);
  const set = m ? await featuresFromCodes(spec, Number(m[1]), Number(m[2]), g, block, codesPath) : await loadAs(spec, 'activations', (b) => readActivationsFile(b, spec));
  assertFinite(set.data, 'the features', spec);
  return set;
}

async function featuresFromCodes(spec: string, from: number, to: number, g: () => Promise<StyleGAN2>, block: number, codesPath: string): Promise<ActivationSet> {
  const path = fromRoot(codesPath);
  const codes = await loadAs(path, 'activations', (b) => readCodesFile(b, path));
  if (!(from < to && to <= codes.n)) throw new RangeError(`${spec}: need A < B <= ${codes.n} (the codes in ${codesPath})`);
  const gen = await g();
  if (!(block >= 0 && block < numBlocks(gen.config) - 1)) throw new RangeError(`${spec}: block ${block} is not a feature block of the generator (0..${numBlocks(gen.config) - 2})`);
  const set = await activationsFromCodes(gen, codes.z.subarray(from * codes.dim, to * codes.dim), block);
  return { ...set, meta: { ...set.meta, codes: codesPath, from: String(from), to: String(to) } };
}

/** The generator, loaded once on first use; `missing` is the error when no path is known. */
function lazyGenerator(path: string | undefined, missing: string) {
  let gen: StyleGAN2 | null = null;
  return {
    get: async () => {
      if (!path) throw new Error(missing);
      return (gen ??= await loadAs(path, 'generator', (b) => loadGenerator(b)));
    },
    dispose: () => gen?.dispose(),
  };
}

export async function fitGaussianCommand(p: Parsed, given: Output | undefined): Promise<number> {
  const v = p.values;
  const spec = p.positionals[0];
  const likePath = v.like as string | undefined;
  const like = likePath ? await loadAs(likePath, 'score', (b) => loadPrior(b, likePath)) : null;
  like?.model.dispose();
  const block = p.given.has('block') ? Number(v.block) : Number(like?.data.block ?? NaN);
  const genPath = (v.generator as string | undefined) ?? (like?.data.generator ? fromRoot(like.data.generator) : undefined);
  const gen = lazyGenerator(genPath, 'codes:A-B needs --generator (or --like with data.generator)');
  let output = given;
  try {
    const set = await readFeatures(spec, gen.get, block, (v.codes as string | undefined) ?? like?.data.codes ?? DEFAULT_CODES);
    gen.dispose();
    const k = set.meta.block ?? String(block);
    const components = p.given.has('components') ? Number(v.components) : 0;
    // The default file is named after the space, known once the features are read.
    output ??= prepareOutput('--out', `out/fit-gaussian/${components ? 'mixture' : 'gaussian'}-${spaceName(k)}.safetensors`, 'file', p.force);
    const basePath = v.base as string | undefined;
    const given = basePath ? await loadAs(basePath, 'score', (b) => readGaussianModel(b, basePath)) : null;
    const norm: Normalization = given?.config.normalization ?? like?.normalization ?? computeNormalization(set.data);
    normalizeInPlace(set.data, norm);
    const [N, C, H, W] = set.shape;
    if (given && given.config.shape.join() !== [C, H, W].join()) throw new RangeError(`--base ${basePath}: shape [${given.config.shape.join(', ')}] differs from the features' [${C}, ${H}, ${W}]`);
    const t0 = performance.now();
    const rank = p.given.has('rank') ? Number(v.rank) : undefined;
    const params = given?.params ?? (await fitGaussian(set.data, N, { rank, onProgress: (m) => console.log(`  ${m} (${((performance.now() - t0) / 1000).toFixed(1)} s)`) }));
    assertFinite(params.values, 'the eigenvalues', 'fit-gaussian');
    assertFinite(params.residualVariance, 'the residual variance', 'fit-gaussian');
    const data = { ...set.meta, block: k, source: spec, samples: String(N), ...(genPath ? { generator: genPath } : {}), ...(basePath ? { gaussian: basePath } : {}) };
    const config = gaussianConfig([C, H, W], params, norm, data);
    if (components) {
      const subspace = p.given.has('subspace') ? Number(v.subspace) : undefined;
      if (subspace !== undefined && subspace > params.values.length) throw new RangeError(`--subspace ${subspace} exceeds the Gaussian's rank ${params.values.length}`);
      const fit = await fitMixture(set.data, N, params, { components, subspace, iterations: Number(v['em-iterations']), rows: Number(v['em-rows']), seed: Number(v.seed), onProgress: (m) => console.log(`  ${m} (${((performance.now() - t0) / 1000).toFixed(1)} s)`) });
      assertFinite(fit.mixture.values, 'the component variances', 'fit-gaussian');
      assertFinite(fit.mixture.means, 'the component means', 'fit-gaussian');
      writeAtomic(output.path, writeMixtureModel({ ...config, kind: MIXTURE_MODEL_KIND, components, subspace: fit.subspace }, params, fit.mixture, { em: JSON.stringify(fit.logLikelihood.map((l) => +l.toFixed(4))) }));
      console.log(`mixture of ${components} in ${fit.subspace} coordinates: mean log-likelihood ${fit.logLikelihood[0].toFixed(3)} -> ${fit.logLikelihood.at(-1)!.toFixed(3)} over ${fit.logLikelihood.length} EM iterations; weights ${Array.from(fit.mixture.weights, (w) => w.toFixed(3)).join(' ')}`);
    } else writeAtomic(output.path, writeGaussianModel(config, params));
    const ev = explainedVariance(params);
    const at = (f: number) => ev.findIndex((x) => x >= f) + 1 || `> ${ev.length}`;
    const n = C * H * W;
    const meanVar = params.values.reduce((s, x) => s + x, 0) / n + (params.residualVariance * (n - params.values.length)) / n;
    console.log(`wrote ${output.final}: N(mu, C) ${given ? `of ${basePath}` : `of ${N} x`} [${C}, ${H}, ${W}] (rank ${params.values.length}${params.residualVariance ? `, residual variance ${params.residualVariance.toExponential(3)}` : ''}), mean variance ${meanVar.toExponential(3)}; 90/99/99.9% of the variance in ${at(0.9)}/${at(0.99)}/${at(0.999)} directions; ${((performance.now() - t0) / 1000).toFixed(1)} s`);
  } catch (e) {
    if (!given) output?.abort();
    throw e;
  } finally {
    gen.dispose();
  }
  if (!given) output!.commit();
  return 0;
}

/** "latent" or "block<k>": how files of a feature space are named. */
function spaceName(block: string | undefined): string {
  return block === 'latent' ? 'latent' : `block${block}`;
}

/** The baseline: --gaussian, a residual or mixture model's base, or gaussian-<space>.safetensors beside the model. */
async function baselineFor(modelPath: string, model: LoadedPrior, flag: string | undefined): Promise<{ model: EpsModel & { dispose(): void }; name: string; normalization: Normalization | null; own: boolean }> {
  if (flag === undefined && model.kind === 'residual') return { model: model.gaussian!, name: `${modelPath} (its Gaussian base)`, normalization: model.normalization, own: false };
  if (flag === undefined && model.kind === 'mixture') return { model: model.mixture!.gaussian, name: `${modelPath} (its Gaussian base)`, normalization: model.normalization, own: false };
  const path = flag ?? `${modelPath.includes('/') ? modelPath.slice(0, modelPath.lastIndexOf('/')) : '.'}/gaussian-${spaceName(model.data.block)}.safetensors`;
  const g = await loadAs(path, 'score', (b) => loadPrior(b, path)).catch((e: Error) => {
    throw new Error(`${e.message}; the baseline is a Gaussian: make one with \`sgilo fit-gaussian <training features> --like ${modelPath}\` and pass --gaussian FILE`);
  });
  if (g.kind !== 'gaussian') throw (g.model.dispose(), new Error(`${path}: not a Gaussian prior (kind ${g.kind})`));
  return { model: g.model, name: path, normalization: g.normalization, own: true };
}

export async function evalScoreCommand(p: Parsed, out: Output): Promise<number> {
  const v = p.values;
  const [modelPath, spec] = p.positionals;
  const times = String(v.times).split(',').map(Number);
  const seed = Number(v.seed);
  const nSamples = Number(v.samples);
  const json = v.json === true;
  // With --json, stdout holds the JSON object alone.
  const log = (s: string) => (json ? console.error(s) : console.log(s));
  const model = await loadAs(modelPath, 'score', (b) => loadPrior(b, modelPath));
  let base: Awaited<ReturnType<typeof baselineFor>> | null = null;
  const genPath = (v.generator as string | undefined) ?? (model.data.generator ? fromRoot(model.data.generator) : undefined);
  const gen = lazyGenerator(genPath, 'codes:A-B and the PNG need --generator (the model names no data.generator)');
  try {
    base = await baselineFor(modelPath, model, v.gaussian as string | undefined);
    const norm = model.normalization;
    if (!norm) throw new Error(`${modelPath}: the model has no normalization; it was not trained on features`);
    if (!base.normalization || base.normalization.min !== norm.min || base.normalization.max !== norm.max) {
      throw new Error(`${base.name}: its normalization ${JSON.stringify(base.normalization)} differs from the model's ${JSON.stringify(norm)}; fit it with --like ${modelPath}`);
    }
    const set = await readFeatures(spec, gen.get, Number(model.data.block), (v.codes as string | undefined) ?? model.data.codes ?? DEFAULT_CODES);
    const [N, C, H, W] = set.shape;
    if ([C, H, W].join() !== model.shape.join()) throw new RangeError(`${spec}: features [${C}, ${H}, ${W}] do not match the model's [${model.shape.join(', ')}]`);
    normalizeInPlace(set.data, norm);
    const sde = new VPSDE(model.sde);
    const steps = p.given.has('steps') ? Number(v.steps) : sde.N;
    const t0 = performance.now();
    log(`eval-score: ${modelPath} (${model.kind}) vs ${base.name} on ${N} held-out features [${C}, ${H}, ${W}] (${spec}), seed ${seed}`);
    const bins = await dsmBins(model.model, base.model, set.data, set.shape, {
      times,
      seed,
      batch: Number(v.batch),
      sde,
      onBin: (b) => {
        for (const k of ['model', 'gaussian', 'se'] as const) assertFinite(b[k], `the ${k === 'se' ? 'standard error' : `${k} DSM loss`}`, `eval-score bin t = ${b.t}`);
        log(`  t ${b.t}: model ${b.model.toFixed(5)}, gaussian ${b.gaussian.toFixed(5)} (${((performance.now() - t0) / 1000).toFixed(1)} s)`);
      },
    });
    const report: Record<string, unknown> = { model: modelPath, kind: model.kind, gaussian: base.name, features: spec, heldOut: N, seed, bins: bins.map((b) => ({ t: b.t, model: b.model, gaussian: b.gaussian, se: b.se })) };
    const g = genPath && nSamples > 0 ? await gen.get() : null;
    const renderer = g ? { images: (x: Tensor) => render(g, affine(x, norm.max - norm.min, norm.min), model.data.block === 'latent' ? 'latent' : Number(model.data.block), 'avg', seed), size: g.config.size } : null;
    if (nSamples > 0) report.samples = await sampleCheck(model.model, base.model, set, nSamples, { seed, steps, sdeditT: Number(v.sdedit), sde, outDir: out.path, log, render: renderer });
    report.seconds = (performance.now() - t0) / 1000;
    writeAtomic(`${out.path}/report.json`, JSON.stringify(report, null, 2) + '\n');
    if (json) console.log(JSON.stringify(report));
    else console.log(formatReport(bins, report.samples as SampleRow[] | undefined));
    log(`wrote ${out.final}/report.json${nSamples > 0 && renderer ? ' and samples.png' : ''}`);
  } finally {
    model.model.dispose();
    if (base?.own) base.model.dispose();
    gen.dispose();
  }
  return 0;
}

interface SampleRow {
  set: string;
  mmd2: number;
  nn: number;
}

/** Reverse-SDE and SDEdit samples of both models against held-out real features; the labelled PNG. */
async function sampleCheck(model: EpsModel, gaussian: EpsModel, set: ActivationSet, n: number, o: { seed: number; steps: number; sdeditT: number; sde: VPSDE; outDir: string; log: (s: string) => void; render: { images: (x: Tensor) => Promise<Float32Array[]>; size: number } | null }): Promise<SampleRow[]> {
  const [N, C, H, W] = set.shape;
  const dim = C * H * W;
  if (N < n + 2) throw new RangeError(`the sample check needs at least ${n + 2} held-out features (--samples ${n}), got ${N}`);
  // The last n rows are the real comparison set and the SDEdit starts; up to 512 others the reference.
  const real = set.data.subarray((N - n) * dim);
  const ref = set.data.subarray(0, Math.min(512, N - n) * dim);
  const h = medianBandwidth(ref, dim);
  const rows: SampleRow[] = [];
  const figureRows: FigureSpec['rows'] = [];
  const add = async (label: string, x: Tensor | null, values: Float32Array) => {
    assertFinite(values, 'the sampled features', `sample check: ${label}`);
    const d = setDistance(values, ref, dim, h);
    assertFinite([d.mmd2, d.nn], 'MMD^2 and the NN distance', `sample check: ${label}`);
    rows.push({ set: label, ...d });
    if (!o.render) return;
    const images = (await scope(() => o.render!.images(x ?? tensor(values, [n, C, H, W])))).slice(0, 8);
    images.forEach((im, i) => assertFinite(im, `rendered image ${i}`, `sample check: ${label}`));
    figureRows.push({ label, panels: images.map((image) => ({ image })) });
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
  if (o.render) await writeFigure(`${o.outDir}/samples.png`, { size: o.render.size, rows: figureRows, title: `samples (${o.steps} steps, seed ${o.seed}) beside held-out features` });
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
