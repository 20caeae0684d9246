// long because it is the one table of every command's declaration, read whole by args, help, the page and the README.
// The declaration of every `sgilo` command: positionals, options with types, defaults, ranges and
// help text, output location, conflicts and an example. cli/args.ts parses and prints help from
// these; cli/main.ts runs them; the web page checks its form against `reconstruct`'s; the README's
// command list is tested against them (test/cli.test.ts).

import type { CommandDecl, OptionDecl, Parsed } from './args.ts';
import { parseL1Radius } from './l1_options.ts';
import { parseOperatorSpec } from '../samplers/inverse/operators/index.ts';
import { VARIANTS } from '../samplers/inverse/tuning.ts';
import { NOISE_SCHEDULES } from '../samplers/inverse/intermediate_layer.ts';
import { QUEUE_URL_FORM, queueUrlCheck } from './queue_url.ts';

/** Step counts: a day of steps at the slowest measured rate is the upper bound. */
export const MAX_STEPS = 100_000;
export const METHODS = ['csgm', 'ilo', 'sgilo', 'sgld'] as const;
export const FITS = ['pad', 'resize', 'crop'] as const;

const tryCheck = (f: () => unknown) => {
  try {
    f();
    return undefined;
  } catch (e) {
    return (e as Error).message;
  }
};
const intList = (lo: number, hi: number) => (v: string) =>
  v.split(',').every((t) => /^\d+$/.test(t.trim()) && Number(t) >= lo && Number(t) <= hi) ? undefined : `must be a comma-separated list of integers from ${lo} to ${hi}, got "${v}"`;
const methodList = (v: string) => {
  const bad = v.split(',').map((m) => m.trim()).find((m) => !(METHODS as readonly string[]).includes(m));
  return bad === undefined ? undefined : `unknown method "${bad}" (methods: ${METHODS.join(', ')})`;
};

const steps = (def: number, help = 'steps', max = MAX_STEPS): OptionDecl => ({ name: 'steps', type: 'int', min: 1, max, default: def, value: 'N', help });
const seed: OptionDecl = { name: 'seed', type: 'int', min: 0, max: 2 ** 31 - 1, default: 0, value: 'S', help: 'seed of everything random' };
const path = (name: string, help: string, def?: string): OptionDecl => ({ name, type: 'string', value: 'PATH', help, ...(def ? { default: def } : {}) });

/** How a generator is read from a file with several networks (nets/stylegan2_checkpoint.ts). */
export const GENERATOR_OPTIONS: OptionDecl[] = [
  { name: 'network', type: 'enum', choices: ['G_ema', 'G', 'g_ema', 'g'], help: "which generator of a training file: the EMA one (G_ema / g_ema, default) or the training one (G / g)" },
  { name: 'no-clamp', type: 'flag', help: 'NVlabs pickles: drop conv_clamp, as SGILO rebuilds the synthesis network (rosinality files never clamp)' },
];
const GENERATOR_FLAGS = GENERATOR_OPTIONS.map((o) => o.name);

/** `HxW` with positive integers (the same rule as samplers/score/checkpoint.ts parseGrid, kept here so the web page's bundle stays small). */
const gridCheck = (v: string) => {
  const m = /^(\d+)x(\d+)$/.exec(v);
  return m && Number(m[1]) >= 1 && Number(m[2]) >= 1 && Number(m[1]) * Number(m[2]) <= 65_536 ? undefined : `must be HxW with positive integers (e.g. 6x2), got "${v}"`;
};

/** What a PyTorch score file does not store (defaults: the sidecar <checkpoint>.json, else 1 head and a square grid). */
export const SCORE_FILE_OPTIONS: OptionDecl[] = [
  { name: 'heads', type: 'int', min: 1, max: 64, value: 'H', help: 'score: attention heads (default: the sidecar <checkpoint>.json, else 1)' },
  { name: 'grid', type: 'string', value: 'HxW', help: 'score: token grid, e.g. 6x2 (default: the sidecar <checkpoint>.json, else square)', check: gridCheck },
  { name: 'weights', type: 'enum', choices: ['ema', 'raw'], help: "score: a score_sde training checkpoint's EMA weights (default when present) or its raw model weights" },
];
const SCORE_FLAGS = SCORE_FILE_OPTIONS.map((o) => o.name);

/** Generator flags and score flags are never given together: a file is one or the other. */
const oneKind = (p: Parsed, what?: string): string | undefined => {
  const gen = GENERATOR_FLAGS.filter((f) => p.given.has(f)).map((f) => `--${f}`);
  const score = SCORE_FLAGS.filter((f) => p.given.has(f)).map((f) => `--${f}`);
  if (what === 'generator' && score.length) return `${score.join(', ')}: for score files (replay score), not replay generator`;
  if (what === 'score' && gen.length) return `${gen.join(', ')}: for generators (replay generator), not replay score`;
  return gen.length && score.length ? `${gen.join(', ')} read generators and ${score.join(', ')} score files; give one kind` : undefined;
};

export const IMAGE_OPTIONS: OptionDecl[] = [
  path('image', 'reference image (any PNG: gray, RGB, RGBA, palette; 8 or 16 bit; any size; see --fit)'),
  { name: 'image-index', type: 'int', min: 0, max: 9999, value: 'N', help: 'shipped Fashion-MNIST test image N instead of --image' },
  path('measured', 'a real measurement instead of a reference: the low-resolution image for sr-*, the noisy image for denoise, the masked image for inpaint-*'),
  path('mask', 'inpainting mask PNG (white = observed) for --operator inpaint-mask; brought to the generator size like the image'),
  { name: 'fit', type: 'enum', choices: FITS, default: 'pad', help: 'how an image of another size meets the generator: pad (centre-pad with the background, area-resize if larger), resize (stretch), crop (centre square)' },
];

