// Peak GPU memory of a StyleGAN2 forward + backward, planned by running the real code
// (nets/stylegan2.ts and the tape) on the counting backend (engine/counting_backend.ts): every
// tensor takes its buffer from the same BufferPool class the WebGPU engine uses, every dispatch
// is checked and counted but runs nowhere, so the pool's peak of bytesInUse is the one the device
// would reach. Nothing is allocated on a device; no device is needed.
//
// The scenario is the one ILO/SGILO run every step (and `replay generator`): inside a scope, W+ and
// the noise maps are uploaded and require grad, image = synthesis(W+, noise), then
// grad(image, [W+, ...noise], {upstream: R}); optionally every parameter requires grad too (a
// training step). The parameters live throughout (kept). The step runs twice and the second is
// measured: the first fills the caches a long run keeps (the upfirdn2d FIR kernel tensor).
//
// The pool counts exact requested bytes in `bytesInUse`; it also rounds each buffer up to its
// bucket and keeps freed buffers for reuse (by bucket) until the engine is destroyed, so the device
// memory the pool holds after the steps is `poolBytes` (bytesAllocated, parameters included).
//
// test/stylegan2_memory.test.ts checks the plan against the WebGPU pool's measured peak.

import { backend, withBackend } from '../engine/backend.ts';
import { CountingBackend, PLANNING_DEVICE } from '../engine/counting_backend.ts';
import type { DeviceInfo } from '../engine/backend.ts';
import { HostRandom } from '../engine/reference/host.ts';
import { grad, clearTape } from '../engine/tape.ts';
import { scope, tensor, type Tensor } from '../engine/tensor.ts';
import { StyleGAN2, configF, noiseSide, numLatents, numNoises, type StyleGAN2Config } from './stylegan2.ts';

export interface MemoryPlanOptions {
  /** Every parameter requires grad too (a training step); default false (ILO/SGILO: W+ and noise). */
  paramGrads?: boolean;
  /**
   * The device whose decisions the plan follows (subgroup kernels, grid limits): a running
   * engine's `gpu` to mirror it, else PLANNING_DEVICE (a GPU without the subgroup kernels).
   */
  device?: DeviceInfo;
}

export interface MemoryPlan {
  config: StyleGAN2Config;
  batch: number;
  paramGrads: boolean;
  /** Parameters (state dict incl. noise buffers), alive before and after. */
  paramBytes: number;
  /** W+, the noise maps and the upstream gradient R. */
  inputBytes: number;
  /** Peak of the pool's bytesInUse during the step, parameters (and cached kernels) included. */
  peakBytes: number;
  /** What the step itself adds at its peak, above the bytes in use when it starts (what the test measures). */
  passPeakBytes: number;
  /** Largest single buffer (a WebGPU binding limit applies to it). */
  largestBufferBytes: number;
  /** Device memory the pool holds after the steps (bucket sizes, freed buffers kept for reuse), parameters included. */
  poolBytes: number;
  /** Dispatches of one step. */
  dispatches: number;
}

/**
 * The scenario the plan models: inside a scope, random W+ and noise maps (requiring grad),
 * image = synthesis, upstream R, grad(image, [W+, ...noise(, ...parameters)]), sync. On a planning
 * backend the inputs are zeros (the same tensors, without drawing millions of normals).
 */
export async function synthesisStep(gen: StyleGAN2, batch: number, options: MemoryPlanOptions = {}, seed = 7): Promise<void> {
  const c = gen.config;
  const rng = new HostRandom(seed);
  const plan = backend().planning;
  const randn = (shape: number[]) => {
    const n = shape.reduce((a, b) => a * b, 1);
    return tensor(plan ? new Float32Array(n) : Float32Array.from({ length: n }, () => rng.normal()), shape);
  };
  if (options.paramGrads) gen.requireGrad(true);
  try {
    await scope(async () => {
      const wplus = randn([batch, numLatents(c), c.styleDim]).requireGrad();
      const noise = Array.from({ length: numNoises(c) }, (_, i) => randn([batch, 1, noiseSide(i), noiseSide(i)]).requireGrad());
      const image = gen.synthesis({ wplus, noise });
      const upstream = randn([...image.shape]);
      const wrt: Tensor[] = [wplus, ...noise, ...(options.paramGrads ? gen.params.values() : [])];
      grad(image, wrt, { upstream });
      await backend().sync();
    }).finally(clearTape);
  } finally {
    if (options.paramGrads) gen.requireGrad(false);
  }
}

/** The active backend's peak of bytesInUse while `fn` runs, and the level when it started. */
export async function measurePeakBytes(fn: () => Promise<unknown>): Promise<{ startBytes: number; peakBytes: number }> {
  const b = backend();
  const startBytes = b.memory().bytesInUse;
  b.resetPeak();
  await fn();
  return { startBytes, peakBytes: b.memory().peakBytesInUse };
}

