// The experiment queue on BullMQ + Redis (`experiment --queue`, `worker --queue`): the queue URL,
// the connection (a clear error within seconds when the server cannot be reached), the
// experiment's descriptor stored beside the queue (a queue holds one experiment), enqueueing jobs
// by their content ids, reading back their states and results, and the completion count per job
// (a job run twice to completion shows as a count of 2).
//
// bullmq and ioredis are imported here on demand only, so the engine, the other commands and the
// web bundle never load them.

import type { Job, Queue } from 'bullmq';
import type { Redis } from 'ioredis';
import { jobId, type ExperimentJob, type JobResult } from './experiment_jobs.ts';
import type { QueueUrl } from './queue_url.ts';

export { parseQueueUrl, type QueueUrl } from './queue_url.ts';

const CONNECT_TIMEOUT_MS = 3000;

/** ioredis options for BullMQ (which needs maxRetriesPerRequest null) from a parsed URL. */
export function connectionOptions(q: QueueUrl) {
  return { host: q.host, port: q.port, username: q.username, password: q.password, maxRetriesPerRequest: null, connectTimeout: CONNECT_TIMEOUT_MS };
}

/** Keys of our own beside BullMQ's, under its prefix. */
export const keys = (q: QueueUrl) => ({ descriptor: `bull:${q.name}:sgilo-experiment`, completions: `bull:${q.name}:sgilo-completions` });

/** A plain client that fails fast: one connection attempt, no retries (errors name the server). */
export async function connect(q: QueueUrl): Promise<Redis> {
  const { Redis } = await import('ioredis');
  const redis = new Redis({ host: q.host, port: q.port, username: q.username, password: q.password, lazyConnect: true, connectTimeout: CONNECT_TIMEOUT_MS, maxRetriesPerRequest: 0, retryStrategy: () => null, enableOfflineQueue: false });
  // The socket's own error (ECONNREFUSED, ETIMEDOUT, ENOTFOUND) says more than the rejected connect().
  let cause = '';
  redis.on('error', (e: Error) => void (cause ||= e.message));
  try {
    await redis.connect();
    await redis.ping();
  } catch (e) {
    redis.disconnect();
    throw new Error(`cannot reach the Redis server of ${q.shown} (${cause || (e as Error).message || 'no answer'}); is redis-server running there (redis-server --port ${q.port})?`);
  }
  return redis;
}

export interface OpenQueue {
  url: QueueUrl;
  redis: Redis;
  queue: Queue;
  close(): Promise<void>;
}

export async function openQueue(q: QueueUrl): Promise<OpenQueue> {
  const redis = await connect(q);
  const { Queue } = await import('bullmq');
  const queue = new Queue(q.name, { connection: connectionOptions(q) });
  return {
    url: q,
    redis,
    queue,
    async close() {
      await queue.close();
      redis.disconnect();
    },
  };
}

/**
 * Stores the experiment's descriptor in the queue, or checks that the one there is the same:
 * a queue holds one experiment (its settings, images and variants may grow; steps, seed, chains,
 * blocks and the files may not). Throws naming what differs.
 */
export async function claimExperiment(o: OpenQueue, descriptor: Record<string, unknown>, create: boolean): Promise<void> {
  const key = keys(o.url).descriptor;
  const text = JSON.stringify(descriptor);
  if (create && (await o.redis.set(key, text, 'NX')) === 'OK') return;
  const there = await o.redis.get(key);
  if (there === null) throw new Error(`queue ${o.url.shown} holds no experiment yet (sgilo experiment --queue ${o.url.shown} enqueues one)`);
  if (there === text) return;
  let other: Record<string, unknown> = {};
  try {
    other = JSON.parse(there);
  } catch {
    // Not ours: reported as a whole below.
  }
  const differ = Object.keys({ ...descriptor, ...other }).filter((k) => JSON.stringify(descriptor[k]) !== JSON.stringify(other[k]));
  throw new Error(`queue ${o.url.shown} holds another experiment (it differs in ${differ.join(', ') || 'its descriptor'}: ${differ.map((k) => `${k} ${short(other[k])} there, ${short(descriptor[k])} here`).join('; ')}); use another queue name`);
}

const short = (v: unknown) => {
  const s = JSON.stringify(v) ?? 'none';
  return s.length > 60 ? `${s.slice(0, 57)}...` : s;
};

/** Retries per job (a failed attempt is retried this many times less one, then the job fails). */
export const ATTEMPTS = 3;

export interface JobState {
  id: string;
  state: string;
  result?: JobResult;
  failedReason?: string;
}

async function inChunks<T, R>(items: T[], fn: (t: T) => Promise<R>, size = 200): Promise<R[]> {
  const out: R[] = [];
  for (let i = 0; i < items.length; i += size) out.push(...(await Promise.all(items.slice(i, i + size).map(fn))));
  return out;
}

/** Adds the jobs not in the queue and re-queues the failed ones; counts what it did and what was there. */
export async function enqueue(o: OpenQueue, jobs: ExperimentJob[]): Promise<Record<string, number>> {
  const counts: Record<string, number> = { added: 0, requeued: 0 };
  const found = await inChunks(jobs, async (job) => ({ job, id: jobId(job), existing: (await o.queue.getJob(jobId(job))) as Job | undefined }));
  const fresh = found.filter((f) => !f.existing);
  for (let i = 0; i < fresh.length; i += 500) {
    await o.queue.addBulk(fresh.slice(i, i + 500).map((f) => ({ name: 'figure3', data: f.job, opts: { jobId: f.id, attempts: ATTEMPTS, backoff: { type: 'fixed', delay: 1000 }, removeOnComplete: false, removeOnFail: false } })));
  }
  counts.added = fresh.length;
  await inChunks(
    found.filter((f) => f.existing),
    async (f) => {
      const state = await f.existing!.getState();
      if (state === 'failed') {
        await f.existing!.retry('failed', { resetAttemptsMade: true, resetAttemptsStarted: true });
        counts.requeued++;
      } else counts[state] = (counts[state] ?? 0) + 1;
    },
  );
  return counts;
}

/** Each job's state (missing: not in the queue), its result when completed, its reason when failed. */
export async function jobStates(o: OpenQueue, jobs: ExperimentJob[]): Promise<Map<string, JobState>> {
  const states = await inChunks(jobs, async (job): Promise<JobState> => {
    const id = jobId(job);
    const j = (await o.queue.getJob(id)) as Job | undefined;
    if (!j) return { id, state: 'missing' };
    const state = await j.getState();
    return { id, state, result: state === 'completed' ? (j.returnvalue as JobResult) : undefined, failedReason: state === 'failed' ? j.failedReason : undefined };
  });
  return new Map(states.map((s) => [s.id, s]));
}

/** How many times each job was run to completion (the workers count it as they finish). */
export async function completionCounts(o: OpenQueue): Promise<Record<string, number>> {
  const h = await o.redis.hgetall(keys(o.url).completions);
  return Object.fromEntries(Object.entries(h).map(([k, v]) => [k, Number(v)]));
}
