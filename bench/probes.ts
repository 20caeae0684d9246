// Peak probes: an FMA-bound kernel (arithmetic ceiling) and a copy kernel (bandwidth ceiling), in
// shaders/bench_probes.wgsl, with the host-side recurrence that checks the FMA probe's output.
//
// Dimensions: n = invocations (FMA probe) or vec4 elements (copy probe); T = loop trips per
// invocation. FMA probe flops = n * T * 64; copy probe bytes moved = n * 16 * 2 (read + write).

import { defineKernel, grid1d } from '../engine/kernel.ts';
import { engine } from '../engine/engine.ts';
import { empty, tensor, type Tensor } from '../engine/tensor.ts';
import { measure, type MeasureOptions, type TimedTarget, type Timing } from './timing.ts';

const fmaKernel = defineKernel({ shader: 'bench_probes', entry: 'fma_probe', bindings: { seed: 'read', result: 'read_write', fparams: 'uniform' } });
const copyKernel = defineKernel({ shader: 'bench_probes', entry: 'copy_probe', bindings: { src: 'read', dst: 'read_write', cparams: 'uniform' } });

/** flops per invocation per loop trip: 8 chains x vec4 x (mul + add). */
export const FMA_FLOPS_PER_TRIP = 64;
/** The 8 chains of the probe start at seed + 0.001 * (4 * chain + lane). */
const CHAINS = 8;

export interface FmaSetup {
  /** Invocations. */
  n: number;
  /** Loop trips per invocation. */
  iterations: number;
  a: number;
  b: number;
}

/** Records one FMA probe dispatch: seed [n] -> result [n, 4]. */
export function dispatchFmaProbe(seed: Tensor, result: Tensor, s: FmaSetup): void {
  if (seed.size !== s.n || result.size !== 4 * s.n) {
    throw new RangeError(`fma_probe: seed must have ${s.n} elements and result ${4 * s.n}, got ${seed.size} and ${result.size}`);
  }
  if (!Number.isInteger(s.iterations) || s.iterations < 0) throw new RangeError(`fma_probe: iterations must be a non-negative integer, got ${s.iterations}`);
  fmaKernel.dispatch({ seed, result, fparams: { n: s.n, iterations: s.iterations, a: s.a, b: s.b } }, grid1d(Math.ceil(s.n / 64)));
}

/** Records dst = src over `src.size / 4` vec4 elements: src [4n] -> dst [4n]. */
export function dispatchCopyProbe(src: Tensor, dst: Tensor): void {
  if (src.size % 4 !== 0 || dst.size !== src.size) {
    throw new RangeError(`copy_probe: src and dst must have the same size, a multiple of 4; got ${src.size} and ${dst.size}`);
  }
  const n = src.size / 4;
  copyKernel.dispatch({ src, dst, cparams: { n } }, grid1d(Math.ceil(n / 256)));
}

/** What the FMA probe writes for one seed: the sum over 8 chains of the f32 recurrence, per lane. */
export function fmaProbeReference(seed: number, s: FmaSetup): number[] {
  const f = Math.fround;
  const out = [0, 0, 0, 0];
  const a = f(s.a);
  const b = f(s.b);
  for (let lane = 0; lane < 4; lane++) {
    const chains: number[] = [];
    for (let c = 0; c < CHAINS; c++) {
      // The product of two f32 is exact in f64, so f(acc * a + b) rounds like a fused f32 fma.
      let acc = f(f(f(seed) + f(0.001 * lane)) + f(0.004 * c));
      for (let t = 0; t < s.iterations; t++) acc = f(acc * a + b);
      chains.push(acc);
    }
    const [c0, c1, c2, c3, c4, c5, c6, c7] = chains;
    out[lane] = f(f(f(c0 + c1) + f(c2 + c3)) + f(f(c4 + c5) + f(c6 + c7)));
  }
  return out;
}

export interface ProbeResult {
  name: string;
  value: number;
  unit: 'GFLOP/s' | 'GB/s';
  timing: Timing;
  detail: string;
}

function engineTarget(): TimedTarget {
  const eng = engine();
  return { device: eng.device, timestamps: eng.gpu.hasTimestampQuery, flush: () => eng.submit(), idle: () => eng.sync() };
}

/**
 * FMA peak: `n` invocations of `iterations` trips per dispatch. Default n: 16384 on a CPU adapter
 * (~1 GFLOP per dispatch, many in one measurement), 2^20 on a GPU (~69 GFLOP, about 1 ms on a
 * large one: enough invocations to fill every core, and few enough dispatches per measurement).
 */
export async function runFmaPeak(o: MeasureOptions & { n?: number; iterations?: number }): Promise<ProbeResult> {
  const n = o.n ?? (engine().gpu.adapter.isSoftware ? 1 << 14 : 1 << 20);
  const s: FmaSetup = { n, iterations: o.iterations ?? 1024, a: 0.999, b: 0.001 };
  const seed = tensor(Float32Array.from({ length: s.n }, (_, i) => (i % 97) / 97), [s.n]);
  const result = empty([s.n, 4]);
  try {
    const timing = await measure(engineTarget(), () => dispatchFmaProbe(seed, result, s), o);
    const flops = s.n * s.iterations * FMA_FLOPS_PER_TRIP * timing.iterations;
    // Spot-check a few invocations so a kernel that skipped its loop cannot report a peak.
    const got = await result.readF32();
    for (const i of [0, 1, s.n >> 1, s.n - 1]) {
      const want = fmaProbeReference((i % 97) / 97, s);
      for (let l = 0; l < 4; l++) {
        if (Math.abs(got[4 * i + l] - want[l]) > 1e-3 * Math.abs(want[l]) + 1e-5) {
          throw new Error(`fma_probe: invocation ${i} lane ${l} is ${got[4 * i + l]}, expected ${want[l]}`);
        }
      }
    }
    return {
      name: 'FMA peak',
      value: flops / (timing.ms / 1000) / 1e9,
      unit: 'GFLOP/s',
      timing,
      detail: `${s.n} invocations x ${s.iterations} trips x 8 vec4 fma, x${timing.iterations}`,
    };
  } finally {
    seed.dispose();
    result.dispose();
  }
}

/** Copy bandwidth over `mib` MiB (read + write counted). */
export async function runBandwidth(o: MeasureOptions & { mib?: number }): Promise<ProbeResult> {
  const mib = o.mib ?? 64;
  const size = (mib * 1024 * 1024) / 4;
  // Real data: untouched zero pages could be shared by the OS and read unrealistically fast.
  const src = tensor(Float32Array.from({ length: size }, (_, i) => i & 1023), [size]);
  const dst = empty([size]);
  try {
    const timing = await measure(engineTarget(), () => dispatchCopyProbe(src, dst), o);
    const got = await dst.readF32();
    for (const i of [0, 1, size >> 1, size - 1]) {
      if (got[i] !== (i & 1023)) throw new Error(`copy_probe: element ${i} is ${got[i]}, expected ${i & 1023}`);
    }
    const bytes = 2 * size * 4 * timing.iterations;
    return { name: 'copy bandwidth', value: bytes / (timing.ms / 1000) / 1e9, unit: 'GB/s', timing, detail: `${mib} MiB read + ${mib} MiB written, x${timing.iterations}` };
  } finally {
    src.dispose();
    dst.dispose();
  }
}
