// PyTorch on the CPU as a benchmark peer (the goals report's torch rows, bench/torch_rows.ts): what a
// CPU user would run instead of the engine. Optional, like tfjs: where no Python with `import torch`
// is found, every torch row is reported as skipped with one note, and the bench goes on.
//
// Protocol: `python3 bench/peers/torch_peer.py <row> '<json args>'` prints one JSON line,
//   {"row", "torch", "threads", "ms": [...], "msPerIter", "peakRssBytes", "check": {"maxRelErr", "what"} | null}
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
  check: { maxRelErr: number; what: string } | null;
}

export interface TorchAvailable {
  python: string;
  version: string;
  threads: number;
}

const isNum = (x: unknown): x is number => typeof x === 'number' && Number.isFinite(x);

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
  let check: PeerResult['check'] = null;
  if (v.check !== null && v.check !== undefined) {
    const c = v.check as Record<string, unknown>;
    // An infinite error (non-finite outputs) is a valid report; NaN or a missing number is not.
    if (typeof c !== 'object' || typeof c.maxRelErr !== 'number' || Number.isNaN(c.maxRelErr) || typeof c.what !== 'string') {
      throw new Error('the torch peer\'s "check" lacks "maxRelErr" or "what"');
    }
    check = { maxRelErr: c.maxRelErr, what: c.what };
  }
  return { ...base, ms: ms as number[], msPerIter: v.msPerIter, check };
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
