// `sgilo worker --queue redis://HOST:PORT/NAME`: takes the experiment's jobs from the queue, one
// at a time, runs each with the engine (cli/experiment_jobs.ts, the function the in-process run
// uses) and stores its result with the job. A job whose model files differ from this machine's
// fails at once (no retry); another failure is retried up to the queue's attempts. BullMQ renews
// the job's lock while it runs; a worker that dies mid-job loses nothing: when the lock expires, a
// living worker's stalled check (every 5 s at most; it moves only jobs whose lock has expired)
// returns the job to the queue.
//
// One job at a time per process: the engine's tensor scopes and tape are per process, so jobs in
// one process cannot interleave. Jobs of the same setting are not batched either: a batched run
// gives each image different numbers than it gets alone (cli/experiment_jobs.ts says why), and
// the queued run must give the in-process run's numbers. Several workers (processes, machines)
// share a queue.
//
// SIGINT / SIGTERM: stop taking jobs, finish the current one, exit 0. A second signal (more than a
// second later: a terminal's Ctrl-C reaches this process and its wrapper, which passes it on)
// releases the current job back to the queue at once and exits 0.

import { hostname } from 'node:os';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { PNG } from 'pngjs';
import { toRgba } from '../engine/io/png.ts';
import { loadProtocolModels } from '../samplers/inverse/fashion.ts';
import type { Parsed } from './args.ts';
import { checkModelFiles, protocolModelFiles, runJob, type ExperimentJob, type JobResult } from './experiment_jobs.ts';
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
  let current: { id: string; release: () => Promise<unknown> } | null = null;
  let lastBusy = performance.now();
  let handled = 0;
  let stopping = false;
  const worker = new Worker<ExperimentJob, JobResult>(
    q.name,
    async (job, token) => {
      current = { id: job.id!, release: () => job.moveToWait(token) };
      try {
        const d = job.data;
        log(`started ${job.id} (${d.kind} ${d.spec} ${d.variant} image ${d.image}; attempt ${job.attemptsMade + 1})`);
        try {
          checkModelFiles(d, local);
        } catch (e) {
          throw new UnrecoverableError((e as Error).message);
        }
        // The lock is renewed by a timer: a pause of the event loop (a long synchronous pipeline
        // compile, say) longer than the lock lets another worker take the job; say so when close.
        const pauses = monitorEventLoopDelay({ resolution: 20 });
        pauses.enable();
        const result = await runJob(models, d, pngs ? pngOf : undefined).finally(() => pauses.disable());
        await redis.hincrby(keys(q).completions, job.id!, 1);
        const longest = pauses.max / 1e9;
        log(`finished ${job.id}: MSE ${result.mse.toFixed(4)} in ${result.seconds.toFixed(1)} s (longest event-loop pause ${longest.toFixed(2)} s${longest > lockMs / 2000 ? `: over half the ${lockMs / 1000} s lock; raise --lock-seconds` : ''})`);
        return result;
      } finally {
        current = null;
        lastBusy = performance.now();
        handled++;
        if (handled >= maxJobs) stop(`${handled} job(s) handled (--max-jobs)`);
      }
    },
    { connection: connectionOptions(q), autorun: false, concurrency: 1, lockDuration: lockMs, stalledInterval: Math.min(lockMs, 5000), maxStalledCount: 2, drainDelay: 1, name: me },
  );
  worker.on('failed', (job, err) => log(`failed ${job?.id}: ${err.message}`));
  worker.on('error', (err) => log(`queue error: ${err.message}`));
  let closing: Promise<void> | null = null;
  function stop(why: string): void {
    if (stopping) return;
    stopping = true;
    log(`stopping: ${why}${current ? ` (finishing ${current.id} first)` : ''}`);
    closing = worker.close();
  }
  // --idle-exit: only when nothing is waiting, delayed or running anywhere (a dead worker's job
  // stays active until its lock expires; this worker must be there to take it back).
  const idleTimer = setInterval(async () => {
    if (stopping || current || performance.now() - lastBusy < idleExit * 1000) return;
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
    } else if (now - firstSignal > 1000 && current) {
      const job = current;
      log(`${sig} again: releasing ${job.id} to the queue and exiting`);
      void job.release().finally(() => process.exit(0));
    }
  };
  const handlers = { SIGINT: () => onSignal('SIGINT'), SIGTERM: () => onSignal('SIGTERM') };
  for (const [s, h] of Object.entries(handlers)) process.on(s, h);
  try {
    log(`worker ${me} on ${q.shown}: lock ${lockMs / 1000} s${Number.isFinite(maxJobs) ? `, at most ${maxJobs} jobs` : ''}${Number.isFinite(idleExit) ? `, exits after ${idleExit} s idle` : ''}`);
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
