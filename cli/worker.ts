// `sgilo worker --queue redis://HOST:PORT/NAME`: takes the experiment's jobs from the queue, up to
// --batch at once, runs those of one setting as one batch with the engine (cli/experiment_jobs.ts,
// runJobs, the function the in-process run uses) and stores each result with its job. A job whose
// model files differ from this machine's fails at once (no retry); another failure is retried up
// to the queue's attempts. BullMQ renews
// the job's lock while it runs; a worker that dies mid-job loses nothing: when the lock expires, a
// living worker's stalled check (every 5 s at most; it moves only jobs whose lock has expired)
// returns the job to the queue.
//
// Batches: BullMQ hands this process up to --batch jobs at once (its concurrency); each waits in
// `pending` until the engine is free, then the first waiting job and every other waiting job of
// its setting (batchKey) run as one batch. One batch at a time: the engine's tensor scopes and
// tape are per process. Batching changes no job's numbers (the methods are batch-invariant), so
// the queued run still equals the in-process run. A batch that fails is rerun job by job, so one
// job's failure (a divergence, say) fails that job only. Several workers (processes, machines)
// share a queue.
//
// SIGINT / SIGTERM: stop taking jobs, finish the held ones, exit 0. A second signal (more than a
// second later: a terminal's Ctrl-C reaches this process and its wrapper, which passes it on)
// releases the held jobs back to the queue at once and exits 0.

import { hostname } from 'node:os';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { PNG } from 'pngjs';
import { toRgba } from '../engine/io/png.ts';
import { loadProtocolModels } from '../samplers/inverse/fashion.ts';
import type { Parsed } from './args.ts';
import { batchKey, checkModelFiles, protocolModelFiles, runJobs, type ExperimentJob, type JobResult } from './experiment_jobs.ts';
import { connect, connectionOptions, keys, parseQueueUrl } from './queue.ts';

const pngOf = async (image: Float32Array): Promise<string> => {
  const size = Math.round(Math.sqrt(image.length / 3));
  const png = new PNG({ width: size, height: size });
  toRgba(image, 3, size, size, png.data, size, 0, 0);
  return PNG.sync.write(png).toString('base64');
};

