// `sgilo tune`: the methods' free values searched on tuning images (shipped test images 0..N-1,
// never the experiment's evaluation images), per operator and level, with the same budget of
// evaluations for every variant (samplers/inverse/tuning.ts). Writes tuned.json (the file
// `reconstruct`, `experiment`, the demo and the page read: models/fashion32/tuned.json), report.md
// and tuning.svg (best mean MSE so far against evaluations). Resumable: each finished evaluation is
// recorded in --work, and a rerun with the same settings reads it back.

import { writeFileBytes } from '../engine/io/files.ts';
import { describeAdapter } from '../engine/device.ts';
import { engine } from '../engine/engine.ts';
import { testImages } from '../samplers/inverse/demo.ts';
import { loadProtocolModels } from '../samplers/inverse/fashion.ts';
import { runVariant } from '../samplers/inverse/protocol.ts';
import { patternSearch, searchSpace, VARIANTS, type Candidate, type TunedFile, type Trial, type Variant } from '../samplers/inverse/tuning.ts';
import { UsageError, type Parsed } from './args.ts';
import type { Output } from './outputs.ts';
import { linePlot } from './svg_plot.ts';
import { WorkCache } from './work_cache.ts';

export function parseVariants(v: string): Variant[] {
  const list = v.split(',').map((s) => s.trim());
  const bad = list.find((s) => !(VARIANTS as readonly string[]).includes(s));
  if (bad !== undefined) throw new UsageError(`unknown variant "${bad}" (variants: ${VARIANTS.join(', ')})`);
  return list as Variant[];
}

/** What is tuned by default: the two scarcest-but-one levels of the claim (the others use the nearest). */
export const TUNE_SETTINGS = ['inpaint-random:0.02', 'cs-gaussian:0.02'];

interface TrialRecord {
  score: number;
  perImage: number[];
  seconds: number;
}

export async function tuneCommand(p: Parsed, output: Output): Promise<number> {
  const specs = (p.values.setting as string[]).length ? (p.values.setting as string[]) : TUNE_SETTINGS;
  const variants = parseVariants(String(p.values.variants));
  const budget = Number(p.values.evaluations);
  const nImages = Number(p.values.images);
  const steps = Number(p.values.steps);
  const seed = Number(p.values.seed);
  const blocks = [1, 2];
  const cache = new WorkCache<TrialRecord>(String(p.values.work), 'trials.jsonl');
  const t0 = performance.now();
  const log = (s: string) => console.log(`[${((performance.now() - t0) / 1000).toFixed(0)} s] ${s}`);
  const models = await loadProtocolModels();
  const images = await testImages(nImages, 0);
  log(`tune on ${describeAdapter(engine().gpu.adapter)}: ${variants.join(', ')} on ${specs.join('; ')}; ${budget} evaluations each, test images 0-${nImages - 1}, ${steps} steps per round; ${cache.size} evaluations already recorded in ${cache.file}`);
  const settings: TunedFile['settings'] = {};
  const searches: { spec: string; variant: Variant; trials: Trial[]; best: Candidate; bestScore: number }[] = [];
  let compute = 0;
  try {
    for (const spec of specs) {
      settings[spec] = {};
      for (const variant of variants) {
        const result = await patternSearch(searchSpace(variant), budget, async (candidate) => {
          const key = { spec, variant, candidate, steps, blocks, images: [0, nImages], seed };
          const { value, cached } = await cache.get(key, async () => {
            try {
              const r = await runVariant(models, variant, spec, candidate, { steps, blocks, images, count: nImages, seed: seed + 1 });
              return { score: r.perImage.reduce((a, b) => a + b, 0) / nImages, perImage: r.perImage, seconds: r.seconds };
            } catch (e) {
              // A diverged candidate is a result of the search (it never wins), not a failure of the command.
              if (!/not finite|divergence/.test((e as Error).message)) throw e;
              return { score: Infinity, perImage: [], seconds: 0 };
            }
          });
          compute += value.seconds;
          // A diverged run's Infinity is recorded as null (JSON has no Infinity).
          const score = typeof value.score === 'number' ? value.score : Infinity;
          log(`${spec} ${variant} ${JSON.stringify(candidate)}: MSE ${Number.isFinite(score) ? score.toFixed(4) : 'diverged'}${cached ? ' (recorded)' : ` (${value.seconds.toFixed(0)} s)`}`);
          return score;
        });
        settings[spec][variant] = result.best;
        searches.push({ spec, variant, ...result });
        log(`${spec} ${variant}: best ${JSON.stringify(result.best)}, MSE ${result.bestScore.toFixed(4)} after ${result.trials.length} evaluations`);
      }
    }
  } finally {
    models.dispose();
  }
  const seconds = (performance.now() - t0) / 1000;
  const file: TunedFile = {
    kind: 'sgilo-tuned',
    steps,
    blocks,
    about: { images: `shipped test images 0-${nImages - 1}`, imageRange: [0, nImages], seed: seed + 1, evaluations: budget, adapter: describeAdapter(engine().gpu.adapter), date: new Date().toISOString().slice(0, 10) },
    settings,
  };
  await writeFileBytes(`${output.path}/tuned.json`, new TextEncoder().encode(JSON.stringify(file, null, 1) + '\n'));
  await writeTuneReport(output.path, searches, { steps, nImages, budget, seconds, compute });
  log(`wrote tuned.json, report.md and tuning.svg to ${output.final}`);
  return 0;
}

