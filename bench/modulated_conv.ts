// Modulated convolution benchmark (engine/ops/modulated_conv.ts): GFLOP/s of the forward and of
// forward + backward at the layer shapes of the Fashion generator (models/fashion32/README.md: size
// 32, channels {4: 128, 8: 128, 16: 64, 32: 32}), with tfjs-backend-webgpu's plain tf.conv2d of the same shape as the peer (tfjs has
// no per-sample weights; for the upsampling layers the peer is a 3x3 conv at the output resolution,
// which has the same multiply-adds as our fused transposed conv + blur). Every one of our results is
// checked against the float64 reference before it is timed, and tfjs's output against a float64 conv.
//
// FLOPs counted: 2 * N * Co * Ci * k^2 * Ho * Wo per forward (the conv; the per-(n, o) coefficient
// and the other small kernels are timed but not counted), 3x for forward + all gradients, 2x for
// forward + the gradients of x and styles (see ModulatedConvPass).
//
// After the GFLOP/s table, a second table gives our CPU time per call: on a software adapter that
// is the cost of the work itself, and it barely moves when other processes load the machine (it
// decided the op's formulation: bench/results/2026-11-27-modulated-conv-formulations.md).
//
// Usage: `runModulatedConvBench(eng, {})` (all layers, batch 1 and 8: the long run) for `sgilo bench
// modulated_conv`; `{ batches: [1], rounds: 1, passes: ['fwd', 'fwd+bwd'] }` for a short demo.

import { describeAdapter } from '../engine/device.ts';
import type { Engine } from '../engine/engine.ts';
import { compare, relativeToMax, relToMax } from '../engine/gradcheck.ts';
import { HostRandom, host } from '../engine/reference/host.ts';
import { modulatedConv2d } from '../engine/ops/modulated_conv.ts';
import { planModulatedConv, type ModulatedConvOptions } from '../engine/ops/modulated_conv_plan.ts';
import { modulatedConvForward } from '../engine/reference/modulated_conv.ts';
import { grad, noGrad } from '../engine/tape.ts';
import { scope, tensor } from '../engine/tensor.ts';
import { runFmaPeak, type ProbeResult } from './probes.ts';
import { formatBenchTable, type BenchRow, type Cell } from './table.ts';
import { errorText, optionalTfjs, type TfjsPeer } from './tfjs_peer.ts';
import { measure, type MeasureOptions, type TimedTarget } from './timing.ts';

export interface ModulatedConvLayer {
  name: string;
  Ci: number;
  Co: number;
  /** Input side. */
  H: number;
  k: number;
  up: boolean;
  demod: boolean;
}

/** The Fashion generator's modulated convs (32x32, channels {4: 128, 8: 128, 16: 64, 32: 32}). */
export const FASHION_LAYERS: ModulatedConvLayer[] = [
  { name: 'b4.conv1', Ci: 128, Co: 128, H: 4, k: 3, up: false, demod: true },
  { name: 'b4.torgb', Ci: 128, Co: 3, H: 4, k: 1, up: false, demod: false },
  { name: 'b8.conv0 up', Ci: 128, Co: 128, H: 4, k: 3, up: true, demod: true },
  { name: 'b8.conv1', Ci: 128, Co: 128, H: 8, k: 3, up: false, demod: true },
  { name: 'b8.torgb', Ci: 128, Co: 3, H: 8, k: 1, up: false, demod: false },
  { name: 'b16.conv0 up', Ci: 128, Co: 64, H: 8, k: 3, up: true, demod: true },
  { name: 'b16.conv1', Ci: 64, Co: 64, H: 16, k: 3, up: false, demod: true },
  { name: 'b16.torgb', Ci: 64, Co: 3, H: 16, k: 1, up: false, demod: false },
  { name: 'b32.conv0 up', Ci: 64, Co: 32, H: 16, k: 3, up: true, demod: true },
  { name: 'b32.conv1', Ci: 32, Co: 32, H: 32, k: 3, up: false, demod: true },
  { name: 'b32.torgb', Ci: 32, Co: 3, H: 32, k: 1, up: false, demod: false },
];

