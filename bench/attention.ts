// `sgilo bench` (attention part): GFLOP/s of our attention (engine/ops/attention.ts, each
// implementation) and of tfjs-backend-webgpu's equivalent (matMul + softmax + matMul, and the
// backward written out with tfjs ops) on the same adapter, forward and forward+backward. Every contender's result
// is checked against the float64 reference before it is timed.
//
// Shapes: q, k, v [B, H, T, d] (d = 64, H = D / d, the ViT's token count T and width D);
// flops are nominal: forward 4 B H T^2 d (two products), forward+backward 12 B H T^2 d (plus four
// backward products); the flash backward's recomputation of the scores is not counted.

import { describeAdapter } from '../engine/device.ts';
import type { Engine } from '../engine/engine.ts';
import { compare, describeMismatch } from '../engine/gradcheck.ts';
import { HostRandom, host, type HostArray } from '../engine/reference/host.ts';
import { attentionForward, attentionVjp } from '../engine/reference/attention.ts';
import { attention, chooseImpl, type AttentionImpl } from '../engine/ops/attention.ts';
import { grad, noGrad } from '../engine/tape.ts';
import { tensor, type Tensor } from '../engine/tensor.ts';
import { runFmaPeak, type ProbeResult } from './probes.ts';
import { formatBenchTable, type BenchRow, type Cell } from './table.ts';
import { errorText, optionalTfjs, type TfjsPeer } from './tfjs_peer.ts';
import { readOnce } from './contender.ts';
import { engineTarget, measure, type MeasureOptions, type TimedTarget, type Timing } from './timing.ts';

export interface AttentionShape {
  B: number;
  H: number;
  T: number;
  d: number;
}

export interface AttentionBenchOptions {
  /** Token counts (default 16, 64, 256). */
  tokens?: number[];
  /** Model widths D = H * d (default 128, 512, 1024). */
  widths?: number[];
  /** Head size (default 64). */
  d?: number;
  /** Batch (default 1). */
  batch?: number;
  /** Our implementations to time (default: flash and materialized). */
  impls?: Exclude<AttentionImpl, 'auto'>[];
  /** Also time forward+backward (default true). */
  backward?: boolean;
  /** Run the FMA-peak probe (default true). */
  probes?: boolean;
  targetSeconds?: number;
  repeats?: number;
  tfjs?: boolean;
  log?: (line: string) => void;
}

type Pass = 'fwd' | 'fwd+bwd';

const flopsOf = (s: AttentionShape, pass: Pass) => (pass === 'fwd' ? 4 : 12) * s.B * s.H * s.T * s.T * s.d;
const shapeLabel = (s: AttentionShape) => `T=${s.T} D=${s.H * s.d} (B${s.B} H${s.H} d${s.d})`;

/** Host inputs of one shape and the reference results. */
interface Problem {
  shape: number[];
  q: HostArray;
  k: HostArray;
  v: HostArray;
  gy: HostArray;
  out: Float64Array;
  grads: Float64Array[] | null;
}

function makeProblem(rng: HostRandom, s: AttentionShape, backward: boolean): Problem {
  const shape = [s.B, s.H, s.T, s.d];
  const n = s.B * s.H * s.T * s.d;
  const draw = () => host(shape, Float32Array.from({ length: n }, () => rng.normal()));
  const [q, k, v, gy] = [draw(), draw(), draw(), draw()];
  return { shape, q, k, v, gy, out: attentionForward(q, k, v).data, grads: backward ? attentionVjp(q, k, v, gy) : null };
}

/** The float32 tolerance a result must meet before it is timed. */
const CHECK_TOL = { atol: 1e-4, rtol: 1e-3 };

/** null when `got` agrees with `want` at CHECK_TOL, else where it does not. */
function check(what: string, got: ArrayLike<number>, want: Float64Array): string | null {
  const c = compare(got, want, CHECK_TOL);
  return c.pass ? null : describeMismatch(what, got, want, c, CHECK_TOL);
}

/** One contender on one shape and pass: record one step, or run one and return its results. */
interface Prepared {
  target: TimedTarget;
  step(): void;
  results(): Promise<ArrayLike<number>[]>;
  dispose(): void;
}