/**
 * reconstruct --queue: inversions of many test images as queued jobs, run with the shipped models
 * and tuned values (the workers have those), one method whose features are saved. Returns a
 * message, '' when the queued form is valid, or undefined when --queue is not given.
 */
function queuedReconstructConflict(p: Parsed): string | undefined {
  if (!p.given.has('queue')) return ['images', 'collect'].filter((n) => p.given.has(n)).map((n) => `--${n} goes with --queue`)[0];
  if (!p.given.has('save-features')) return '--queue runs inversions for their features: give --save-features PATH (the merged file)';
  if (!p.given.has('image-index')) return '--queue takes shipped test images: give --image-index (the first) and --images N';
  if (!p.given.has('operator')) return '--operator is required (e.g. --operator denoise:0.05)';
  const methods = String(p.values.method).split(',').map((m) => m.trim());
  if (methods.length !== 1 || !['ilo', 'sgilo'].includes(methods[0])) return `--queue runs one method whose features are saved, ilo or sgilo (got --method ${p.values.method})`;
  if (!String(p.values.blocks).trim()) return '--save-features needs --blocks';
  const local = ['image', 'measured', 'mask', 'generator', 'score', 'lr', 'temperature', 'noise-scale', 'noise-schedule', 'prior-steps', 'l1-features', 'l1-latent', 'l1-noise', 'fit', 'out'].find((n) => p.given.has(n));
  if (local) return `--${local} does not go with --queue: queued inversions run on the shipped test images with the shipped models and the tuned values (or --presets)`;
  if (p.given.has('tuned') && p.given.has('presets')) return '--tuned and --presets: give one (tuned values, or the presets)';
  if (p.force && !p.given.has('collect')) return '--force goes with --collect (enqueueing writes no file)';
  return '';
}

export const RECONSTRUCT: CommandDecl = {
  name: 'reconstruct',
  summary: 'Solve an inverse problem for one image with CSGM, ILO, SGILO or SGLD, several posterior chains; writes the measurement, samples, mean, std map, a labelled grid, report.json and result.safetensors.',
  options: [
    ...IMAGE_OPTIONS,
    { name: 'operator', type: 'string', value: 'SPEC', help: 'measurement: identity, denoise:σ, inpaint-random:f, inpaint-box:f, inpaint-mask (with --mask), sr-bicubic:k, sr-avgpool:k, colorize, cs-gaussian:r, cs-circulant:r; append ,noise=σ for measurement noise (required)', check: (v) => (v.split(',')[0].trim() === 'inpaint-mask' ? undefined : tryCheck(() => parseOperatorSpec(v))) },
    { name: 'method', type: 'string', default: 'sgilo', value: 'LIST', help: `comma-separated methods (${METHODS.join(', ')})`, check: methodList },
    steps(100, 'steps per round', 10_000),
    { name: 'blocks', type: 'string', default: '1,2', value: 'LIST', help: 'intermediate blocks visited after round 0', check: intList(1, 16) },
    { name: 'chains', type: 'int', min: 1, max: 64, default: 4, value: 'K', help: 'posterior chains' },
    seed,
    { name: 'lr', type: 'number', min: 0, minExclusive: true, max: 10, value: 'X', help: "Adam learning rate (default: tuned, else the method's preset: csgm 0.1, ilo 0.1, sgilo 0.05)" },
    { name: 'temperature', type: 'number', min: 0, max: 100, value: 'T', help: 'SGILO: weight of the score step (default: tuned, else preset 0.1)' },
    { name: 'noise-scale', type: 'number', min: 0, max: 10, value: 'S', help: 'SGILO: std of the Langevin noise (default: tuned, else preset 0.025)' },
    { name: 'noise-schedule', type: 'enum', choices: [...NOISE_SCHEDULES], help: 'SGILO: the noise constant over a round, or annealed with the learning rate (default: tuned, else constant)' },
    { name: 'prior-steps', type: 'int', min: 1, max: 16, value: 'K', help: 'SGILO: prior moves per step (default: tuned, else 1)' },
    path('tuned', 'values chosen by sgilo tune (default: models/fashion32/tuned.json with the shipped generator; the nearest tuned level of the operator)'),
    { name: 'presets', type: 'flag', help: "ignore tuned values: the methods' presets (plus any values given here)" },
    path('generator', 'StyleGAN2 checkpoint (default: the shipped Fashion-MNIST model)'),
    { name: 'score', type: 'list', value: 'PATH', help: 'score model or prior (default: the shipped mixtures: mixture-latent, -block0, -block1)' },
    path('save-features', 'also write the optimized intermediate features of the last method (all chains) as a score-model training file (train-score --data F); the last method must not be csgm'),
    ...(['features', 'latent', 'noise'] as const).map((w): OptionDecl => ({ name: `l1-${w}`, type: 'string', value: 'R', help: `ILO's l1 ball on the ${w}: one radius R for every round or R0,R1,... per round, "inf" for none`, check: (v) => tryCheck(() => parseL1Radius(`--l1-${w}`, v)) })),
    { name: 'queue', type: 'string', value: 'URL', help: `${QUEUE_URL_FORM}: with --save-features, enqueue one job per test image (--image-index, --images) for \`sgilo worker\`; with --collect, merge the done ones into the --save-features file`, check: queueUrlCheck },
    { name: 'images', type: 'int', min: 1, max: 10_000, value: 'N', help: 'with --queue: test images --image-index to --image-index + N - 1 (default 1)' },
    { name: 'collect', type: 'flag', help: "with --queue: write the done jobs' features (image order) to --save-features" },
  ],
  output: { kind: 'dir', default: 'out/reconstruct' },
  examples: ['reconstruct --image-index 1 --operator inpaint-random:0.05 --method csgm,ilo,sgilo --steps 100 --chains 4', 'reconstruct --image shirt.png --fit pad --operator sr-bicubic:4', 'reconstruct --queue redis://127.0.0.1:6379/inv --image-index 0 --images 1000 --operator denoise:0.05 --method ilo --chains 1 --save-features out/inversions.safetensors'],
  conflicts: (p: Parsed) => {
    const queued = queuedReconstructConflict(p);
    if (queued !== undefined) return queued || undefined;
    const given = ['image', 'image-index', 'measured'].filter((n) => p.given.has(n));
    if (given.length !== 1) return `give exactly one of --image, --image-index or --measured${given.length ? ` (got ${given.map((g) => `--${g}`).join(' and ')})` : ''}`;
    if (!p.given.has('operator')) return '--operator is required (e.g. --operator inpaint-random:0.05)';
    const isMask = String(p.values.operator).split(',')[0].trim() === 'inpaint-mask';
    if (isMask !== p.given.has('mask')) return isMask ? '--operator inpaint-mask needs --mask mask.png' : `--mask needs --operator inpaint-mask (got --operator ${p.values.operator})`;
    const methods = String(p.values.method).split(',').map((m) => m.trim());
    if (p.given.has('save-features') && methods[methods.length - 1] === 'csgm') return '--save-features: the last method (csgm) optimizes no intermediate features; put ilo or sgilo last';
    if (p.given.has('save-features') && !String(p.values.blocks).trim()) return '--save-features needs --blocks';
    if (p.given.has('tuned') && p.given.has('presets')) return '--tuned and --presets: give one (tuned values, or the presets)';
    const sgiloOnly = ['temperature', 'noise-scale', 'noise-schedule', 'prior-steps'].filter((n) => p.given.has(n));
    if (sgiloOnly.length && !methods.includes('sgilo')) return `--${sgiloOnly[0]} applies to sgilo only (methods: ${methods.join(', ')})`;
    return undefined;
  },
};

