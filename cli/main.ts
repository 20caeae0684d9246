// The `sgilo` command line. Each command is a small async function returning an exit code.

import { describeAdapter } from '../engine/device.ts';
import { init, isInitialized, shutdown, type Engine } from '../engine/engine.ts';
import { formatTable, runGradCase, type CheckResult } from '../engine/gradcheck.ts';
import { gradCases } from '../engine/cases/index.ts';
import { runMatmulBench } from '../bench/matmul.ts';
import { runRngChecks } from '../engine/rngcheck.ts';
import { convertCommand, generateCommand, inspectCommand, replayCommand } from './generator_commands.ts';
import { reconstructCommand } from './reconstruct.ts';
import { demoCommand } from './demo.ts';
import { experimentCommand } from './experiment.ts';
import { replayScoreCommand, sampleCommand, trainScoreCommand } from './score_commands.ts';
import { runStyleGAN2GradChecks, stylegan2NetworkChecks } from '../nets/gradcheck_stylegan2.ts';
import { memoryPlanCommand } from '../nets/stylegan2_memory.ts';
import { runStyleGAN2Bench } from '../bench/stylegan2.ts';
import { runConv2dBench } from '../bench/conv2d.ts';
import { runUpfirdn2dBench } from '../bench/upfirdn2d.ts';
import { runModulatedConvBench } from '../bench/modulated_conv.ts';
import { runAttentionBench } from '../bench/attention.ts';
import { runTheory, theoryConfig } from './theory.ts';

const USAGE = `usage: sgilo <command> [args]

commands:
  gradcheck [op]   finite-difference gradient check of every op (or one), GPU vs float64 reference
  inspect <ckpt> [--network G_ema|G] [--no-clamp] [--heads h] [--grid HxW] [--weights ema|raw]
                   the file's format (NVlabs pickle, rosinality train/generator checkpoint, score_sde
                   checkpoint, state dict, safetensors), its network, inferred config, weights used, tensors
  convert <ckpt> <out.safetensors> [--network G_ema|G] [--no-clamp]
                   a generator in our own format (config in the metadata), so a pickle is parsed once
  generate <ckpt> [--seeds 0-15] [--psi 0.7] [--out out/generate.png]
                   a PNG grid of images from seeded Gaussian latents
  replay generator|score <ckpt> <inputs.safetensors> <out.safetensors>
                   [--network G_ema|G] [--no-clamp] (generator); [--heads h] [--grid HxW] [--weights ema|raw] (score)
                   every out.* and grad.* quantity of the reference fixture, from its in.* tensors
  train-score <generator.pt> [--block k] [--steps n] [--data codes|gaussian|<file>] [--out f] [--resume f] ...
                   denoising score matching of a ViT on the activations after block k
  training-curve <log>... [--series name=log1+log2] [--out curve.svg]
                   plot of the DSM loss from train-score's progress lines (resumed runs concatenate)
  sample <score.safetensors> [--n 16] [--sampler pc|ald] [--out out/score-samples.png]
                   unconditional samples of the features, rendered through the rest of the generator
  reconstruct ...  solve an inverse problem with CSGM / ILO / SGILO / SGLD (sgilo reconstruct --help)
  experiment [--steps 100] [--images 10] [--full true]
                   the paper's Figure 3 protocol (inpainting, CS, denoising) -> experiments/figure3/
  rngcheck         the GPU Philox RNG against its CPU mirror (bits and uniforms bit for bit)
  theory [--quick] Langevin vs GD on random expansive ReLU generators (Theorem 3.1); writes experiments/theory/
  memory           peak GPU memory of StyleGAN2 forward+backward (config-f 1024 and the Fashion model), planned
  bench [matmul|conv2d|upfirdn2d|modulated_conv|attention|stylegan2|all] [--full]
                   kernel benchmarks (matmul GFLOP/s, FMA peak, bandwidth) on this adapter
  bench matmul [--sizes 1024,2048] [--sweep [--quick]]
                   --sweep: GFLOP/s of the tiled GPU matmul kernel per tile shape (default 1024, 2048, 4096)
  bench paper-size [--quick]
                   StyleGAN2 config-f 1024^2 fwd and fwd+bwd (N=1, 4), an SGILO step with the paper's ViT
  bench goals [--quick]
                   issue 9's one-run table: every goal PASS/FAIL, end to end; writes bench/results/
  demo [--steps 40] reconstructs 4 Fashion-MNIST test images (5% pixels, 4x SR) with CSGM, ILO, SGILO
  adapter          the adapter and the limits the engine requests
  serve [--port 8080] [--host 127.0.0.1]
                   the web page (cli/web/): reconstructions on the browser's WebGPU
  help             this text

environment: SGILO_DEBUG_WGSL=1 prints each pipeline's final WGSL; SGILO_KERNELS=general|subgroup|tiled
forces the matmul kernel family (default: tiled on GPUs, subgroup on CPU adapters with 8-lane subgroups).`;

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

