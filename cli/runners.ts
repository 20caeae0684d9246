// What each declared command runs (cli/commands.ts declares, cli/main.ts parses and dispatches):
// a function of the parsed arguments, the prepared output (cli/outputs.ts) and, for GPU commands,
// the engine; returns the exit code.

import { describeAdapter } from '../engine/device.ts';
import type { Engine } from '../engine/engine.ts';
import { formatTable, runGradCase, type CheckResult } from '../engine/gradcheck.ts';
import { gradCases } from '../engine/cases/index.ts';
import { runRngChecks } from '../engine/rngcheck.ts';
import { runStyleGAN2GradChecks, stylegan2NetworkChecks } from '../nets/gradcheck_stylegan2.ts';
import { memoryPlanCommand } from '../nets/stylegan2_plan.ts';
import type { Parsed } from './args.ts';
import type { Output } from './outputs.ts';
import { writeAtomic } from './outputs.ts';
import { generateCommand, replayCommand } from './generator_commands.ts';
import { convertCommand, inspectCommand } from './checkpoint_commands.ts';
import { reconstructCommand } from './reconstruct.ts';
import { demoCommand } from './demo.ts';
import { experimentCommand } from './experiment.ts';
import { sampleCommand, trainScoreCommand } from './score_commands.ts';
import { runTheory, theoryConfig } from './theory.ts';

export type Runner = (p: Parsed, out: Output | undefined, eng?: Engine) => Promise<number>;

async function gradcheckRun(filter: string | undefined, eng: Engine): Promise<number> {
  const cases = filter === 'stylegan2' ? [] : gradCases(filter);
  const networkRows = !filter || filter === 'stylegan2' ? stylegan2NetworkChecks().length : 0;
  if (cases.length + networkRows === 0) throw new Error(`no gradcheck case matches "${filter}"`);
  console.log(`gradcheck on ${describeAdapter(eng.gpu.adapter)}: ${cases.length + networkRows} case(s)\n`);
  const results = [];
  for (const c of cases) results.push(await runGradCase(c));
  // Whole networks: directional derivatives of the float64 reference against the GPU tape.
  if (!filter || filter === 'stylegan2') results.push(...(await runStyleGAN2GradChecks()));
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

async function benchRun(p: Parsed, out: Output | undefined, eng: Engine): Promise<number> {
  const which = p.positionals[0] ?? 'matmul';
  if (which === 'goals') {
    const { text } = await (await import('../bench/goals.ts')).runGoals(eng, { quick: p.values.quick === true, torch: p.values['no-torch'] !== true, fullsize: p.values.fullsize === true });
    writeAtomic(out!.path, text);
    console.log(`wrote ${out!.final}`);
    return 0;
  }
  const { runMatmulBench } = await import('../bench/matmul.ts');
  const quick = p.values.quick === true;
  const sizes = typeof p.values.sizes === 'string' ? p.values.sizes.split(',').map(Number) : null;
  const benches: Record<string, () => Promise<unknown>> = {
    matmul: async () => {
      if (p.values.sweep !== true) return runMatmulBench(eng, { sizes: sizes ?? [128, 256, 512, 1024], probes: true });
      if (p.values.conv === true) return (await import('../bench/conv_sweep.ts')).runConvSweep(eng, { quick });
      return (await import('../bench/matmul_sweep.ts')).runMatmulSweep(eng, { sizes: sizes ?? (quick ? [64, 128] : [1024, 2048, 4096]), quick });
    },
    conv2d: async () => (await import('../bench/conv2d.ts')).runConv2dBench(eng),
    upfirdn2d: async () => (await import('../bench/upfirdn2d.ts')).runUpfirdn2dBench(eng, {}),
    modulated_conv: async () => (await import('../bench/modulated_conv.ts')).runModulatedConvBench(eng, {}),
    attention: async () => (await import('../bench/attention.ts')).runAttentionBench(eng, {}),
    'score-train': async () => (await import('../bench/score_train.ts')).runScoreTrainBench(eng, {}),
    stylegan2: async () => (await import('../bench/stylegan2.ts')).runStyleGAN2Bench(eng, { full: p.values.full === true }),
    dispatch: async () => (await import('../bench/dispatch.ts')).runDispatchBench(eng),
    memory: async () => (await import('../bench/memory.ts')).runMemoryBench(eng, { sizes: p.values.full === true ? [32, 64, 128, 256] : [32, 64, 128] }),
  };
  benches['paper-size'] = async () => (await import('../bench/paper_size.ts')).runPaperSizeBench(eng, { quick });
  // `all`: the kernel benchmarks; paper-size is minutes of config-f on a CPU adapter.
  for (const n of which === 'all' ? Object.keys(benches).filter((b) => b !== 'paper-size') : [which]) {
    await benches[n]();
    console.log('');
  }
  return 0;
}

export const RUNNERS: Record<string, Runner> = {
  // --queue: inversions as queued jobs (cli/inversions.ts, which loads the queue client).
  reconstruct: async (p, out) => (p.given.has('queue') ? (await import('./inversions.ts')).queuedInversions(p, out) : reconstructCommand(p, out!)),
  demo: (p, out) => demoCommand(p, out!),
  generate: (p, out) => generateCommand(p, out!),
  sample: (p, out) => sampleCommand(p, out!),
  'train-score': (p, out) => trainScoreCommand(p, out),
  'eval-score': async (p, out) => (await import('./eval_score.ts')).evalScoreCommand(p, out!),
  'fit-gaussian': async (p, out) => (await import('./eval_score.ts')).fitGaussianCommand(p, out),
  'encode-fashion': async (p, out) => (await import('./encode_fashion.ts')).encodeFashionCommand(p, out!),
  'training-curve': async (p, out) => (await import('./training_curve.ts')).trainingCurveCommand(p, out!),
  tune: async (p, out) => (await import('./tune.ts')).tuneCommand(p, out!),
  experiment: (p, out) => experimentCommand(p, out),
  // Imported on demand: bullmq is loaded by the queue commands only.
  worker: async (p) => (await import('./worker.ts')).workerCommand(p),
  theory: async (p, out) => {
    // The run writes into the staging folder; its log names the folder the files end up in.
    await runTheory(theoryConfig(p.values.quick === true), out!.path, (line) => console.log(line.replaceAll(out!.path, out!.final)));
    return 0;
  },
  inspect: (p) => inspectCommand(p),
  convert: (p, out) => convertCommand(p, out!),
  replay: (p, out) => replayCommand(p, out!),
  gradcheck: (p, _out, eng) => gradcheckRun(p.positionals[0], eng!),
  rngcheck: async (_p, _out, eng) => {
    const results = await runRngChecks();
    console.log(`rngcheck on ${describeAdapter(eng!.gpu.adapter)}: ${results.length} case(s)\n`);
    return report(results);
  },
  memory: async () => memoryPlanCommand(),
  bench: (p, out, eng) => benchRun(p, out, eng!),
  adapter: async (_p, _out, eng) => {
    console.log(describeAdapter(eng!.gpu.adapter));
    console.log(JSON.stringify({ adapter: eng!.gpu.adapter, limits: eng!.gpu.limits }, null, 2));
    return 0;
  },
  // Imported on demand: esbuild and node:http are needed by this command only.
  serve: async (p) => (await import('./serve.ts')).serveCommand({ port: Number(p.values.port), host: String(p.values.host) }),
};