const TRAIN_SCORE: CommandDecl = {
  name: 'train-score',
  summary: 'Denoising score matching of a ViT on the activations after block k of a generator. Writes one file: a model of the EMA weights that is also a resumable checkpoint.',
  positionals: [{ name: 'generator.pt', help: 'StyleGAN2 checkpoint (not needed with --resume or --data FILE)', optional: true }],
  options: [
    { name: 'block', type: 'int', min: 0, max: 16, value: 'K', help: 'features after block K (default 1, or the resumed model\'s)' },
    steps(1000, 'training steps'),
    { name: 'batch', type: 'int', min: 1, max: 4096, value: 'B', help: 'batch size (default 32)' },
    { name: 'lr', type: 'number', min: 0, minExclusive: true, max: 1, value: 'X', help: 'Adam learning rate (default 2e-4)' },
    seed,
    path('resume', 'continue this checkpoint (written to --out, never back over it unless --out names it and --force)'),
    { name: 'data', type: 'string', value: 'SPEC', help: 'codes, gaussian or an activations file (default codes, or the resumed model\'s)' },
    path('codes', 'codes file for --data codes (default models/fashion32/fashion32-codes.safetensors)'),
    { name: 'samples', type: 'int', min: 0, max: 10_000_000, value: 'N', help: 'activations to use (0: all; default 0)' },
    { name: 'dim', type: 'int', min: 8, max: 2048, default: 128, value: 'D', help: 'ViT width' },
    { name: 'depth', type: 'int', min: 1, max: 64, default: 4, value: 'N', help: 'ViT blocks' },
    { name: 'heads', type: 'int', min: 1, max: 64, default: 1, value: 'H', help: 'attention heads' },
    { name: 'dim-head', type: 'int', min: 1, max: 2048, value: 'D', help: 'width of a head (default dim / heads)' },
    { name: 'mlp', type: 'int', min: 1, max: 16384, value: 'M', help: 'MLP width (default 2 * dim)' },
    { name: 'time', type: 'enum', choices: ['token', 'vector'], default: 'vector', help: 'time conditioning: a vector that survives LayerNorm, or a token (the layout of the score model in docs/design.md)' },
    { name: 'gaussian', type: 'string', value: 'FILE|fit|none', help: "a new model's closed-form Gaussian base, the network learning a correction to its eps: a fit-gaussian file (its normalization is used), fit (fitted to the training data first) or none (a plain ViT); default fit" },
    { name: 't-power', type: 'number', min: 0.1, max: 10, value: 'P', help: 't = tEps + (1 - tEps) u^P: more of each batch at small t for P > 1 (default 1)' },
    { name: 'ckpt-every', type: 'int', min: 1, max: MAX_STEPS, default: 200, value: 'N', help: 'checkpoint every N steps' },
    { name: 'log-every', type: 'int', min: 1, max: MAX_STEPS, default: 10, value: 'N', help: 'progress line every N steps' },
    { name: 'ema', type: 'number', min: 0, max: 1, value: 'D', help: 'EMA decay (default 0.999)' },
    { name: 'warmup', type: 'int', min: 0, max: MAX_STEPS, value: 'N', help: 'linear learning-rate warm-up steps (default 0)' },
    { name: 'clip', type: 'number', min: 0, max: 1e6, value: 'C', help: 'clip the gradient norm (0: none; default 1)' },
    { name: 'likelihood', type: 'flag', help: 'likelihood weighting of the loss' },
    { name: 'minutes', type: 'number', min: 0, minExclusive: true, max: 10_080, value: 'M', help: 'stop (with a checkpoint) after M minutes' },
    path('export', 'also write the model alone (EMA weights and config, no training state)'),
    { name: 'profile', type: 'int', min: 0, max: 1000, default: 0, value: 'N', help: 'time every kernel of N steps after a warm-up step' },
  ],
  output: { kind: 'file', default: 'out/train-score/score-block<K>.safetensors', help: 'the model/checkpoint file; refused if it exists, unless --force' },
  examples: ['train-score models/fashion32/fashion32-stylegan2.pt --block 1 --steps 2000', 'train-score --resume models/fashion32/score-block1.safetensors --steps 500 --out out/score-block1-more.safetensors'],
  conflicts: (p) => {
    if (!p.positionals[0] && !p.given.has('resume') && !(p.given.has('data') && !['codes', 'gaussian'].includes(String(p.values.data)))) return 'give the generator checkpoint (or --resume, or --data with an activations file)';
    if (p.given.has('resume') && p.given.has('gaussian')) return '--gaussian applies to new models; a resumed model keeps its own base';
    return undefined;
  },
};