export async function gradcheckCommand(filter: string | undefined, eng: Engine): Promise<number> {
  const cases = filter === 'stylegan2' ? [] : gradCases(filter);
  const networkRows = !filter || filter === 'stylegan2' ? stylegan2NetworkChecks().length : 0;
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

export async function main(argv: string[]): Promise<number> {
  const [cmd, ...args] = argv;
  try {
    switch (cmd) {
      case 'gradcheck':
        return await withEngine((eng) => gradcheckCommand(args[0], eng));
      case 'reconstruct':
        return await withEngine(() => reconstructCommand(args));
      case 'inspect':
        return await withEngine(() => inspectCommand(args));
      case 'convert':
        return await withEngine(() => convertCommand(args));
      case 'generate':
        return await withEngine(() => generateCommand(args));
      case 'replay':
        return await withEngine(() => (args[0] === 'score' ? replayScoreCommand(args.slice(1)) : replayCommand(args)));
      case 'experiment':
        return await withEngine(() => experimentCommand(args));
      case 'train-score':
        return await withEngine(() => trainScoreCommand(args));
      case 'sample':
        return await withEngine(() => sampleCommand(args));
      case 'rngcheck':
        return await withEngine(async (eng) => {
          const results = await runRngChecks();
          console.log(`rngcheck on ${describeAdapter(eng.gpu.adapter)}: ${results.length} case(s)\n`);
          return report(results);
        });
      case 'theory':
        return await withEngine(async () => {
          const quick = args.includes('--quick');
          await runTheory(theoryConfig(quick), quick ? 'out/theory-quick' : 'experiments/theory');
          return 0;
        });
      case 'memory':
        return await memoryPlanCommand();
      case 'training-curve':
        return (await import('./training_curve.ts')).trainingCurveCommand(args);
      case 'bench':
        return await withEngine(async (eng) => {
          const which = args[0] ?? 'matmul';
          const full = args.includes('--full');
          const quick = args.includes('--quick');
          const sizesAt = args.indexOf('--sizes');
          const sizes = sizesAt >= 0 ? (args[sizesAt + 1] ?? '').split(',').map(Number) : null;
          if (sizes && !sizes.every((n) => Number.isInteger(n) && n >= 1)) throw new Error(`--sizes takes positive integers separated by commas, got "${args[sizesAt + 1]}"`);
          const known = new Set(['--full', '--quick', '--sweep', '--sizes']);
          const unknown = args.slice(1).filter((a, i) => a.startsWith('-') && !known.has(a) && args[i] !== '--sizes');
          if (unknown.length) throw new Error(`unknown flag ${unknown.join(', ')} (flags: ${[...known].join(', ')})`);
          const benches: Record<string, () => Promise<unknown>> = {
            matmul: async () =>
              args.includes('--sweep')
                ? (await import('../bench/matmul_sweep.ts')).runMatmulSweep(eng, { sizes: sizes ?? (quick ? [64, 128] : [1024, 2048, 4096]), quick })
                : runMatmulBench(eng, { sizes: sizes ?? [128, 256, 512, 1024], probes: true }),
            'paper-size': async () => (await import('../bench/paper_size.ts')).runPaperSizeBench(eng, { quick }),
            conv2d: () => runConv2dBench(eng),
            upfirdn2d: () => runUpfirdn2dBench(eng, {}),
            modulated_conv: () => runModulatedConvBench(eng, {}),
            attention: () => runAttentionBench(eng, {}),
            stylegan2: () => runStyleGAN2Bench(eng, { full }),
            goals: async () => (await import('../bench/goals.ts')).runGoals(eng, { quick: args.includes('--quick') }),
          };
          const names = which === 'all' ? Object.keys(benches).filter((n) => n !== 'goals' && n !== 'paper-size') : [which];
          for (const n of names) {
            if (!benches[n]) throw new Error(`unknown benchmark "${n}" (${Object.keys(benches).join(', ')}, all)`);
            await benches[n]();
            console.log('');
          }
          return 0;
        });
      case 'demo':
        return await withEngine(() => demoCommand(args));
      case 'adapter':
        return await withEngine(async (eng) => {
          console.log(describeAdapter(eng.gpu.adapter));
          console.log(JSON.stringify({ adapter: eng.gpu.adapter, limits: eng.gpu.limits }, null, 2));
          return 0;
        });
      case 'serve':
        // Imported on demand: esbuild and node:http are needed by this command only.
        return await (await import('./serve.ts')).serveCommand(args);
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
