// `sgilo reconstruct`: solve one inverse problem for one image with CSGM, ILO, SGILO or SGLD, with
// several posterior chains; writes PNGs (measurement, samples, mean, std map, a side-by-side grid),
// a JSON report (settings, loss per step, MSE/PSNR of the final iterates against the reference) and
// result.safetensors (samples, mean, std map and losses in float32; see resultTensors).

import { writeFileBytes } from '../engine/io/files.ts';
import { tensor } from '../engine/tensor.ts';
import { makeOperator, type MeasurementOperator } from '../samplers/inverse/operators/index.ts';
import { solve, takeMeasurements, type MethodRun } from '../samplers/inverse/reconstruct.ts';
import { DivergenceError, l1RadiusAt, type MethodConfig, type MethodName, type NoiseSchedule, type StepInfo } from '../samplers/inverse/intermediate_layer.ts';
import { writeFigure } from '../engine/io/png.ts';
import type { FigureSpec, Panel } from '../engine/io/figure.ts';
import type { Fit } from '../engine/io/image_fit.ts';
import { writeActivationsFile } from '../samplers/score/data.ts';
import { DEFAULT_GENERATOR, loadSetup, methodConfig, readTunedFile, shippedScoreModels, TUNED_FILE } from '../samplers/inverse/fashion.ts';
import { configFromValues, lookupTuned, VARIANTS, type Variant } from '../samplers/inverse/tuning.ts';
import { l1RadiiFromOptions } from './l1_options.ts';
import type { Parsed } from './args.ts';
import { checkOutputPath, writeAtomic, type Output } from './outputs.ts';
import { assertFinite, assertFiniteCheckpoint, loadAs } from './checks.ts';
import { maskFromPng, readMeasured, readReference } from './image_input.ts';
import type { Tensor } from '../engine/tensor.ts';
import { measurementPicture, resultTensors, stdPicture } from '../samplers/inverse/setup.ts';
import { writeSafetensors } from '../engine/io/index.ts';
import { describeAdapter } from '../engine/device.ts';
import { engine } from '../engine/engine.ts';

// Shared with the web page (cli/web/), which must not import pngjs.
export { measurementPicture, stdPicture };