/**
 * What one timed call does: the forward; forward + gradients of x, weight and styles; or forward +
 * gradients of x and styles only (what ILO and SGILO need: the generator's weights are fixed).
 */
export type ModulatedConvPass = 'fwd' | 'fwd+bwd' | 'fwd+bwd(x,s)';

const FLOP_FACTOR: Record<ModulatedConvPass, number> = { fwd: 1, 'fwd+bwd': 3, 'fwd+bwd(x,s)': 2 };

export interface ModulatedConvBenchOptions {
  /** Batch sizes (default [1, 8]). */
  batches?: number[];
  /** Layers (default all of FASHION_LAYERS); names are matched by substring. */
  layers?: string[];
  /** The layer list to choose from instead of FASHION_LAYERS (e.g. config-f shapes). */
  layerDefs?: ModulatedConvLayer[];
  /** Default all three. */
  passes?: ModulatedConvPass[];
  /** Run the FMA peak probe for the last column (default true). */
  probes?: boolean;
  tfjs?: boolean;
  targetSeconds?: number;
  /** Turns per contender, best kept (default 3). */
  rounds?: number;
  log?: (line: string) => void;
}

/** Minimal typed surface of tfjs-core used here (loaded after startTfjs registered the backend). */
interface TfT {
  data(): Promise<ArrayLike<number>>;
  dispose(): void;
}
interface TfConv {
  conv2d(x: TfT, f: TfT, strides: number, pad: 'same'): TfT;
  conv2dTranspose(dy: TfT, f: TfT, outShape: number[], strides: number, pad: 'same'): TfT;
  engine(): { runKernel(name: string, inputs: Record<string, TfT>, attrs: Record<string, unknown>): TfT };
}

const optionsOf = (l: ModulatedConvLayer): ModulatedConvOptions => ({ demodulate: l.demod, upsample: l.up });
const rand = (rng: HostRandom, n: number) => Float32Array.from({ length: n }, () => rng.normal());

/** The bench refuses to time a result with max|a-b| / max|b| over this. */
const CHECK_TOL = 1e-4;

interface Inputs {
  x: Float32Array;
  w: Float32Array;
  s: Float32Array;
  gy: Float32Array;
  xShape: number[];
  wShape: number[];
  sShape: number[];
  yShape: number[];
}

function makeInputs(l: ModulatedConvLayer, N: number, rng: HostRandom): Inputs {
  const xShape = [N, l.Ci, l.H, l.H];
  const wShape = [l.Co, l.Ci, l.k, l.k];
  const sShape = [N, l.Ci];
  const pl = planModulatedConv(xShape, wShape, sShape, optionsOf(l));
  const yShape = [N, l.Co, pl.Ho, pl.Wo];
  const s = rand(rng, N * l.Ci).map((v) => 1 + 0.3 * v); // styles sit around 1 (affine bias +1)
  return { x: rand(rng, N * l.Ci * l.H * l.H), w: rand(rng, l.Co * l.Ci * l.k * l.k), s, gy: rand(rng, yShape.reduce((a, b) => a * b)), xShape, wShape, sShape, yShape };
}

function engineTarget(eng: Engine): TimedTarget {
  return { device: eng.device, timestamps: eng.gpu.hasTimestampQuery, flush: () => eng.submit(), idle: () => eng.sync() };
}

/** One contender at one shape: a checked step to time, and what it is worth in FLOPs. */
interface Contender {
  target: TimedTarget;
  step(): void;
  flops: number;
  dispose(): void;
}

