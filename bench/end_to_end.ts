// End-to-end rows of the goals report (bench/goals.ts): the fixed per-dispatch cost, the Fashion
// StyleGAN2 forward and forward + backward, the ViT score model's forward, one SGILO step, and the
// demo reconstruction. Every workload is timed unprofiled (median of `runs` batches after a
// warm-up) and, separately, profiled once (engine/profiler.ts) to count its dispatches and submits:
// the profiler gives each dispatch a pass of its own, which would distort the timing.
//
// Dimensions: N images (batch), T tokens of the ViT (H*W of the modelled activation), C its channels.
// SGILO step = one Adam step of runMethod (samplers/inverse/intermediate_layer.ts) at the demo's settings
// (4 test images, 1 chain, inpainting 5% of the pixels, blocks [1, 2]); timed from the onStep
// callbacks (each step reads its loss back, so the wall time between two callbacks is one step) and
// profiled over whole rounds (onRound start/end), divided by the round's steps.

import { mkdir } from 'node:fs/promises';
import type { Engine } from '../engine/engine.ts';
import type { KernelTime } from '../engine/profiler.ts';
import { readFileBytes } from '../engine/io/files.ts';
import { HostRandom } from '../engine/reference/host.ts';
import { noGrad } from '../engine/tape.ts';
import { full, scope, tensor } from '../engine/tensor.ts';
import { affine } from '../engine/ops/elementwise.ts';
import { StyleGAN2 } from '../nets/stylegan2.ts';
import { readGeneratorCheckpoint } from '../nets/stylegan2_checkpoint.ts';
import { ScoreViT, type ScoreViTConfig } from '../nets/score_vit.ts';
import { initScoreStateDict, loadScoreModel } from '../samplers/score/checkpoint.ts';
import { runMethod, type Problem } from '../samplers/inverse/intermediate_layer.ts';
import { takeMeasurements } from '../samplers/inverse/reconstruct.ts';
import { makeOperator } from '../samplers/inverse/operators/index.ts';
import { DEFAULT_GENERATOR, loadSetup, methodConfig, modelPath, shippedPriors } from '../samplers/inverse/fashion.ts';
import { DEMO_TASKS, runDemo, testImages } from '../samplers/inverse/demo.ts';
import { makePasses } from './stylegan2.ts';
import { timeBatch, type TimedTarget } from './timing.ts';
import type { DispatchCost, EndToEndRow } from './goals_report.ts';

export interface PassTiming {
  /** Median per pass over the runs: GPU timestamps where available (else wall clock). */
  gpuMs: number | null;
  wallMs: number;
  runs: number;
}

export interface Profiled {
  dispatches: number;
  submits: number;
  kernels: KernelTime[];
}

function engineTarget(eng: Engine): TimedTarget {
  return { device: eng.device, timestamps: eng.gpu.hasTimestampQuery, flush: () => eng.submit(), idle: () => eng.sync() };
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};

/** One warm-up pass, one calibration pass, then `runs` batches of n passes (n for ~minMs each); medians per pass. */
export async function medianPass(eng: Engine, pass: () => void, o: { runs: number; minMs: number; maxPasses?: number }): Promise<PassTiming> {
  const target = engineTarget(eng);
  await timeBatch(target, 1, pass);
  const calib = await timeBatch(target, 1, pass);
  const n = Math.max(1, Math.min(o.maxPasses ?? 100, Math.ceil(o.minMs / Math.max(calib.wallMs, 1e-3))));
  const gpu: number[] = [];
  const wall: number[] = [];
  for (let r = 0; r < o.runs; r++) {
    const t = await timeBatch(target, n, pass);
    if (t.source === 'gpu timestamps') gpu.push(t.ms / n);
    wall.push(t.wallMs / n);
  }
  return { gpuMs: gpu.length === o.runs ? median(gpu) : null, wallMs: median(wall), runs: o.runs };
}

/** Dispatches, submits and per-kernel GPU time of one call of `fn` (null without timestamp-query). */
export async function profileOnce(eng: Engine, fn: () => void | Promise<void>): Promise<Profiled | null> {
  if (!eng.gpu.hasTimestampQuery) return null;
  await eng.sync();
  eng.startProfile();
  let failure: unknown = null;
  try {
    await fn();
  } catch (e) {
    failure = e;
  }
  const result = await eng.stopProfile(); // closed even when fn threw
  if (failure) throw failure;
  return result;
}

/**
 * The fixed cost of a dispatch: `n` affine ops on a 1-element tensor recorded back to back (one
 * dispatch each, checked with the profiler): GPU time per dispatch from the timestamps around the
 * batch, host time per dispatch from the recording loop alone (op set-up, bind group, uniform
 * packing, and the engine's periodic submits). Medians of `runs` batches.
 */