const SAMPLE: CommandDecl = {
  name: 'sample',
  summary: 'Unconditional samples of the features from a score model, rendered through the rest of the generator, as a labelled PNG grid.',
  positionals: [{ name: 'score.safetensors', help: 'a score model trained on generator features' }],
  options: [
    path('generator', 'generator (default: the one the model names, resolved from the repository root)'),
    { name: 'n', type: 'int', min: 1, max: 256, default: 16, value: 'N', help: 'samples' },
    seed,
    { name: 'sampler', type: 'enum', choices: ['pc', 'ald'], default: 'pc', help: 'predictor-corrector (pc) or annealed Langevin (ald)' },
    steps(1000, 'pc: reverse-SDE steps (default: the SDE\'s N)', 10_000),
    { name: 'corrector', type: 'int', min: 0, max: 100, default: 0, value: 'N', help: 'pc: corrector steps per step' },
    { name: 'snr', type: 'number', min: 0, max: 10, default: 0.16, value: 'R', help: 'pc: corrector signal-to-noise ratio' },
    { name: 'levels', type: 'int', min: 1, max: 10_000, default: 100, value: 'N', help: 'ald: noise levels' },
    { name: 'steps-per-level', type: 'int', min: 1, max: 1000, default: 5, value: 'N', help: 'ald: steps per level' },
    { name: 'epsilon', type: 'number', min: 0, minExclusive: true, max: 1, default: 2e-5, value: 'E', help: 'ald: step size' },
    { name: 'styles', type: 'enum', choices: ['avg', 'random'], default: 'avg', help: 'styles of the later blocks: latent_avg, or mapped Gaussian z' },
    { name: 'real', type: 'int', min: 0, max: 256, value: 'N', help: 'first render N held-out real activations the same way, as a reference' },
    { name: 'sdedit', type: 'number', min: 0, minExclusive: true, max: 1, value: 'T0', help: 'start from held-out activations diffused to time T0 (SDEdit; implies --real n)' },
    { name: 'codes-from', type: 'int', min: 0, max: 10_000_000, value: 'I', help: 'first held-out code (default: the number the model was trained on)' },
    { name: 'cols', type: 'int', min: 1, max: 64, value: 'C', help: 'grid columns (default min(8, n))' },
  ],
  output: { kind: 'dir', default: 'out/sample' },
  examples: ['sample models/fashion32/score-block1.safetensors --n 16 --steps 200'],
  conflicts: (p) => (p.values.sampler === 'ald' && p.given.has('steps') ? '--steps applies to --sampler pc; ald takes --levels and --steps-per-level' : undefined),
};

const GENERATE: CommandDecl = {
  name: 'generate',
  summary: 'A labelled PNG grid of images from seeded Gaussian latents.',
  positionals: [{ name: 'checkpoint', help: 'StyleGAN2 checkpoint (.pt or .safetensors)' }],
  options: [
    { name: 'seeds', type: 'string', default: '0-15', value: 'LIST', help: 'seeds: ranges and lists, e.g. 0-15 or 1,5,9 (at most 1024 images)' },
    { name: 'psi', type: 'number', min: 0, max: 1, default: 1, value: 'PSI', help: 'truncation' },
    { name: 'cols', type: 'int', min: 1, max: 64, value: 'C', help: 'grid columns (default min(8, images))' },
    ...GENERATOR_OPTIONS,
  ],
  output: { kind: 'dir', default: 'out/generate' },
  examples: ['generate models/fashion32/fashion32-stylegan2.pt --seeds 0-31 --psi 0.7', 'generate network-snapshot.pkl --network G_ema --no-clamp'],
};

const CONVERT: CommandDecl = {
  name: 'convert',
  summary: "A generator (NVlabs pickle, rosinality checkpoint, state dict) in the engine's own .safetensors format: rosinality names, latent_avg (computed if the file has none), the config and its source in the metadata; a pickle is parsed once.",
  positionals: [{ name: 'checkpoint', help: 'StyleGAN2 generator (.pkl, .pt, .pth or .safetensors)' }],
  options: [...GENERATOR_OPTIONS],
  output: { kind: 'file', default: 'out/convert/generator.safetensors', help: 'the .safetensors file to write; refused if it exists, unless --force' },
  examples: ['convert network-snapshot.pkl --out models/ffhq.safetensors', 'convert checkpoint.pt --network g --out out/convert/g.safetensors'],
  conflicts: (p) => (String(p.values.out).endsWith('.safetensors') ? undefined : `--out ${p.values.out}: the output must be a .safetensors file`),
};

const settingCheck = (v: string) => tryCheck(() => parseOperatorSpec(v));
const variantList = (v: string) => {
  const bad = v.split(',').map((m) => m.trim()).find((m) => !(VARIANTS as readonly string[]).includes(m));
  return bad === undefined ? undefined : `unknown variant "${bad}" (variants: ${VARIANTS.join(', ')})`;
};

