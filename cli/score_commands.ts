// CLI commands around score models (wired into cli/main.ts by the lead):
//   train-score <generator.pt> [--block k] [--steps n] [--batch b] [--lr x] [--seed s] [--out f]
//               [--resume ckpt] [--dim D] [--depth n] [--heads h] [--dim-head dh] [--mlp M]
//               [--data codes|gaussian|<activations.safetensors>] [--codes f] [--samples N]
//               [--ckpt-every n] [--log-every n] [--ema d] [--warmup n] [--clip c] [--likelihood]
//               [--minutes m] [--export model.safetensors] [--profile n] [--time token|vector]
//               [--t-power p] [--gaussian FILE|fit|none]
//               --time vector (the default for new models; token: DESIGN.md's layout): the time
//               conditioning that survives LayerNorm (nets/score_vit.ts);
//               --gaussian: the residual model's closed-form base (samplers/score/gaussian.ts): a
//               fit-gaussian file (its normalization is used), fit (default: fitted to the training
//               data first), none (a plain ViT); the network learns a correction to its eps;
//               --t-power p: t = tEps + (1 - tEps) u^p, more of each batch at small t for p > 1.
//   sample <score.safetensors> [--generator g.pt] [--n 16] [--seed 0] [--sampler pc|ald] [--steps N]
//          [--corrector n] [--snr r] [--styles avg|random] [--out out/score-samples.png] [--cols 8]
//          [--real n] [--sdedit t0] [--codes-from i]
//          --real n: first put n held-out real-code activations (codes i.., default i = the number the
//          model was trained on), rendered the same way, as a reference; --sdedit t0: start the sampler
//          from those activations diffused to time t0 (SDEdit) instead of from noise (implies --real n).
//          The later blocks' styles: latent_avg in every W+ row (avg) or mapped Gaussian z (random).
//   replay score <checkpoint> <inputs.safetensors> <out.safetensors> [--heads h]
//
// train-score writes one file (`--out`): a model of the EMA weights that is also a resumable
// checkpoint (samplers/score/checkpoint.ts); `--resume` continues it (data settings are taken from the
// file unless given again). `--minutes` stops early (with a checkpoint) when the time is up;
// `--export` also writes the model alone (EMA weights and config, no training state) for shipping.

import { engine } from '../engine/engine.ts';
import { formatProfile } from '../engine/profiler.ts';
import { readFileBytes, writeFileBytes } from '../engine/io/files.ts';
import { readSafetensors, writeSafetensors, type HostTensor as IoTensor } from '../engine/io/index.ts';
import { scope, tensor } from '../engine/tensor.ts';
import { noGrad } from '../engine/tape.ts';
import { add, affine } from '../engine/ops/elementwise.ts';
import { randomNormal } from '../engine/random.ts';
import { ScoreViT, type ScoreViTConfig } from '../nets/score_vit.ts';
import { numBlocks, type StyleGAN2 } from '../nets/stylegan2.ts';
import { loadGenerator } from '../nets/stylegan2_checkpoint.ts';
import { replayScore } from '../nets/replay_score.ts';
import type { TensorMap } from '../nets/replay_generator.ts';
import { activationsFromCodes, activationsFromGaussian, computeNormalization, normalizeInPlace, readActivationsFile, readCodesFile, type ActivationSet } from '../samplers/score/data.ts';
import { initScoreStateDict, loadScoreModel, scoreModelConfig, stripTraining, type LoadedScoreModel } from '../samplers/score/checkpoint.ts';
import { ScoreTrainer, type TrainOptions } from '../samplers/score/train.ts';
import { annealedLangevin, pcSample } from '../samplers/score/sample.ts';
import { VPSDE } from '../samplers/score/vpsde.ts';
import { loadPrior } from '../samplers/score/prior_model.ts';
import { GaussianScore, gaussianConfig, readGaussianModel } from '../samplers/score/gaussian.ts';
import { fitGaussian } from '../samplers/score/gaussian_fit.ts';
import { writeImageGrid } from '../engine/io/png.ts';

