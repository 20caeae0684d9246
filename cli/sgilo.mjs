#!/usr/bin/env node
// The package's `bin`: registers the TypeScript loader, then runs the CLI written in TypeScript.
//
// Dawn writes two notices about its maxDynamic* limits straight to file descriptor 2 when the
// adapter is created; no JavaScript hook sees them. Unless --verbose is given, the CLI therefore
// runs in a child process whose stderr passes through a line filter that drops exactly those
// notices (everything else, progress bars included, passes unchanged).
import { register } from 'node:module';
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const args = process.argv.slice(2);
const DAWN_NOTICE = /^Warning: maxDynamic\w+ artificially reduced from \d+ to \d+ to fit dynamic offset allocation limit\.\s*$/;

if (process.env.SGILO_FILTERED === '1' || args.includes('--verbose')) {
  register('../scripts/ts-hooks.mjs', import.meta.url);
  const { main } = await import('./main.ts');
  process.exitCode = await main(args);
} else {
  const child = spawn(process.execPath, [...process.execArgv, fileURLToPath(import.meta.url), ...args], {
    stdio: ['inherit', 'inherit', 'pipe'],
    env: { ...process.env, SGILO_FILTERED: '1', SGILO_STDERR_TTY: process.stderr.isTTY ? '1' : '0' },
  });
  let pending = '';
  child.stderr.setEncoding('utf8');
  child.stderr.on('data', (chunk) => {
    pending += chunk;
    const lines = pending.split('\n');
    pending = lines.pop();
    for (const line of lines) if (!DAWN_NOTICE.test(line)) process.stderr.write(`${line}\n`);
    // A progress bar redraws its line with \r and no newline: pass it on at once.
    if (pending.includes('\r') && !pending.startsWith('Warning: maxDynamic')) {
      process.stderr.write(pending);
      pending = '';
    }
  });
  for (const sig of ['SIGINT', 'SIGTERM']) process.on(sig, () => child.kill(sig));
  child.on('close', (code, signal) => {
    if (pending && !DAWN_NOTICE.test(pending)) process.stderr.write(pending);
    process.exitCode = code ?? (signal ? 1 : 0);
  });
}
