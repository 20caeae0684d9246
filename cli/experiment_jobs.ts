// The Figure-3 experiment as a list of jobs, one per (setting, variant, image, seed): what the
// in-process run (`sgilo experiment`) and the queue's workers (`sgilo worker`) both execute, through
// the one function runJobs, so the two give the same numbers for the same seeds.
//
// Jobs that differ only in their image share a batch (batchKey): the in-process run gives each
// cell's images to one batch, a worker batches whatever jobs of one setting it holds at once. An
// image's result does not depend on its batch: the methods draw each image's random numbers from
// its own stream, keyed by the image's id (its index in the shipped test images), and take each
// image's gradient from its own loss (samplers/inverse/intermediate_layer.ts says how;
// test/batch_invariance.test.ts checks it bit for bit). The operator is drawn from the
// experiment's seed, one per setting, shared by every image of it.
//
// A job carries everything a worker needs: the setting, variant and its values (looked up in the
// tuned file at enqueue time, so the worker needs no tuned file), the image index into the shipped
// test images, steps, blocks, seed, chains, and the content hashes of every model file it is run
// with; a worker refuses a job whose hashes differ from its own files. Its id is a hash of that
// content, so re-enqueueing the same experiment finds the jobs already there. Inversions for
// score-model training data (`reconstruct --queue --save-features`) are jobs of the same form
// that also return their features (cli/inversions.ts merges them); they use image id 0, as
// `reconstruct --image-index I` does for its one image.

import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { relative } from 'node:path';
import { describeAdapter } from '../engine/device.ts';
import { engine } from '../engine/engine.ts';
import { testImages } from '../samplers/inverse/demo.ts';
import { DEFAULT_GENERATOR, modelPath, shippedPriors } from '../samplers/inverse/fashion.ts';
import { imageCalibration, runVariant, type ImageCalibration, type ProtocolModels } from '../samplers/inverse/protocol.ts';
import type { Candidate, Variant } from '../samplers/inverse/tuning.ts';

/** A file a job is run with: its path relative to the repository root and its SHA-256. */
export interface FileRef {
  path: string;
  sha256: string;
}

export interface ExperimentJob {
  /**
   * A Figure-3 cell's image (one chain), a calibration run's image (`chains` chains), or an
   * inversion whose features are kept (`reconstruct --queue --save-features`).
   */
  kind: 'cell' | 'calibration' | 'features';
  spec: string;
  variant: Variant;
  values: Candidate;
  /** Where the values came from (tuned file and level, or the presets), for the report. */
  source: string;
  /** Index into the shipped test images. */
  image: number;
  steps: number;
  blocks: number[];
  seed: number;
  chains: number;
  /** Keep the chains, mean and std map in the result (the diversity figure's image). */
  keepSamples: boolean;
  /** Every model file the run loads (generator, proxy statistics, priors, test images). */
  models: FileRef[];
  /** The tuned file the values were read from (provenance; the values travel in the job). */
  tuned: FileRef | null;
}

export interface JobResult {
  image: number;
  /** Mean over chains of the final iterates' MSE against the reference (images in [-1, 1]). */
  mse: number;
  psnr: number;
  /** The job's share of its batch's compute time. */
  seconds: number;
  /** How many jobs shared its batch. */
  batch: number;
  adapter: string;
  host: string;
  calibration?: ImageCalibration;
  samples?: { samples: number[][]; mean: number[]; std: number[] };
  /** The first chain's final image as a PNG, base64 (worker --pngs). */
  png?: string;
  /** Features jobs: the optimized features entering `block`, every chain, float32 little-endian in base64. */
  features?: { data: string; shape: number[]; block: number };
}

const ROOT = new URL('..', import.meta.url).pathname;
export const repoPath = (abs: string) => relative(ROOT, abs);

const hashes = new Map<string, string>();
/** SHA-256 of a file (hex), computed once per process and path. */
export function fileSha256(abs: string): string {
  let h = hashes.get(abs);
  if (!h) {
    h = createHash('sha256').update(readFileSync(abs)).digest('hex');
    hashes.set(abs, h);
  }
  return h;
}

export const fileRef = (abs: string): FileRef => ({ path: repoPath(abs), sha256: fileSha256(abs) });

