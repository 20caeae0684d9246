// `sgilo reconstruct`: solve one inverse problem for one image with CSGM, ILO, SGILO or SGLD, with
// several posterior chains; writes PNGs (measurement, samples, mean, std map, a side-by-side grid),
// a JSON report (settings, loss per step, MSE/PSNR of the final iterates against the reference) and
// result.safetensors (samples, mean, std map and losses in float32; see resultTensors).

import { writeFileBytes } from '../engine/io/files.ts';
import { tensor } from '../engine/tensor.ts';
import { makeOperator, parseOperatorSpec, type MeasurementOperator } from '../samplers/inverse/operators/index.ts';
import { solve, takeMeasurements, type MethodRun } from '../samplers/inverse/reconstruct.ts';
import { l1RadiusAt, type MethodName, type StepInfo } from '../samplers/inverse/intermediate_layer.ts';
import { readImagePng, writeImageGrid } from '../engine/io/png.ts';
import { writeActivationsFile } from '../samplers/score/data.ts';
import { DEFAULT_GENERATOR, loadSetup, methodConfig, shippedScoreModels } from '../samplers/inverse/fashion.ts';
import { l1RadiiFromOptions } from './l1_options.ts';
import type { Tensor } from '../engine/tensor.ts';
import { measurementPicture, resultTensors, stdPicture } from '../samplers/inverse/setup.ts';
import { writeSafetensors } from '../engine/io/index.ts';
import { describeAdapter } from '../engine/device.ts';
import { engine } from '../engine/engine.ts';

export const RECONSTRUCT_USAGE = `usage: sgilo reconstruct (--image ref.png | --measured y.png) --operator SPEC [options]
  --operator SPEC   e.g. inpaint-random:0.05, inpaint-box:0.5, sr-bicubic:4, sr-avgpool:4, denoise:0.1,
                    colorize, cs-gaussian:0.1, cs-circulant:0.1 (append ,noise=0.01 for measurement noise)
  --method LIST     csgm, ilo, sgilo, sgld (comma-separated; default sgilo)
  --steps N         steps per round (default 100)
  --blocks LIST     intermediate blocks visited after round 0 (default 1,2)
  --chains K        posterior chains (default 4)
  --seed S          seed of everything random (default 0)
  --generator PATH  StyleGAN2 checkpoint (default: the shipped Fashion-MNIST model)
  --score PATH      score model (repeatable; default: the shipped ones)
  --out DIR         output folder (default out/reconstruct)
  --save-features F write the optimized intermediate features of the last method (all chains) as a
                    score-model training file (an activations file: train-score --data F)
  --l1-features R   ILO's l1 balls: keep the features within l1 distance R of where each round
  --l1-latent R     started (latent: all rows of z; noise: each map); R is one radius for every
  --l1-noise R      round or a list R0,R1,... per round (round 0 first), "inf" for none. Default:
                    no balls. Radii are absolute (ILO's FFHQ values: 1000-6000)`;

export interface Args {
  [k: string]: string[];
}

export function parseArgs(argv: string[], known: string[]): Args {
  const out: Args = {};
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (!a.startsWith('--')) throw new Error(`unexpected argument "${a}"`);
    const name = a.slice(2);
    if (!known.includes(name)) throw new Error(`unknown option --${name} (options: ${known.map((k) => `--${k}`).join(', ')})`);
    const v = argv[i + 1];
    if (v === undefined || v.startsWith('--')) throw new Error(`option --${name} needs a value`);
    (out[name] ??= []).push(v);
    i++;
  }
  return out;
}

const one = (a: Args, k: string, d?: string) => a[k]?.[a[k].length - 1] ?? d;
const int = (a: Args, k: string, d: number, min = 0) => {
  const s = one(a, k, String(d))!;
  const v = Number(s);
  if (!Number.isInteger(v) || v < min) throw new RangeError(`--${k} must be an integer >= ${min}, got "${s}"`);
  return v;
};