const TUNE: CommandDecl = {
  name: 'tune',
  summary: "Search each method's free values (SGILO: learning rate, temperature, noise scale and schedule, prior steps; ILO: learning rate, ball radii; CSGM: learning rate) on tuning images, the same budget for every method; writes tuned.json (read by reconstruct, experiment, demo, the page), report.md and tuning.svg. Resumable.",
  options: [
    { name: 'setting', type: 'list', value: 'SPEC', help: 'an operator and level to tune at (default: inpaint-random:0.02 and cs-gaussian:0.02); other levels use the nearest tuned one', check: settingCheck },
    { name: 'variants', type: 'string', default: VARIANTS.join(','), value: 'LIST', help: `variants to tune (${VARIANTS.join(', ')})`, check: variantList },
    { name: 'evaluations', type: 'int', min: 1, max: 200, default: 8, value: 'N', help: 'evaluations per variant and setting (the same for every variant)' },
    { name: 'images', type: 'int', min: 1, max: 32, default: 8, value: 'N', help: 'tuning images: shipped test images 0..N-1 (the experiment evaluates on images after these)' },
    steps(40, 'steps per round', 1000),
    seed,
    path('work', 'where finished evaluations are recorded, so that a rerun resumes', 'out/tune-work'),
  ],
  output: { kind: 'dir', default: 'out/tune', help: 'output folder (refused if not empty unless --force); copy its tuned.json to models/fashion32/ to make it the default' },
  examples: ['tune --evaluations 8 --images 8 --steps 40', 'tune --setting inpaint-random:0.01 --variants sgilo,ilo --evaluations 4'],
};

const EXPERIMENT: CommandDecl = {
  name: 'experiment',
  summary: "The paper's Figure 3 protocol: CSGM, ILO, SGILO (learned priors), SGILO (Gaussian priors) and SGILO (score off) on inpainting and compressed sensing at 1-20%, with tuned values, paired comparisons and SGILO's posterior calibration against independent ILO runs: report.md, results.json, mse.svg, diversity.png. Resumable.",
  options: [
    { name: 'setting', type: 'list', value: 'SPEC', help: 'an operator and level (default: inpaint-random and cs-gaussian at 0.01, 0.02, 0.05, 0.2)', check: settingCheck },
    { name: 'variants', type: 'string', default: VARIANTS.join(','), value: 'LIST', help: `variants (${VARIANTS.join(', ')})`, check: variantList },
    { name: 'images', type: 'int', min: 2, max: 64, default: 16, value: 'N', help: 'evaluation images' },
    { name: 'first-image', type: 'int', min: 0, max: 63, default: 8, value: 'I', help: 'first evaluation image (shipped test images; refused if they overlap the tuning images)' },
    steps(40, 'steps per round', 1000),
    { name: 'chains', type: 'int', min: 2, max: 16, default: 4, value: 'K', help: "chains per image of the calibration runs (SGILO's chains, independent ILO runs)" },
    { name: 'calibration', type: 'list', value: 'SPEC', help: 'settings of the calibration runs (default inpaint-random:0.02)', check: settingCheck },
    path('tuned', 'tuned values (default models/fashion32/tuned.json when shipped, else the presets)'),
    path('work', 'where finished jobs are recorded, so that a rerun resumes', 'out/experiment-work'),
    seed,
    { name: 'queue', type: 'string', value: 'URL', help: `${QUEUE_URL_FORM}: enqueue the jobs (those missing or failed) for \`sgilo worker\` instead of running them; with --report, merge their results`, check: queueUrlCheck },
    { name: 'report', type: 'string', value: 'DIR', help: 'with --queue: merge the results there are into the report in this folder (refused if not empty unless --force)' },
  ],
  output: { kind: 'dir', default: 'out/experiment', help: 'output folder (refused if not empty unless --force); the committed report is made with --out experiments/figure3 --force' },
  examples: ['experiment', 'experiment --setting inpaint-random:0.05 --variants ilo,sgilo --images 4 --steps 10', 'experiment --out experiments/figure3 --force', 'experiment --queue redis://127.0.0.1:6379/fig3', 'experiment --queue redis://127.0.0.1:6379/fig3 --report out/fig3-report'],
  conflicts: (p) => {
    if (p.given.has('report') && !p.given.has('queue')) return '--report goes with --queue (the in-process run writes its report to --out)';
    if (p.given.has('queue') && (p.given.has('out') || p.given.has('work'))) return `--${p.given.has('out') ? 'out' : 'work'} is for the in-process run; with --queue the workers record the jobs, and --report DIR names the report folder`;
    if (p.given.has('queue') && p.force && !p.given.has('report')) return '--force goes with --report (enqueueing writes no files)';
    return undefined;
  },
};

const WORKER: CommandDecl = {
  name: 'worker',
  summary: "Runs queued experiment jobs (`experiment --queue`) with this machine's adapter, up to --batch jobs of one setting as one batch (each job's numbers are what it gives alone), and stores each result with its job; a job whose model files differ from this checkout's fails with the reason. Exits on SIGINT/SIGTERM after its current jobs (a second signal returns them to the queue at once).",
  options: [
    { name: 'queue', type: 'string', value: 'URL', help: `required: the queue, ${QUEUE_URL_FORM}`, check: queueUrlCheck },
    { name: 'max-jobs', type: 'int', min: 1, max: 10_000_000, value: 'N', help: 'exit after this many jobs (default: no limit)' },
    { name: 'idle-exit', type: 'number', min: 0, max: 86_400, value: 'SECONDS', help: 'exit once no job has been waiting, delayed or running for this long (default: wait for jobs)' },
    { name: 'batch', type: 'int', min: 1, max: 256, default: 8, value: 'N', help: 'hold up to N jobs at once and run those of one setting as one batch (1: one job at a time)' },
    { name: 'lock-seconds', type: 'number', min: 2, max: 3600, default: 30, value: 'S', help: "how long a job stays this worker's without a lock renewal (renewed every S/2 while it runs); a dead worker's job returns to the queue within about S + 5 s" },
    { name: 'pngs', type: 'flag', help: "store each job's reconstruction as a small PNG with its result" },
  ],
  examples: ['worker --queue redis://127.0.0.1:6379/fig3', 'worker --queue redis://10.0.0.5:6379/fig3 --idle-exit 60'],
  notes: 'Every machine needs Node 20, this checkout (its models/ must be the ones the jobs were made with: their SHA-256 is checked) and a WebGPU adapter (npm run provision).',
  conflicts: (p) => (p.given.has('queue') ? undefined : '--queue URL is required (the queue to take jobs from)'),
};

