// The Figure-3 experiment's outputs (`sgilo experiment`, in-process or merged from the queue):
// report.md (the table, the paired comparisons, the claim's verdict, the controls, the posterior
// quality), results.json, mse.svg and diversity.png.

import { writeFileBytes } from '../engine/io/files.ts';
import { writeFigure } from '../engine/io/png.ts';
import type { Panel } from '../engine/io/figure.ts';
import { makeOperator, parseOperatorSpec } from '../samplers/inverse/operators/index.ts';
import { takeMeasurements } from '../samplers/inverse/reconstruct.ts';
import { meanSem, pairedDifference, type Calibration } from '../samplers/inverse/protocol.ts';
import type { Candidate, Variant } from '../samplers/inverse/tuning.ts';
import { measurementPicture } from '../samplers/inverse/setup.ts';
import { linePlot } from './svg_plot.ts';

export const LABEL: Record<Variant, string> = { csgm: 'CSGM', ilo: 'ILO', sgilo: 'SGILO', 'sgilo-gaussian': 'SGILO (Gaussian prior)', 'sgilo-off': 'SGILO (score off)' };

export interface Cell {
  spec: string;
  variant: Variant;
  values: Candidate;
  source: string;
  perImage: number[];
  seconds: number;
}

export interface CalibrationCell {
  variant: Variant;
  calibration: Calibration;
  seconds: number;
  /** The first image's chains, mean and std map (the diversity figure). */
  first: { samples: number[][]; mean: number[]; std: number[] };
}

/** Reference, measurement, then for SGILO and ILO: posterior mean, std map and four chains. */
export async function diversityFigure(out: string, size: number, images: Float32Array, spec: string, seed: number, cal: CalibrationCell[]): Promise<void> {
  const per = 3 * size * size;
  const ref = images.slice(0, per);
  const { operator, noiseStd } = makeOperator(spec, [3, size, size], { seed });
  const y = takeMeasurements(operator, ref, 1, noiseStd, seed);
  const yHost = await y.readF32();
  y.dispose();
  operator.dispose?.();
  const measured = parseOperatorSpec(spec).family.startsWith('inpaint') ? measurementPicture(operator, yHost, size) : null;
  const rows = cal.map((c) => {
    const f = c.first;
    const chainsShown = f.samples.slice(0, 4);
    const panels: Panel[] = [{ image: ref }, measured ? { image: measured } : { image: new Float32Array(per).fill(-1) }, { image: Float32Array.from(f.mean) }, { std: Float32Array.from(f.std) }, ...chainsShown.map((s) => ({ image: Float32Array.from(s) }))];
    return { label: LABEL[c.variant], panels };
  });
  const n = Math.max(...rows.map((r) => r.panels.length)) - 4;
  await writeFigure(`${out}/diversity.png`, { size, gray: true, rows, columns: ['reference', spec, 'mean', 'std', ...Array.from({ length: n }, (_, k) => `chain ${k}`)] });
}

const f4 = (x: number) => x.toFixed(4);

/** What a queued run's jobs are doing when the report is merged. */
export interface QueueSummary {
  url: string;
  jobs: number;
  done: number;
  running: number;
  waiting: number;
  failed: number;
  missing: number;
}

export const queueLine = (q: QueueSummary) => `${q.done} of ${q.jobs} jobs done, ${q.running} running, ${q.waiting} waiting, ${q.failed} failed, ${q.missing} not enqueued`;

