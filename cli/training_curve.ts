// `sgilo training-curve <log-or-csv>... --out curve.svg [--title t]`: the DSM loss of score-model
// training against the step, from the progress lines `train-score` prints ("step N/M loss x (avg y)
// ...", the window average y is plotted at step N) or from CSV files with a `step,loss` header.
// Several files concatenate (resumed runs); `--series name=file1+file2` plots one series per
// model. The predict-zero baseline (loss 1.0: eps-prediction of a unit-variance target) is drawn.

import { readFileSync, writeFileSync, mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import { linePlot, type Series } from './svg_plot.ts';

/** (step, loss) points of one training log or CSV file. */
export function parseTrainingLog(text: string): [number, number][] {
  const points: [number, number][] = [];
  const lines = text.split('\n');
  if (/^step,loss/.test(lines[0] ?? '')) {
    for (const line of lines.slice(1)) {
      const [s, l] = line.split(',').map(Number);
      if (Number.isFinite(s) && Number.isFinite(l)) points.push([s, l]);
    }
    return points;
  }
  for (const line of lines) {
    const m = /^step (\d+)\/\d+ loss [-\d.e+]+ \(avg ([-\d.e+]+)\)/.exec(line);
    if (m) points.push([Number(m[1]), Number(m[2])]);
  }
  return points;
}

export function trainingCurveCommand(argv: string[]): number {
  let out = 'out/training-curve.svg';
  let title = 'Score-model training: denoising score-matching loss';
  const series: Series[] = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--out') out = argv[++i];
    else if (a === '--title') title = argv[++i];
    else if (a === '--series') {
      const [name, files] = (argv[++i] ?? '').split('=');
      if (!name || !files) throw new Error(`--series needs name=file[+file...], got "${argv[i]}"`);
      series.push({ name, points: files.split('+').flatMap((f) => parseTrainingLog(readFileSync(f, 'utf8'))) });
    } else series.push({ name: a, points: parseTrainingLog(readFileSync(a, 'utf8')) });
  }
  if (!series.length) throw new Error('usage: sgilo training-curve <log>... | --series name=log1+log2 ... [--out curve.svg] [--title t]');
  for (const s of series) if (!s.points.length) throw new Error(`series "${s.name}": no "step N/M loss x (avg y)" lines or step,loss rows found`);
  mkdirSync(dirname(out), { recursive: true });
  writeFileSync(out, linePlot({ title, xLabel: 'training step', yLabel: 'DSM loss (window average)', yLog: true, series, hlines: [{ y: 1, label: 'predict-zero baseline 1.0' }] }));
  for (const s of series) console.log(`${s.name}: ${s.points.length} points, steps ${s.points[0][0]}-${s.points[s.points.length - 1][0]}, last loss ${s.points[s.points.length - 1][1]}`);
  console.log(`wrote ${out}`);
  return 0;
}