// Shared with the web page (cli/web/), which must not import pngjs.
export { measurementPicture, stdPicture };

export function progressPrinter(total: number, label: string): (s: StepInfo) => void {
  let done = 0;
  const t0 = performance.now();
  const isTty = (globalThis as unknown as { process?: { stderr?: { isTTY?: boolean } } }).process?.stderr?.isTTY ?? false;
  return (s) => {
    done++;
    if (!isTty && done % 25 !== 0 && done !== total) return;
    const frac = done / total;
    const bar = '#'.repeat(Math.round(frac * 30)).padEnd(30, '.');
    const eta = ((performance.now() - t0) / 1000 / done) * (total - done);
    const line = `${label} [${bar}] ${done}/${total} round ${s.round} loss ${s.loss.toExponential(3)} eta ${eta.toFixed(0)} s`;
    const err = (globalThis as unknown as { process: { stderr: { write(s: string): void } } }).process.stderr;
    err.write(isTty ? `\r${line}${done === total ? '\n' : ''}` : `${line}\n`);
  };
}

export async function reconstructCommand(argv: string[]): Promise<number> {
  if (argv.length === 0 || argv.includes('--help')) {
    console.log(RECONSTRUCT_USAGE);
    return argv.length === 0 ? 2 : 0;
  }
  const a = parseArgs(argv, ['image', 'measured', 'operator', 'method', 'steps', 'blocks', 'chains', 'seed', 'generator', 'score', 'out', 'save-features', 'l1-features', 'l1-latent', 'l1-noise']);
  const spec = one(a, 'operator');
  if (!spec) throw new Error('--operator is required\n' + RECONSTRUCT_USAGE);
  if (!!one(a, 'image') === !!one(a, 'measured')) throw new Error('give exactly one of --image (a reference image) or --measured (a measurement image)');
  const methods = one(a, 'method', 'sgilo')!.split(',').map((m) => m.trim()) as MethodName[];
  const steps = int(a, 'steps', 100, 1);
  const chains = int(a, 'chains', 4, 1);
  const seed = int(a, 'seed', 0);
  const blocks = one(a, 'blocks', '1,2')!.split(',').filter(Boolean).map(Number);
  const out = one(a, 'out', 'out/reconstruct')!;
  const l1 = l1RadiiFromOptions((k) => one(a, k));
  const configOf = (m: MethodName) => ({ ...methodConfig(m, steps, blocks), ...(l1 ? { l1 } : {}) });
  for (const m of methods) configOf(m); // validates the names before any work
  if (l1) for (const which of ['latent', 'noise', 'features'] as const) l1RadiusAt(l1, which, 0, 1 + blocks.length); // and the radius lists
  parseOperatorSpec(spec); // and the operator

  const setup = await loadSetup(one(a, 'generator', DEFAULT_GENERATOR)!, a.score ?? (await shippedScoreModels()));
  const size = setup.generator.config.size;
  const { operator, noiseStd } = makeOperator(spec, [3, size, size], { seed });
  try {
    let reference: Float32Array | undefined;
    let y: Tensor;
    if (one(a, 'image')) {
      reference = await readImagePng(one(a, 'image')!, size);
      y = takeMeasurements(operator, reference, 1, noiseStd, seed).keep();
    } else {
      if (operator.outShape.join() !== [3, size, size].join()) {
        throw new Error(`--measured needs an operator whose measurement is a ${size}x${size} image; ${operator.name} measures [${operator.outShape.join(', ')}] (give --image and let the tool measure)`);
      }
      y = tensor(await readImagePng(one(a, 'measured')!, size), [1, 3, size, size]).keep();
    }
    const runs: MethodRun[] = [];
    const yHost = await y.readF32();
    for (const m of methods) {
      const config = configOf(m);
      const total = steps * (1 + (m === 'csgm' ? 0 : blocks.length));
      runs.push(await solve(y, config, { ...setup, operator, chains, seed, onStep: progressPrinter(total, m) }, reference));
    }
    y.dispose();
    const saveTo = one(a, 'save-features');
    if (saveTo) await saveFeatures(saveTo, runs[runs.length - 1], spec);
    await writeOutputs(out, { spec, methods, steps, blocks, chains, seed, noiseStd, ...(l1 ? { l1 } : {}) }, operator, size, reference, yHost, runs);
    return 0;
  } finally {
    operator.dispose?.();
    setup.dispose();
  }
}