/** The files loadProtocolModels and testImages read, as references with hashes. */
export async function protocolModelFiles(): Promise<FileRef[]> {
  const files = [DEFAULT_GENERATOR, modelPath('mapping-proxy.safetensors'), ...(await shippedPriors('mixture')), ...(await shippedPriors('gaussian')), modelPath('test-images.safetensors')];
  return files.map(fileRef);
}

/** A stable hash of a JSON value (object keys sorted), hex. */
export function contentHash(value: unknown): string {
  const canon = (v: unknown): unknown => (Array.isArray(v) ? v.map(canon) : v && typeof v === 'object' ? Object.fromEntries(Object.keys(v).sort().map((k) => [k, canon((v as Record<string, unknown>)[k])])) : v);
  return createHash('sha256').update(JSON.stringify(canon(value))).digest('hex');
}

/** The job's id: a hash of everything that determines its result (the values' source excluded: it is a label). */
export function jobId(job: ExperimentJob): string {
  const { source: _, ...content } = job;
  return `${job.kind === 'features' ? 'inv' : 'fig3'}-${contentHash(content).slice(0, 32)}`;
}

/** Throws, naming the file and both hashes, when a job's files differ from this machine's. */
export function checkModelFiles(job: ExperimentJob, local: FileRef[]): void {
  for (const ref of job.models) {
    const mine = local.find((f) => f.path === ref.path);
    if (!mine) throw new Error(`the job needs ${ref.path} (sha256 ${ref.sha256.slice(0, 12)}), which this worker does not have`);
    if (mine.sha256 !== ref.sha256) throw new Error(`${ref.path} differs: this worker's has sha256 ${mine.sha256.slice(0, 12)}, the job was made with ${ref.sha256.slice(0, 12)}; run the worker from a checkout with the same models`);
  }
}

/** What a batch shares: everything in a job but its image and what only shapes its record (the values' label, keepSamples). */
export function batchKey(job: ExperimentJob): string {
  const { image: _, source: __, keepSamples: ___, ...shared } = job;
  return contentHash(shared);
}

/**
 * Runs jobs that share a batchKey as one batch on this process's engine; each result is bit for
 * bit what the job gives alone. `seconds` is the batch's time shared out evenly; `png` encodes
 * each job's first chain.
 */
export async function runJobs(models: ProtocolModels, jobs: readonly ExperimentJob[], png?: (image: Float32Array) => Promise<string>): Promise<JobResult[]> {
  if (!jobs.length) return [];
  const job = jobs[0];
  const key = batchKey(job);
  for (const j of jobs) if (batchKey(j) !== key) throw new Error(`runJobs: ${j.spec} ${j.variant} and ${job.spec} ${job.variant} differ in more than the image and cannot share a batch`);
  const refs = await Promise.all(jobs.map((j) => testImages(1, j.image)));
  const per = refs[0].length;
  const images = new Float32Array(per * jobs.length);
  refs.forEach((r, b) => images.set(r, b * per));
  const imageIds = jobs.map((j) => (j.kind === 'features' ? 0 : j.image));
  const r = await runVariant(models, job.variant, job.spec, job.values, { steps: job.steps, blocks: job.blocks, images, count: jobs.length, seed: job.seed, chains: job.chains, imageIds });
  const adapter = describeAdapter(engine().gpu.adapter);
  const results: JobResult[] = [];
  for (const [b, j] of jobs.entries()) {
    const im = r.run.images[b];
    const result: JobResult = { image: j.image, mse: im.mse!, psnr: im.psnr!, seconds: r.seconds / jobs.length, batch: jobs.length, adapter, host: hostname() };
    if (j.kind === 'calibration') result.calibration = imageCalibration(im, refs[b]);
    if (j.keepSamples) result.samples = { samples: im.samples.map((x) => Array.from(x)), mean: Array.from(im.mean), std: Array.from(im.std) };
    if (png) result.png = await png(im.samples[0]);
    if (j.kind === 'features') {
      const f = r.run.features;
      if (!f) throw new Error(`${j.variant} optimized no intermediate features (the job has no blocks)`);
      const rows = f.data.length / jobs.length; // image b's chains, contiguous
      const mine = f.data.slice(b * rows, (b + 1) * rows);
      result.features = { data: Buffer.from(mine.buffer, mine.byteOffset, mine.byteLength).toString('base64'), shape: [j.chains, ...f.shape.slice(1)], block: f.block };
    }
    results.push(result);
  }
  return results;
}
