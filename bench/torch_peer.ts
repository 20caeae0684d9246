// PyTorch on the CPU as a benchmark peer (the goals report's torch rows, bench/torch_rows.ts): what a
// CPU user would run instead of the engine. Optional, like tfjs: where no Python with `import torch`
// is found, every torch row is reported as skipped with one note, and the bench goes on.
//
// Protocol: `python3 bench/peers/torch_peer.py <row> '<json args>'` prints one JSON line,
//   {"row", "torch", "threads", "ms": [...], "msPerIter", "peakRssBytes",
//    "check": {"maxRelErr", "relRms", "tensors": {name: {"maxRelErr", "relRms"}}, "what"} | null}
// or {"row", "error"} (exit code 1). parsePeerLine reads it; runPeer spawns it.
// The interpreter: $SGILO_TORCH_PYTHON, else the first of `python3` and /usr/bin/python3 that
// imports torch (Debian's python3-torch lives in the system Python, which a pyenv shim hides).

import { spawn } from 'node:child_process';
import { availableParallelism } from 'node:os';
import { fileURLToPath } from 'node:url';

export const PEER_SCRIPT = fileURLToPath(new URL('./peers/torch_peer.py', import.meta.url));

/** A row's result as the peer reported it. */
export interface PeerResult {
  row: string;
  torch: string;
  threads: number;
  /** ms of each timed iteration, and their median. */
  ms: number[];
  msPerIter: number;
  peakRssBytes: number;
  check: PeerCheck | null;
}

/** The two relative differences of the peer's outputs from the engine's (b): max|a-b|/max|b| and rms(a-b)/rms(b). */
export interface RelErrs {
  maxRelErr: number;
  relRms: number;
}

/** The peer's check: each measure's worst over the compared tensors, and each tensor's. */
export interface PeerCheck extends RelErrs {
  tensors: Record<string, RelErrs>;
  what: string;
}

export interface TorchAvailable {
  python: string;
  version: string;
  threads: number;
}

const isNum = (x: unknown): x is number => typeof x === 'number' && Number.isFinite(x);
/** An error measure: a number, infinite allowed (non-finite outputs), NaN not. */
const isErr = (x: unknown): x is number => typeof x === 'number' && !Number.isNaN(x);
const isRecord = (x: unknown): x is Record<string, unknown> => typeof x === 'object' && x !== null && !Array.isArray(x);

/**
 * The peer's stdout: the last non-empty line must be its JSON object. Throws an Error naming what
 * is wrong (an error the peer reported, bad JSON, a missing or non-finite field).
 */
export function parsePeerLine(stdout: string, probe = false): PeerResult {
  const line = stdout.trim().split('\n').pop()?.trim() ?? '';
  if (!line) throw new Error('the torch peer printed nothing');
  let v: Record<string, unknown>;
  try {
    v = JSON.parse(line);
  } catch {
    throw new Error(`the torch peer printed no JSON line: ${line.slice(0, 120)}`);
  }
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new Error('the torch peer printed JSON that is not an object');
  if (typeof v.error === 'string') throw new Error(`torch peer: ${v.error}`);
  if (typeof v.torch !== 'string') throw new Error('the torch peer\'s line has no "torch" version');
  if (!isNum(v.threads) || !isNum(v.peakRssBytes)) throw new Error('the torch peer\'s line lacks "threads" or "peakRssBytes"');
  const base = { row: String(v.row ?? ''), torch: v.torch, threads: v.threads, peakRssBytes: v.peakRssBytes };
  if (probe) return { ...base, ms: [], msPerIter: NaN, check: null };
  const ms = v.ms;
  if (!Array.isArray(ms) || ms.length === 0 || !ms.every((x) => isNum(x) && x > 0)) throw new Error('the torch peer\'s "ms" is not a non-empty list of positive times');
  if (!isNum(v.msPerIter) || !(v.msPerIter > 0)) throw new Error('the torch peer\'s "msPerIter" is not a positive number');
  const check = v.check === null || v.check === undefined ? null : parseCheck(v.check);
  return { ...base, ms: ms as number[], msPerIter: v.msPerIter, check };
}

/** The "check" object: both worst measures, every tensor's pair, and "what". */
function parseCheck(c: unknown): PeerCheck {
  // An infinite error (non-finite outputs) is a valid report; NaN or a missing number is not.
  if (!isRecord(c) || !isErr(c.maxRelErr) || !isErr(c.relRms) || typeof c.what !== 'string') {
    throw new Error('the torch peer\'s "check" lacks "maxRelErr", "relRms" or "what"');
  }
  if (!isRecord(c.tensors) || Object.keys(c.tensors).length === 0) throw new Error('the torch peer\'s "check" lacks its "tensors"');
  const tensors: Record<string, RelErrs> = {};
  for (const [name, t] of Object.entries(c.tensors)) {
    if (!isRecord(t) || !isErr(t.maxRelErr) || !isErr(t.relRms)) throw new Error(`the torch peer's "check" of ${name} lacks "maxRelErr" or "relRms"`);
    tensors[name] = { maxRelErr: t.maxRelErr, relRms: t.relRms };
  }
  for (const m of ['maxRelErr', 'relRms'] as const) {
    const worst = Math.max(...Object.values(tensors).map((t) => t[m]));
    if (worst !== c[m]) throw new Error(`the torch peer's "check" says ${m} ${c[m]}, but its tensors' worst is ${worst}`);
  }
  return { maxRelErr: c.maxRelErr, relRms: c.relRms, tensors, what: c.what };
}

