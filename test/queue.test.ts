// The experiment queue end to end (BullMQ on a redis-server of the test's own, on a loopback port):
// the Figure-3 protocol at a tiny size (2 images, 2 settings, 2 variants, calibration, 3 steps per
// round) run in-process, then enqueued and run by two workers in separate processes, one of them
// killed (SIGKILL) in the middle of a job. The merged report must hold exactly the in-process
// run's numbers, every job must be completed exactly once (the workers count completions per job),
// and the killed worker's job must have been finished by the other one. Also: re-enqueueing adds
// nothing; queued inversions (reconstruct --queue --save-features) merge into one activations file
// that holds each image's in-process features; a worker with other model files fails the job with
// the reason and no retry; a bad URL, an unreachable server and a queue of another experiment are
// clear errors.
//
// redis-server is installed by `npm test`'s provisioning (scripts/provision.mjs) as Chromium is;
// where it is missing these tests fail with that message (SGILO_REDIS_SERVER overrides the path).

import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createConnection } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PNG } from 'pngjs';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { jobId, protocolModelFiles, type ExperimentJob } from '../cli/experiment_jobs.ts';
import { completionCounts, openQueue, parseQueueUrl } from '../cli/queue.ts';
import { readActivationsFile } from '../samplers/score/data.ts';
import { ROOT, runCli } from './cli_run.ts';

const test = suite('queue');
const REDIS = process.env.SGILO_REDIS_SERVER ?? '/usr/bin/redis-server';
const dir = mkdtempSync(join(tmpdir(), 'sgilo-queue-'));
const at = (f: string) => join(dir, f);
const EXPERIMENT = ['experiment', '--setting', 'inpaint-random:0.2', '--setting', 'cs-gaussian:0.2', '--variants', 'ilo,sgilo', '--images', '2', '--first-image', '8', '--steps', '3', '--chains', '2', '--calibration', 'inpaint-random:0.2'];
const JOBS = 12; // 2 settings x 2 variants x 2 images, and 2 calibration variants x 2 images

const listening = (port: number) =>
  new Promise<boolean>((resolve) => {
    const s = createConnection({ host: '127.0.0.1', port });
    s.once('connect', () => (s.destroy(), resolve(true)));
    s.once('error', () => resolve(false));
  });

/** A free loopback port in 6390-6420 (this process's share of the range first). */
async function freePort(): Promise<number> {
  for (let k = 0; k < 31; k++) {
    const port = 6390 + ((process.pid + k) % 31);
    if (!(await listening(port))) return port;
  }
  throw new Error('no free port in 6390-6420 for redis-server');
}

let redis: ChildProcess | null = null;
let port = 0;
const url = (name: string) => `redis://127.0.0.1:${port}/${name}`;

async function startRedis(): Promise<void> {
  port = await freePort();
  redis = spawn(REDIS, ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], { stdio: 'ignore' });
  for (let i = 0; i < 100 && !(await listening(port)); i++) await new Promise((r) => setTimeout(r, 50));
  if (!(await listening(port))) throw new Error(`redis-server did not start on port ${port}`);
}

interface Worker {
  proc: ChildProcess;
  out: string;
  exited: Promise<number | null>;
}

/** `sgilo worker` in its own process (no stderr filter process between, so a signal reaches the worker itself). */
function startWorker(args: string[], onLine?: (line: string) => void): Worker {
  const proc = spawn(process.execPath, [join(ROOT, 'cli/sgilo.mjs'), 'worker', ...args], { cwd: ROOT, env: { ...process.env, SGILO_FILTERED: '1', XDG_RUNTIME_DIR: process.env.XDG_RUNTIME_DIR ?? '/tmp' } });
  const w: Worker = { proc, out: '', exited: new Promise((r) => proc.on('exit', (code) => r(code))) };
  proc.stdout!.setEncoding('utf8');
  proc.stdout!.on('data', (chunk: string) => {
    w.out += chunk;
    for (const line of chunk.split('\n')) if (line) onLine?.(line);
  });
  proc.stderr!.on('data', (chunk) => (w.out += String(chunk)));
  return w;
}

const withTimeout = <T>(p: Promise<T>, ms: number, what: string) => Promise.race([p, new Promise<never>((_, reject) => setTimeout(() => reject(new Error(`${what}: over ${ms} ms`)), ms).unref())]);
const numbers = (file: string) => {
  const r = JSON.parse(readFileSync(file, 'utf8'));
  return { rows: r.rows.map((c: { spec: string; variant: string; perImage: number[] }) => [c.spec, c.variant, c.perImage]), calibration: r.calibration.map((c: { variant: string; calibration: unknown }) => [c.variant, c.calibration]) };
};

