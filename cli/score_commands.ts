// CLI commands around score models: `train-score` and `sample` (their options: cli/commands.ts).
//
// train-score writes one file (`--out`, default out/train-score/score-block<k>.safetensors): a model
// of the EMA weights that is also a resumable checkpoint (samplers/score/checkpoint.ts); `--resume`
// continues it into --out (data settings are taken from the file unless given again) and never
// writes back over the resumed file unless --out names it and --force is given. `--minutes` stops early (with a checkpoint) when the time is up;
// `--export` also writes the model alone (EMA weights and config, no training state) for shipping.
// `--gaussian FILE|fit|none` (new models; default fit) gives the model a closed-form Gaussian base
// (samplers/score/gaussian.ts) whose eps the network corrects: a residual model. `sample` takes any
// prior kind (samplers/score/prior_model.ts): a ViT, a Gaussian or a residual model.

import { engine } from '../engine/engine.ts';
import { formatProfile } from '../engine/profiler.ts';
import { existsSync } from 'node:fs';
import { readFileBytes } from '../engine/io/files.ts';
import { scope, tensor } from '../engine/tensor.ts';
import { reshape } from '../engine/ops/layout.ts';
import { noGrad } from '../engine/tape.ts';
import { add, affine } from '../engine/ops/elementwise.ts';
import { randomNormal } from '../engine/random.ts';
import { ScoreViT, type ScoreViTConfig } from '../nets/score_vit.ts';
import { numBlocks, type StyleGAN2 } from '../nets/stylegan2.ts';
import { loadGenerator } from '../nets/stylegan2_checkpoint.ts';
import { activationsFromCodes, activationsFromGaussian, computeNormalization, normalizeInPlace, readActivationsFile, readCodesFile, type ActivationSet } from '../samplers/score/data.ts';
import { initScoreStateDict, loadScoreModel, scoreModelConfig, stripTraining, type LoadedScoreModel } from '../samplers/score/checkpoint.ts';
import { ScoreTrainer, type TrainOptions } from '../samplers/score/train.ts';
import { annealedLangevin, pcSample } from '../samplers/score/sample.ts';
import { VPSDE } from '../samplers/score/vpsde.ts';
import { writeFigure } from '../engine/io/png.ts';
import type { FigureSpec } from '../engine/io/figure.ts';
import { loadPrior } from '../samplers/score/prior_model.ts';
import { GaussianScore, gaussianConfig } from '../samplers/score/gaussian.ts';
import { baseRecord, type ClosedFormBase } from '../samplers/score/mixture.ts';
import { fitGaussian } from '../samplers/score/gaussian_fit.ts';
import { UsageError, type Parsed } from './args.ts';
import { checkOutputPath, prepareOutput, writeAtomic, type Output } from './outputs.ts';
import { assertFinite, assertFiniteCheckpoint, loadAs } from './checks.ts';

// Stored in model files as written here (relative to the repository root) and resolved by fromRoot.
const DEFAULT_CODES = 'models/fashion32/fashion32-codes.safetensors';

/** Raw activations for a data spec: "codes", "gaussian" or an activations file. */
async function loadActivations(spec: string, generator: string | undefined, block: number, samples: number, seed: number, codesPath: string): Promise<ActivationSet> {
  if (!generator) throw new Error(`--data ${spec} needs the generator checkpoint`);
  const g = await loadAs(generator, 'generator', (b) => loadGenerator(b));
  try {
    if (!(block >= 0 && block < numBlocks(g.config) - 1)) throw new RangeError(`--block ${block}: the generator has blocks 0..${numBlocks(g.config) - 1}; features after block k need k <= ${numBlocks(g.config) - 2}`);
    let set: ActivationSet;
    if (spec === 'codes') {
      const codes = await loadAs(fromRoot(codesPath), 'activations', (b) => readCodesFile(b, codesPath));
      const n = Math.min(samples || codes.n, codes.n);
      set = await activationsFromCodes(g, codes.z.subarray(0, n * codes.dim), block);
      set.meta.codes = codesPath;
    } else set = await activationsFromGaussian(g, samples || 4096, block, seed);
    set.meta.generator = generator;
    return set;
  } finally {
    g.dispose();
  }
}