export async function workerCommand(p: Parsed): Promise<number> {
  const q = parseQueueUrl(String(p.values.queue));
  const maxJobs = p.given.has('max-jobs') ? Number(p.values['max-jobs']) : Infinity;
  const idleExit = p.given.has('idle-exit') ? Number(p.values['idle-exit']) : Infinity;
  const lockMs = Number(p.values['lock-seconds']) * 1000;
  const pngs = p.values.pngs === true;
  const me = `${hostname()}:${process.pid}`;
  const t0 = performance.now();
  const log = (s: string) => console.log(`[${((performance.now() - t0) / 1000).toFixed(1)} s] ${s}`);
  const redis = await connect(q);
  const models = await loadProtocolModels();
  const local = await protocolModelFiles();
  const { Queue, Worker, UnrecoverableError } = await import('bullmq');
  const queue = new Queue(q.name, { connection: connectionOptions(q) });
  const batchSize = Number(p.values.batch);
  /** The jobs this worker holds (waiting or running), with how to hand each back to the queue. */
  const held = new Map<string, () => Promise<unknown>>();
  const pending: { data: ExperimentJob; id: string; done: (r: JobResult) => void; fail: (e: unknown) => void }[] = [];
  let engineBusy = false;
  let lastBusy = performance.now();
  let handled = 0;
  let stopping = false;

  const runBatch = async (batch: typeof pending): Promise<JobResult[]> => {
    // The lock is renewed by a timer: a pause of the event loop (a long synchronous pipeline
    // compile, say) longer than the lock lets another worker take the job; say so when close.
    const pauses = monitorEventLoopDelay({ resolution: 20 });
    pauses.enable();
    try {
      return await runJobs(models, batch.map((x) => x.data), pngs ? pngOf : undefined);
    } finally {
      pauses.disable();
      const longest = pauses.max / 1e9;
      if (longest > lockMs / 2000) log(`longest event-loop pause ${longest.toFixed(2)} s: over half the ${lockMs / 1000} s lock; raise --lock-seconds`);
    }
  };
  /** Runs the next batch when the engine is free: the first waiting job and the waiting ones of its setting. */
  const pump = async (): Promise<void> => {
    if (engineBusy || !pending.length) return;
    engineBusy = true;
    // A moment for BullMQ to hand over the rest of the jobs it fetched together.
    await new Promise((r) => setTimeout(r, 20));
    const key = batchKey(pending[0].data);
    const batch = pending.filter((x) => batchKey(x.data) === key).slice(0, batchSize);
    for (const x of batch) pending.splice(pending.indexOf(x), 1);
    const d = batch[0].data;
    for (const x of batch) log(`started ${x.id} (${d.kind} ${d.spec} ${d.variant} image ${x.data.image}; one of a batch of ${batch.length})`);
    try {
      const results = await runBatch(batch);
      batch.forEach((x, i) => x.done(results[i]));
    } catch (e) {
      if (batch.length === 1) batch[0].fail(e);
      else {
        log(`the batch failed (${(e as Error).message}); running its jobs one by one`);
        for (const x of batch) await runBatch([x]).then(([r]) => x.done(r), x.fail);
      }
    } finally {
      engineBusy = false;
      lastBusy = performance.now();
      void pump();
    }
  };
  const worker = new Worker<ExperimentJob, JobResult>(
    q.name,
    async (job, token) => {
      const d = job.data;
      held.set(job.id!, () => job.moveToWait(token));
      try {
        log(`took ${job.id} (attempt ${job.attemptsMade + 1})`);
        try {
          checkModelFiles(d, local);
        } catch (e) {
          throw new UnrecoverableError((e as Error).message);
        }
        const result = await new Promise<JobResult>((done, fail) => {
          pending.push({ data: d, id: job.id!, done, fail });
          void pump();
        });
        await redis.hincrby(keys(q).completions, job.id!, 1);
        log(`finished ${job.id}: MSE ${result.mse.toFixed(4)} (${result.seconds.toFixed(1)} s, its share of a batch of ${result.batch})`);
        return result;
      } finally {
        held.delete(job.id!);
        lastBusy = performance.now();
        handled++;
        if (handled >= maxJobs) stop(`${handled} job(s) handled (--max-jobs)`);
      }
    },
    { connection: connectionOptions(q), autorun: false, concurrency: batchSize, lockDuration: lockMs, stalledInterval: Math.min(lockMs, 5000), maxStalledCount: 2, drainDelay: 1, name: me },
  );
  worker.on('failed', (job, err) => log(`failed ${job?.id}: ${err.message}`));
  worker.on('error', (err) => log(`queue error: ${err.message}`));
  let closing: Promise<void> | null = null;
  function stop(why: string): void {
    if (stopping) return;
    stopping = true;
    log(`stopping: ${why}${held.size ? ` (finishing the ${held.size} job(s) held first)` : ''}`);
    closing = worker.close();
  }
  // --idle-exit: only when nothing is waiting, delayed or running anywhere (a dead worker's job
  // stays active until its lock expires; this worker must be there to take it back).
  const idleTimer = setInterval(async () => {
    if (stopping || held.size || performance.now() - lastBusy < idleExit * 1000) return;
    const counts = await queue.getJobCounts('waiting', 'active', 'delayed', 'prioritized').catch(() => null);
    if (counts && counts.waiting + counts.active + counts.delayed + counts.prioritized === 0) stop(`the queue has been empty for ${idleExit} s (--idle-exit)`);
    else lastBusy = performance.now() - idleExit * 1000 + 500; // look again shortly
  }, 250);
  let firstSignal = 0;
  const onSignal = (sig: string) => {
    const now = performance.now();
    if (!firstSignal) {
      firstSignal = now;
      stop(`${sig}`);
    } else if (now - firstSignal > 1000 && held.size) {
      log(`${sig} again: releasing ${[...held.keys()].join(', ')} to the queue and exiting`);
      void Promise.allSettled([...held.values()].map((release) => release())).finally(() => process.exit(0));
    }
  };
  const handlers = { SIGINT: () => onSignal('SIGINT'), SIGTERM: () => onSignal('SIGTERM') };
  for (const [s, h] of Object.entries(handlers)) process.on(s, h);
  try {
    log(`worker ${me} on ${q.shown}: batches of up to ${batchSize}, lock ${lockMs / 1000} s${Number.isFinite(maxJobs) ? `, at most ${maxJobs} jobs` : ''}${Number.isFinite(idleExit) ? `, exits after ${idleExit} s idle` : ''}`);
    await worker.run();
    await closing;
  } finally {
    clearInterval(idleTimer);
    for (const [s, h] of Object.entries(handlers)) process.off(s, h);
    if (!stopping) await worker.close();
    await queue.close();
    redis.disconnect();
    models.dispose();
  }
  log(`done: ${handled} job(s) handled`);
  return 0;
}
