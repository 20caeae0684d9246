// The `sgilo` command line. Each command is a small async function returning an exit code.

import { describeAdapter } from '../engine/device.ts';
import { init, shutdown, type Engine } from '../engine/engine.ts';
import { formatTable, runGradCase, type CheckResult } from '../engine/gradcheck.ts';
import { gradCases } from '../engine/gradcheck_cases.ts';
import { runMatmulBench } from '../bench/matmul.ts';
import { runRngChecks } from '../engine/rngcheck.ts';

const USAGE = `usage: sgilo <command> [args]

commands:
  gradcheck [op]   finite-difference gradient check of every op (or one), GPU vs float64 reference
  rngcheck         the GPU Philox RNG against its CPU mirror (bits and uniforms bit for bit)
  bench            kernel benchmarks (matmul GFLOP/s, FMA peak, bandwidth) on this adapter
  demo             gradient-check table and a short matmul benchmark
  adapter          the adapter and the limits the engine requests
  help             this text

environment: SGILO_DEBUG_WGSL=1 prints each pipeline's final WGSL.`;

async function withEngine(fn: (eng: Engine) => Promise<number>): Promise<number> {
  // Unquantized GPU timestamps for the benchmarks (Dawn rounds them to ~65 us otherwise).
  const eng = await init({ dawnOptions: ['disable-dawn-features=timestamp_quantization'] });
  try {
    return await fn(eng);
  } finally {
    shutdown();
  }
}

export async function gradcheckCommand(filter: string | undefined, eng: Engine): Promise<number> {
  const cases = gradCases(filter);
  console.log(`gradcheck on ${describeAdapter(eng.gpu.adapter)}: ${cases.length} case(s)\n`);
  const results = [];
  for (const c of cases) results.push(await runGradCase(c));
  return report(results);
}

/** Prints a check table, the failures' details and the tally; the exit code is 1 on any FAIL. */
function report(results: CheckResult[]): number {
  console.log(formatTable(results));
  const failed = results.filter((r) => !r.pass);
  for (const r of failed) console.log(`\n${r.name} FAILED:\n  ${r.failures.join('\n  ')}`);
  console.log(`\n${results.length - failed.length} of ${results.length} ops pass`);
  return failed.length ? 1 : 0;
}

export async function main(argv: string[]): Promise<number> {
  const [cmd, ...args] = argv;
  try {
    switch (cmd) {
      case 'gradcheck':
        return await withEngine((eng) => gradcheckCommand(args[0], eng));
      case 'rngcheck':
        return await withEngine(async (eng) => {
          const results = await runRngChecks();
          console.log(`rngcheck on ${describeAdapter(eng.gpu.adapter)}: ${results.length} case(s)\n`);
          return report(results);
        });
      case 'bench':
        return await withEngine(async (eng) => {
          await runMatmulBench(eng, { sizes: [128, 256, 512, 1024], probes: true });
          return 0;
        });
      case 'demo':
        return await withEngine(async (eng) => {
          const code = await gradcheckCommand(undefined, eng);
          console.log('');
          await runMatmulBench(eng, { sizes: [128, 256, 512], probes: false });
          return code;
        });
      case 'adapter':
        return await withEngine(async (eng) => {
          console.log(describeAdapter(eng.gpu.adapter));
          console.log(JSON.stringify({ adapter: eng.gpu.adapter, limits: eng.gpu.limits }, null, 2));
          return 0;
        });
      case undefined:
      case 'help':
      case '--help':
      case '-h':
        console.log(USAGE);
        return cmd === undefined ? 2 : 0;
      default:
        console.error(`sgilo: unknown command "${cmd}"\n\n${USAGE}`);
        return 2;
    }
  } catch (e) {
    console.error(`sgilo ${cmd}: ${(e as Error).message}`);
    return 1;
  }
}