const fmt = (c: Candidate) => Object.entries(c).map(([k, v]) => `${k} ${v}`).join(', ');

async function writeTuneReport(out: string, searches: { spec: string; variant: Variant; trials: Trial[]; best: Candidate; bestScore: number }[], meta: { steps: number; nImages: number; budget: number; seconds: number; compute: number }): Promise<void> {
  const lines = [
    '# Tuning on the tuning images',
    '',
    `Shipped test images 0-${meta.nImages - 1} (never evaluation images), ${meta.steps} steps per round, rounds over blocks 1 and 2, one chain, ` +
      `at most ${meta.budget} evaluations per variant and setting (the same budget for every variant; fewer means every point of the variant's ladders was tried). Search: from the start point, always the untried ` +
      'point nearest the best so far on ladders of values (samplers/inverse/tuning.ts). Score: mean MSE of the final iterates (images in [-1, 1]). ' +
      `The evaluations took ${(meta.compute / 60).toFixed(0)} min of compute in all (their own times, over every sitting that ran them); this sitting ${(meta.seconds / 60).toFixed(1)} min.`,
    '',
    '| setting | variant | chosen values | MSE | evaluations |',
    '|---|---|---|---|---|',
    ...searches.map((s) => `| ${s.spec} | ${s.variant} | ${fmt(s.best)} | ${s.bestScore.toFixed(4)} | ${s.trials.length} |`),
    '',
    '![best MSE so far against evaluations](tuning.svg)',
    '',
    '## Every evaluation',
    '',
  ];
  for (const s of searches) {
    lines.push(`### ${s.spec}, ${s.variant}`, '', '| # | values | MSE |', '|---|---|---|');
    s.trials.forEach((t, i) => lines.push(`| ${i + 1} | ${fmt(t.candidate)} | ${Number.isFinite(t.score) ? t.score.toFixed(4) : 'diverged'} |`));
    lines.push('');
  }
  await writeFileBytes(`${out}/report.md`, new TextEncoder().encode(lines.join('\n')));
  const specs = [...new Set(searches.map((s) => s.spec))];
  const series = searches.map((s) => {
    let best = Infinity;
    return {
      name: `${s.spec} ${s.variant}`,
      points: s.trials.map((t, i) => [i + 1, (best = Math.min(best, t.score))] as [number, number]).filter(([, y]) => Number.isFinite(y)),
      style: 'both' as const,
      color: VARIANTS.indexOf(s.variant),
      dashed: specs.indexOf(s.spec) % 2 === 1,
    };
  });
  await writeFileBytes(`${out}/tuning.svg`, new TextEncoder().encode(linePlot({ title: `Tuning: best mean MSE so far (${specs.map((sp, i) => `${sp} ${i % 2 ? 'dashed' : 'solid'}`).join(', ')})`, xLabel: 'evaluations', yLabel: 'mean MSE (tuning images)', series, yLog: true })));
}