export async function writeReport(out: string, settings: string[], variants: Variant[], rows: Cell[], cal: CalibrationCell[], meta: Record<string, unknown> & { compute_seconds: number; wall_seconds: number; images: number[]; steps: number; chains: number }): Promise<void> {
  const cell = (spec: string, v: Variant) => rows.find((r) => r.spec === spec && r.variant === v);
  const has = (v: Variant) => variants.includes(v);
  const lines = [
    '# Figure 3 protocol on the Fashion-MNIST StyleGAN2',
    '',
    `Adapter: ${meta.adapter}. Evaluation images: shipped test images ${meta.images[0]}-${meta.images[1]} (${meta.images[1] - meta.images[0] + 1}), each run alone (one job per setting, variant and image; the same numbers in-process and from the queue); ` +
      `${meta.steps} steps per round, rounds over blocks 1 and 2, one chain, seed ${meta.seed}. ` +
      `Compute ${(meta.compute_seconds / 60).toFixed(0)} min (the cells' own times, summed over the sittings that ran them); this sitting ${(meta.wall_seconds / 60).toFixed(0)} min.`,
    `Values: ${meta.tuned ? `tuned by \`sgilo tune\` (${JSON.stringify((meta.tuned as { about: unknown }).about)})` : 'presets'}; each cell's source is listed below.`,
    `Priors: learned = ${(meta.priors as { learned: string[] }).learned.join(', ')}; Gaussian control = ${(meta.priors as { gaussian: string[] }).gaussian.join(', ')}.`,
    'MSE of the final iterate against the reference (images in [-1, 1]), mean +- standard error over images. Paired: the per-image difference, mean +- its standard error.',
    ...(meta.queue ? ['', `Merged from the queue ${(meta.queue as QueueSummary).url}: ${queueLine(meta.queue as QueueSummary)}. Only settings whose every cell is done are in the tables.`] : []),
    '',
    `| setting | ${variants.map((v) => LABEL[v]).join(' | ')} | SGILO - ILO (paired) | best |`,
    `|---|${variants.map(() => '---|').join('')}---|---|`,
  ];
  const claim: string[] = [];
  for (const spec of settings) {
    const cs = variants.map((v) => cell(spec, v));
    if (cs.some((c) => !c)) continue;
    const stats = cs.map((c) => meanSem(c!.perImage));
    const best = variants[stats.reduce((bi, s, i) => (s.mean < stats[bi].mean ? i : bi), 0)];
    let paired = '-';
    if (has('sgilo') && has('ilo')) {
      const d = pairedDifference(cell(spec, 'sgilo')!.perImage, cell(spec, 'ilo')!.perImage);
      paired = `${d.mean >= 0 ? '+' : ''}${f4(d.mean)} +- ${f4(d.sem)}${d.mean < -2 * d.sem ? ' (SGILO better, > 2 SE)' : d.mean > 2 * d.sem ? ' (ILO better, > 2 SE)' : ''}`;
    }
    lines.push(`| ${spec} | ${stats.map((s) => `${f4(s.mean)} +- ${f4(s.sem)}`).join(' | ')} | ${paired} | ${LABEL[best]} |`);
  }
  // The paper's claim: SGILO ahead of ILO where measurements are scarcest (the two lowest levels of each operator).
  if (has('sgilo') && has('ilo')) {
    const families = [...new Set(settings.map((s) => parseOperatorSpec(s).family))];
    let held = 0;
    let tested = 0;
    for (const fam of families) {
      const scarce = settings.filter((s) => parseOperatorSpec(s).family === fam && cell(s, 'sgilo') && cell(s, 'ilo')).sort((a, b) => (parseOperatorSpec(a).level ?? 0) - (parseOperatorSpec(b).level ?? 0)).slice(0, 2);
      for (const s of scarce) {
        const d = pairedDifference(cell(s, 'sgilo')!.perImage, cell(s, 'ilo')!.perImage);
        const ok = d.mean < -2 * d.sem;
        held += ok ? 1 : 0;
        tested++;
        claim.push(`- ${s}: SGILO - ILO = ${f4(d.mean)} +- ${f4(d.sem)} (${(d.mean / d.sem).toFixed(1)} SE): ${ok ? 'holds' : 'does not hold'}`);
      }
    }
    lines.push('', `## The claim: SGILO below ILO by more than two paired standard errors at the two scarcest levels of each operator`, '', ...claim, '', `It holds in ${held} of ${tested} settings${held === tested ? ': the claim holds on this model.' : ': the claim does not hold in every setting on this model.'}`);
  }
  const controls: string[] = [];
  for (const [other, what] of [['sgilo-gaussian', 'what the learned prior adds over a Gaussian'], ['sgilo-off', 'what the prior adds at all'], ['csgm', 'against CSGM']] as [Variant, string][]) {
    if (!has('sgilo') || !has(other)) continue;
    controls.push(`| SGILO - ${LABEL[other]} (${what}) | ${settings.map((s) => (cell(s, 'sgilo') && cell(s, other) ? ((d) => `${f4(d.mean)} +- ${f4(d.sem)}`)(pairedDifference(cell(s, 'sgilo')!.perImage, cell(s, other)!.perImage)) : '-')).join(' | ')} |`);
  }
  if (controls.length) lines.push('', '## Controls (paired differences, negative: SGILO better)', '', `| difference | ${settings.join(' | ')} |`, `|---|${settings.map(() => '---|').join('')}`, ...controls);
  if (cal.length) {
    lines.push(
      '',
      `## Posterior quality (${(meta.calibration as string[]).join(', ')}; ${meta.chains} chains per image)`,
      '',
      "SGILO's chains against independent ILO runs from different seeds (the same images and measurement). Std-error correlation: per image, the Pearson correlation over pixels " +
        "of the chains' std map with the absolute error of their mean, averaged over images (+- standard error); coverage: the fraction of pixel values whose reference lies within mean +- 2 std; " +
        'spread: the RMS distance between two chains, averaged over pairs.',
      '',
      '| method | std-error correlation | 2-sigma coverage | spread (RMS between chains) | MSE of the mean |',
      '|---|---|---|---|---|',
      ...cal.map((c) => `| ${LABEL[c.variant]} | ${c.calibration.stdErrorCorrelation.toFixed(3)} +- ${c.calibration.stdErrorCorrelationSem.toFixed(3)} | ${c.calibration.coverage2sigma.toFixed(3)} | ${f4(c.calibration.pairwiseRms)} | ${f4(c.calibration.meanMse)} |`),
      '',
      '![diversity](diversity.png)',
      '',
      `diversity.png: the first evaluation image; reference, measurement, then per method the mean of its ${meta.chains} chains, the std map and the chains.`,
    );
  }
  lines.push('', '![MSE](mse.svg)', '', '## Where each cell\'s values came from', '', '| setting | variant | values | source |', '|---|---|---|---|');
  for (const r of rows) lines.push(`| ${r.spec} | ${r.variant} | ${Object.entries(r.values).map(([k, v]) => `${k} ${v}`).join(', ') || 'presets'} | ${r.source} |`);
  await writeFileBytes(`${out}/report.md`, new TextEncoder().encode(lines.join('\n') + '\n'));
  await writeFileBytes(`${out}/results.json`, new TextEncoder().encode(JSON.stringify({ meta, rows, calibration: cal.map(({ first: _, ...c }) => c) }, null, 1)));
  const families = [...new Set(settings.map((s) => parseOperatorSpec(s).family))];
  const series = families.flatMap((fam, fi) =>
    variants.map((v, vi) => ({
      name: `${fam} ${LABEL[v]}`,
      points: rows.filter((r) => r.variant === v && parseOperatorSpec(r.spec).family === fam).map((r) => [parseOperatorSpec(r.spec).level ?? 0, meanSem(r.perImage).mean] as [number, number]).sort((a, b) => a[0] - b[0]),
      style: 'both' as const,
      color: vi,
      dashed: fi > 0,
    })),
  );
  const svg = linePlot({ title: 'Mean MSE against the measured fraction (solid: inpainting, dashed: compressed sensing)', xLabel: 'kept fraction of pixels / measurements per dimension', yLabel: 'mean MSE', series, xLog: true, yLog: true });
  await writeFileBytes(`${out}/mse.svg`, new TextEncoder().encode(svg));
  console.log(lines.join('\n'));
}