const THEORY: CommandDecl = {
  name: 'theory',
  summary: 'Theorem 3.1 experiment: Langevin vs GD on random expansive ReLU generators; report.md, plots and results.json.',
  options: [{ name: 'quick', type: 'flag', help: 'a seconds-long smoke run of the same pipeline (not a measurement)' }],
  output: { kind: 'dir', default: 'out/theory', help: 'output folder (refused if not empty unless --force); the committed report is made with --out experiments/theory --force' },
  examples: ['theory --quick', 'theory --out experiments/theory --force'],
};

const DEMO: CommandDecl = {
  name: 'demo',
  summary: 'Reconstructs the first Fashion-MNIST test images (5% of pixels, 4x SR) with CSGM, ILO and SGILO: a labelled grid.png and report.json.',
  options: [steps(40, 'steps per round', 10_000), { name: 'images', type: 'int', min: 1, max: 64, default: 4, value: 'N', help: 'test images' }, seed],
  output: { kind: 'dir', default: 'out/demo' },
  examples: ['demo', 'demo --steps 100'],
};

const BENCH_NAMES = ['matmul', 'conv2d', 'upfirdn2d', 'modulated_conv', 'attention', 'score-train', 'stylegan2', 'dispatch', 'memory', 'paper-size', 'goals', 'all'] as const;
const sizesCheck = (v: string) => (v.split(',').every((x) => /^[1-9][0-9]{0,4}$/.test(x.trim())) ? undefined : 'positive integers separated by commas, e.g. 1024,2048');
const BENCH: CommandDecl = {
  name: 'bench',
  summary: 'Kernel benchmarks on this adapter (tables), tfjs-backend-webgpu as the peer; `goals` judges every performance goal in one run (PyTorch on the CPU as the peer of its ILO/SGILO, StyleGAN2 and training rows) and writes its report.',
  positionals: [{ name: 'which', help: 'benchmark (default matmul)', optional: true, choices: BENCH_NAMES }],
  options: [
    { name: 'full', type: 'flag', help: 'stylegan2: every configuration; memory: config-f up to 256' },
    { name: 'quick', type: 'flag', help: 'goals: a smoke run; matmul --sweep and paper-size: small sizes (a path check on any adapter)' },
    { name: 'sweep', type: 'flag', help: 'matmul: GFLOP/s of the tiled GPU kernel per tile shape (default sizes 1024,2048,4096)' },
    { name: 'conv', type: 'flag', help: 'matmul --sweep: the implicit-GEMM conv kernels instead, at StyleGAN2 config-f modulated-conv layers (forward; forward + x and style gradients)' },
    { name: 'sizes', type: 'string', value: 'LIST', help: 'matmul: square sizes (default 128,256,512,1024)', check: sizesCheck },
    { name: 'no-torch', type: 'flag', help: 'goals: skip the PyTorch CPU peer rows (they are skipped anyway, with a note, where no Python imports torch)' },
    { name: 'fullsize', type: 'flag', help: 'goals: add the config-f 1024² layer step to the PyTorch rows (minutes per step on a CPU)' },
  ],
  output: { kind: 'file', default: 'out/bench/goals.md', help: 'goals: the report file (refused if it exists unless --force); committed reports go to bench/results/<date>-goals-<adapter>.md' },
  examples: ['bench matmul', 'bench matmul --sweep', 'bench matmul --sweep --conv', 'bench score-train', 'bench paper-size', 'bench goals --out bench/results/2026-12-06-goals-llvmpipe.md', 'bench goals --no-torch'],
  conflicts: (p) => {
    if (p.values.conv === true && (p.values.sweep !== true || (p.positionals[0] ?? 'matmul') !== 'matmul')) return '--conv goes with matmul --sweep (bench matmul --sweep --conv)';
    const noTorch = p.values['no-torch'] === true;
    const fullsize = p.values.fullsize === true;
    if (noTorch && fullsize) return '--fullsize adds a PyTorch row; it cannot go with --no-torch';
    if ((noTorch || fullsize) && p.positionals[0] !== 'goals') return `--${noTorch ? 'no-torch' : 'fullsize'} is an option of \`bench goals\``;
    return undefined;
  },
};

const timesList = (v: string) => {
  const ts = v.split(',').map((t) => t.trim());
  return ts.every((t) => t !== '' && Number(t) > 0 && Number(t) <= 1) ? undefined : `must be a comma-separated list of times in (0, 1], got "${v}"`;
};
const featureSpec = 'an activations file (sgilo-activations, raw units), or codes:A-B (codes A..B-1 of --codes through the generator)';