if (!existsSync(REDIS)) {
  test('redis-server is installed', () => assert.unreachable(`no redis-server at ${REDIS}: install Debian's redis-server (\`apt-get install -y redis-server\`; \`npm test\` does it as root through scripts/provision.mjs) or set SGILO_REDIS_SERVER`));
} else {
  test.before(startRedis);
  test.after(() => {
    if (redis?.pid) process.kill(redis.pid, 'SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  });

  test('queue URLs: redis://HOST[:PORT]/NAME, anything else a usage error before any work', async () => {
    assert.equal(parseQueueUrl('redis://10.0.0.5:7000/fig3'), { host: '10.0.0.5', port: 7000, name: 'fig3', username: undefined, password: undefined, shown: 'redis://10.0.0.5:7000/fig3' });
    assert.is(parseQueueUrl('redis://box/q').port, 6379);
    for (const [bad, why] of [['http://h:1/q', /scheme must be redis:/], ['redis://h:1/', /queue name "" must be/], ['redis://h:1/a/b', /queue name "a\/b"/], ['h:1/q', /scheme/], ['redis://h:1/q?db=2', /no query/]] as const) {
      const r = await runCli(['experiment', '--queue', bad]);
      assert.is(r.code, 1, bad);
      assert.match(r.err, why);
      assert.match(r.err, /--help lists the options/, 'a usage error');
    }
    const secret = await runCli(['worker', '--queue', 'redis://:hunter2@h:1/']);
    assert.is(secret.code, 1);
    assert.match(secret.err, /"redis:\/\/:\*\*\*@h:1\/": the queue name/, 'the password is not shown');
  });

  test('in-process and queued runs give the same numbers; a worker killed mid-job loses nothing; no job completes twice', async () => {
    const inproc = await runCli([...EXPERIMENT, '--work', at('work'), '--out', at('inproc')]);
    assert.is(inproc.code, 0, inproc.err);
    const q = url('fig3');
    const enq = await runCli([...EXPERIMENT, '--queue', q]);
    assert.is(enq.code, 0, enq.err);
    assert.match(enq.out, new RegExp(`${JOBS} jobs in this experiment; ${JOBS} added`));
    // Worker A runs one job at a time and is killed as soon as it starts its second (its first
    // compiles the pipelines); worker B batches what it holds (up to 8): batch sizes differ from
    // the in-process run's (a cell's images in one batch), the numbers must not.
    let started = 0;
    let killedJob = '';
    const lock = ['--lock-seconds', '10']; // far above the longest event-loop pause of a first job (pipeline compiles)
    const a = startWorker(['--queue', q, ...lock, '--batch', '1'], (line) => {
      const m = /started (\S+)/.exec(line);
      if (m && ++started === 2) {
        killedJob = m[1];
        a.proc.kill('SIGKILL');
      }
    });
    const b = startWorker(['--queue', q, ...lock, '--idle-exit', '1']);
    const codeA = await withTimeout(a.exited, 60_000, 'worker A');
    const codeB = await withTimeout(b.exited, 60_000, `worker B\n${b.out}`);
    assert.is(codeA, null, `worker A was killed (exit ${codeA}):\n${a.out}`);
    assert.is(codeB, 0, b.out);
    assert.ok(killedJob, a.out);
    assert.not.match(a.out, new RegExp(`finished ${killedJob}`), 'killed mid-job');
    assert.match(b.out, new RegExp(`started ${killedJob}`), 'the killed job came back and worker B ran it');
    assert.match(b.out, /one of a batch of [2-8]\)/, `worker B ran batches:\n${b.out}`);
    const report = await runCli([...EXPERIMENT, '--queue', q, '--report', at('queued')]);
    assert.is(report.code, 0, report.err);
    assert.match(report.out, new RegExp(`${JOBS} of ${JOBS} jobs done, 0 running, 0 waiting, 0 failed, 0 not enqueued`));
    assert.equal(numbers(at('queued/results.json')), numbers(at('inproc/results.json')));
    assert.ok(existsSync(at('queued/diversity.png')) && existsSync(at('queued/mse.svg')));
    const open = await openQueue(parseQueueUrl(q));
    try {
      const counts = await completionCounts(open);
      assert.is(Object.keys(counts).length, JOBS, JSON.stringify(counts));
      assert.ok(Object.values(counts).every((c) => c === 1), `a job completed more than once: ${JSON.stringify(counts)}`);
    } finally {
      await open.close();
    }
    const again = await runCli([...EXPERIMENT, '--queue', q]);
    assert.is(again.code, 0, again.err);
    assert.match(again.out, new RegExp(`0 added, 0 failed ones re-queued; already there: ${JOBS} completed`));
  });

  test('a queue of another experiment, an unreachable server: clear errors within seconds', async () => {
    const other = await runCli([...EXPERIMENT.map((a) => (a === '3' ? '2' : a)), '--queue', url('fig3')]);
    assert.is(other.code, 1);
    assert.match(other.err, /holds another experiment \(it differs in steps: steps 3 there, 2 here\); use another queue name/);
    const report = await runCli([...EXPERIMENT, '--queue', url('never-used'), '--report', at('never')]);
    assert.is(report.code, 1);
    assert.match(report.err, /holds no experiment yet/);
    let dead = port + 1;
    while (await listening(dead)) dead++;
    const unreachable = await runCli([...EXPERIMENT, '--queue', `redis://127.0.0.1:${dead}/x`]);
    assert.is(unreachable.code, 1);
    assert.match(unreachable.err, new RegExp(`cannot reach the Redis server of redis://127.0.0.1:${dead}/x \\(connect ECONNREFUSED`));
    assert.ok(unreachable.ms < 10_000, `${unreachable.ms} ms`);
  });

  test('inversions as queued jobs: one activations file, each image equal to its in-process reconstruct --save-features', async () => {
    const q = url('inversions');
    const args = ['--image-index', '8', '--images', '2', '--operator', 'denoise:0.1', '--method', 'ilo', '--blocks', '1', '--steps', '2', '--chains', '2', '--seed', '3', '--save-features', at('inversions.safetensors')];
    const enq = await runCli(['reconstruct', '--queue', q, ...args]);
    assert.is(enq.code, 0, enq.err);
    assert.match(enq.out, /2 inversions \(ilo, denoise:0.1; values presets \(no tuned ilo values for denoise\)\); 2 added/);
    assert.not.ok(existsSync(at('inversions.safetensors')), 'enqueueing writes nothing');
    // SIGTERM as the worker starts its second (last) job: it finishes that job, then exits 0.
    let started = 0;
    const w = startWorker(['--queue', q, '--pngs'], (line) => {
      if (/started /.test(line) && ++started === 2) w.proc.kill('SIGTERM');
    });
    assert.is(await withTimeout(w.exited, 60_000, `worker\n${w.out}`), 0, w.out);
    assert.match(w.out, /stopping: SIGTERM \(finishing the [12] job\(s\) held first\)/);
    assert.is((w.out.match(/finished inv-/g) ?? []).length, 2, w.out);
    const open = await openQueue(parseQueueUrl(q));
    try {
      const [job] = await open.queue.getJobs(['completed']);
      const png = PNG.sync.read(Buffer.from(job.returnvalue.png, 'base64'));
      assert.equal([png.width, png.height], [32, 32], 'worker --pngs: the reconstruction as a PNG');
    } finally {
      await open.close();
    }
    const col = await runCli(['reconstruct', '--queue', q, ...args, '--collect']);
    assert.is(col.code, 0, col.err);
    assert.match(col.out, /2 of 2 inversions done/);
    const merged = readActivationsFile(new Uint8Array(readFileSync(at('inversions.safetensors'))));
    assert.is(merged.shape[0], 4, '2 images x 2 chains');
    assert.is(merged.meta.block, '0', 'the features entering block 1');
    const per = merged.data.length / 2;
    for (const i of [0, 1]) {
      const one = await runCli(['reconstruct', '--image-index', String(8 + i), ...args.slice(4, -1), at(`inversion-${i}.safetensors`), '--out', at(`reconstruct-${i}`)]);
      assert.is(one.code, 0, one.err);
      const alone = readActivationsFile(new Uint8Array(readFileSync(at(`inversion-${i}.safetensors`))));
      assert.equal(Array.from(merged.data.subarray(i * per, (i + 1) * per)), Array.from(alone.data), `image ${8 + i}`);
    }
    const mixed = await runCli([...EXPERIMENT, '--queue', q]);
    assert.is(mixed.code, 1);
    assert.match(mixed.err, /holds another experiment \(it differs in protocol/);
  });

  test('a worker whose model files differ fails the job with the reason, without retrying it', async () => {
    const models = await protocolModelFiles();
    const tampered = models.map((m, i) => (i === 0 ? { ...m, sha256: '0'.repeat(64) } : m));
    const job: ExperimentJob = { kind: 'cell', spec: 'inpaint-random:0.2', variant: 'ilo', values: {}, source: 'presets', image: 8, steps: 1, blocks: [1, 2], seed: 0, chains: 1, keepSamples: false, models: tampered, tuned: null };
    const open = await openQueue(parseQueueUrl(url('other-models')));
    try {
      await open.queue.add('figure3', job, { jobId: jobId(job), attempts: 3 });
      const w = await runCli(['worker', '--queue', url('other-models'), '--idle-exit', '0.5']);
      assert.is(w.code, 0, w.err);
      const j = await open.queue.getJob(jobId(job));
      assert.is(await j!.getState(), 'failed');
      assert.match(j!.failedReason, /models\/fashion32\/fashion32-stylegan2\.pt differs: this worker's has sha256 [0-9a-f]{12}, the job was made with 000000000000/);
      assert.is(j!.attemptsMade, 1, 'no retry');
    } finally {
      await open.close();
    }
  });
}

test.run();