export async function trainScoreCommand(p: Parsed, given: Output | undefined): Promise<number> {
  const v = p.values;
  const has = (k: string) => p.given.has(k);
  const resumePath = v.resume as string | undefined;
  const resumed: LoadedScoreModel | null = resumePath
    ? await loadAs(resumePath, 'score', async (b) => {
        await assertFiniteCheckpoint(b, resumePath);
        return loadScoreModel(b);
      })
    : null;
  const prev = resumed?.config.data ?? {};
  const generator = p.positionals[0] ?? (prev.generator ? fromRoot(prev.generator) : undefined);
  const dataSpec = (v.data as string | undefined) ?? prev.source ?? 'codes';
  const seed = has('seed') ? Number(v.seed) : Number(prev.seed ?? 0); // gaussian data record their seed
  const samples = has('samples') ? Number(v.samples) : Number(prev.samples ?? 0);
  const steps = Number(v.steps);
  const t0 = performance.now();
  // An activations file says which block it holds; --block only names it for codes/gaussian data.
  const filePath = dataSpec === 'file' ? prev.file : dataSpec !== 'codes' && dataSpec !== 'gaussian' ? dataSpec : undefined;
  const fileSet = filePath ? await loadAs(filePath, 'activations', (b) => readActivationsFile(b, filePath)) : undefined;
  const block = has('block') ? Number(v.block) : fileSet?.meta.block !== undefined ? Number(fileSet.meta.block) : Number(prev.block ?? 1);
  // The output is checked before the data are computed and before any step.
  const output = given ?? prepareOutput('--out', `out/train-score/score-block${block}.safetensors`, 'file', p.force);
  const out = output.final;
  if (v.export !== undefined) checkOutputPath('--export', String(v.export), 'file', p.force);
  const set = fileSet ?? (await loadActivations(dataSpec, generator, block, samples, seed, (v.codes as string | undefined) ?? prev.codes ?? DEFAULT_CODES));
  assertFinite(set.data, 'the training activations', dataSpec);
  // The residual model's closed-form base: a resumed model keeps its own.
  const baseSpec = resumed ? 'none' : String(v.gaussian ?? 'fit');
  const baseFile = baseSpec !== 'fit' && baseSpec !== 'none' ? await loadAs(baseSpec, 'score', (b) => loadPrior(b, baseSpec)) : null;
  if (baseFile && baseFile.kind !== 'gaussian' && baseFile.kind !== 'mixture') throw (baseFile.model.dispose(), new RangeError(`--gaussian ${baseSpec}: a closed-form base must be a fit-gaussian file (Gaussian or mixture), got a ${baseFile.kind} model`));
  const norm = resumed?.config.normalization ?? baseFile?.normalization ?? computeNormalization(set.data);
  normalizeInPlace(set.data, norm);
  const [N, C, H, W] = set.shape;
  console.log(`data: ${N} activations [${C}, ${H}, ${W}] (${dataSpec}, block ${block}), min ${norm.min.toFixed(4)} max ${norm.max.toFixed(4)}, ${((performance.now() - t0) / 1000).toFixed(1)} s`);

  const options: Partial<TrainOptions> = {};
  const opt = (key: keyof TrainOptions, flag: string) => {
    if (has(flag)) (options as Record<string, number>)[key] = Number(v[flag]);
  };
  opt('lr', 'lr');
  opt('batch', 'batch');
  opt('emaDecay', 'ema');
  opt('warmup', 'warmup');
  opt('gradClip', 'clip');
  opt('tPower', 't-power');
  if (v.likelihood === true) options.likelihoodWeighting = true;
  const data = { data: set.data, shape: set.shape };
  let base: ClosedFormBase | null = resumed?.base ?? null;
  if (baseFile) base = baseFile.mixture ?? baseFile.gaussian!;
  else if (baseSpec === 'fit') {
    const fitStart = performance.now();
    const params = await fitGaussian(set.data, N, { onProgress: (m) => console.log(`gaussian base: ${m}`) });
    assertFinite(params.values, 'the eigenvalues of the Gaussian base', 'train-score --gaussian fit');
    base = new GaussianScore(gaussianConfig([C, H, W], params, norm), params);
    console.log(`gaussian base: fitted to the ${N} training activations (rank ${params.values.length}), ${((performance.now() - fitStart) / 1000).toFixed(1)} s`);
  }
  if (base && base.config.shape.join() !== [C, H, W].join()) {
    base.dispose();
    throw new RangeError(`--gaussian ${baseSpec}: shape [${base.config.shape.join(', ')}] differs from the data's [${C}, ${H}, ${W}]`);
  }
  let trainer: ScoreTrainer;
  if (resumed) {
    trainer = ScoreTrainer.resume(resumed, data, options);
    resumed.net.dispose();
    console.log(`resumed ${resumePath} at step ${trainer.step}; writing ${out}`);
  } else {
    const dim = Number(v.dim);
    const heads = Number(v.heads);
    const dimHead = has('dim-head') ? Number(v['dim-head']) : dim / heads;
    if (!Number.isInteger(dimHead)) throw new UsageError(`--dim ${dim} is not a multiple of --heads ${heads}; give --dim-head`);
    const time = String(v.time);
    const vit: ScoreViTConfig = { channels: C, height: H, width: W, dim, depth: Number(v.depth), heads, dimHead, mlp: has('mlp') ? Number(v.mlp) : 2 * dim, ...(time === 'vector' ? { time: 'vector' as const } : {}) };
    const meta: Record<string, string> = { ...set.meta, source: dataSpec === 'codes' || dataSpec === 'gaussian' ? dataSpec : 'file', block: String(block), samples: String(N) };
    if (meta.source === 'file') meta.file = dataSpec;
    const config = scoreModelConfig(vit, norm, meta);
    const init = initScoreStateDict(vit, seed);
    if (base) {
      // A residual model starts exactly at its Gaussian: the network's last layer is zero.
      const record = baseRecord(base, 'gaussian.');
      config.gaussian = record.gaussian;
      if (record.mixture) config.mixture = record.mixture;
      for (const name of ['projector.weight', 'projector.bias']) init.get(name)!.data.fill(0);
    }
    trainer = new ScoreTrainer(ScoreViT.fromStateDict(vit, init), config, data, { ...options, seed }, base);
  }
  const o = trainer.options;
  const nParams = trainer.net.trainable().reduce((s, [, q]) => s + q.size, 0);
  console.log(`model: ${JSON.stringify(trainer.config.vit)}, ${nParams.toLocaleString('en-US')} parameters; ${JSON.stringify(o)}`);

  const ckptEvery = Number(v['ckpt-every']);
  const logEvery = Number(v['log-every']);
  const deadline = has('minutes') ? performance.now() + Number(v.minutes) * 60_000 : Infinity;
  // Every checkpoint is checked (no NaN written) and written atomically (never half a file).
  const save = async () => {
    const bytes = await trainer.checkpoint();
    await assertFiniteCheckpoint(bytes, `the checkpoint at step ${trainer.step}`);
    writeAtomic(out, bytes);
    console.log(`checkpoint: ${out} (step ${trainer.step})`);
  };
  const end = trainer.step + steps;
  // --profile n: after one warm-up step (pipelines compiled), time every kernel of the next n steps.
  const profileSteps = Number(v.profile);
  const profileFrom = trainer.step + 1;
  let window: number[] = [];
  let tWindow = performance.now();
  try {
    while (trainer.step < end && performance.now() < deadline) {
      if (profileSteps > 0 && trainer.step === profileFrom) engine().startProfile();
      const loss = await trainer.trainStep();
      assertFinite(loss, 'the loss', `train-score step ${trainer.step}`);
      window.push(loss);
      if (profileSteps > 0 && trainer.step === profileFrom + profileSteps) {
        const prof = await engine().stopProfile();
        console.log(`profile of ${profileSteps} steps: ${prof.dispatches / profileSteps} dispatches and ${prof.submits / profileSteps} submits per step\n${formatProfile(prof.kernels, profileSteps)}`);
      }
      if (trainer.step % logEvery === 0 || trainer.step === end) {
        const sec = (performance.now() - tWindow) / 1000;
        const avg = window.reduce((s, x) => s + x, 0) / window.length;
        console.log(`step ${trainer.step}/${end} loss ${window[window.length - 1].toFixed(4)} (avg ${avg.toFixed(4)}) ${((window.length * o.batch) / sec).toFixed(1)} samples/s ${(sec / window.length).toFixed(2)} s/step`);
        window = [];
        tWindow = performance.now();
      }
      if (trainer.step % ckptEvery === 0) await save();
    }
    await save();
    const exportPath = v.export as string | undefined;
    if (exportPath) {
      writeAtomic(exportPath, stripTraining(await readFileBytes(out)));
      console.log(`model (EMA weights, no training state): ${exportPath}`);
    }
  } catch (e) {
    if (!given) output.abort();
    throw e;
  } finally {
    trainer.dispose();
    trainer.net.dispose();
    base?.dispose();
  }
  if (!given) output.commit();
  return 0;
}