/**
 * Inversions as score-model training data: the features entering block k are the activation
 * after block k-1, in the activations-file format of samplers/score/data.ts.
 */
async function saveFeatures(path: string, run: MethodRun, spec: string): Promise<void> {
  if (!run.features) throw new Error(`--save-features: ${run.method} optimized no intermediate features (give --blocks)`);
  const { data, shape, block } = run.features;
  const bytes = writeActivationsFile({ data, shape: shape as [number, number, number, number], meta: { block: String(block - 1), source: `inversion (${run.method}, ${spec})`, generator: 'see report.json' } });
  await writeFileBytes(path, bytes);
  console.log(`wrote ${path}: features after block ${block - 1}, [${shape.join(', ')}]`);
}

async function writeOutputs(
  out: string,
  settings: Record<string, unknown>,
  op: MeasurementOperator,
  size: number,
  reference: Float32Array | undefined,
  y: Float32Array,
  runs: MethodRun[],
): Promise<void> {
  const measurement = measurementPicture(op, y, size);
  await writeImageGrid(`${out}/measurement.png`, [measurement], size, 1);
  const gridRows: Float32Array[] = [];
  for (const r of runs) {
    const img = r.images[0];
    for (const [i, s] of img.samples.entries()) await writeImageGrid(`${out}/${r.method}-sample-${i}.png`, [s], size, 1);
    await writeImageGrid(`${out}/${r.method}-mean.png`, [img.mean], size, 1);
    await writeImageGrid(`${out}/${r.method}-std.png`, [stdPicture(img.std)], size, 1);
    gridRows.push(reference ?? measurement, measurement, img.mean, stdPicture(img.std), ...img.samples);
  }
  const cols = 4 + runs[0].images[0].samples.length;
  const gray = (x: Float32Array) => (x.length === size * size ? Float32Array.from({ length: 3 * size * size }, (_, i) => x[i % (size * size)]) : x);
  await writeImageGrid(`${out}/grid.png`, gridRows.map(gray), size, cols);
  const report = {
    settings,
    columns: 'grid.png rows: one per method; columns: reference (or measurement), measurement, posterior mean, std map, samples',
    methods: runs.map((r) => ({
      method: r.method,
      config: r.config,
      seconds: r.seconds,
      mse_final_iterates: r.images[0].mse,
      psnr_final_iterates: r.images[0].psnr,
      mse_posterior_mean: r.images[0].meanMse,
      loss_per_step: r.losses,
    })),
  };
  // Infinite l1 radii (no ball) are written as "inf" (JSON has no Infinity; it would become null).
  const inf = (_k: string, v: unknown) => (v === Infinity ? 'inf' : v);
  await writeFileBytes(`${out}/report.json`, new TextEncoder().encode(JSON.stringify(report, inf, 2)));
  const metadata = { adapter: describeAdapter(engine().gpu.adapter), settings: JSON.stringify(settings, inf) };
  await writeFileBytes(`${out}/result.safetensors`, writeSafetensors(resultTensors(runs, size), metadata));
  for (const r of runs) {
    const i = r.images[0];
    console.log(`${r.method}: ${r.seconds.toFixed(1)} s${i.mse !== undefined ? `, MSE ${i.mse.toFixed(4)}, PSNR ${i.psnr!.toFixed(2)} dB (final iterates), posterior-mean MSE ${i.meanMse!.toFixed(4)}` : ''}`);
  }
  console.log(`wrote ${out}/grid.png, ${out}/report.json, ${out}/result.safetensors (float32) and per-method PNGs`);
}
