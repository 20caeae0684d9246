// `sgilo experiment`: the paper's Figure 3 protocol on the Fashion-MNIST model. For each setting (an
// operator and level: inpainting and compressed sensing at 1, 2, 5 and 20% by default) every
// variant (CSGM, ILO with balls, SGILO with the learned priors, SGILO with the Gaussian priors,
// SGILO with the score off) reconstructs the evaluation images, one job per image (run alone:
// cli/experiment_jobs.ts says why, and a queue's workers run the same jobs), with the
// values `sgilo tune` chose on separate tuning images (tuned.json; the nearest tuned level of the
// same operator, else the presets). Then a posterior-quality run: SGILO's chains against
// independent ILO runs from different seeds. Writes report.md, results.json, mse.svg and
// diversity.png into --out (the committed report: --out experiments/figure3 --force).
//
// Resumable: each finished job is recorded in --work (a JSON line keyed by the job's content id),
// and a rerun with the same settings reads it back; the scarcest levels run first.
//
// Many machines: `--queue redis://HOST:PORT/NAME` enqueues the jobs instead of running them
// (`sgilo worker` runs them, cli/worker.ts), and `--queue ... --report DIR` merges the results
// there are into the same report (cli/queue.ts).

import { relative } from 'node:path';
import { describeAdapter } from '../engine/device.ts';
import { engine } from '../engine/engine.ts';
import { parseOperatorSpec } from '../samplers/inverse/operators/index.ts';
import { testImages } from '../samplers/inverse/demo.ts';
import { loadProtocolModels, readTunedFile, shippedPriors, TUNED_FILE } from '../samplers/inverse/fashion.ts';
import { combineCalibration, meanSem } from '../samplers/inverse/protocol.ts';
import { lookupTuned, type Variant } from '../samplers/inverse/tuning.ts';
import { UsageError, type Parsed } from './args.ts';
import type { Output } from './outputs.ts';
import { parseVariants } from './tune.ts';
import { WorkCache } from './work_cache.ts';
import { fileRef, jobId, protocolModelFiles, runJobs, type ExperimentJob, type JobResult } from './experiment_jobs.ts';
import { diversityFigure, queueLine, writeReport, type CalibrationCell, type Cell, type QueueSummary } from './experiment_report.ts';

export const EXPERIMENT_SETTINGS = ['inpaint-random', 'cs-gaussian'].flatMap((f) => [0.01, 0.02, 0.05, 0.2].map((l) => `${f}:${l}`));

/** The experiment's jobs, grouped by cell (setting and variant; calibration runs after the cells). */
interface Plan {
  settings: string[];
  variants: Variant[];
  nEval: number;
  first: number;
  steps: number;
  chains: number;
  seed: number;
  calibrationSpecs: string[];
  tunedPath: string;
  tuned: Awaited<ReturnType<typeof readTunedFile>>;
  groups: { kind: 'cell' | 'calibration'; spec: string; variant: Variant; source: string; jobs: ExperimentJob[] }[];
  /** What a queue's jobs must share (a queue holds one experiment): settings, images and variants may grow. */
  descriptor: Record<string, unknown>;
}