/** A path stored in a model file relative to the repository root (models/...), resolved from anywhere. */
export function fromRoot(path: string): string {
  if (path.startsWith('/')) return path;
  const p = new URL(`../${path}`, import.meta.url).pathname;
  return existsSync(path) || !existsSync(p) ? path : p;
}

export async function sampleCommand(p: Parsed, out: Output): Promise<number> {
  const v = p.values;
  const has = (k: string) => p.given.has(k);
  const file = p.positionals[0];
  await loadAs(file, 'score', (b) => assertFiniteCheckpoint(b, file));
  const prior = await loadAs(file, 'score', (b) => loadPrior(b, file)); // any kind: ViT, Gaussian, residual
  const net = prior.model;
  const config = { data: prior.data, sde: prior.sde };
  const norm = prior.normalization;
  console.error(`score model: ${file}: ${prior.kind === 'gaussian' ? 'closed-form Gaussian prior' : `${prior.vit!.source}${prior.kind === 'residual' ? ', residual on a Gaussian base' : ''}`}`);
  const genPath = (v.generator as string | undefined) ?? (config.data.generator ? fromRoot(config.data.generator) : undefined);
  const block = Number(config.data.block);
  if (!norm || !genPath || !Number.isInteger(block)) {
    net.dispose();
    throw new Error(`${file}: rendering needs a model trained on generator features (normalization, data.generator, data.block), and --generator if the file does not name one`);
  }
  const n = Number(v.n);
  const seed = Number(v.seed);
  const sampler = String(v.sampler);
  const [C, H, W] = prior.shape;
  const sde = new VPSDE(config.sde);
  const t0 = performance.now();
  let lastStep = 0;
  const progress = (i: number, total: number) => {
    lastStep = i + 1;
    if ((i + 1) % Math.max(1, Math.floor(total / 10)) === 0) console.log(`  step ${i + 1}/${total} (${((performance.now() - t0) / 1000).toFixed(1)} s)`);
  };
  const styles = String(v.styles);
  const g = await loadAs(genPath, 'generator', (b) => loadGenerator(b));
  try {
    // Held-out real activations (codes from --codes-from on; training used the first data.samples).
    const from = has('codes-from') ? Number(v['codes-from']) : Number(config.data.samples ?? 0);
    const realSet = async (count: number) => {
      const path = fromRoot(config.data.codes ?? DEFAULT_CODES);
      const codes = await loadAs(path, 'activations', (b) => readCodesFile(b, path));
      if (from + count > codes.n) throw new RangeError(`--codes-from ${from}: ${path} has ${codes.n} codes, ${count} needed`);
      return activationsFromCodes(g, codes.z.subarray(from * codes.dim, (from + count) * codes.dim), block);
    };
    const sdedit = has('sdedit') ? Number(v.sdedit) : null;
    let start: { x: ReturnType<typeof tensor>; t: number } | undefined;
    if (sdedit !== null) {
      const set = await realSet(n);
      normalizeInPlace(set.data, norm);
      start = { x: tensor(set.data, set.shape), t: sdedit };
    }
    const common = { shape: [n, C, H, W], seed, sde, start, onStep: progress };
    const x = sampler === 'ald'
      ? await annealedLangevin(net, { ...common, levels: Number(v.levels), stepsPerLevel: Number(v['steps-per-level']), epsilon: Number(v.epsilon) })
      : await pcSample(net, { ...common, steps: has('steps') ? Number(v.steps) : sde.N, correctorSteps: Number(v.corrector), snr: Number(v.snr) });
    start?.x.dispose();
    const range = await x.readF32();
    assertFinite(range, 'the sampled features x', `${sampler} sampler after step ${lastStep}`);
    const images = await scope(() => render(g, affine(x, norm.max - norm.min, norm.min), block, styles, seed)); // raw units
    x.dispose();
    images.forEach((im, i) => assertFinite(im, `rendered image ${i}`, 'sample'));
    const real = has('real') ? Number(v.real) : sdedit !== null ? n : 0;
    const reals = real > 0 ? await scope(async () => { const set = await realSet(real); return render(g, tensor(set.data, set.shape), block, styles, seed); }) : [];
    let lo = Infinity;
    let hi = -Infinity;
    for (const r of range) (lo = Math.min(lo, r)), (hi = Math.max(hi, r));
    const cols = has('cols') ? Number(v.cols) : Math.min(8, n);
    const rows: FigureSpec['rows'] = [];
    const addRows = (list: Float32Array[], label: string) => {
      for (let i = 0; i < list.length; i += cols) rows.push({ label: i === 0 ? label : '', panels: list.slice(i, i + cols).map((image) => ({ image })) });
    };
    addRows(reals, 'real');
    addRows(images, 'sampled');
    await writeFigure(`${out.path}/samples.png`, { size: g.config.size, rows, title: `${sampler} sampler, features after block ${block}, seed ${seed}` });
    const how = `${sampler}${sdedit !== null ? `, SDEdit from held-out activations at t = ${sdedit}` : ''}${real > 0 ? `, after ${real} real activations rendered the same way` : ''}`;
    console.log(`wrote ${out.final}/samples.png: ${n} samples (${how}; seed ${seed}) of features after block ${block}, normalized range [${lo.toFixed(3)}, ${hi.toFixed(3)}], ${((performance.now() - t0) / 1000).toFixed(1)} s`);
  } finally {
    g.dispose();
    net.dispose();
  }
  return 0;
}