export async function measureDispatchCost(eng: Engine, n: number, runs: number): Promise<DispatchCost> {
  const x = tensor([1], [1]);
  const op = () => noGrad(() => affine(x, 1.0001, 0.5)).dispose();
  try {
    const prof = await profileOnce(eng, () => {
      for (let i = 0; i < 8; i++) op();
    });
    const perOp = prof ? prof.dispatches / 8 : 1;
    const target = engineTarget(eng);
    await timeBatch(target, Math.min(n, 64), op); // warm-up: pipeline and pool
    const gpu: number[] = [];
    const host: number[] = [];
    let submits = 0;
    let source = 'wall clock';
    for (let r = 0; r < runs; r++) {
      let h0 = 0;
      let h1 = 0;
      const s0 = eng.submits;
      const t = await timeBatch(target, n, (i) => {
        if (i === 0) h0 = performance.now();
        op();
        if (i === n - 1) h1 = performance.now();
      });
      submits = eng.submits - s0;
      source = t.source;
      gpu.push((1000 * t.ms) / (n * perOp));
      host.push((1000 * (h1 - h0)) / (n * perOp));
    }
    return { what: `affine on 1 element (${perOp} dispatch${perOp === 1 ? '' : 'es'} each)`, dispatches: n * perOp, submits, gpuUsPerDispatch: median(gpu), hostUsPerDispatch: median(host), source, runs };
  } finally {
    x.dispose();
  }
}

export interface TimingOptions {
  runs: number;
  minMs: number;
  log: (line: string) => void;
}

async function timedRow(eng: Engine, workload: string, pass: () => void, o: TimingOptions, note?: string): Promise<EndToEndRow> {
  const t = await medianPass(eng, pass, o);
  const p = await profileOnce(eng, pass);
  o.log(`  ${workload}: ${t.wallMs.toFixed(2)} ms wall, ${t.gpuMs?.toFixed(2) ?? '-'} ms GPU per pass; ${p?.dispatches ?? '?'} dispatches, ${p?.submits ?? '?'} submits`);
  return { workload, gpuMs: t.gpuMs, wallMs: t.wallMs, runs: t.runs, dispatches: p?.dispatches ?? null, submits: p?.submits ?? null, note };
}

/** The Fashion generator's synthesis, forward and forward + backward (grads of W+ and noise), per batch. */
export async function stylegan2Rows(eng: Engine, batches: number[], o: TimingOptions): Promise<EndToEndRow[]> {
  const ckpt = await readGeneratorCheckpoint(await readFileBytes(DEFAULT_GENERATOR));
  const gen = StyleGAN2.fromStateDict(ckpt.config, ckpt.stateDict, ckpt.latentAvg);
  const rows: EndToEndRow[] = [];
  try {
    for (const N of batches) {
      const p = makePasses(gen, N);
      try {
        if (!(await p.check()).every(Number.isFinite)) throw new Error(`StyleGAN2 N=${N}: the forward produced non-finite values`);
        rows.push(await timedRow(eng, `StyleGAN2 Fashion N=${N} fwd`, p.fwd, o));
        rows.push(await timedRow(eng, `StyleGAN2 Fashion N=${N} fwd+bwd`, p.fwdBwd, o, 'grads of W+ and noise'));
      } finally {
        p.dispose();
      }
    }
  } finally {
    gen.dispose();
  }
  return rows;
}

/** The shipped score model's architecture (score-block1: T = 64), used for other T with random weights. */
const SHIPPED_VIT: Omit<ScoreViTConfig, 'height' | 'width'> = { channels: 128, dim: 128, depth: 2, heads: 8, dimHead: 16, mlp: 256 };

/** ViT score-model forward eps(x, t) at each token count (square grids), batch B. */
export async function vitRows(eng: Engine, tokens: number[], B: number, o: TimingOptions): Promise<EndToEndRow[]> {
  const rows: EndToEndRow[] = [];
  let shipped: ScoreViT | null = null;
  try {
    shipped = (await loadScoreModel(await readFileBytes(modelPath('score-block1.safetensors')))).net;
  } catch {
    shipped = null; // not shipped: random weights at every T
  }
  try {
    for (const T of tokens) {
      const side = Math.round(Math.sqrt(T));
      if (side * side !== T) throw new RangeError(`vitRows: T = ${T} is not a square grid`);
      const useShipped = shipped && shipped.config.height * shipped.config.width === T;
      const cfg: ScoreViTConfig = useShipped ? shipped!.config : { ...(shipped?.config ?? SHIPPED_VIT), height: side, width: side };
      const net = useShipped ? shipped! : ScoreViT.fromStateDict(cfg, initScoreStateDict(cfg, 1));
      const rng = new HostRandom(9);
      const x = tensor(Float32Array.from({ length: B * cfg.channels * T }, () => rng.uniform()), [B, cfg.channels, side, side]);
      const t = full([B], 0.01);
      try {
        const label = `ViT score forward T=${T} B=${B} (D=${cfg.dim}, depth ${cfg.depth}, ${cfg.heads} heads)`;
        rows.push(await timedRow(eng, label, () => scope(() => noGrad(() => void net.forward(x, t))), o, useShipped ? 'shipped score-block1' : 'random weights'));
      } finally {
        x.dispose();
        t.dispose();
        if (!useShipped) net.dispose();
      }
    }
  } finally {
    shipped?.dispose();
  }
  return rows;
}