/** Ours: checks the forward against the float64 reference, then returns the step (or why not). */
async function prepareOurs(eng: Engine, l: ModulatedConvLayer, inp: Inputs, pass: ModulatedConvPass, want: ArrayLike<number>): Promise<Contender | { error: string }> {
  const x = tensor(inp.x, inp.xShape);
  const w = tensor(inp.w, inp.wShape);
  const s = tensor(inp.s, inp.sShape);
  const gy = tensor(inp.gy, inp.yShape);
  const dispose = () => [x, w, s, gy].forEach((t) => t.dispose());
  const opts = optionsOf(l);
  const y = noGrad(() => modulatedConv2d(x, w, s, opts));
  const check = compare(await y.readF32(), want, relativeToMax(want, CHECK_TOL, 1e-30));
  y.dispose();
  if (!check.pass) {
    dispose();
    return { error: `WRONG: forward differs from the reference by ${relToMax(check).toExponential(2)}` };
  }
  const wrt = pass === 'fwd+bwd' ? [x, w, s] : pass === 'fwd+bwd(x,s)' ? [x, s] : [];
  for (const t of wrt) t.requireGrad();
  const step = wrt.length
    ? () => scope(() => void grad(modulatedConv2d(x, w, s, opts), wrt, { upstream: gy }))
    : () => noGrad(() => modulatedConv2d(x, w, s, opts).dispose());
  const pl = planModulatedConv(inp.xShape, inp.wShape, inp.sShape, optionsOf(l));
  return { target: engineTarget(eng), step, flops: 2 * pl.macs * FLOP_FACTOR[pass], dispose };
}

/** float64 NHWC 'same' conv at a few output elements: the tfjs spot check. */
function tfSpotCheck(xs: Float32Array, f: Float32Array, out: ArrayLike<number>, N: number, S: number, Ci: number, Co: number, k: number): string | null {
  const rng = new HostRandom(3);
  const pad = (k - 1) >> 1;
  for (let r = 0; r < 12; r++) {
    const [n, yy, xx, o] = [N, S, S, Co].map((d) => Math.floor(rng.uniform() * d));
    let acc = 0;
    let mag = 0;
    for (let ky = 0; ky < k; ky++)
      for (let kx = 0; kx < k; kx++) {
        const iy = yy - pad + ky;
        const ix = xx - pad + kx;
        if (iy < 0 || iy >= S || ix < 0 || ix >= S) continue;
        for (let i = 0; i < Ci; i++) {
          const v = xs[((n * S + iy) * S + ix) * Ci + i] * f[((ky * k + kx) * Ci + i) * Co + o];
          acc += v;
          mag += Math.abs(v);
        }
      }
    const got = out[((n * S + yy) * S + xx) * Co + o];
    if (!(Math.abs(got - acc) <= 1e-4 * mag + 1e-6)) return `tfjs conv2d wrong at [${n}, ${yy}, ${xx}, ${o}]: ${got} vs ${acc}`;
  }
  return null;
}

/**
 * tf.conv2d with the same multiply-adds: [N, S, S, Ci] * [k, k, Ci, Co], S = the output side;
 * backward: the two kernels tfjs's own Conv2D gradient runs (input: conv2dTranspose, filter:
 * Conv2DBackpropFilter); tfjs-core alone registers no gradients, so tf.grads cannot be used.
 */
async function prepareTfjs(tf: TfjsPeer, conv: TfConv, l: ModulatedConvLayer, N: number, pass: ModulatedConvPass, rng: HostRandom): Promise<Contender | { error: string }> {
  const S = l.up ? 2 * l.H : l.H;
  const xs = rand(rng, N * S * S * l.Ci);
  const f = rand(rng, l.k * l.k * l.Ci * l.Co);
  const dy = rand(rng, N * S * S * l.Co);
  const tx = tf.tensor(xs, [N, S, S, l.Ci]);
  const tw = tf.tensor(f, [l.k, l.k, l.Ci, l.Co]);
  const tdy = tf.tensor(dy, [N, S, S, l.Co]);
  const dispose = () => [tx, tw, tdy].forEach((t) => t.dispose());
  const y = conv.conv2d(tx, tw, 1, 'same');
  const wrong = tfSpotCheck(xs, f, await y.data(), N, S, l.Ci, l.Co, l.k);
  y.dispose();
  if (wrong) {
    dispose();
    return { error: `WRONG: ${wrong}` };
  }
  const attrs = { strides: 1, pad: 'same', dataFormat: 'NHWC', dimRoundingMode: undefined, filterShape: [l.k, l.k, l.Ci, l.Co] };
  const step = () => {
    conv.conv2d(tx, tw, 1, 'same').dispose();
    if (pass !== 'fwd') conv.conv2dTranspose(tdy, tw, [N, S, S, l.Ci], 1, 'same').dispose();
    if (pass === 'fwd+bwd') conv.engine().runKernel('Conv2DBackpropFilter', { x: tx, dy: tdy }, attrs).dispose();
  };
  return { target: tf.target, step, flops: 2 * N * l.Co * l.Ci * l.k * l.k * S * S * FLOP_FACTOR[pass], dispose };
}

