// `npm run demo`: the main job on the shipped models (samplers/inverse/demo.ts); prints the MSE table.

import { DEMO_METHODS, runDemo } from '../samplers/inverse/demo.ts';
import { parseArgs, progressPrinter } from './reconstruct.ts';

export async function demoCommand(argv: string[]): Promise<number> {
  const a = parseArgs(argv, ['steps', 'images', 'out', 'seed']);
  const out = a.out?.[0] ?? 'out/demo';
  const { rows, seconds } = await runDemo({
    steps: Number(a.steps?.[0] ?? 40),
    images: Number(a.images?.[0] ?? 4),
    seed: Number(a.seed?.[0] ?? 0),
    out,
    log: console.log,
    progress: progressPrinter,
  });
  console.log('\ntask                 | method | MSE (final iterate) | PSNR dB | seconds');
  console.log('---------------------|--------|---------------------|---------|--------');
  for (const r of rows) {
    console.log(`${r.task.padEnd(20)} | ${r.method.padEnd(6)} | ${r.mse.toFixed(4).padStart(19)} | ${r.psnr.toFixed(2).padStart(7)} | ${r.seconds.toFixed(1).padStart(6)}`);
  }
  console.log(`\nwrote ${out}/grid.png (rows: task x image; columns: reference, measurement, ${DEMO_METHODS.join(', ')}) and ${out}/report.json in ${seconds.toFixed(0)} s`);
  return 0;
}
