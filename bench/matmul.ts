// `sgilo bench` / `sgilo demo`: matmul GFLOP/s of our kernel (engine/ops/matmul.ts) and of
// tfjs-backend-webgpu on the same adapter, against the FMA peak and copy bandwidth of the adapter
// (bench/probes.ts). Every result is spot-checked against a float64 CPU product before it is
// timed, so a broken kernel cannot report a fast number.
//
// Shapes: a [batch, M, K] x b [batch, K, N] -> [batch, M, N] (batch 1 is a plain 2-D matmul);
// flops per product = 2 * batch * M * N * K.

import { describeAdapter } from '../engine/device.ts';
import type { Engine } from '../engine/engine.ts';
import { HostRandom } from '../engine/reference/host.ts';
import { matmul } from '../engine/ops/matmul.ts';
import { noGrad } from '../engine/tape.ts';
import { tensor, type Tensor } from '../engine/tensor.ts';
import { runBandwidth, runFmaPeak, type ProbeResult } from './probes.ts';
import { formatBenchTable, type BenchRow, type Cell } from './table.ts';
import { optionalTfjs, type TfjsPeer } from './tfjs_peer.ts';
import { benchContender, contender, type Contender } from './contender.ts';
import { engineTarget, type MeasureOptions, type Timing } from './timing.ts';

export interface MatmulShape {
  batch: number;
  M: number;
  N: number;
  K: number;
}

export interface MatmulBenchOptions {
  /** Square sizes (M = N = K). */
  sizes: number[];
  /** Run the FMA-peak and bandwidth probes (the full bench); off means the short demo variant. */
  probes: boolean;
  /** The batched shape (default 8 x 256^3); null for none. */
  batched?: MatmulShape | null;
  /** Seconds per measurement (default 0.5 full, 0.3 short). */
  targetSeconds?: number;
  /** Measurements per shape, fastest kept (default 2 full, 1 short). */
  repeats?: number;
  /** Compare with tfjs-backend-webgpu (default true). */
  tfjs?: boolean;
  /** Explicit shapes, timed after the square sizes and the batched shape (e.g. a net's layers). */
  shapes?: MatmulShape[];
  /** Progress lines (default console.log). */
  log?: (line: string) => void;
}

export function shapeLabel(s: MatmulShape): string {
  const mnk = `${s.M}x${s.N}x${s.K}`;
  return s.batch === 1 ? mnk : `${s.batch} x ${mnk}`;
}

export function flopsOf(s: MatmulShape): number {
  return 2 * s.batch * s.M * s.N * s.K;
}

export function randomOperand(rng: HostRandom, n: number): Float32Array {
  const x = new Float32Array(n);
  for (let i = 0; i < n; i++) x[i] = 2 * rng.uniform() - 1;
  return x;
}

/**
 * Compares 16 elements of `out` (corners and random ones) with the float64 product of a and b.
 * Returns null when all agree, else a description of the first mismatch. The tolerance is float32
 * accumulation over K terms: 1e-4 * sum_k |a_ik b_kj| (K * 2^-24 is 6e-5 at K = 1024).
 */
export function spotCheck(s: MatmulShape, a: Float32Array, b: Float32Array, out: ArrayLike<number>, seed = 7): string | null {
  if (out.length !== s.batch * s.M * s.N) return `output has ${out.length} elements, expected ${s.batch * s.M * s.N}`;
  const rng = new HostRandom(seed);
  const picks: [number, number, number][] = [
    [0, 0, 0],
    [0, 0, s.N - 1],
    [s.batch - 1, s.M - 1, 0],
    [s.batch - 1, s.M - 1, s.N - 1],
  ];
  while (picks.length < 16) picks.push([Math.floor(rng.uniform() * s.batch), Math.floor(rng.uniform() * s.M), Math.floor(rng.uniform() * s.N)]);
  for (const [t, i, j] of picks) {
    let ref = 0;
    let scale = 0;
    for (let k = 0; k < s.K; k++) {
      const p = a[(t * s.M + i) * s.K + k] * b[(t * s.K + k) * s.N + j];
      ref += p;
      scale += Math.abs(p);
    }
    const got = out[(t * s.M + i) * s.N + j];
    if (!(Math.abs(got - ref) <= 1e-4 * scale + 1e-6)) return `wrong result at [${t}, ${i}, ${j}]: ${got} vs ${ref.toPrecision(7)}`;
  }
  return null;
}

export function prepareOurs(eng: Engine, s: MatmulShape, a: Float32Array, b: Float32Array): Contender {
  const lead = s.batch === 1 ? [] : [s.batch];
  const ta: Tensor = tensor(a, [...lead, s.M, s.K]);
  const tb: Tensor = tensor(b, [...lead, s.K, s.N]);
  const run = () => noGrad(() => matmul(ta, tb));
  return contender(engineTarget(eng), run, (c) => c.readF32(), [ta, tb]);
}