/** Plans the peak bytes of synthesis(W+, noise) forward + backward at this batch (no device needed). */
export async function planStyleGAN2Memory(c: StyleGAN2Config, batch: number, options: MemoryPlanOptions = {}): Promise<MemoryPlan> {
  const counting = new CountingBackend(options.device ?? PLANNING_DEVICE);
  const paramGrads = options.paramGrads ?? false;
  return withBackend(counting, async () => {
    const gen = StyleGAN2.withShapes(c);
    try {
      const paramBytes = counting.memory().bytesInUse;
      await synthesisStep(gen, batch, { paramGrads });
      const dispatchesBefore = counting.dispatches;
      const m = await measurePeakBytes(() => synthesisStep(gen, batch, { paramGrads }));
      const noiseBytes = Array.from({ length: numNoises(c) }, (_, i) => batch * noiseSide(i) ** 2 * 4).reduce((a, b) => a + b, 0);
      const inputBytes = batch * numLatents(c) * c.styleDim * 4 + noiseBytes + batch * 3 * c.size * c.size * 4;
      return {
        config: c,
        batch,
        paramGrads,
        paramBytes,
        inputBytes,
        peakBytes: m.peakBytes,
        passPeakBytes: m.peakBytes - m.startBytes,
        largestBufferBytes: counting.largestBufferBytes,
        poolBytes: counting.memory().bytesAllocated,
        dispatches: counting.dispatches - dispatchesBefore,
      };
    } finally {
      gen.dispose();
    }
  });
}

const GIB = 2 ** 30;
const MIB = 2 ** 20;
const fmt = (b: number) => (b >= GIB ? `${(b / GIB).toFixed(2)} GiB` : `${(b / MIB).toFixed(1)} MiB`);

export function formatMemoryPlans(plans: MemoryPlan[]): string {
  const head = ['model', 'batch', 'grads of', 'params', 'inputs', 'peak in use', 'pass adds', 'largest buffer', 'pool after'];
  const rows = plans.map((p) => [
    `${p.config.size}x${p.config.size}, C4=${p.config.channels[4]}`,
    String(p.batch),
    p.paramGrads ? 'W+, noise, params' : 'W+, noise',
    fmt(p.paramBytes),
    fmt(p.inputBytes),
    fmt(p.peakBytes),
    fmt(p.passPeakBytes),
    fmt(p.largestBufferBytes),
    fmt(p.poolBytes),
  ]);
  const all = [head, ...rows];
  const w = head.map((_, i) => Math.max(...all.map((r) => r[i].length)));
  const line = (r: string[]) => r.map((c, i) => c.padEnd(w[i])).join('  ').trimEnd();
  return [line(head), w.map((n) => '-'.repeat(n)).join('  '), ...rows.map(line)].join('\n');
}

/** The Fashion-MNIST model's config (models/fashion32). */
export const FASHION_CONFIG: StyleGAN2Config = { size: 32, styleDim: 128, nMlp: 4, lrMlp: 0.01, channels: { 4: 128, 8: 128, 16: 64, 32: 32 } };

/** 16 GB, the budget the issue sets for config-f 1024 at batch 1. */
export const BUDGET_BYTES = 16e9;

/** `sgilo memory`: the planned peak of config-f 1024 (and the Fashion model) forward + backward. */
export async function memoryPlanCommand(log: (line: string) => void = console.log): Promise<number> {
  const plans = [
    await planStyleGAN2Memory(configF(1024), 1),
    await planStyleGAN2Memory(configF(1024), 1, { paramGrads: true }),
    await planStyleGAN2Memory(FASHION_CONFIG, 1),
    await planStyleGAN2Memory(FASHION_CONFIG, 8),
  ];
  log('StyleGAN2 synthesis forward + backward, planned peak of buffer bytes in use (float32; the real code on the counting backend, nothing run)\n');
  log(formatMemoryPlans(plans));
  const f = plans[1];
  const ok = plans.slice(0, 2).every((p) => p.peakBytes <= BUDGET_BYTES && p.poolBytes <= BUDGET_BYTES);
  log(`\nconfig-f 1024 at batch 1: peak ${fmt(f.peakBytes)} with parameter gradients, ${ok ? 'within' : 'OVER'} a 16 GB GPU (${(BUDGET_BYTES / GIB).toFixed(1)} GiB).`);
  log(`largest single buffer ${fmt(plans[0].largestBufferBytes)} (WebGPU's default maxStorageBufferBindingSize is 128 MiB; the engine requests the adapter's own limit).`);
  return ok ? 0 : 1;
}