/**
 * CPU time of the whole process per call (lavapipe's worker threads run in it), over `n` calls:
 * on a software adapter this is the work itself, and unlike wall-clock or GPU-timestamp time it
 * barely moves when other processes load the machine. Null where process.cpuUsage is missing.
 */
async function cpuMsPerCall(c: Contender, n: number): Promise<number | null> {
  const proc = (globalThis as { process?: { cpuUsage?(prev?: { user: number; system: number }): { user: number; system: number } } }).process;
  if (!proc?.cpuUsage) return null;
  await c.target.idle();
  const start = proc.cpuUsage();
  for (let i = 0; i < n; i++) c.step();
  c.target.flush();
  await c.target.idle();
  const used = proc.cpuUsage(start);
  return (used.user + used.system) / 1000 / n;
}

/** shape | our CPU ms per call (best of the turns). */
function formatCpuTable(rows: { label: string; ms: number }[]): string {
  const head = ['shape (CPU ms per call, best of the turns)', 'ours'];
  const body = rows.map((r) => [r.label, r.ms.toFixed(3)]);
  const widths = head.map((_, c) => Math.max(...[head, ...body].map((cells) => cells[c].length)));
  const fmt = (cells: string[]) => cells.map((s, c) => (c === 0 ? s.padEnd(widths[c]) : s.padStart(widths[c]))).join(' | ');
  return [fmt(head), widths.map((w) => '-'.repeat(w)).join('-|-'), ...body.map(fmt)].join('\n');
}


