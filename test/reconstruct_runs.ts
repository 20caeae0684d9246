// Shared by test/browser.test.ts and test/deno_reconstruct.test.ts: one short reconstruction, run in
// another runtime and by the Node CLI with the same seed and settings, and the comparison of their
// float32 results (result.safetensors of `sgilo reconstruct`, or the page's window.__sgilo.result).
//
// Metric (docs/design.md, "Numerics and tests"): per tensor, max|a - b| / max|b|, b = the Node run.

import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { readSafetensors } from '../engine/io/index.ts';
import { compare, relativeToMax } from '../engine/gradcheck.ts';

export const ROOT = fileURLToPath(new URL('..', import.meta.url));

/** SGILO with its score-model prior, 2 chains, 3 steps in round 0 and 3 in block 1: 6 steps in all. */
export const SHORT_RUN = { image: 1, operator: 'inpaint-random:0.25', method: 'sgilo', steps: 3, blocks: '1', chains: 2, seed: 3 } as const;
export const TOLERANCE = 1e-3;

/** `sgilo reconstruct` arguments of SHORT_RUN (the shipped test-001.png is test image 1). */
export function reconstructArgs(out: string): string[] {
  const r = SHORT_RUN;
  return [
    'reconstruct', '--image', `models/fashion32/test-images/test-${String(r.image).padStart(3, '0')}.png`, '--operator', r.operator,
    '--method', r.method, '--steps', String(r.steps), '--blocks', r.blocks, '--chains', String(r.chains), '--seed', String(r.seed), '--out', out,
  ];
}

export interface ProcessResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  error?: Error;
  timedOut: boolean;
  seconds: number;
}

export function runProcess(command: string, args: string[], env: NodeJS.ProcessEnv, timeoutMs: number): Promise<ProcessResult> {
  const t0 = performance.now();
  return new Promise((resolve) => {
    const child = spawn(command, args, { cwd: ROOT, env: { ...env, NO_COLOR: '1' }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    let timedOut = false;
    let error: Error | undefined;
    child.stdout.setEncoding('utf8').on('data', (s: string) => (stdout += s));
    child.stderr.setEncoding('utf8').on('data', (s: string) => (stderr += s));
    const timer = setTimeout(() => {
      timedOut = true; // a device never destroyed keeps the process alive: a failure, not a hang
      child.kill('SIGKILL');
    }, timeoutMs);
    child.on('error', (e) => (error = e));
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout, stderr, error, timedOut, seconds: (performance.now() - t0) / 1000 });
    });
  });
}

const tail = (s: string, n = 1500) => (s.length > n ? `...${s.slice(-n)}` : s);

/** Why a child process failed, or null when it exited with status 0. */
export function processFailure(what: string, r: ProcessResult, timeoutMs: number): string | null {
  const output = `stdout:\n${tail(r.stdout)}\nstderr:\n${tail(r.stderr)}`;
  if (r.error) return `${what} could not start: ${r.error.message}`;
  if (r.timedOut) return `${what} was still running after ${timeoutMs / 1000} s (killed)\n${output}`;
  if (r.code !== 0) return `${what} exited with ${r.signal ?? `status ${r.code}`} after ${r.seconds.toFixed(1)} s\n${output}`;
  return null;
}

export interface RunResult {
  tensors: Map<string, Float32Array>;
  adapter: string;
}

/** `<out>/result.safetensors` of `sgilo reconstruct`. */
export function readResult(dir: string): RunResult {
  const f = readSafetensors(new Uint8Array(readFileSync(`${dir}/result.safetensors`)));
  return { tensors: new Map([...f.tensors].map(([k, t]) => [k, t.data as Float32Array])), adapter: f.metadata?.adapter ?? '' };
}

/** The software implementation an adapter line names (lavapipe reports itself as llvmpipe). */
export function adapterKind(line: string): string {
  return /llvmpipe|lavapipe|swiftshader/i.exec(line)?.[0].toLowerCase().replace('lavapipe', 'llvmpipe') ?? line;
}

export interface Agreement {
  name: string;
  rel: number;
  maxAbs: number;
  problem?: string;
}

/** max|a-b| / max|b| for every tensor of the reference run b (the tally of engine/gradcheck.ts's compare). */
export function agreement(a: Map<string, ArrayLike<number>>, b: Map<string, ArrayLike<number>>): Agreement[] {
  const rows: Agreement[] = [];
  for (const [name, want] of b) {
    const got = a.get(name);
    if (!got) rows.push({ name, rel: Infinity, maxAbs: Infinity, problem: `missing (have ${[...a.keys()].join(', ')})` });
    else if (got.length !== want.length) rows.push({ name, rel: Infinity, maxAbs: Infinity, problem: `${got.length} values, the Node run has ${want.length}` });
    else {
      const c = compare(got, want, relativeToMax(want, TOLERANCE, 1e-30));
      rows.push({ name, rel: c.maxAbsErr / Math.max(c.maxAbsWant, 1e-30), maxAbs: c.maxAbsErr });
    }
  }
  return rows;
}

export function formatAgreement(rows: Agreement[]): string {
  return rows.map((r) => `  ${r.name.padEnd(16)} max|a-b|/max|b| = ${r.rel.toExponential(2)} (max|a-b| ${r.maxAbs.toExponential(2)})${r.problem ? `: ${r.problem}` : ''}`).join('\n');
}