export interface SgiloResult {
  rows: EndToEndRow[];
  /** The profile of the round with the score prior (or the last round), for the kernel table. */
  profile: { title: string; kernels: KernelTime[]; steps: number } | null;
}

/**
 * SGILO steps at the demo's settings: a timing run of `steps` steps per round and a profiled run
 * of `profileSteps` steps per round. One row per round (median step wall time, first step of each
 * round dropped when there are more).
 */
export async function sgiloRows(eng: Engine, steps: number, profileSteps: number, log: (line: string) => void): Promise<SgiloResult> {
  const images = 4;
  const blocks = [1, 2];
  // The ViT score models (the paper's prior, and the cost the PyTorch rows compare), not the
  // cheaper mixtures the demo now uses: the rows stay comparable with bench/results/.
  const setup = await loadSetup(DEFAULT_GENERATOR, await shippedPriors('score'));
  const size = setup.generator.config.size;
  const { operator, noiseStd } = makeOperator(DEMO_TASKS[0], [3, size, size], { seed: 0 });
  const y = takeMeasurements(operator, await testImages(images), images, noiseStd, 0).keep();
  const problem: Problem = { generator: setup.generator, proxy: setup.proxy, forward: (x) => operator.apply(x), y, priors: setup.priors };
  const rounds = [0, ...blocks];
  const label = (round: number) => {
    const b = rounds[round];
    return `SGILO step, round ${round} (block ${b}${setup.priors.has(b) ? ', score prior' : b === 0 ? ', latent + noise' : ', no prior'}), N=${images}`;
  };
  try {
    // Timing run.
    const times = rounds.map(() => [] as number[]);
    let last = 0;
    await runMethod(problem, methodConfig('sgilo', steps, blocks), {
      seed: 0,
      onRound: (r) => {
        if (r.when === 'start') last = performance.now();
      },
      onStep: (s) => {
        const now = performance.now();
        times[s.round].push(now - last);
        last = now;
      },
    });
    // Profiled run: one profile per round.
    const profiles: (Profiled | null)[] = rounds.map(() => null);
    if (eng.gpu.hasTimestampQuery) {
      let open = false;
      try {
        await runMethod(problem, methodConfig('sgilo', profileSteps, blocks), {
          seed: 0,
          onRound: async (r) => {
            if (r.when === 'start') {
              eng.startProfile();
              open = true;
            } else {
              open = false;
              profiles[r.round] = await eng.stopProfile();
            }
          },
        });
      } finally {
        if (open) await eng.stopProfile();
      }
    }
    const rows: EndToEndRow[] = rounds.map((_, round) => {
      const ts = times[round].length > 1 ? times[round].slice(1) : times[round];
      const p = profiles[round];
      const gpuSum = p ? p.kernels.reduce((s, k) => s + k.ns, 0) / 1e6 / profileSteps : null;
      const row: EndToEndRow = {
        workload: label(round),
        gpuMs: null,
        wallMs: median(ts),
        runs: ts.length,
        dispatches: p ? p.dispatches / profileSteps : null,
        submits: p ? p.submits / profileSteps : null,
        note: `wall per step (reads its loss)${gpuSum !== null ? `; profiled GPU ${gpuSum.toFixed(1)} ms/step summed over dispatches` : ''}`,
      };
      log(`  ${row.workload}: ${row.wallMs.toFixed(1)} ms per step; ${row.dispatches ?? '?'} dispatches, ${row.submits ?? '?'} submits per step`);
      return row;
    });
    const withPrior = rounds.findIndex((b) => b > 0 && setup.priors.has(b));
    const shown = withPrior >= 0 ? withPrior : rounds.length - 1;
    const p = profiles[shown];
    return { rows, profile: p ? { title: label(shown), kernels: p.kernels, steps: profileSteps } : null };
  } finally {
    y.dispose();
    operator.dispose?.();
    setup.dispose();
  }
}

/** The `demo` command in this process (its settings: 4 images, 2 tasks, CSGM/ILO/SGILO, 40 steps), wall time. */
export async function demoRow(log: (line: string) => void): Promise<EndToEndRow> {
  const out = 'out/goals-demo';
  // runDemo writes into an existing folder (the CLI stages one); here the bench makes it.
  await mkdir(out, { recursive: true });
  const t0 = performance.now();
  await runDemo({ steps: 40, images: 4, seed: 0, out });
  const ms = performance.now() - t0;
  log(`  demo: ${(ms / 1000).toFixed(1)} s`);
  return { workload: `demo reconstruction (npm run demo: ${DEMO_TASKS.join(' + ')}, CSGM/ILO/SGILO, 40 steps)`, gpuMs: null, wallMs: ms, runs: 1, dispatches: null, submits: null, note: `one run, in this process; images in ${out}/` };
}