/** --name value pairs, boolean switches, and positional arguments. */
export function parseArgs(args: string[], switches: string[] = []): { pos: string[]; get(name: string): string | undefined; num(name: string, fallback: number): number; has(name: string): boolean } {
  const values = new Map<string, string>();
  const on = new Set<string>();
  const pos: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const a = args[i];
    if (!a.startsWith('--')) pos.push(a);
    else if (switches.includes(a.slice(2))) on.add(a.slice(2));
    else {
      if (args[i + 1] === undefined) throw new Error(`${a} needs a value`);
      values.set(a.slice(2), args[++i]);
    }
  }
  const num = (name: string, fallback: number) => {
    const v = values.get(name);
    if (v === undefined) return fallback;
    const x = Number(v);
    if (!Number.isFinite(x)) throw new RangeError(`--${name} must be a number, got "${v}"`);
    return x;
  };
  return { pos, get: (n) => values.get(n), num, has: (n) => on.has(n) };
}

const DEFAULT_CODES = 'models/fashion32/fashion32-codes.safetensors';

/** Raw activations for a data spec: "codes", "gaussian" or an activations file. */
async function loadActivations(spec: string, generator: string | undefined, block: number, samples: number, seed: number, codesPath: string): Promise<ActivationSet> {
  if (spec !== 'codes' && spec !== 'gaussian') return readActivationsFile(await readFileBytes(spec), spec);
  if (!generator) throw new Error(`--data ${spec} needs the generator checkpoint`);
  const g = await loadGenerator(await readFileBytes(generator));
  try {
    if (!(block >= 0 && block < numBlocks(g.config) - 1)) throw new RangeError(`--block ${block}: the generator has blocks 0..${numBlocks(g.config) - 1}; features after block k need k <= ${numBlocks(g.config) - 2}`);
    let set: ActivationSet;
    if (spec === 'codes') {
      const codes = readCodesFile(await readFileBytes(codesPath), codesPath);
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

export async function trainScoreCommand(argv: string[]): Promise<number> {
  const a = parseArgs(argv, ['likelihood']);
  const resumePath = a.get('resume');
  const resumed: LoadedScoreModel | null = resumePath ? await loadScoreModel(await readFileBytes(resumePath)) : null;
  const prev = resumed?.config.data ?? {};
  const generator = a.pos[0] ?? prev.generator;
  const dataSpec = a.get('data') ?? prev.source ?? 'codes';
  let block = a.num('block', Number(prev.block ?? 1));
  const seed = a.num('seed', Number(prev.seed ?? 0)); // gaussian data record their seed
  const samples = a.num('samples', Number(prev.samples ?? 0));
  const steps = a.num('steps', 1000);
  const t0 = performance.now();

  const set = await loadActivations(dataSpec === 'file' ? prev.file : dataSpec, generator, block, samples, seed, a.get('codes') ?? prev.codes ?? DEFAULT_CODES);
  // An activations file says which block it holds; --block only names it for codes/gaussian data.
  if (set.meta.block !== undefined && a.get('block') === undefined) block = Number(set.meta.block);
  const out = a.get('out') ?? resumePath ?? `out/score-block${block}.safetensors`;
  // --gaussian FILE|fit|none (new models; default fit): the residual model's closed-form base.
  const baseSpec = resumed ? 'none' : a.get('gaussian') ?? 'fit';
  const baseFile = baseSpec !== 'fit' && baseSpec !== 'none' ? readGaussianModel(await readFileBytes(baseSpec), baseSpec) : null;
  const norm = resumed?.config.normalization ?? baseFile?.config.normalization ?? computeNormalization(set.data);
  normalizeInPlace(set.data, norm);
  const [N, C, H, W] = set.shape;
  console.log(`data: ${N} activations [${C}, ${H}, ${W}] (${dataSpec}, block ${block}), min ${norm.min.toFixed(4)} max ${norm.max.toFixed(4)}, ${((performance.now() - t0) / 1000).toFixed(1)} s`);

  const options: Partial<TrainOptions> = {};
  const opt = (key: keyof TrainOptions, flag: string) => {
    if (a.get(flag) !== undefined) (options as Record<string, number>)[key] = a.num(flag, 0);
  };
  opt('lr', 'lr');
  opt('batch', 'batch');
  opt('emaDecay', 'ema');
  opt('warmup', 'warmup');
  opt('gradClip', 'clip');
  opt('tPower', 't-power');
  if (a.has('likelihood')) options.likelihoodWeighting = true;
  const data = { data: set.data, shape: set.shape };
  let base: GaussianScore | null = resumed?.gaussian ?? null;
  if (baseFile) base = new GaussianScore(baseFile.config, baseFile.params);
  else if (baseSpec === 'fit') {
    const fitStart = performance.now();
    const params = await fitGaussian(set.data, N, { onProgress: (m) => console.log(`gaussian base: ${m}`) });
    base = new GaussianScore(gaussianConfig([C, H, W], params, norm), params);
    console.log(`gaussian base: fitted to the ${N} training activations (rank ${params.values.length}), ${((performance.now() - fitStart) / 1000).toFixed(1)} s`);
  }
  if (base && base.config.shape.join() !== [C, H, W].join()) throw new RangeError(`--gaussian ${baseSpec}: shape [${base.config.shape.join(', ')}] differs from the data's [${C}, ${H}, ${W}]`);
  let trainer: ScoreTrainer;
  if (resumed) {
    trainer = ScoreTrainer.resume(resumed, data, options);
    resumed.net.dispose();
    console.log(`resumed ${resumePath} at step ${trainer.step}`);
  } else {
    const dim = a.num('dim', 128);
    const heads = a.num('heads', 1);
    const time = a.get('time') ?? 'vector';
    if (time !== 'token' && time !== 'vector') throw new RangeError(`--time must be token or vector, got "${time}"`);
    const vit: ScoreViTConfig = { channels: C, height: H, width: W, dim, depth: a.num('depth', 4), heads, dimHead: a.num('dim-head', dim / heads), mlp: a.num('mlp', 2 * dim), ...(time === 'vector' ? { time } : {}) };
    const meta: Record<string, string> = { ...set.meta, source: dataSpec === 'codes' || dataSpec === 'gaussian' ? dataSpec : 'file', block: String(block), samples: String(N) };
    if (meta.source === 'file') meta.file = dataSpec;
    const config = scoreModelConfig(vit, norm, meta);
    const init = initScoreStateDict(vit, seed);
    if (base) {
      // A residual model starts exactly at its Gaussian: the network's last layer is zero.
      config.gaussian = { shape: base.config.shape, rank: base.rank, residualVariance: base.params.residualVariance };
      for (const name of ['projector.weight', 'projector.bias']) init.get(name)!.data.fill(0);
    }
    trainer = new ScoreTrainer(ScoreViT.fromStateDict(vit, init), config, data, { ...options, seed }, base);
  }
  const o = trainer.options;
  const nParams = trainer.net.trainable().reduce((s, [, p]) => s + p.size, 0);
  console.log(`model: ${JSON.stringify(trainer.config.vit)}, ${nParams.toLocaleString('en-US')} parameters; ${JSON.stringify(o)}`);

  const ckptEvery = a.num('ckpt-every', 200);
  const logEvery = a.num('log-every', 10);
  const deadline = a.get('minutes') !== undefined ? performance.now() + a.num('minutes', 0) * 60_000 : Infinity;
  const save = async () => {
    await writeFileBytes(out, await trainer.checkpoint());
    console.log(`checkpoint: ${out} (step ${trainer.step})`);
  };
  const end = trainer.step + steps;
  // --profile n: after one warm-up step (pipelines compiled), time every kernel of the next n steps.
  const profileSteps = a.num('profile', 0);
  const profileFrom = trainer.step + 1;
  let window: number[] = [];
  let tWindow = performance.now();
  try {
    while (trainer.step < end && performance.now() < deadline) {
      if (profileSteps > 0 && trainer.step === profileFrom) engine().startProfile();
      window.push(await trainer.trainStep());
      if (profileSteps > 0 && trainer.step === profileFrom + profileSteps) {
        const p = await engine().stopProfile();
        console.log(`profile of ${profileSteps} steps: ${p.dispatches / profileSteps} dispatches and ${p.submits / profileSteps} submits per step\n${formatProfile(p.kernels, profileSteps)}`);
      }
      if (trainer.step % logEvery === 0 || trainer.step === end) {
        const sec = (performance.now() - tWindow) / 1000;
        const avg = window.reduce((s, v) => s + v, 0) / window.length;
        console.log(`step ${trainer.step}/${end} loss ${window[window.length - 1].toFixed(4)} (avg ${avg.toFixed(4)}) ${((window.length * o.batch) / sec).toFixed(1)} samples/s ${(sec / window.length).toFixed(2)} s/step`);
        window = [];
        tWindow = performance.now();
      }
      if (trainer.step % ckptEvery === 0) await save();
    }
    await save();
    const exportPath = a.get('export');
    if (exportPath) {
      await writeFileBytes(exportPath, stripTraining(await readFileBytes(out)));
      console.log(`model (EMA weights, no training state): ${exportPath}`);
    }
  } finally {
    trainer.dispose();
    trainer.net.dispose();
    base?.dispose();
  }
  return 0;
}

export async function sampleCommand(argv: string[]): Promise<number> {
  const a = parseArgs(argv);
  const file = a.pos[0];
  if (!file) throw new Error('usage: sgilo sample <score.safetensors> [--generator g.pt] [--n 16] [--seed 0] [--sampler pc|ald] [--steps 1000] [--corrector 0] [--snr 0.16] [--styles avg|random] [--real n] [--sdedit t0] [--out out/score-samples.png]');
  const prior = await loadPrior(await readFileBytes(file), file); // any kind: ViT, Gaussian, residual
  const net = prior.model;
  const config = { data: prior.data, sde: prior.sde };
  const norm = prior.normalization;
  const genPath = a.get('generator') ?? config.data.generator;
  const block = Number(config.data.block);
  if (!norm || !genPath || !Number.isInteger(block)) {
    net.dispose();
    throw new Error(`${file}: rendering needs a model trained on generator features (normalization, data.generator, data.block), and --generator if the file does not name one`);
  }
  const n = a.num('n', 16);
  const seed = a.num('seed', 0);
  const sampler = a.get('sampler') ?? 'pc';
  const out = a.get('out') ?? 'out/score-samples.png';
  const [C, H, W] = prior.shape;
  const sde = new VPSDE(config.sde);
  const t0 = performance.now();
  const progress = (i: number, total: number) => {
    if ((i + 1) % Math.max(1, Math.floor(total / 10)) === 0) console.log(`  step ${i + 1}/${total} (${((performance.now() - t0) / 1000).toFixed(1)} s)`);
  };
  const styles = a.get('styles') ?? 'avg';
  const g = await loadGenerator(await readFileBytes(genPath));
  try {
    // Held-out real activations (codes from --codes-from on; training used the first data.samples).
    const from = a.num('codes-from', Number(config.data.samples ?? 0));
    const realSet = async (count: number) => {
      const path = config.data.codes ?? DEFAULT_CODES;
      const codes = readCodesFile(await readFileBytes(path), path);
      if (from + count > codes.n) throw new RangeError(`--codes-from ${from}: ${path} has ${codes.n} codes, ${count} needed`);
      return activationsFromCodes(g, codes.z.subarray(from * codes.dim, (from + count) * codes.dim), block);
    };
    const sdedit = a.get('sdedit') !== undefined ? a.num('sdedit', 0.3) : null;
    let start: { x: ReturnType<typeof tensor>; t: number } | undefined;
    if (sdedit !== null) {
      const set = await realSet(n);
      normalizeInPlace(set.data, norm);
      start = { x: tensor(set.data, set.shape), t: sdedit };
    }
    const common = { shape: [n, C, H, W], seed, sde, start, onStep: progress };
    const x = sampler === 'ald'
      ? await annealedLangevin(net, { ...common, levels: a.num('levels', 100), stepsPerLevel: a.num('steps-per-level', 5), epsilon: a.num('epsilon', 2e-5) })
      : await pcSample(net, { ...common, steps: a.num('steps', sde.N), correctorSteps: a.num('corrector', 0), snr: a.num('snr', 0.16) });
    start?.x.dispose();
    const range = await x.readF32();
    const images = await scope(() => render(g, affine(x, norm.max - norm.min, norm.min), block, styles, seed)); // raw units
    x.dispose();
    const real = a.num('real', sdedit !== null ? n : 0);
    if (real > 0) {
      const set = await realSet(real);
      images.unshift(...(await scope(() => render(g, tensor(set.data, set.shape), block, styles, seed))));
    }
    let lo = Infinity;
    let hi = -Infinity;
    for (const v of range) (lo = Math.min(lo, v)), (hi = Math.max(hi, v));
    await writeImageGrid(out, images, g.config.size, a.num('cols', Math.min(8, n)));
    const how = `${sampler}${sdedit !== null ? `, SDEdit from held-out activations at t = ${sdedit}` : ''}${real > 0 ? `, after ${real} real activations rendered the same way` : ''}`;
    console.log(`wrote ${out}: ${n} samples (${how}; seed ${seed}) of features after block ${block}, normalized range [${lo.toFixed(3)}, ${hi.toFixed(3)}], ${((performance.now() - t0) / 1000).toFixed(1)} s`);
  } finally {
    g.dispose();
    net.dispose();
  }
  return 0;
}

/** Images from features after block k (raw units) through blocks k+1.. of the generator. */
export async function render(g: StyleGAN2, features: ReturnType<typeof tensor>, block: number, styles: string, seed: number): Promise<Float32Array[]> {
  const n = features.shape[0];
  return scope(() =>
    noGrad(async () => {
      const img = await g.fromLayer({ wplus: stylesFor(g, n, styles, seed) }, block + 1, features).readF32();
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

/** `sgilo replay score <checkpoint> <inputs.safetensors> <out.safetensors> [--heads h]`. */
export async function replayScoreCommand(argv: string[]): Promise<number> {
  const a = parseArgs(argv[0] === 'score' ? argv.slice(1) : argv);
  const [ckptPath, inputsPath, outPath] = a.pos;
  if (!ckptPath || !inputsPath || !outPath) throw new Error('usage: sgilo replay score <checkpoint> <inputs.safetensors> <out.safetensors> [--heads 1]');
  const { net } = await loadScoreModel(await readFileBytes(ckptPath), { heads: a.num('heads', 1) });
  const inputs: TensorMap = new Map();
  for (const [name, t] of readSafetensors(await readFileBytes(inputsPath)).tensors) {
    if (!name.startsWith('in.')) continue; // only inputs: outputs in the file are never read
    if (t.dtype !== 'float32') throw new Error(`${inputsPath}: "${name}" is ${t.dtype}, expected float32`);
    inputs.set(name, { shape: t.shape, data: t.data as Float32Array });
  }
  let result: TensorMap;
  try {
    result = await replayScore(net, inputs);
  } finally {
    net.dispose();
  }
  const tensors = new Map<string, IoTensor>([...result].map(([k, v]) => [k, { dtype: 'float32', shape: v.shape, data: v.data }]));
  await writeFileBytes(outPath, writeSafetensors(tensors));
  console.log(`wrote ${outPath}: ${tensors.size} tensors (out.eps, grad.x, ${tensors.size - 2} grad.param.*)`);
  return 0;
}
