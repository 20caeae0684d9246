// `sgilo training-curve <log-or-csv>... [--out curve.svg] [--title t]`: the DSM loss of score-model
// training against the step, from the progress lines `train-score` prints ("step N/M loss x (avg y)
// ...", the window average y is plotted at step N) or from CSV files with a `step,loss` header.
// Several files concatenate (resumed runs); `--series name=file1+file2` plots one series per
// model. The predict-zero baseline (loss 1.0: eps-prediction of a unit-variance target) is drawn.

import { readFileSync } from 'node:fs';
import type { Parsed } from './args.ts';
import { writeAtomic, type Output } from './outputs.ts';
import { assertFinite } from './checks.ts';
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

export function trainingCurveCommand(p: Parsed, out: Output): number {
  const read = (f: string) => {
    try {
      return readFileSync(f, 'utf8');
    } catch (e) {
      throw new Error(`${f}: cannot read the training log (${(e as { code?: string }).code ?? (e as Error).message})`);
    }
  };
  const series: Series[] = p.positionals.map((f) => ({ name: f, points: parseTrainingLog(read(f)) }));
  for (const spec of p.values.series as string[]) {
    const [name, files] = [spec.slice(0, spec.indexOf('=')), spec.slice(spec.indexOf('=') + 1)];
    series.push({ name, points: files.split('+').flatMap((f) => parseTrainingLog(read(f))) });
  }
  for (const s of series) if (!s.points.length) throw new Error(`series "${s.name}": no "step N/M loss x (avg y)" lines or step,loss rows found`);
  for (const s of series) s.points.forEach(([step, loss]) => assertFinite(loss, 'the loss', `${s.name} step ${step}`));
  writeAtomic(out.path, linePlot({ title: String(p.values.title), xLabel: 'training step', yLabel: 'DSM loss (window average)', yLog: true, series, hlines: [{ y: 1, label: 'predict-zero baseline 1.0' }] }));
  for (const s of series) console.log(`${s.name}: ${s.points.length} points, steps ${s.points[0][0]}-${s.points[s.points.length - 1][0]}, last loss ${s.points[s.points.length - 1][1]}`);
  console.log(`wrote ${out.final}`);
  return 0;
}
