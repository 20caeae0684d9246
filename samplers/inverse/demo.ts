// The demo on the shipped models: the first test images reconstructed from 5% of their pixels and
// from 4x bicubic super-resolution with CSGM, ILO and SGILO, all images batched in every dispatch.
// Writes grid.png (one row per (task, image); columns: reference, measurement, then the methods) and
// report.json. `sgilo demo` and the goals benchmark run it.

import { readFileBytes, writeFileBytes } from '../../engine/io/files.ts';
import { readSafetensors } from '../../engine/io/index.ts';
import { writeFigure } from '../../engine/io/png.ts';
import type { FigureSpec } from '../../engine/io/figure.ts';
import { describeAdapter } from '../../engine/device.ts';
import { engine } from '../../engine/engine.ts';
import { makeOperator } from './operators/index.ts';
import { solve, takeMeasurements, type MethodRun } from './reconstruct.ts';
import type { MethodName, StepInfo } from './intermediate_layer.ts';
import { measurementPicture } from './setup.ts';
import { DEFAULT_GENERATOR, loadSetup, modelPath, readTunedFile, shippedScoreModels, TUNED_FILE } from './fashion.ts';
import { configFromValues, lookupTuned } from './tuning.ts';

export const DEMO_TASKS = ['inpaint-random:0.05', 'sr-bicubic:4'];
const TASK_LABELS: Record<string, string> = { 'inpaint-random:0.05': '5% pixels', 'sr-bicubic:4': '4x SR' };
export const DEMO_METHODS: ('csgm' | 'ilo' | 'sgilo')[] = ['csgm', 'ilo', 'sgilo'];

/** The first `n` shipped test images as [n, 3, 32, 32] (gray replicated), values in [-1, 1]. */
export async function testImages(n: number, first = 0): Promise<Float32Array> {
  const t = readSafetensors(await readFileBytes(modelPath('test-images.safetensors'))).tensors.get('images')!;
  const [N, , H, W] = t.shape;
  if (first + n > N) throw new RangeError(`only ${N} test images are shipped (asked for ${first}..${first + n - 1})`);
  const src = t.data as Float32Array;
  const out = new Float32Array(n * 3 * H * W);
  for (let i = 0; i < n; i++) for (let c = 0; c < 3; c++) out.set(src.subarray((first + i) * H * W, (first + i + 1) * H * W), (i * 3 + c) * H * W);
  return out;
}

export interface DemoOptions {
  steps: number;
  images: number;
  seed: number;
  /** Folder for grid.png and report.json. */
  out: string;
  log?: (line: string) => void;
  /** Progress of each method's steps (`label`: task and method). */
  progress?: (total: number, label: string) => (s: StepInfo) => void;
}

export interface DemoRow {
  task: string;
  method: MethodName;
  steps_per_round: number;
  blocks: number[];
  seconds: number;
  mse: number;
  psnr: number;
  per_image_mse: number[];
}

export async function runDemo(o: DemoOptions): Promise<{ rows: DemoRow[]; seconds: number }> {
  const log = o.log ?? (() => {});
  const { steps, images: n, seed, out } = o;
  const blocks = [1, 2];
  const t0 = performance.now();
  const scores = await shippedScoreModels();
  const setup = await loadSetup(DEFAULT_GENERATOR, scores);
  const tuned = await readTunedFile();
  log(`demo on ${describeAdapter(engine().gpu.adapter)}: ${n} Fashion-MNIST test images, tasks ${DEMO_TASKS.join(' and ')}, ` +
    `methods ${DEMO_METHODS.join(', ')}, ${steps} steps per round, blocks ${blocks.join(', ')}; score models: ${scores.map((s) => s.split('/').pop()).join(', ') || 'none'}`);
  log(`values: ${tuned ? `tuned (${TUNED_FILE})` : 'the presets (no tuned.json shipped)'}`);
  if (!setup.priors.size) log('note: no score model is shipped, so SGILO runs without its prior (it then equals ILO without spherical projection)');
  const size = setup.generator.config.size;
  const reference = await testImages(n);
  const per = 3 * size * size;
  const figureRows: FigureSpec['rows'] = [];
  const rows: DemoRow[] = [];
  try {
    for (const task of DEMO_TASKS) {
      const { operator, noiseStd } = makeOperator(task, [3, size, size], { seed });
      const y = takeMeasurements(operator, reference, n, noiseStd, seed).keep();
      const yHost = await y.readF32();
      const runs: MethodRun[] = [];
      for (const m of DEMO_METHODS) {
        // The tuned values of the nearest tuned level (models/fashion32/tuned.json), else the presets (ILO with its balls).
        const config = configFromValues(m, lookupTuned(tuned, m, task).values, steps, blocks);
        const total = steps * (1 + config.blocks.length);
        runs.push(await solve(y, config, { ...setup, operator, chains: 1, seed, onStep: o.progress?.(total, `${task} ${m}`) }, reference));
      }
      y.dispose();
      const yPer = yHost.length / n;
      for (let i = 0; i < n; i++) {
        const panels = [reference.subarray(i * per, (i + 1) * per), measurementPicture(operator, yHost.subarray(i * yPer, (i + 1) * yPer), size), ...runs.map((r) => r.images[i].samples[0])];
        figureRows.push({ label: `${TASK_LABELS[task] ?? task} #${i}`, panels: panels.map((image) => ({ image })) });
      }
      for (const r of runs) {
        const mse = r.images.reduce((s, im) => s + im.mse!, 0) / n;
        rows.push({ task, method: r.method as MethodName, steps_per_round: steps, blocks: r.config.blocks, seconds: r.seconds, mse, psnr: 10 * Math.log10(4 / mse), per_image_mse: r.images.map((im) => im.mse!) });
      }
      operator.dispose?.();
    }
  } finally {
    setup.dispose();
  }
  const seconds = (performance.now() - t0) / 1000;
  // The test images are gray: the figure shows every panel gray (the generator's faint tint is not the image's).
  await writeFigure(`${out}/grid.png`, { size, gray: true, rows: figureRows, columns: ['reference', 'measured', ...DEMO_METHODS.map((m) => m.toUpperCase())], title: `${steps} steps per round` });
  await writeFileBytes(`${out}/report.json`, new TextEncoder().encode(JSON.stringify({ adapter: engine().gpu.adapter, seconds, columns: ['reference', 'measurement', ...DEMO_METHODS], results: rows }, null, 2)));
  return { rows, seconds };
}
