// `sgilo experiment`: the paper's Figure 3 protocol on the Fashion-MNIST model. For each task
// (inpainting, compressed sensing, denoising) and measurement level, CSGM, ILO and SGILO reconstruct
// a set of evaluation images (batched); the learning rate of each method is first tuned on separate
// tuning images. Writes report.md, results.json, mse.svg and diversity.png into --out (default
// out/experiment; the committed report is experiments/figure3, written with --out and --force).
//
//   default (2-core CPU): 3 levels per task, 10 evaluation images (test images 8..17), tuning on
//   images 0..7, --steps per round (<= 200); --full: 30 images and 5 levels (for a GPU).

import { writeFileBytes } from '../engine/io/files.ts';
import { describeAdapter } from '../engine/device.ts';
import { engine } from '../engine/engine.ts';
import { makeOperator } from '../samplers/inverse/operators/index.ts';
import { solve, takeMeasurements } from '../samplers/inverse/reconstruct.ts';
import type { MethodName } from '../samplers/inverse/intermediate_layer.ts';
import { linePlot } from './svg_plot.ts';
import { writeFigure } from '../engine/io/png.ts';
import type { Panel } from '../engine/io/figure.ts';
import { readSafetensors } from '../engine/io/index.ts';
import { readFileBytes } from '../engine/io/files.ts';
import { measurementPicture } from './reconstruct.ts';
import { UsageError, type Parsed } from './args.ts';
import type { Output } from './outputs.ts';
import { assertFinite } from './checks.ts';
import { DEFAULT_GENERATOR, fashionIloBalls, loadSetup, methodConfig, modelPath, shippedScoreModels, type Setup } from '../samplers/inverse/fashion.ts';
import { testImages } from '../samplers/inverse/demo.ts';

const TASKS: Record<string, { family: string; levels: number[]; full: number[]; label: string }> = {
  inpainting: { family: 'inpaint-random', levels: [0.02, 0.05, 0.2], full: [0.0075, 0.02, 0.05, 0.1, 0.2], label: 'kept fraction of pixels' },
  'compressed sensing': { family: 'cs-gaussian', levels: [0.02, 0.05, 0.2], full: [0.01, 0.02, 0.05, 0.1, 0.2], label: 'measurements / dimension' },
  denoising: { family: 'denoise', levels: [0.1, 0.3, 0.5], full: [0.05, 0.1, 0.2, 0.3, 0.5], label: 'noise std' },
};
const METHODS: MethodName[] = ['csgm', 'ilo', 'sgilo'];
const LR_GRID: Record<string, number[]> = { csgm: [0.03, 0.1], ilo: [0.03, 0.1], sgilo: [0.02, 0.05] };

interface Row {
  task: string;
  level: number;
  method: string;
  lr: number;
  mse: number;
  sem: number;
  seconds: number;
}

async function meanMse(setup: Setup, spec: string, method: MethodName, lr: number, steps: number, images: Float32Array, n: number, seed: number): Promise<{ mse: number; sem: number; seconds: number; perImage: number[] }> {
  const size = setup.generator.config.size;
  const { operator, noiseStd } = makeOperator(spec, [3, size, size], { seed });
  try {
    const y = takeMeasurements(operator, images, n, noiseStd, seed).keep();
    const config = { ...methodConfig(method, steps, method === 'csgm' ? [] : [1, 2]), ...(method === 'ilo' ? { l1: fashionIloBalls([1, 2]) } : {}), lr };
    const run = await solve(y, config, { ...setup, operator, chains: 1, seed }, images);
    y.dispose();
    const perImage = run.images.map((im, i) => (assertFinite(im.mse!, `the MSE of image ${i}`, `${spec} ${method} lr ${lr} (after ${steps} steps per round)`), im.mse!));
    const mse = perImage.reduce((a, b) => a + b, 0) / n;
    const sd = Math.sqrt(perImage.reduce((a, b) => a + (b - mse) ** 2, 0) / Math.max(1, n - 1));
    return { mse, sem: sd / Math.sqrt(n), seconds: run.seconds, perImage };
  } finally {
    operator.dispose?.();
  }
}