function prepareTfjs(tf: TfjsPeer, s: MatmulShape, a: Float32Array, b: Float32Array): Contender {
  const lead = s.batch === 1 ? [] : [s.batch];
  const ta = tf.tensor(a, [...lead, s.M, s.K]);
  const tb = tf.tensor(b, [...lead, s.K, s.N]);
  return contender(tf.target, () => tf.matMul(ta, tb), (c) => c.data(), [ta, tb]);
}

function describeCell(c: Cell, timings: Timing[]): string {
  if ('error' in c) return c.error;
  const t = timings[timings.length - 1];
  return `${c.gflops.toFixed(2)} GFLOP/s (${t.iterations} iterations in ${(t.ms / 1000).toFixed(2)} s, ${t.source}; wall ${(t.wallMs / 1000).toFixed(2)} s)`;
}

function timerLine(timings: Timing[]): string {
  if (!timings.length) return 'none (nothing was timed)';
  const gpu = timings.filter((t) => t.source === 'gpu timestamps');
  if (!gpu.length) return 'wall clock of submitted work (no timestamp-query)';
  const q = gpu.some((t) => t.quantized) ? ', quantized by Dawn to 65.5 us (under 0.03% of a measurement)' : '';
  const wall = gpu.length < timings.length ? `; ${timings.length - gpu.length} measurement(s) fell back to wall clock` : '';
  return `GPU timestamp queries around back-to-back iterations${q}${wall}`;
}


/** Prints the table and returns its rows (in the order: sizes, batched, shapes). */
export async function runMatmulBench(eng: Engine, options: MatmulBenchOptions): Promise<BenchRow[]> {
  const log = options.log ?? ((line: string) => console.log(line));
  const full = options.probes;
  const o: MeasureOptions = { targetSeconds: options.targetSeconds ?? (full ? 0.5 : 0.3), repeats: options.repeats ?? (full ? 2 : 1) };
  const shapes: MatmulShape[] = options.sizes.map((n) => ({ batch: 1, M: n, N: n, K: n }));
  const batched = options.batched === undefined ? { batch: 8, M: 256, N: 256, K: 256 } : options.batched;
  if (batched) shapes.push(batched);
  shapes.push(...(options.shapes ?? []));
  const adapter = describeAdapter(eng.gpu.adapter);
  log(`matmul bench on ${adapter}: ${shapes.length} shapes, ~${o.targetSeconds} s per measurement, best of ${o.repeats}${full ? ', with peak probes' : ''}`);
  const timings: Timing[] = [];

  const probes: ProbeResult[] = [];
  if (full) {
    // A peak is a maximum: take the best of at least 3 measurements.
    const po = { ...o, repeats: Math.max(3, o.repeats) };
    for (const run of [runFmaPeak, runBandwidth]) {
      const p = await run(po);
      timings.push(p.timing);
      probes.push(p);
      log(`  probe ${p.name}: ${p.value.toFixed(1)} ${p.unit} (${p.detail})`);
    }
  }

  const { peer: tf, reason: tfReason } = await optionalTfjs(eng, options.tfjs ?? true, null, log);

  const rows: BenchRow[] = [];
  const wrong: string[] = [];
  const rng = new HostRandom(1234);
  try {
    for (const [idx, s] of shapes.entries()) {
      const label = shapeLabel(s);
      const a = randomOperand(rng, s.batch * s.M * s.K);
      const b = randomOperand(rng, s.batch * s.K * s.N);
      const at = `  [${idx + 1}/${shapes.length}] ${label}`;
      const check = (got: ArrayLike<number>) => spotCheck(s, a, b, got);
      const ours = await benchContender(() => prepareOurs(eng, s, a, b), check, flopsOf(s), o, timings);
      if ('error' in ours) wrong.push(`ours ${label}: ${ours.error}`);
      log(`${at} ours: ${describeCell(ours, timings)}`);
      let peer: Cell = { error: tfReason };
      if (tf) {
        peer = await benchContender(() => prepareTfjs(tf, s, a, b), check, flopsOf(s), o, timings);
        log(`${at} tfjs: ${describeCell(peer, timings)}`);
      }
      rows.push({ shape: label, ours, tfjs: peer });
    }
  } finally {
    tf?.close();
  }

  const fma = probes.find((p) => p.name === 'FMA peak');
  const notes = [`each number: the fastest of ${o.repeats} measurement(s) of N back-to-back products, N chosen for ~${o.targetSeconds} s`];
  if (!full) notes.push('short variant: peak probes not run (`sgilo bench` runs them)');
  log('');
  log(
    formatBenchTable({
      adapter,
      date: new Date().toISOString().replace('T', ' ').slice(0, 19) + ' UTC',
      timer: timerLine(timings),
      rows,
      probes,
      fmaPeak: fma ? fma.value : null,
      notes,
    }),
  );
  if (wrong.length) throw new Error(`our matmul failed its check against the CPU reference:\n${wrong.join('\n')}`);
  return rows;
}