const EVAL_SCORE: CommandDecl = {
  name: 'eval-score',
  summary: 'Held-out DSM loss per t of a score model (ViT, residual or Gaussian file) beside the closed-form Gaussian on the same noise draws, and a sample check: a table (or --json), report.json and a labelled samples.png.',
  positionals: [{ name: 'model', help: 'score model: a train-score or fit-gaussian file' }, { name: 'features', help: `held-out features: ${featureSpec}, split after the model's block` }],
  options: [
    path('gaussian', "the baseline (default: a residual model's own base, else gaussian-block<K>.safetensors beside the model)"),
    path('generator', "generator for codes:A-B and the PNG (default: the model's data.generator)"),
    path('codes', 'codes file for codes:A-B (default models/fashion32/fashion32-codes.safetensors)'),
    { name: 'times', type: 'string', value: 'LIST', default: '0.001,0.003,0.01,0.03,0.1,0.3,1', help: 'comma-separated t bins', check: timesList },
    seed,
    { name: 'batch', type: 'int', min: 1, max: 4096, default: 64, value: 'B', help: 'evaluation batch' },
    { name: 'samples', type: 'int', min: 0, max: 4096, default: 16, value: 'N', help: 'sample-check size (0 skips the sample check)' },
    { name: 'steps', type: 'int', min: 1, max: 10_000, value: 'N', help: "sample check: reverse-SDE predictor steps from t = 1 (default: the SDE's N, 1000; fewer are unstable in low-variance directions near t = 1e-3, where beta dt / std^2 > 2)" },
    { name: 'sdedit', type: 'number', min: 0, minExclusive: true, max: 1, default: 0.1, value: 'T', help: 'sample check: SDEdit start time for held-out features' },
    { name: 'json', type: 'flag', help: 'print one JSON object (its bins: {t, model, gaussian, se}) instead of the table; progress goes to stderr' },
  ],
  output: { kind: 'dir', default: 'out/eval-score' },
  examples: ['eval-score models/fashion32/score-block0.safetensors out/encode-fashion/val-block0.safetensors --samples 16', 'eval-score models/fashion32/score-block1.safetensors codes:9000-10000 --json --samples 0'],
  conflicts: (p) => {
    const sampleOnly = ['steps', 'sdedit'].filter((n) => p.given.has(n));
    if (sampleOnly.length && p.values.samples === 0) return `--${sampleOnly[0]} applies to the sample check; --samples 0 skips it`;
    return undefined;
  },
};

const FIT_GAUSSIAN: CommandDecl = {
  name: 'fit-gaussian',
  summary: 'The closed-form Gaussian prior (mean, covariance by eigendecomposition; low rank above 2048 values) fitted to features, written as a score model file; with --components, a Gaussian mixture in its leading principal coordinates (EM), the closed-form learned prior.',
  positionals: [{ name: 'features', help: featureSpec }],
  options: [
    path('like', 'take the normalization, block and generator from this score model (so the two compare)'),
    { name: 'block', type: 'int', min: 0, max: 16, value: 'K', help: "features after block K for codes:A-B (default: --like's block)" },
    path('generator', "generator for codes:A-B (default: --like's data.generator)"),
    path('codes', 'codes file for codes:A-B (default models/fashion32/fashion32-codes.safetensors)'),
    { name: 'rank', type: 'int', min: 1, max: 1 << 20, value: 'R', help: 'stored directions (default: all up to 2048 values, else 256)' },
    { name: 'components', type: 'int', min: 1, max: 256, value: 'K', help: 'fit a mixture of K Gaussians in the leading --subspace coordinates (EM), on top of the Gaussian; the file is a mixture prior' },
    { name: 'subspace', type: 'int', min: 1, max: 4096, value: 'P', help: 'principal coordinates the mixture lives in (default min(128, rank))' },
    { name: 'em-iterations', type: 'int', min: 1, max: 1000, default: 25, value: 'N', help: 'EM iterations of the mixture fit' },
    path('base', 'with --components: fit the mixture on top of this Gaussian (a fit-gaussian file) instead of fitting one; its normalization is used'),
    { name: 'em-rows', type: 'int', min: 2, max: 1 << 24, default: 16384, value: 'N', help: 'rows the mixture is fitted on (evenly spaced; EM costs K P^2 per row and iteration)' },
    seed,
  ],
  output: { kind: 'file', default: 'out/fit-gaussian/gaussian-<space>.safetensors', help: 'the model file (mixture-<space> with --components); <space> is block<K> or latent; refused if it exists, unless --force' },
  examples: ['fit-gaussian out/encode-fashion/train-block0.safetensors --like models/fashion32/score-block0.safetensors', 'fit-gaussian codes:0-4096 --like models/fashion32/score-block1.safetensors --rank 256', 'fit-gaussian out/encode-fashion/train-latent.safetensors --components 32'],
  conflicts: (p) => {
    if (/^codes:/.test(p.positionals[0] ?? '') && !p.given.has('like') && !p.given.has('block')) return 'codes:A-B needs --block K (or --like MODEL)';
    const mixtureOnly = ['subspace', 'em-iterations', 'em-rows', 'base'].filter((n) => p.given.has(n));
    if (mixtureOnly.length && !p.given.has('components')) return `--${mixtureOnly[0]} applies to a mixture fit (--components K)`;
    if (p.given.has('base') && p.given.has('rank')) return '--rank applies to a Gaussian fitted here, not to --base';
    return undefined;
  },
};

const ENCODE_FASHION: CommandDecl = {
  name: 'encode-fashion',
  summary: "Codes and features of every Fashion-MNIST image through the generator checkpoint's encoder, per split: train (training images 0..60000-val-1), val (the last --val training images), test (the t10k images): <split>-codes.safetensors and <split>-<space>.safetensors.",
  options: [
    path('generator', 'generator checkpoint with its encoder', 'models/fashion32/fashion32-stylegan2.pt'),
    path('data', "Fashion-MNIST folder (Debian's dataset-fashion-mnist)", '/usr/share/datasets/fashion-mnist'),
    { name: 'spaces', type: 'string', value: 'LIST', default: 'latent,block0,block1', help: 'feature spaces: latent, blockK', check: (v) => (v.split(',').every((s) => s === 'latent' || /^block\d+$/.test(s)) ? undefined : `must be a comma-separated list of latent, block0, block1, ..., got "${v}"`) },
    { name: 'val', type: 'int', min: 1, max: 59_999, default: 5000, value: 'N', help: 'held-out training images (the last N)' },
    { name: 'limit', type: 'int', min: 1, max: 60_000, value: 'N', help: 'at most N images per split (quick runs)' },
    { name: 'chunk', type: 'int', min: 1, max: 10_000, default: 500, value: 'N', help: 'images per GPU batch' },
  ],
  output: { kind: 'dir', default: 'out/encode-fashion' },
  examples: ['encode-fashion', 'encode-fashion --spaces block0 --limit 100 --out out/fashion-small'],
};

