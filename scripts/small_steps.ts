// Engine-only timing and dispatch counts of the goals report's small PyTorch-peer rows (the ILO and
// SGILO step of round 1 and StyleGAN2 Fashion fwd+bwd), without running the peer: for before/after
// comparisons of dispatch-count and fixed-cost work (bench/results/2026-12-06-cpu-floor-lavapipe.md).
// Each row prints ms per step (median wall, first step dropped; StyleGAN2: mean of synced passes),
// the fastest step (the least disturbed on a shared machine), process CPU ms per step (all
// threads, llvmpipe's included; steadier under load), dispatches per step, and the kernels with the
// most dispatches per step (TOPK=n for more).
//
//   node --import ./scripts/register-ts.mjs scripts/small_steps.ts [--rows ilo1,ilo4,sgilo4,sg4] [--steps 8] [--repeat 1]

import { init } from '../engine/engine.ts';
import { dispatchCountsByKernel, resetDispatchCounts } from '../engine/kernel.ts';
import { makePasses } from '../bench/stylegan2.ts';
import { runMethod, type Problem } from '../samplers/inverse/intermediate_layer.ts';
import { takeMeasurements } from '../samplers/inverse/reconstruct.ts';
import { makeOperator } from '../samplers/inverse/operators/index.ts';
import { DEFAULT_GENERATOR, loadSetup, methodConfig, modelPath, type Setup } from '../samplers/inverse/fashion.ts';
import { testImages } from '../samplers/inverse/demo.ts';

const args = process.argv.slice(2);
const opt = (name: string, dflt: string) => {
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1] : dflt;
};
const rows = opt('--rows', 'ilo1,ilo4,ilo8,sgilo1,sgilo4,sgilo8,sg4').split(',');
const steps = Number(opt('--steps', '8'));
const repeat = Number(opt('--repeat', '1'));
// Process CPU time (every thread: Node's and llvmpipe's): steadier than wall time on a shared machine.
const cpuMs = () => {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1000;
};
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor((xs.length - 1) / 2)];

function countsSince(before: Map<string, number>, per: number): Map<string, number> {
  const out = new Map<string, number>();
  for (const [k, v] of dispatchCountsByKernel()) {
    const d = v - (before.get(k) ?? 0);
    if (d > 0) out.set(k, d / per);
  }
  return out;
}

function report(name: string, ms: number, counts: Map<string, number>, cpuMs?: number, minMs?: number): void {
  const total = [...counts.values()].reduce((a, b) => a + b, 0);
  if (cpuMs !== undefined) name += ` (process CPU ${cpuMs.toFixed(1)} ms/step)`;
  if (minMs !== undefined) name += ` (fastest step ${minMs.toFixed(2)} ms)`;
  const top = [...counts.entries()].sort((a, b) => b[1] - a[1]).slice(0, Number(process.env.TOPK ?? 6)).map(([k, v]) => `${k} ${v.toFixed(1)}`);
  console.log(`${name}: ${ms.toFixed(2)} ms/step, ${total.toFixed(1)} dispatches/step; top: ${top.join(', ')}`);
}

async function roundRow(setup: Setup, method: 'ilo' | 'sgilo', N: number): Promise<void> {
  const g = setup.generator;
  const size = g.config.size;
  const { operator, noiseStd } = makeOperator('inpaint-random:0.05', [3, size, size], { seed: 0 });
  const y = takeMeasurements(operator, await testImages(N), N, noiseStd, 0).keep();
  const problem: Problem = { generator: g, proxy: setup.proxy, forward: (x) => operator.apply(x), y, priors: setup.priors };
  const config = methodConfig(method, steps, [1]);
  for (let r = 0; r < repeat + 1; r++) {
    const times: number[] = [];
    let last = 0;
    let before = new Map<string, number>();
    let counted = 0;
    let cpu0 = 0;
    await runMethod(problem, config, {
      seed: 0,
      onRound: (s) => {
        if (s.round === 1 && s.when === 'start') last = performance.now();
      },
      onStep: (s) => {
        if (s.round !== 1) return;
        const now = performance.now();
        times.push(now - last);
        last = now;
        if (times.length === 1) {
          before = dispatchCountsByKernel();
          cpu0 = cpuMs();
        } else counted++;
      },
    });
    const counts = countsSince(before, counted);
    const cpu = (cpuMs() - cpu0) / counted;
    // The first pass warms the pipelines; only later ones are reported.
    if (r > 0) report(`${method} round 1 N=${N}`, median(times.slice(1)), counts, cpu, Math.min(...times.slice(1)));
  }
  y.dispose();
  operator.dispose?.();
}

async function stylegan2Row(setup: Setup, N: number): Promise<void> {
  // The goals bench's passes (bench/stylegan2.ts): the same seeded W+, noise and upstream.
  const passes = makePasses(setup.generator, N);
  const pass = passes.fwdBwd;
  const eng = (await import('../engine/engine.ts')).engine();
  pass();
  await eng.sync();
  for (let r = 0; r < repeat; r++) {
    const before = dispatchCountsByKernel();
    const t0 = performance.now();
    const c0 = cpuMs();
    const each: number[] = [];
    const recording: number[] = [];
    for (let i = 0; i < steps; i++) {
      const s0 = performance.now();
      pass();
      recording.push(performance.now() - s0);
      await eng.sync();
      each.push(performance.now() - s0);
    }
    // The host's recording alone (the pass's JavaScript and WebGPU calls, before the sync).
    console.log(`stylegan2 fwd+bwd N=${N}: recording ${Math.min(...recording).toFixed(2)} ms fastest, ${median(recording).toFixed(2)} ms median`);
    report(`stylegan2 fwd+bwd N=${N}`, (performance.now() - t0) / steps, countsSince(before, steps), (cpuMs() - c0) / steps, Math.min(...each));
  }
  passes.dispose();
}

const eng0 = await init({ dawnOptions: ["disable-dawn-features=timestamp_quantization"] });
console.log(`adapter ${eng0.gpu.adapter.description}, subgroups ${JSON.stringify(eng0.gpu.subgroups)}, load ${(await import("node:os")).loadavg().map((x) => x.toFixed(2)).join(" ")}`);
resetDispatchCounts();
const setup = await loadSetup(DEFAULT_GENERATOR, [modelPath('score-block0.safetensors')]);
for (const row of rows) {
  const m = /^(ilo|sgilo|sg)(\d+)$/.exec(row);
  if (!m) throw new Error(`unknown row ${row}`);
  const N = Number(m[2]);
  if (m[1] === 'sg') await stylegan2Row(setup, N);
  else await roundRow(setup, m[1] as 'ilo' | 'sgilo', N);
}
setup.dispose();
process.exit(0);
