// `npm run demo`: the main job on the shipped models. Four Fashion-MNIST test images are
// reconstructed from 5% of their pixels and from 4x bicubic super-resolution with CSGM, ILO and
// SGILO (all four images batched in every dispatch); writes out/demo/grid.png and report.json.
//
// grid.png: one row per (task, image); columns: reference, measurement, CSGM, ILO, SGILO.

import { readFileBytes, writeFileBytes } from '../engine/io/files.ts';
import { readSafetensors } from '../engine/io/index.ts';
import { describeAdapter } from '../engine/device.ts';
import { engine } from '../engine/engine.ts';
import { makeOperator } from '../samplers/operators/index.ts';
import { solve, takeMeasurements, type MethodRun } from '../samplers/reconstruct.ts';
import type { MethodName } from '../samplers/intermediate_layer.ts';
import { writeImageGrid } from './png.ts';
import { measurementPicture, parseArgs, progressPrinter } from './reconstruct.ts';
import { DEFAULT_GENERATOR, fashionIloBalls, loadSetup, methodConfig, modelPath, shippedScoreModels } from './reconstruct_setup.ts';

export const DEMO_TASKS = ['inpaint-random:0.05', 'sr-bicubic:4'];
const METHODS: MethodName[] = ['csgm', 'ilo', 'sgilo'];

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

export async function demoCommand(argv: string[]): Promise<number> {
  const a = parseArgs(argv, ['steps', 'images', 'out', 'seed']);
  const steps = Number(a.steps?.[0] ?? 40);
  const n = Number(a.images?.[0] ?? 4);
  const seed = Number(a.seed?.[0] ?? 0);
  const out = a.out?.[0] ?? 'out/demo';
  const blocks = [1, 2];
  const t0 = performance.now();
  const scores = await shippedScoreModels();
  const setup = await loadSetup(DEFAULT_GENERATOR, scores);
  console.log(`demo on ${describeAdapter(engine().gpu.adapter)}: ${n} Fashion-MNIST test images, tasks ${DEMO_TASKS.join(' and ')}, ` +
    `methods ${METHODS.join(', ')}, ${steps} steps per round, blocks ${blocks.join(', ')}; score models: ${scores.map((s) => s.split('/').pop()).join(', ') || 'none'}`);
  if (!setup.priors.size) console.log('note: no score model is shipped, so SGILO runs without its prior (it then equals ILO without spherical projection)');
  const size = setup.generator.config.size;
  const reference = await testImages(n);
  const per = 3 * size * size;
  const rows: Float32Array[] = [];
  const report: Record<string, unknown>[] = [];
  try {
    for (const task of DEMO_TASKS) {
      const { operator, noiseStd } = makeOperator(task, [3, size, size], { seed });
      const y = takeMeasurements(operator, reference, n, noiseStd, seed).keep();
      const yHost = await y.readF32();
      const runs: MethodRun[] = [];
      for (const m of METHODS) {
        const config = { ...methodConfig(m, steps, m === 'csgm' ? [] : blocks), ...(m === 'ilo' ? { l1: fashionIloBalls(blocks) } : {}) };
        const total = steps * (1 + config.blocks.length);
        runs.push(await solve(y, config, { ...setup, operator, chains: 1, seed, onStep: progressPrinter(total, `${task} ${m}`) }, reference));
      }
      y.dispose();
      const yPer = yHost.length / n;
      for (let i = 0; i < n; i++) {
        rows.push(reference.subarray(i * per, (i + 1) * per), measurementPicture(operator, yHost.subarray(i * yPer, (i + 1) * yPer), size));
        for (const r of runs) rows.push(r.images[i].samples[0]);
      }
      for (const r of runs) {
        const mse = r.images.reduce((s, im) => s + im.mse!, 0) / n;
        report.push({ task, method: r.method, steps_per_round: steps, blocks: r.config.blocks, seconds: r.seconds, mse, psnr: 10 * Math.log10(4 / mse), per_image_mse: r.images.map((im) => im.mse) });
      }
      operator.dispose?.();
    }
  } finally {
    setup.dispose();
  }
  const seconds = (performance.now() - t0) / 1000;
  await writeImageGrid(`${out}/grid.png`, rows, size, 2 + METHODS.length);
  await writeFileBytes(`${out}/report.json`, new TextEncoder().encode(JSON.stringify({ adapter: engine().gpu.adapter, seconds, columns: ['reference', 'measurement', ...METHODS], results: report }, null, 2)));
  console.log('\ntask                 | method | MSE (final iterate) | PSNR dB | seconds');
  console.log('---------------------|--------|---------------------|---------|--------');
  for (const r of report) {
    console.log(`${String(r.task).padEnd(20)} | ${String(r.method).padEnd(6)} | ${(r.mse as number).toFixed(4).padStart(19)} | ${(r.psnr as number).toFixed(2).padStart(7)} | ${(r.seconds as number).toFixed(1).padStart(6)}`);
  }
  console.log(`\nwrote ${out}/grid.png (rows: task x image; columns: reference, measurement, ${METHODS.join(', ')}) and ${out}/report.json in ${seconds.toFixed(0)} s`);
  return 0;
}