function prepareOurs(eng: Engine, p: Problem, impl: AttentionImpl, pass: Pass): Prepared {
  const [q, k, v] = [p.q, p.k, p.v].map((x) => tensor(x.data, p.shape).requireGrad(pass === 'fwd+bwd'));
  const gy = tensor(p.gy.data, p.shape);
  const run = (): Tensor[] => {
    if (pass === 'fwd') return [noGrad(() => attention(q, k, v, { impl }))];
    const out = attention(q, k, v, { impl });
    return [out, ...grad(out, [q, k, v], { upstream: gy })];
  };
  return {
    target: engineTarget(eng),
    step: () => run().forEach((t) => t.dispose()),
    results: () => readOnce(run, (ts) => Promise.all(ts.map((t) => t.readF32()))),
    dispose: () => [q, k, v, gy].forEach((t) => t.dispose()),
  };
}

/** The tfjs-core functions we use beyond the peer's interface (same module instance as the peer's). */
interface TfT {
  data(): Promise<ArrayLike<number>>;
  dispose(): void;
}
interface TfOps {
  matMul(a: TfT, b: TfT, transposeA?: boolean, transposeB?: boolean): TfT;
  mul(a: TfT, b: number | TfT): TfT;
  sub(a: TfT, b: TfT): TfT;
  sum(x: TfT, axis: number, keepDims: boolean): TfT;
  softmax(x: TfT): TfT;
  tidy<T>(fn: () => T): T;
  scalar(x: number): TfT;
}

function prepareTfjs(peer: TfjsPeer, tf: TfOps, p: Problem, d: number, pass: Pass): Prepared {
  const [q, k, v, gy] = [p.q, p.k, p.v, p.gy].map((x) => peer.tensor(Float32Array.from(x.data), p.shape));
  const scale = tf.scalar(1 / Math.sqrt(d));
  // tfjs-core's Node bundle registers no gradient functions (the tfjs umbrella package does), so
  // the backward is written out with the same tfjs ops tf.grads would run:
  // dv = P^T G, dP = G v^T, dS = P (dP - rowsum(dP P)), dq = scale dS k, dk = scale dS^T q.
  const run = (): TfT[] =>
    tf.tidy(() => {
      const prob = tf.softmax(tf.mul(tf.matMul(q, k, false, true), scale));
      const out = tf.matMul(prob, v);
      if (pass === 'fwd') return [out];
      const dp = tf.matMul(gy, v, false, true);
      const ds = tf.mul(prob, tf.sub(dp, tf.sum(tf.mul(dp, prob), -1, true)));
      return [out, tf.mul(tf.matMul(ds, k), scale), tf.mul(tf.matMul(ds, q, true, false), scale), tf.matMul(prob, gy, true, false)];
    });
  return {
    target: peer.target,
    step: () => run().forEach((t) => t.dispose()),
    results: () => readOnce(run, (ts) => Promise.all(ts.map((t) => t.data()))),
    dispose: () => [q, k, v, gy, scale].forEach((t) => t.dispose()),
  };
}

async function benchOne(c: Prepared, p: Problem, s: AttentionShape, pass: Pass, o: MeasureOptions, timings: Timing[]): Promise<Cell> {
  const got = await c.results();
  const wants = pass === 'fwd' ? [p.out] : [p.out, ...p.grads!];
  const names = ['out', 'dq', 'dk', 'dv'];
  for (const [i, want] of wants.entries()) {
    const wrong = check(names[i], got[i], want);
    if (wrong) return { error: `WRONG: ${wrong}` };
  }
  const t = await measure(c.target, () => c.step(), o);
  timings.push(t);
  return { gflops: (flopsOf(s, pass) * t.iterations) / (t.ms / 1000) / 1e9, iterations: t.iterations };
}

async function guarded(make: () => Prepared, run: (c: Prepared) => Promise<Cell>): Promise<Cell> {
  let c: Prepared | null = null;
  try {
    c = make();
    return await run(c);
  } catch (e) {
    return { error: `failed: ${errorText(e)}` };
  } finally {
    c?.dispose();
  }
}