export async function experimentCommand(p: Parsed, output: Output): Promise<number> {
  const full = p.values.full === true;
  const steps = Number(p.values.steps);
  const nEval = p.given.has('images') ? Number(p.values.images) : full ? 30 : 10;
  const nTune = Number(p.values['tune-images']);
  const seed = Number(p.values.seed);
  const out = output.path;
  const t0 = performance.now();
  const shipped = await testImageCount();
  if (nTune + nEval > shipped) throw new UsageError(`--tune-images ${nTune} + --images ${nEval} = ${nTune + nEval} test images; ${shipped} are shipped`);
  const setup = await loadSetup(DEFAULT_GENERATOR, await shippedScoreModels());
  const tune = await testImages(nTune, 0);
  const evalImages = await testImages(nEval, nTune);
  const rows: Row[] = [];
  const log = (s: string) => console.log(`[${((performance.now() - t0) / 1000).toFixed(0)} s] ${s}`);
  log(`figure-3 protocol on ${describeAdapter(engine().gpu.adapter)}: tune on ${nTune} images, evaluate on ${nEval}, ${steps} steps per round; priors for blocks ${[...setup.priors.keys()].join(', ') || 'none'}`);
  try {
    for (const [task, t] of Object.entries(TASKS)) {
      const levels = full ? t.full : t.levels;
      // Tune each method's learning rate on the middle level, on the tuning images.
      const mid = `${t.family}:${levels[Math.floor(levels.length / 2)]}`;
      const best: Record<string, number> = {};
      for (const m of METHODS) {
        let bestMse = Infinity;
        for (const lr of LR_GRID[m]) {
          const r = await meanMse(setup, mid, m, lr, steps, tune, nTune, seed + 1);
          log(`tune ${task} ${m} lr ${lr}: MSE ${r.mse.toFixed(4)}`);
          if (r.mse < bestMse) [bestMse, best[m]] = [r.mse, lr];
        }
      }
      for (const level of levels) {
        for (const m of METHODS) {
          const r = await meanMse(setup, `${t.family}:${level}`, m, best[m], steps, evalImages, nEval, seed);
          rows.push({ task, level, method: m, lr: best[m], mse: r.mse, sem: r.sem, seconds: r.seconds });
          log(`${task} ${level} ${m}: MSE ${r.mse.toFixed(4)} +- ${r.sem.toFixed(4)} (${r.seconds.toFixed(0)} s)`);
        }
      }
    }
    await diversityFigure(setup, out, evalImages, steps, seed);
  } finally {
    setup.dispose();
  }
  await writeReport(out, rows, { steps, nEval, nTune, seed, full, seconds: (performance.now() - t0) / 1000, adapter: describeAdapter(engine().gpu.adapter) });
  return 0;
}

async function testImageCount(): Promise<number> {
  return readSafetensors(await readFileBytes(modelPath('test-images.safetensors'))).tensors.get('images')!.shape[0];
}

/** Several SGILO posterior samples for one inpainting measurement, with mean and std map. */
async function diversityFigure(setup: Setup, out: string, images: Float32Array, steps: number, seed: number): Promise<void> {
  const size = setup.generator.config.size;
  const per = 3 * size * size;
  const { operator } = makeOperator('inpaint-random:0.05', [3, size, size], { seed });
  const ref = images.slice(0, per);
  const y = takeMeasurements(operator, ref, 1, 0, seed).keep();
  const run = await solve(y, methodConfig('sgilo', steps, [1, 2]), { ...setup, operator, chains: 6, seed }, ref);
  const yHost = await y.readF32();
  y.dispose();
  operator.dispose?.();
  const im = run.images[0];
  const panels: Panel[] = [{ image: ref }, { image: measurementPicture(operator, yHost, size) }, { image: im.mean }, { std: im.std }, ...im.samples.map((s) => ({ image: s }))];
  await writeFigure(`${out}/diversity.png`, { size, gray: true, rows: [{ panels }], columns: ['reference', '5% pixels', 'mean', 'std', ...im.samples.map((_, k) => `sample ${k}`)] });
}