async function planExperiment(p: Parsed): Promise<Plan> {
  const settings = (p.values.setting as string[]).length ? (p.values.setting as string[]) : EXPERIMENT_SETTINGS;
  const variants = parseVariants(String(p.values.variants));
  const nEval = Number(p.values.images);
  const first = Number(p.values['first-image']);
  const steps = Number(p.values.steps);
  const chains = Number(p.values.chains);
  const seed = Number(p.values.seed);
  const calibrationSpecs = (p.values.calibration as string[]).length ? (p.values.calibration as string[]) : ['inpaint-random:0.02'];
  const blocks = [1, 2];
  const tunedPath = p.given.has('tuned') ? String(p.values.tuned) : TUNED_FILE;
  const tuned = await readTunedFile(tunedPath, p.given.has('tuned'));
  const tunedImages = (tuned?.about.imageRange as number[] | undefined) ?? [0, 0];
  if (first < tunedImages[1] && first + nEval > tunedImages[0]) throw new UsageError(`--first-image ${first}: evaluation images ${first}-${first + nEval - 1} overlap the tuning images ${tunedImages[0]}-${tunedImages[1] - 1} of ${tunedPath}`);
  await testImages(nEval, first).catch((e) => {
    throw new UsageError(`--images ${nEval} --first-image ${first}: ${(e as Error).message}`);
  });
  const models = await protocolModelFiles();
  const tunedRef = tuned ? fileRef(tunedPath) : null;
  const groups: Plan['groups'] = [];
  const add = (kind: 'cell' | 'calibration', spec: string, variant: Variant) => {
    const { values, source } = lookupTuned(tuned, variant, spec);
    const jobs = Array.from({ length: nEval }, (_, i): ExperimentJob => ({ kind, spec, variant, values, source, image: first + i, steps, blocks, seed, chains: kind === 'cell' ? 1 : chains, keepSamples: kind === 'calibration' && i === 0, models, tuned: tunedRef }));
    groups.push({ kind, spec, variant, source, jobs });
  };
  const scarcestFirst = [...settings].sort((a, b) => (parseOperatorSpec(a).level ?? 0) - (parseOperatorSpec(b).level ?? 0));
  for (const spec of scarcestFirst) for (const variant of variants) add('cell', spec, variant);
  for (const spec of calibrationSpecs) for (const variant of variants.filter((v) => v === 'ilo' || v === 'sgilo')) add('calibration', spec, variant);
  const descriptor = { protocol: 'figure3', steps, blocks, seed, chains, models, tuned: tunedRef };
  return { settings, variants, nEval, first, steps, chains, seed, calibrationSpecs, tunedPath, tuned, groups, descriptor };
}

/** A group's cell from its jobs' results, or null while any job has none. */
function assemble(g: Plan['groups'][number], results: Map<string, JobResult>): Cell | CalibrationCell | null {
  const rs = g.jobs.map((j) => results.get(jobId(j)));
  if (rs.some((r) => !r)) return null;
  const done = rs as JobResult[];
  const seconds = done.reduce((a, r) => a + r.seconds, 0);
  if (g.kind === 'cell') return { spec: g.spec, variant: g.variant, values: g.jobs[0].values, source: g.source, perImage: done.map((r) => r.mse), seconds };
  const first = done[0].samples!;
  return { variant: g.variant, calibration: combineCalibration(done.map((r) => r.calibration!)), seconds, first };
}

export async function experimentCommand(p: Parsed, output: Output | undefined): Promise<number> {
  const plan = await planExperiment(p);
  if (p.given.has('queue')) return queuedExperiment(p, plan, output);
  const cache = new WorkCache<JobResult>(String(p.values.work), 'jobs.jsonl');
  const t0 = performance.now();
  const log = (s: string) => console.log(`[${((performance.now() - t0) / 1000).toFixed(0)} s] ${s}`);
  const models = await loadProtocolModels();
  const adapter = describeAdapter(engine().gpu.adapter);
  const { first, nEval } = plan;
  log(`figure-3 protocol on ${adapter}: ${plan.variants.join(', ')}; ${plan.settings.length} settings; test images ${first}-${first + nEval - 1}; ${plan.steps} steps per round; tuned values: ${plan.tuned ? plan.tunedPath : 'none (presets)'}; ${cache.size} jobs already recorded in ${cache.file}`);
  const results = new Map<string, JobResult>();
  try {
    for (const g of plan.groups) {
      // A cell's images not yet recorded run as one batch (each image's numbers are its own).
      const missing = g.jobs.filter((job) => cache.lookup(jobId(job)) === undefined);
      const fresh = await runJobs(models, missing);
      missing.forEach((job, i) => cache.record(jobId(job), fresh[i]));
      for (const job of g.jobs) results.set(jobId(job), cache.lookup(jobId(job))!);
      logGroup(log, g, assemble(g, results)!, missing.length === 0);
    }
  } finally {
    models.dispose();
  }
  return finish(plan, results, output!, adapter, t0);
}

function logGroup(log: (s: string) => void, g: Plan['groups'][number], c: Cell | CalibrationCell, recorded: boolean): void {
  const how = `${recorded ? 'recorded' : `${c.seconds.toFixed(0)} s`}; ${g.source}`;
  if (g.kind === 'cell') {
    const s = meanSem((c as Cell).perImage);
    log(`${g.spec} ${g.variant}: MSE ${s.mean.toFixed(4)} +- ${s.sem.toFixed(4)} (${how})`);
  } else {
    const k = (c as CalibrationCell).calibration;
    log(`calibration ${g.spec} ${g.variant} (${g.jobs[0].chains} chains): std-error correlation ${k.stdErrorCorrelation.toFixed(3)}, 2-sigma coverage ${k.coverage2sigma.toFixed(3)}, pairwise RMS ${k.pairwiseRms.toFixed(4)} (${how})`);
  }
}