export function progressPrinter(total: number, label: string): (s: StepInfo) => void {
  let done = 0;
  const t0 = performance.now();
  // Behind the Node entry's stderr filter (cli/sgilo.mjs) the terminal is the parent's.
  const proc = (globalThis as unknown as { process?: { stderr?: { isTTY?: boolean }; env?: Record<string, string | undefined> } }).process;
  const isTty = proc?.env?.SGILO_STDERR_TTY === '1' || (proc?.stderr?.isTTY ?? false);
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

export async function reconstructCommand(p: Parsed, out: Output): Promise<number> {
  const v = p.values;
  const spec = String(v.operator);
  const methods = String(v.method).split(',').map((m) => m.trim()) as MethodName[];
  const steps = Number(v.steps);
  const chains = Number(v.chains);
  const seed = Number(v.seed);
  const fit = v.fit as Fit;
  const blocks = String(v.blocks).split(',').filter((t) => t.trim()).map(Number);
  const l1 = l1RadiiFromOptions((k) => v[k] as string | undefined);
  // Values given on the command line win over tuned values, which win over the presets.
  const given = {
    ...(p.given.has('lr') ? { lr: Number(v.lr) } : {}),
    ...(p.given.has('temperature') ? { temperature: Number(v.temperature) } : {}),
    ...(p.given.has('noise-scale') ? { noiseScale: Number(v['noise-scale']) } : {}),
    ...(p.given.has('noise-schedule') ? { noiseSchedule: v['noise-schedule'] as NoiseSchedule } : {}),
    ...(p.given.has('prior-steps') ? { priorSteps: Number(v['prior-steps']) } : {}),
  };
  if (l1) for (const which of ['latent', 'noise', 'features'] as const) l1RadiusAt(l1, which, 0, 1 + blocks.length); // the radius lists, before any work

  if (v['save-features'] !== undefined) checkOutputPath('--save-features', String(v['save-features']), 'file', p.force);
  const generator = (v.generator as string | undefined) ?? DEFAULT_GENERATOR;
  // Tuned values (sgilo tune) were found for the shipped generator: used with it unless --presets.
  const tunedPath = p.given.has('tuned') ? String(v.tuned) : TUNED_FILE;
  const tunedFile = v.presets === true ? null : p.given.has('tuned') || generator === DEFAULT_GENERATOR ? await readTunedFile(tunedPath, p.given.has('tuned')) : null;
  const configOf = (m: MethodName): MethodConfig => {
    let base = methodConfig(m, steps, blocks);
    if ((VARIANTS as readonly string[]).includes(m)) {
      const { values, source } = lookupTuned(tunedFile, m as Variant, spec);
      base = configFromValues(m as Variant, values, steps, blocks);
      console.log(`${m}: ${!tunedFile || source.startsWith('presets') ? 'the presets' : `values ${source} (${tunedPath})`}`);
    }
    const own = m === 'sgilo' ? given : 'lr' in given ? { lr: given.lr } : {};
    return { ...base, ...(l1 ? { l1 } : {}), ...own };
  };
  const tuned = given;
  const scores = (v.score as string[]).length ? (v.score as string[]) : await shippedScoreModels();
  for (const f of scores) await loadAs(f, 'score', (b) => assertFiniteCheckpoint(b, f));
  await loadAs(generator, 'generator', (b) => assertFiniteCheckpoint(b, generator));
  const setup = await loadAs(generator, 'generator', () => loadSetup(generator, scores));
  const size = setup.generator.config.size;
  const made = v.mask !== undefined ? await maskFromPng(String(v.mask), spec, size, fit) : makeOperator(spec, [3, size, size], { seed });
  const { operator, noiseStd } = made;
  try {
    let reference: Float32Array | undefined;
    let gray: boolean;
    let y: Tensor;
    if (v.measured === undefined) {
      const input = await readReference({ image: v.image as string | undefined, index: v['image-index'] as number | undefined, fit }, size);
      ({ reference, gray } = input);
      y = takeMeasurements(operator, reference!, 1, noiseStd, seed).keep();
    } else {
      const m = await readMeasured(String(v.measured), operator, fit);
      gray = m.gray;
      y = tensor(m.y, [1, ...operator.outShape]).keep();
    }
    const runs: MethodRun[] = [];
    const yHost = await y.readF32();
    for (const m of methods) {
      const config = configOf(m);
      const total = steps * (1 + (m === 'csgm' ? 0 : blocks.length));
      const bar = progressPrinter(total, m);
      const onStep = (s: StepInfo) => {
        assertFinite(s.loss, 'the loss', `${m} round ${s.round} step ${s.step}`);
        bar(s);
      };
      try {
        runs.push(await solve(y, config, { ...setup, operator, chains, seed, onStep }, reference));
      } catch (e) {
        if (e instanceof DivergenceError) throw new Error(`${m}: ${e.message} (--lr, now ${config.lr}${m === 'sgilo' ? `; --temperature, now ${config.temperature}; --noise-scale, now ${config.noiseScale}` : ''})`);
        throw e;
      }
      checkRun(runs[runs.length - 1]);
    }
    y.dispose();
    if (v['save-features'] !== undefined) await saveFeatures(String(v['save-features']), runs[runs.length - 1], spec);
    await writeOutputs(out, { spec, methods, steps, blocks, chains, seed, noiseStd, fit, gray, ...tuned, ...(l1 ? { l1 } : {}) }, operator, size, reference, yHost, runs, gray);
    return 0;
  } finally {
    operator.dispose?.();
    setup.dispose();
  }
}

/** Every number a run reports is finite (NaN/Inf: an error naming the method and the variable). */
function checkRun(r: MethodRun): void {
  const im = r.images[0];
  const last = r.losses.length - 1;
  const where = `${r.method} (after round ${last}, step ${r.losses[last]?.length ?? 0})`;
  im.samples.forEach((s, k) => assertFinite(s, `sample ${k}`, where));
  assertFinite(im.mean, 'the posterior mean', where);
  assertFinite(im.std, 'the std map', where);
  if (im.mse !== undefined) assertFinite(im.mse, 'the MSE', where);
  if (im.meanMse !== undefined) assertFinite(im.meanMse, 'the posterior-mean MSE', where);
}

/**
 * Inversions as score-model training data: the features entering block k are the activation
 * after block k-1, in the activations-file format of samplers/score/data.ts.
 */
async function saveFeatures(path: string, run: MethodRun, spec: string): Promise<void> {
  if (!run.features) throw new Error(`--save-features: ${run.method} optimized no intermediate features (give --blocks)`);
  const { data, shape, block } = run.features;
  const bytes = writeActivationsFile({ data, shape: shape as [number, number, number, number], meta: { block: String(block - 1), source: `inversion (${run.method}, ${spec})`, generator: 'see report.json' } });
  writeAtomic(path, bytes);
  console.log(`wrote ${path}: features after block ${block - 1}, [${shape.join(', ')}]`);
}

async function writeOutputs(
  out: Output,
  settings: Record<string, unknown>,
  op: MeasurementOperator,
  size: number,
  reference: Float32Array | undefined,
  y: Float32Array,
  runs: MethodRun[],
  gray: boolean,
): Promise<void> {
  const dir = out.path;
  const measurement = measurementPicture(op, y, size);
  const one = (panel: Panel): FigureSpec => ({ size, gray, rows: [{ panels: [panel] }] });
  await writeFigure(`${dir}/measurement.png`, one({ image: measurement }));
  if (reference) await writeFigure(`${dir}/reference.png`, one({ image: reference }));
  const rows: FigureSpec['rows'] = [];
  for (const r of runs) {
    const img = r.images[0];
    for (const [i, s] of img.samples.entries()) await writeFigure(`${dir}/${r.method}-sample-${i}.png`, one({ image: s }));
    await writeFigure(`${dir}/${r.method}-mean.png`, one({ image: img.mean }));
    await writeFigure(`${dir}/${r.method}-std.png`, one({ std: img.std }));
    rows.push({ label: r.method.toUpperCase(), panels: [reference ? { image: reference } : null, { image: measurement }, { image: img.mean }, { std: img.std }, ...img.samples.map((s) => ({ image: s }))] });
  }
  const K = runs[0].images[0].samples.length;
  const columns = [reference ? 'reference' : '', 'measured', 'mean', 'std', ...Array.from({ length: K }, (_, k) => `sample ${k}`)];
  await writeFigure(`${dir}/grid.png`, { size, gray, rows, columns, title: `${settings.spec}, ${settings.steps} steps per round, ${K} chains` });
  const report = {
    settings,
    columns: 'grid.png rows: one per method; columns: reference (when given), measurement, posterior mean, std map (colour scale 0 to its maximum), samples' + (gray ? '; the input is gray, so images are shown gray (channel mean)' : ''),
    methods: runs.map((r) => ({
      method: r.method,
      config: r.config,
      seconds: r.seconds,
      mse_final_iterates: r.images[0].mse,
      psnr_final_iterates: r.images[0].psnr,
      mse_posterior_mean: r.images[0].meanMse,
      std_max: r.images[0].std.reduce((m, v) => Math.max(m, v), 0),
      loss_per_step: r.losses,
    })),
  };
  // Infinite l1 radii (no ball) are written as "inf" (JSON has no Infinity; it would become null).
  const inf = (_k: string, v: unknown) => (v === Infinity ? 'inf' : v);
  await writeFileBytes(`${dir}/report.json`, new TextEncoder().encode(JSON.stringify(report, inf, 2)));
  const metadata = { adapter: describeAdapter(engine().gpu.adapter), settings: JSON.stringify(settings, inf) };
  await writeFileBytes(`${dir}/result.safetensors`, writeSafetensors(resultTensors(runs, size), metadata));
  for (const r of runs) {
    const i = r.images[0];
    console.log(`${r.method}: ${r.seconds.toFixed(1)} s${i.mse !== undefined ? `, MSE ${i.mse.toFixed(4)}, PSNR ${i.psnr!.toFixed(2)} dB (final iterates), posterior-mean MSE ${i.meanMse!.toFixed(4)}` : ''}`);
  }
  console.log(`wrote ${out.final}/: grid.png, report.json, result.safetensors (float32) and per-method PNGs`);
}