const simple = (name: string, summary: string, example: string, extra: Partial<CommandDecl> = {}): CommandDecl => ({ name, summary, options: [], examples: [example], ...extra });

export const COMMANDS: CommandDecl[] = [
  RECONSTRUCT,
  DEMO,
  GENERATE,
  SAMPLE,
  TRAIN_SCORE,
  EVAL_SCORE,
  FIT_GAUSSIAN,
  ENCODE_FASHION,
  {
    name: 'training-curve',
    summary: "SVG plot of the DSM loss from train-score's progress lines or step,loss CSV files (several files concatenate: resumed runs).",
    positionals: [{ name: 'log', help: 'training log or CSV', optional: true, rest: true }],
    options: [{ name: 'series', type: 'list', value: 'NAME=F1+F2', help: 'one series per model from several logs', check: (v) => (/^[^=]+=.+$/.test(v) ? undefined : `needs name=file[+file...], got "${v}"`) }, { name: 'title', type: 'string', default: 'Score-model training: denoising score-matching loss', value: 'T', help: 'plot title' }],
    output: { kind: 'file', default: 'out/training-curve/curve.svg' },
    examples: ['training-curve models/fashion32/training/block1-run4.log'],
    conflicts: (p) => (p.positionals.length || (p.values.series as string[]).length ? undefined : 'give at least one log file or --series'),
  },
  TUNE,
  EXPERIMENT,
  WORKER,
  THEORY,
  {
    name: 'inspect',
    summary: "A checkpoint's format (NVlabs pickle, rosinality train/generator checkpoint, score_sde checkpoint, state dict, safetensors), its network, the inferred config, which weights are used, and every tensor.",
    positionals: [{ name: 'checkpoint', help: '.pkl, .pt, .pth or .safetensors' }],
    options: [...GENERATOR_OPTIONS, ...SCORE_FILE_OPTIONS],
    notes: 'With generator flags the file must be a generator, with score flags a score model; with neither, a generator is tried, then a score model, then the tensors alone are listed.',
    examples: ['inspect models/fashion32/fashion32-stylegan2.pt', 'inspect network-snapshot.pkl --network G', 'inspect checkpoint.pth --heads 2 --grid 6x2 --weights raw'],
    conflicts: (p) => oneKind(p),
  },
  CONVERT,
  {
    name: 'replay',
    summary: 'Every out.* and grad.* quantity of a reference fixture, from its in.* tensors only; says which generator network or score weights it loaded (score heads and grid: the flags, else the sidecar <checkpoint>.json, else 1 head and a square grid).',
    positionals: [{ name: 'what', help: 'generator or score', choices: ['generator', 'score'] }, { name: 'checkpoint', help: 'the model' }, { name: 'inputs.safetensors', help: 'the fixture' }],
    options: [
      ...GENERATOR_OPTIONS,
      ...SCORE_FILE_OPTIONS,
      { name: 'targets', type: 'string', value: 'LIST', help: 'generator: only these out.*/grad.* quantities, comma-separated, a trailing * takes a prefix (e.g. out.image_from_wplus,grad.wplus,grad.noise.*): each pass runs only when wanted, so a full-size generator needs one backward', check: (v) => (v.split(',').every((t) => /^(out|grad)\.[\w.]*\*?$/.test(t.trim())) ? undefined : `names of out.* or grad.* quantities (a trailing * takes a prefix), got "${v}"`) },
    ],
    output: { kind: 'file', default: 'out/replay/replay.safetensors' },
    examples: ['replay generator test/fixtures/reference-tiny/generator.pt test/fixtures/reference-tiny/generator_expected.safetensors', 'replay generator test/fixtures/nvlabs/network-snapshot.pkl test/fixtures/nvlabs/expected_G_ema_noclamp.safetensors --no-clamp', 'replay score test/fixtures/score_sde/checkpoint.pth test/fixtures/score_sde/expected_raw.safetensors --weights raw --heads 2 --grid 6x2'],
    conflicts: (p) => (p.given.has('targets') && p.positionals[0] !== 'generator' ? '--targets applies to replay generator only' : oneKind(p, p.positionals[0])),
  },
  simple('gradcheck', 'Finite-difference gradient check of every op (or one), GPU vs float64 reference; exit 1 on any FAIL.', 'gradcheck exp', { positionals: [{ name: 'op', help: 'an op name, or stylegan2', optional: true }] }),
  simple('rngcheck', 'The GPU Philox RNG against its CPU mirror, bit for bit.', 'rngcheck'),
  simple('memory', 'Planned peak GPU memory of StyleGAN2 forward+backward (config-f 1024 and the Fashion model).', 'memory'),
  BENCH,
  simple('adapter', 'The adapter and the limits the engine requests.', 'adapter'),
  simple('serve', "The web page (cli/web/): pick a test image or upload one, choose operator, level and method, and watch the reconstruction on the browser's WebGPU (Chrome/Edge 113+; Chromium on Linux: --enable-unsafe-webgpu --enable-features=Vulkan). Ctrl-C stops it.", 'serve --port 8080', {
    options: [{ name: 'port', type: 'int', min: 0, max: 65535, default: 8080, value: 'P', help: 'port (0: any free port)' }, { name: 'host', type: 'string', default: '127.0.0.1', value: 'H', help: 'address to listen on (0.0.0.0: other machines too)' }],
  }),
  simple('help', 'The list of commands, or the help of one.', 'help reconstruct', {
    positionals: [{ name: 'command', help: 'a command', optional: true }],
    conflicts: (p) => (p.positionals[0] && !commandByName(p.positionals[0]) ? `unknown command "${p.positionals[0]}" (commands: ${COMMANDS.map((c) => c.name).join(', ')})` : undefined),
  }),
];

export const commandByName = (name: string) => COMMANDS.find((c) => c.name === name);