/** --queue: enqueue the jobs (missing or failed ones), or with --report merge the results there are. */
async function queuedExperiment(p: Parsed, plan: Plan, output: Output | undefined): Promise<number> {
  const { openQueue, parseQueueUrl, claimExperiment, enqueue, jobStates } = await import('./queue.ts');
  const q = parseQueueUrl(String(p.values.queue));
  const t0 = performance.now();
  const jobs = plan.groups.flatMap((g) => g.jobs);
  const open = await openQueue(q);
  try {
    if (!output) {
      await claimExperiment(open, plan.descriptor, true);
      const c = await enqueue(open, jobs);
      const there = Object.entries(c).filter(([k]) => k !== 'added' && k !== 'requeued');
      console.log(`${q.shown}: ${jobs.length} jobs in this experiment; ${c.added} added, ${c.requeued} failed ones re-queued${there.length ? `; already there: ${there.map(([k, v]) => `${v} ${k}`).join(', ')}` : ''}. Run \`sgilo worker --queue ${q.shown}\` on each machine; \`sgilo experiment ... --queue ${q.shown} --report DIR\` merges the results.`);
      return 0;
    }
    await claimExperiment(open, plan.descriptor, false);
    const states = await jobStates(open, jobs);
    const results = new Map<string, JobResult>();
    for (const [id, s] of states) if (s.result) results.set(id, s.result);
    const count = (...which: string[]) => [...states.values()].filter((s) => which.includes(s.state)).length;
    const summary: QueueSummary = { url: q.shown, jobs: jobs.length, done: results.size, running: count('active'), waiting: count('waiting', 'delayed', 'prioritized', 'waiting-children'), failed: count('failed'), missing: count('missing') };
    console.log(`${q.shown}: ${queueLine(summary)}`);
    for (const s of [...states.values()].filter((s) => s.state === 'failed').slice(0, 5)) console.log(`  failed ${s.id}: ${s.failedReason}`);
    const adapters = [...new Set([...results.values()].map((r) => r.adapter))];
    return finish(plan, results, output, adapters.join('; ') || 'none yet', t0, summary);
  } finally {
    await open.close();
  }
}

/** The cells whose jobs are all done, the diversity figure and the report. */
async function finish(plan: Plan, results: Map<string, JobResult>, output: Output, adapter: string, t0: number, queue?: QueueSummary): Promise<number> {
  const rows: Cell[] = [];
  const cal: CalibrationCell[] = [];
  for (const g of plan.groups) {
    const c = assemble(g, results);
    if (c) (g.kind === 'cell' ? rows : cal).push(c as never);
  }
  if (cal.length) {
    const images = await testImages(1, plan.first);
    const size = Math.round(Math.sqrt(images.length / 3));
    await diversityFigure(output.path, size, images, plan.calibrationSpecs[0], plan.seed, cal);
  }
  const meta = {
    adapter,
    settings: plan.settings,
    variants: plan.variants,
    images: [plan.first, plan.first + plan.nEval - 1],
    steps: plan.steps,
    chains: plan.chains,
    seed: plan.seed,
    calibration: plan.calibrationSpecs,
    // Relative to the working directory, so a committed report names no machine's folders.
    tuned: plan.tuned ? { path: relative('.', plan.tunedPath), about: plan.tuned.about, steps: plan.tuned.steps } : null,
    priors: { learned: (await shippedPriors('mixture')).map(shortPath), gaussian: (await shippedPriors('gaussian')).map(shortPath) },
    compute_seconds: rows.reduce((a, r) => a + r.seconds, 0) + cal.reduce((a, c) => a + c.seconds, 0),
    wall_seconds: (performance.now() - t0) / 1000,
    ...(queue ? { queue } : {}),
  };
  await writeReport(output.path, plan.settings, plan.variants, rows, cal, meta);
  console.log(`[${((performance.now() - t0) / 1000).toFixed(0)} s] wrote report.md, results.json, mse.svg${cal.length ? ' and diversity.png' : ''} to ${output.final}`);
  return 0;
}

const shortPath = (p: string) => p.slice(p.indexOf('models/'));