export async function runModulatedConvBench(eng: Engine, options: ModulatedConvBenchOptions = {}): Promise<BenchRow[]> {
  const log = options.log ?? ((line: string) => console.log(line));
  const o: MeasureOptions = { targetSeconds: options.targetSeconds ?? 0.2, repeats: 1 };
  const rounds = options.rounds ?? 3;
  const batches = options.batches ?? [1, 8];
  const defs = options.layerDefs ?? FASHION_LAYERS;
  const layers = options.layers ? defs.filter((l) => options.layers!.some((n) => l.name.includes(n))) : defs;
  const passes = options.passes ?? (['fwd', 'fwd+bwd', 'fwd+bwd(x,s)'] as ModulatedConvPass[]);
  const adapter = describeAdapter(eng.gpu.adapter);
  log(`modulated conv bench on ${adapter}: ${layers.length} layers x batch ${batches.join(', ')}, ~${o.targetSeconds} s per measurement, best of ${rounds} turns`);

  const probes: ProbeResult[] = [];
  if (options.probes ?? true) {
    const p = await runFmaPeak({ ...o, repeats: 3 });
    probes.push(p);
    log(`  probe ${p.name}: ${p.value.toFixed(1)} ${p.unit}`);
  }
  const { peer: tf, ops: conv, reason: tfReason } = await optionalTfjs<TfConv>(eng, options.tfjs ?? true, 'conv2d', log);

  const rows: BenchRow[] = [];
  const cpuRows: { label: string; ms: number }[] = [];
  const rng = new HostRandom(1234);
  const toCell = (c: { error: string } | number, iterations: number): Cell => (typeof c === 'number' ? { gflops: c, iterations } : c);
  try {
    for (const l of layers)
      for (const N of batches) {
        const inp = makeInputs(l, N, rng);
        const want = modulatedConvForward(host(inp.xShape, inp.x), host(inp.wShape, inp.w), host(inp.sShape, inp.s), optionsOf(l)).data;
        for (const pass of passes) {
          const label = `${l.name} ${l.Ci}->${l.Co} ${l.H}x${l.H}${l.up ? ' ->2x' : ''} k${l.k} N=${N} ${pass}`;
          // The contenders are measured in turns, `rounds` times, keeping each one's best: on a
          // shared machine a burst of load then hits all of them alike.
          const names: string[] = ['ours', ...(tf && conv ? ['tfjs'] : [])];
          const prepared = new Map<string, Contender | { error: string }>();
          for (const name of names) {
            try {
              prepared.set(name, name === 'tfjs' ? await prepareTfjs(tf!, conv!, l, N, pass, rng) : await prepareOurs(eng, l, inp, pass, want));
            } catch (e) {
              prepared.set(name, { error: `failed: ${errorText(e)}` });
            }
          }
          const best = new Map<string, { gflops: number; iterations: number }>();
          const cpuBest = new Map<string, number>();
          for (let r = 0; r < rounds; r++)
            for (const [name, c] of prepared) {
              if ('error' in c) continue;
              try {
                const t = await measure(c.target, () => c.step(), { ...o, repeats: 1 });
                const g = (c.flops * t.iterations) / (t.ms / 1000) / 1e9;
                if (g > (best.get(name)?.gflops ?? 0)) best.set(name, { gflops: g, iterations: t.iterations });
                const cpu = await cpuMsPerCall(c, t.iterations);
                if (cpu !== null && cpu < (cpuBest.get(name) ?? Infinity)) cpuBest.set(name, cpu);
              } catch (e) {
                prepared.set(name, { error: `failed: ${errorText(e)}` });
              }
            }
          if (cpuBest.has('ours')) cpuRows.push({ label, ms: cpuBest.get('ours')! });
          for (const c of prepared.values()) if (!('error' in c)) c.dispose();
          const cell = (name: string): Cell => {
            const c = prepared.get(name);
            if (!c) return { error: tfReason };
            if ('error' in c) return c;
            const b = best.get(name)!;
            return toCell(b.gflops, b.iterations);
          };
          const show = (c: Cell) => ('error' in c ? c.error : `${c.gflops.toFixed(2)}`);
          log(`  ${label}: ours ${show(cell('ours'))}, tfjs ${show(cell('tfjs'))} GFLOP/s`);
          rows.push({ shape: label, ours: cell('ours'), tfjs: cell('tfjs') });
        }
      }
  } finally {
    tf?.close();
  }
  const fma = probes.find((p) => p.name === 'FMA peak');
  const table = formatBenchTable({
    adapter,
    date: new Date().toISOString().replace('T', ' ').slice(0, 19) + ' UTC',
    timer: eng.gpu.hasTimestampQuery ? 'GPU timestamp queries around back-to-back iterations' : 'wall clock',
    rows,
    probes,
    fmaPeak: fma ? fma.value : null,
    notes: [
      `each number: the fastest of ${rounds} measurements (contenders in turns) of N back-to-back calls, N chosen for ~${o.targetSeconds} s`,
      'tfjs peer: plain tf.conv2d (NHWC, same multiply-adds; at the output resolution for "->2x" rows); backward: conv2dTranspose (x) and Conv2DBackpropFilter (filter)',
      'fwd+bwd: gradients of x, weight and styles, FLOPs counted = 3x the forward conv; fwd+bwd(x,s): of x and styles, 2x',
    ],
  });
  log('');
  log(table.replace(/^matmul benchmark/, 'modulated conv benchmark'));
  if (cpuRows.length) log(`\n${formatCpuTable(cpuRows)}`);
  return rows;
}
