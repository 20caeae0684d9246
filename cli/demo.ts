// `npm run demo`: the main job on the shipped models (samplers/inverse/demo.ts); prints the MSE table.

import { DEMO_METHODS, runDemo } from '../samplers/inverse/demo.ts';
import { progressPrinter } from './reconstruct.ts';
import type { Parsed } from './args.ts';
import type { Output } from './outputs.ts';
import { assertFinite } from './checks.ts';

export async function demoCommand(p: Parsed, out: Output): Promise<number> {
  const { rows, seconds } = await runDemo({
    steps: Number(p.values.steps),
    images: Number(p.values.images),
    seed: Number(p.values.seed),
    out: out.path,
    log: console.log,
    progress: (total, label) => {
      const bar = progressPrinter(total, label);
      return (s) => {
        assertFinite(s.loss, 'the loss', `${label} round ${s.round} step ${s.step}`);
        bar(s);
      };
    },
  });
  for (const r of rows) assertFinite(r.mse, 'the MSE', `${r.task} ${r.method} (after ${r.steps_per_round} steps per round)`);
  console.log('\ntask                 | method | MSE (final iterate) | PSNR dB | seconds');
  console.log('---------------------|--------|---------------------|---------|--------');
  for (const r of rows) {
    console.log(`${r.task.padEnd(20)} | ${r.method.padEnd(6)} | ${r.mse.toFixed(4).padStart(19)} | ${r.psnr.toFixed(2).padStart(7)} | ${r.seconds.toFixed(1).padStart(6)}`);
  }
  console.log(`\nwrote ${out.final}/grid.png (rows: task x image; columns: reference, measurement, ${DEMO_METHODS.join(', ')}) and ${out.final}/report.json in ${seconds.toFixed(0)} s`);
  return 0;
}
