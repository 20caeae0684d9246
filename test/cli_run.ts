// Runs `sgilo` in-process through main(argv) with its output captured (console.log, console.error
// and direct stderr writes such as progress bars), for the CLI tests and the CLI fuzzer; and in a
// subprocess through the real entry (cli/sgilo.mjs) for the few cases that need one.

import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { main } from '../cli/main.ts';

export const ROOT = fileURLToPath(new URL('..', import.meta.url));

export interface CliResult {
  code: number;
  out: string;
  err: string;
  ms: number;
}

export async function runCli(argv: string[], options: { dryRun?: boolean } = {}): Promise<CliResult> {
  const out: string[] = [];
  const err: string[] = [];
  const saved = { log: console.log, error: console.error, warn: console.warn, write: process.stderr.write };
  console.log = (...a: unknown[]) => void out.push(a.map(String).join(' '));
  console.error = (...a: unknown[]) => void err.push(a.map(String).join(' '));
  console.warn = console.error;
  process.stderr.write = ((s: string | Uint8Array) => (err.push(String(s)), true)) as typeof process.stderr.write;
  const t0 = performance.now();
  try {
    const code = await main(argv, options);
    return { code, out: out.join('\n'), err: err.join('\n'), ms: performance.now() - t0 };
  } finally {
    Object.assign(console, { log: saved.log, error: saved.error, warn: saved.warn });
    process.stderr.write = saved.write;
  }
}

/** `node cli/sgilo.mjs ...` in a child process (cwd: where it runs from). */
export function runSgilo(argv: string[], options: { cwd?: string; timeoutMs?: number } = {}): CliResult & { signal: string | null } {
  const t0 = performance.now();
  const r = spawnSync(process.execPath, [`${ROOT}cli/sgilo.mjs`, ...argv], { cwd: options.cwd ?? ROOT, encoding: 'utf8', timeout: options.timeoutMs ?? 120_000, env: { ...process.env, XDG_RUNTIME_DIR: process.env.XDG_RUNTIME_DIR ?? '/tmp' } });
  return { code: r.status ?? -1, out: r.stdout, err: r.stderr, ms: performance.now() - t0, signal: r.signal };
}