const describe = (c: Cell, t: Timing | undefined) =>
  'error' in c ? c.error : `${c.gflops.toFixed(2)} GFLOP/s (${t?.iterations} it in ${((t?.ms ?? 0) / 1000).toFixed(2)} s, ${((t?.ms ?? 0) / (t?.iterations ?? 1)).toFixed(3)} ms each)`;

/** Prints the table and returns its rows (shapes x passes x impls; * marks the default impl). */
export async function runAttentionBench(eng: Engine, options: AttentionBenchOptions = {}): Promise<BenchRow[]> {
  const log = options.log ?? ((line: string) => console.log(line));
  const d = options.d ?? 64;
  const shapes: AttentionShape[] = [];
  for (const T of options.tokens ?? [16, 64, 256]) for (const D of options.widths ?? [128, 512, 1024]) shapes.push({ B: options.batch ?? 1, H: Math.max(1, Math.round(D / d)), T, d });
  const impls = options.impls ?? ['flash', 'materialized'];
  const passes: Pass[] = options.backward === false ? ['fwd'] : ['fwd', 'fwd+bwd'];
  const o: MeasureOptions = { targetSeconds: options.targetSeconds ?? 0.4, repeats: options.repeats ?? 2 };
  const adapter = describeAdapter(eng.gpu.adapter);
  log(`attention bench on ${adapter}: ${shapes.length} shapes x ${passes.join(', ')}, ours (${impls.join(', ')}) vs tfjs`);

  const probes: ProbeResult[] = [];
  const timings: Timing[] = [];
  if (options.probes ?? true) {
    const p = await runFmaPeak({ ...o, repeats: Math.max(3, o.repeats) });
    probes.push(p);
    log(`  probe ${p.name}: ${p.value.toFixed(1)} ${p.unit}`);
  }
  const { peer, ops: tf, reason: tfReason } = await optionalTfjs<TfOps>(eng, options.tfjs ?? true, 'softmax', log);

  const rows: BenchRow[] = [];
  const rng = new HostRandom(1234);
  try {
    for (const s of shapes) {
      const problem = makeProblem(rng, s, passes.includes('fwd+bwd'));
      for (const pass of passes) {
        let theirs: Cell = { error: tfReason };
        if (peer && tf) {
          theirs = await guarded(() => prepareTfjs(peer!, tf!, problem, d, pass), (c) => benchOne(c, problem, s, pass, o, timings));
          log(`  ${shapeLabel(s)} ${pass} tfjs: ${describe(theirs, timings.at(-1))}`);
        }
        for (const impl of impls) {
          const ours = await guarded(() => prepareOurs(eng, problem, impl, pass), (c) => benchOne(c, problem, s, pass, o, timings));
          log(`  ${shapeLabel(s)} ${pass} ${impl}: ${describe(ours, timings.at(-1))}`);
          const auto = chooseImpl(s.T, s.T, s.d, pass === 'fwd+bwd') === impl ? '*' : '';
          rows.push({ shape: `${shapeLabel(s)} ${pass} ${impl}${auto}`, ours, tfjs: theirs });
        }
      }
    }
  } finally {
    peer?.close();
  }

  const gpuTimed = timings.length > 0 && timings.every((t) => t.source === 'gpu timestamps');
  const table = formatBenchTable({
    adapter,
    date: new Date().toISOString().replace('T', ' ').slice(0, 19) + ' UTC',
    timer: gpuTimed ? 'GPU timestamp queries around back-to-back iterations' : 'wall clock of submitted work (at least partly)',
    rows,
    probes,
    fmaPeak: probes.length ? probes[0].value : null,
    notes: [
      `fastest of ${o.repeats} measurement(s) of ~${o.targetSeconds} s; nominal flops: fwd 4 B H T^2 d, fwd+bwd 12 B H T^2 d`,
      "tfjs: matMul(q, k^T) * scale -> softmax -> matMul(., v), backward written out with tfjs ops (6 ops); * marks our default ('auto') for the shape",
    ],
  });
  log('');
  log(table.replace(/^matmul benchmark/, 'attention benchmark'));
  return rows;
}
