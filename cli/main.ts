// The `sgilo` command line. Every command is declared once in cli/commands.ts (options, defaults,
// ranges, help, output); main() parses against the declaration, checks the output location, runs
// the command and returns its exit code: 0 on success, 1 on any failure (with a one-line message
// naming the flag, file, step or variable; no stack trace unless --verbose).

import { init, isInitialized, shutdown, type Engine } from '../engine/engine.ts';
import { formatHelp, parseCommand, UsageError, usageLine, type Parsed } from './args.ts';
import { COMMANDS, commandByName } from './commands.ts';
import { prepareOutput, type Output } from './outputs.ts';
import { RUNNERS } from './runners.ts';

export function usage(): string {
  const lines = ['usage: sgilo <command> [args]   (sgilo <command> --help: its options and an example)', '', 'commands:'];
  for (const c of COMMANDS) lines.push(`  ${usageLine(c).slice('sgilo '.length)}`, `      ${c.summary}`);
  lines.push('', 'Every command writes under out/<command>/ unless --out says otherwise, and refuses to replace an existing output without --force.', 'environment: SGILO_DEBUG_WGSL=1 prints each pipeline\'s final WGSL.');
  return lines.join('\n');
}

/** Commands that need no GPU (inspect does: a score model is checked by building it). */
const NO_ENGINE = new Set(['memory', 'training-curve', 'serve', 'help']);

async function withEngine(fn: (eng: Engine) => Promise<number>): Promise<number> {
  // Reuse an engine that is already running (tests call main()); only shut down one we started.
  const running = isInitialized();
  // Unquantized GPU timestamps for the benchmarks (Dawn rounds them to ~65 us otherwise).
  const eng = await init({ dawnOptions: ['disable-dawn-features=timestamp_quantization'] });
  try {
    return await fn(eng);
  } finally {
    if (!running) shutdown();
  }
}

/** The output of a command run (bench writes one only for goals). */
function outputOf(p: Parsed): Output | undefined {
  const decl = commandByName(p.command)!;
  if (!decl.output || (p.command === 'bench' && p.positionals[0] !== 'goals')) return undefined;
  // train-score and fit-gaussian name their default file after the block, known once the data is read.
  if ((p.command === 'train-score' || p.command === 'fit-gaussian') && !p.given.has('out')) return undefined;
  // experiment --queue: enqueueing writes nothing; with --report the merged report goes there.
  if (p.command === 'experiment' && p.given.has('queue')) return p.given.has('report') ? prepareOutput('--report', String(p.values.report), 'dir', p.force) : undefined;
  // reconstruct --queue writes only its --save-features file (with --collect).
  if (p.command === 'reconstruct' && p.given.has('queue')) return p.given.has('collect') ? prepareOutput('--save-features', String(p.values['save-features']), 'file', p.force) : undefined;
  return prepareOutput('--out', String(p.values.out), decl.output.kind, p.force);
}

/**
 * Runs `sgilo <argv>`; the exit code. `dryRun`: parse, check and prepare the output, then stop
 * before any work (the CLI fuzzer drives every generated argument vector through this).
 */
export async function main(argv: string[], options: { dryRun?: boolean } = {}): Promise<number> {
  const [cmd, ...args] = argv;
  if (cmd === undefined || cmd === '--help' || cmd === '-h') {
    (cmd === undefined ? console.error : console.log)(usage());
    return cmd === undefined ? 1 : 0;
  }
  const decl = commandByName(cmd);
  if (!decl) {
    console.error(`sgilo: unknown command "${cmd}" (commands: ${COMMANDS.map((c) => c.name).join(', ')}; sgilo help)`);
    return 1;
  }
  let output: Output | undefined;
  let verbose = args.includes('--verbose');
  try {
    const p = parseCommand(decl, args);
    if (p.help) {
      console.log(formatHelp(decl));
      return 0;
    }
    verbose = p.verbose;
    if (cmd === 'help') {
      if (p.positionals[0]) return main([p.positionals[0], '--help']);
      console.log(usage());
      return 0;
    }
    output = outputOf(p);
    if (options.dryRun) {
      output?.abort();
      return 0;
    }
    const run = RUNNERS[cmd];
    const code = NO_ENGINE.has(cmd) ? await run(p, output) : await withEngine((eng) => run(p, output, eng));
    if (code === 0) output?.commit();
    else output?.abort();
    return code;
  } catch (e) {
    output?.abort();
    const err = e as Error;
    const msg = err?.message ?? String(e);
    console.error(`sgilo ${cmd}: ${msg}${e instanceof UsageError ? `\n(sgilo ${cmd} --help lists the options)` : ''}`);
    if (verbose && !(e instanceof UsageError) && err?.stack) console.error(err.stack);
    return 1;
  }
}