/** Images from features after block k (raw units) through blocks k+1.. of the generator. */
export async function render(g: StyleGAN2, features: ReturnType<typeof tensor>, block: number | 'latent', styles: string, seed: number): Promise<Float32Array[]> {
  const n = features.shape[0];
  return scope(() =>
    noGrad(async () => {
      // Latent features are W itself (the same row in all of W+), so the whole synthesis renders them.
      const out = block === 'latent' ? g.synthesis({ wplus: g.broadcastWplus(reshape(features, [n, g.config.styleDim])) }) : g.fromLayer({ wplus: stylesFor(g, n, styles, seed) }, block + 1, features);
      const img = await out.readF32();
      const per = img.length / n;
      return Array.from({ length: n }, (_, i) => img.slice(i * per, (i + 1) * per));
    }),
  );
}

/** W+ for rendering the later blocks: latent_avg in every row ("avg"), or mapping of seeded Gaussian z. */
function stylesFor(g: StyleGAN2, n: number, kind: string, seed: number) {
  if (kind === 'random') return g.broadcastWplus(g.mapping(randomNormal([n, g.config.styleDim], { seed: seed + 1_000_003 })));
  if (kind !== 'avg') throw new RangeError(`--styles must be avg or random, got "${kind}"`);
  if (!g.latentAvg) throw new Error('--styles avg needs latent_avg in the generator checkpoint; use --styles random');
  const S = g.config.styleDim;
  return g.broadcastWplus(add(tensor(new Float32Array(n * S), [n, S]), g.latentAvg));
}