async function writeReport(out: string, rows: Row[], meta: Record<string, unknown>): Promise<void> {
  const lines = [
    '# Figure 3 protocol on the Fashion-MNIST StyleGAN2',
    '',
    `Adapter: ${meta.adapter}. ${meta.nEval} evaluation images (test images after the ${meta.nTune} tuning images), ${meta.steps} steps per round, ` +
      `learning rates tuned on the tuning images at each task's middle level, seed ${meta.seed}. Total ${(meta.seconds as number).toFixed(0)} s.`,
    'MSE of the final iterate against the reference (images in [-1, 1]), mean +- standard error over images.',
    'Methods: CSGM (latent and noise), ILO (rounds over blocks 1 and 2, l1 balls on the features of radius 100 and 200: samplers/inverse/fashion.ts fashionIloBalls), ' +
      'SGILO (the same rounds, no balls, the shipped score models as priors of the features after blocks 0 and 1: models/fashion32/score-block*.safetensors, temperature 0.1, noise scale 0.025).',
    '',
    '| task | level | CSGM | ILO | SGILO | best |',
    '|---|---|---|---|---|---|',
  ];
  const tasks = [...new Set(rows.map((r) => r.task))];
  let sgiloWins = 0;
  let sgiloVsIlo = 0;
  let cells = 0;
  for (const task of tasks) {
    for (const level of [...new Set(rows.filter((r) => r.task === task).map((r) => r.level))]) {
      const cell = (m: string) => rows.find((r) => r.task === task && r.level === level && r.method === m)!;
      const [c, i, s] = METHODS.map(cell);
      const bestM = [c, i, s].reduce((x, y) => (y.mse < x.mse ? y : x));
      if (bestM.method === 'sgilo') sgiloWins++;
      if (s.mse < i.mse) sgiloVsIlo++;
      cells++;
      const f = (r: Row) => `${r.mse.toFixed(4)} +- ${r.sem.toFixed(4)}`;
      lines.push(`| ${task} | ${level} | ${f(c)} | ${f(i)} | ${f(s)} | ${bestM.method.toUpperCase()} |`);
    }
  }
  lines.push('', `SGILO has the lowest MSE in ${sgiloWins} of ${cells} settings and beats ILO in ${sgiloVsIlo} of ${cells}.`, '', '![MSE](mse.svg)', '', '![diversity](diversity.png)', '',
    'diversity.png: reference, measurement (5% of pixels), posterior mean, std map, then six SGILO posterior samples.');
  await writeFileBytes(`${out}/report.md`, new TextEncoder().encode(lines.join('\n') + '\n'));
  await writeFileBytes(`${out}/results.json`, new TextEncoder().encode(JSON.stringify({ meta, rows }, null, 1)));
  const series = tasks.flatMap((task, ti) =>
    METHODS.map((m, mi) => ({
      name: `${task} ${m.toUpperCase()}`,
      points: rows.filter((r) => r.task === task && r.method === m).map((r, k) => [ti * 4 + k, r.mse] as [number, number]),
      style: 'both' as const,
      color: mi,
    })),
  );
  const svg = linePlot({ title: 'MSE by task and level (x: task blocks of levels, low to high)', xLabel: 'inpainting | compressed sensing | denoising (levels in order)', yLabel: 'MSE', series, yLog: true });
  await writeFileBytes(`${out}/mse.svg`, new TextEncoder().encode(svg));
  console.log(lines.join('\n'));
}