/** How a row's check is judged: one measure of the peer's check against a bound (bench/torch_rows.ts declares each row's). */
export interface CheckGate {
  measure: keyof RelErrs;
  bound: number;
  /** Why this measure and bound for the row, one line. */
  reason: string;
}

export const MEASURE_NAMES: Record<keyof RelErrs, string> = { maxRelErr: 'max relative error max|a-b|/max|b|', relRms: 'relative RMS error rms(a-b)/rms(b)' };

/** e.g. "relative RMS error rms(a-b)/rms(b) <= 5e-3". */
export const gateText = (g: CheckGate) => `${MEASURE_NAMES[g.measure]} <= ${g.bound}`;

/**
 * Why the row's outputs are refused (the measure, its value, the bound and the worst tensor), or
 * null when the gate's measure is within its bound. A missing check is refused too.
 */
export function checkRefusal(check: PeerCheck | null, gate: CheckGate): string | null {
  if (!check) return `outputs not checked: the torch peer reported no check (gate: ${gateText(gate)})`;
  const value = check[gate.measure];
  if (value <= gate.bound) return null;
  const [tensor] = Object.entries(check.tensors).reduce((w, e) => (e[1][gate.measure] > w[1][gate.measure] ? e : w));
  return `outputs disagree: ${MEASURE_NAMES[gate.measure]} ${value.toExponential(2)} > ${gate.bound} on ${tensor} (${check.what})`;
}

/** Runs a command; resolves to its exit code and output (never rejects for a non-zero exit). */
function run(cmd: string, args: string[], timeoutMs: number): Promise<{ code: number | null; stdout: string; stderr: string; spawnError?: Error }> {
  return new Promise((resolve) => {
    let stdout = '';
    let stderr = '';
    const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'], timeout: timeoutMs });
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    child.on('error', (e) => resolve({ code: null, stdout, stderr, spawnError: e }));
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

/** Threads for torch.set_num_threads: every CPU core of the machine. */
export const torchThreads = () => availableParallelism();

/** Spawns the peer for one row. */
export async function runPeer(python: string, row: string, args: Record<string, unknown>, timeoutMs = 30 * 60_000): Promise<PeerResult> {
  const r = await run(python, [PEER_SCRIPT, row, JSON.stringify({ threads: torchThreads(), ...args })], timeoutMs);
  if (r.spawnError) throw new Error(`cannot run ${python}: ${r.spawnError.message}`);
  try {
    return parsePeerLine(r.stdout, row === 'probe');
  } catch (e) {
    const tail = r.stderr.trim().split('\n').pop() ?? '';
    const why = r.code === null ? ' (killed: time limit)' : tail ? ` (stderr: ${tail.slice(0, 200)})` : '';
    throw new Error(`${(e as Error).message}${why}`);
  }
}

/**
 * The interpreter that runs the peer, or the reason there is none (the rows are then skipped).
 * `candidates` replaces the search list (tests).
 */
export async function findTorch(candidates?: string[]): Promise<TorchAvailable | { reason: string }> {
  const env = process.env.SGILO_TORCH_PYTHON;
  const list = candidates ?? (env ? [env] : ['python3', '/usr/bin/python3']);
  const tried: string[] = [];
  for (const python of list) {
    try {
      const p = await runPeer(python, 'probe', {}, 120_000);
      return { python, version: p.torch, threads: p.threads };
    } catch (e) {
      tried.push(`${python}: ${(e as Error).message}`);
    }
  }
  return { reason: `no Python with torch (${tried.join('; ')}); apt-get install python3-torch, or set SGILO_TORCH_PYTHON` };
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};

/**
 * `runs` alternated measurements, engine then torch, in this process: each returns ms per
 * iteration; the medians of each side. The torch side's first run carries the check.
 */
export async function alternate(runs: number, engineRun: (i: number) => Promise<number>, torchRun: (i: number) => Promise<PeerResult>): Promise<{ engineMs: number; torchMs: number; engine: number[]; torch: PeerResult[] }> {
  const engine: number[] = [];
  const torch: PeerResult[] = [];
  for (let i = 0; i < runs; i++) {
    engine.push(await engineRun(i));
    torch.push(await torchRun(i));
  }
  return { engineMs: median(engine), torchMs: median(torch.map((t) => t.msPerIter)), engine, torch };
}
