// upfirdn2d and bias_act benchmark at the StyleGAN2 shapes of the 32x32 Fashion model
// (models/fashion32/README.md: channels {4: 128, 8: 128, 16: 64, 32: 32}, batch `batch`):
//   blur        after each upsampling (transposed) conv: [N, C, 2r+1, 2r+1] -> [N, C, 2r, 2r],
//               4x4 kernel outer([1,3,3,1])/64*4, pad (1, 1)
//   upsample2d  the ToRGB skip: [N, 3, r, r] -> [N, 3, 2r, 2r], up 2, pad (2, 1)
//   bias_act    lrelu of every styled conv: [N, C, r, r], bias [C]
// each forward only (no tape) and forward + backward (gradient of x, and of the bias for bias_act:
// what ILO/SGILO pay per step). These ops are memory-bound, so the unit is GB/s of compulsory
// traffic: every input, output and upstream tensor read or written once (kernels, biases and the
// bias gradient's partial sums ignored). upfirdn2d: fwd in+out, bwd out+in; bias_act: fwd x, y =
// 2n, bwd x, gy, gx = 3n. The ceiling is the adapter's copy bandwidth (bench/probes.ts).
//
// Peer: tfjs-backend-webgpu has no upfirdn2d; a depthwise conv2d with the blur kernel (pad 1) is
// a fair stand-in for the blur, and add + leakyRelu + mul (what a tfjs user writes) for bias_act,
// both forward only, NHWC. Every result (ours and tfjs') is checked against the float64 reference
// before it is timed. Wire into `sgilo bench` as `await runUpfirdn2dBench(eng, {})`.

import { describeAdapter } from '../engine/device.ts';
import type { Engine } from '../engine/engine.ts';
import { compare, relativeToMax, relToMax } from '../engine/gradcheck.ts';
import { HostRandom, host, type HostArray } from '../engine/reference/host.ts';
import { upfirdn2dForward, upfirdn2dVjp } from '../engine/reference/upfirdn2d.ts';
import { biasActForward, biasActVjp } from '../engine/reference/bias_act.ts';
import { blur, makeKernel, upfirdn2dConfig, upsample2d } from '../engine/ops/upfirdn2d.ts';
import { biasAct, biasActConfig } from '../engine/ops/bias_act.ts';
import { grad, noGrad } from '../engine/tape.ts';
import { tensor, type Tensor } from '../engine/tensor.ts';
import { runBandwidth, type ProbeResult } from './probes.ts';
import { errorText, optionalTfjs, type TfjsPeer } from './tfjs_peer.ts';
import { measure, type MeasureOptions, type TimedTarget } from './timing.ts';

export interface Upfirdn2dBenchOptions {
  /** Batch size N (default 8). */
  batch?: number;
  /** Also time config-f sized rows (FFHQ 256: blur [4, 256, 129, 129], bias_act [4, 256, 128, 128]). */
  large?: boolean;
  /** Run the copy-bandwidth probe (default true). */
  probes?: boolean;
  /** Compare with tfjs-backend-webgpu (default true). */
  tfjs?: boolean;
  targetSeconds?: number;
  repeats?: number;
  log?: (line: string) => void;
}

type OpName = 'blur' | 'upsample2d' | 'bias_act';
interface Row {
  op: OpName;
  shape: number[];
  backward: boolean;
}

const BLUR = makeKernel([1, 3, 3, 1], 4);
const UP = { cfg: upfirdn2dConfig({ up: 2, pad: [2, 1, 2, 1] }), f: host([4, 4], BLUR.data) };
const BL = { cfg: upfirdn2dConfig({ pad: [1, 1, 1, 1] }), f: host([4, 4], BLUR.data) };
const LRELU = biasActConfig([1, 1], { act: 'lrelu' });

function rows(N: number, large: boolean): Row[] {
  const base: [OpName, number[]][] = [
    ['blur', [N, 128, 9, 9]],
    ['blur', [N, 64, 17, 17]],
    ['blur', [N, 32, 33, 33]],
    ['upsample2d', [N, 3, 8, 8]],
    ['upsample2d', [N, 3, 16, 16]],
    ['bias_act', [N, 128, 8, 8]],
    ['bias_act', [N, 64, 16, 16]],
    ['bias_act', [N, 32, 32, 32]],
  ];
  if (large) base.push(['blur', [4, 256, 129, 129]], ['bias_act', [4, 256, 128, 128]]);
  return base.flatMap(([op, shape]) => [false, true].map((backward) => ({ op, shape, backward })));
}

/** Reference outputs for one row: y, and gx (and gb) for the upstream gy. */
function reference(r: Row, x: HostArray, b: HostArray, gy: HostArray | null): { y: HostArray; grads: Float64Array[] } {
  if (r.op === 'bias_act') return { y: biasActForward(x, b, LRELU), grads: gy ? biasActVjp(x, b, LRELU, gy) : [] };
  const p = r.op === 'blur' ? BL : UP;
  return { y: upfirdn2dForward(x, p.f, p.cfg), grads: gy ? [upfirdn2dVjp(x, p.f, p.cfg, gy)] : [] };
}

function ours(r: Row, x: Tensor, b: Tensor): Tensor {
  if (r.op === 'bias_act') return biasAct(x, b, { act: 'lrelu' });
  return r.op === 'blur' ? blur(x, [1, 1], { upsampleFactor: 2 }) : upsample2d(x);
}

/** max|a-b| / max|b| per tensor (relativeToMax): the check before timing, ours and tfjs'. */
const CHECK_TOL = 1e-5;
const checkAgainst = (got: ArrayLike<number>, want: ArrayLike<number>) => compare(got, want, relativeToMax(want, CHECK_TOL, 1e-30));

function bytesOf(r: Row, inSize: number, outSize: number): number {
  const fwd = r.op === 'bias_act' ? 2 * inSize : inSize + outSize;
  const bwd = r.op === 'bias_act' ? 3 * inSize : inSize + outSize;
  return 4 * (fwd + (r.backward ? bwd : 0));
}

/** tfjs ops used here, beyond TfjsPeer (the module instance startTfjs loaded). */
interface TfOps {
  depthwiseConv2d(x: unknown, f: unknown, strides: number, pad: number): TfTensorLike;
  add(a: unknown, b: unknown): TfTensorLike;
  leakyRelu(x: unknown, alpha: number): TfTensorLike;
  mul(a: unknown, b: number): TfTensorLike;
  tidy<T>(fn: () => T): T;
}
type TfTensorLike = { data(): Promise<ArrayLike<number>>; dispose(): void };

/** NCHW -> NHWC for tfjs. */
function toNhwc(x: Float32Array, [N, C, H, W]: number[]): Float32Array {
  const out = new Float32Array(x.length);
  for (let n = 0; n < N; n++) for (let c = 0; c < C; c++) for (let i = 0; i < H * W; i++) out[(n * H * W + i) * C + c] = x[(n * C + c) * H * W + i];
  return out;
}

interface Result {
  label: string;
  check: string;
  ours: { gbs: number; us: number } | string;
  tfjs: { gbs: number; us: number } | string;
}

const fmt = (v: number) => (v >= 100 ? v.toFixed(0) : v >= 10 ? v.toFixed(1) : v.toFixed(2));

export async function runUpfirdn2dBench(eng: Engine, options: Upfirdn2dBenchOptions = {}): Promise<void> {
  const log = options.log ?? ((line: string) => console.log(line));
  const o: MeasureOptions = { targetSeconds: options.targetSeconds ?? 0.3, repeats: options.repeats ?? 2 };
  const N = options.batch ?? 8;
  const target: TimedTarget = { device: eng.device, timestamps: eng.gpu.hasTimestampQuery, flush: () => eng.submit(), idle: () => eng.sync() };
  const adapter = describeAdapter(eng.gpu.adapter);
  log(`upfirdn2d / bias_act bench on ${adapter}: batch ${N}, ~${o.targetSeconds} s per measurement, best of ${o.repeats}`);
  let probe: ProbeResult | null = null;
  if (options.probes ?? true) {
    probe = await runBandwidth({ ...o, repeats: Math.max(3, o.repeats) });
    log(`  probe ${probe.name}: ${probe.value.toFixed(1)} ${probe.unit} (${probe.detail})`);
  }
  const { peer, ops: tf, reason: tfReason } = await optionalTfjs<TfOps>(eng, options.tfjs ?? true, 'depthwiseConv2d', log);

  const results: Result[] = [];
  const rng = new HostRandom(4321);
  const wrong: string[] = [];
  try {
    for (const r of rows(N, options.large ?? false)) {
      const n = r.shape.reduce((p, d) => p * d, 1);
      const xs = Float32Array.from({ length: n }, () => rng.normal());
      const bs = Float32Array.from({ length: r.shape[1] }, () => 0.2 * rng.normal());
      const xh = host(r.shape, xs);
      const bh = host([r.shape[1]], bs);
      const outShape = r.op === 'blur' ? [r.shape[0], r.shape[1], r.shape[2] - 1, r.shape[3] - 1] : r.op === 'upsample2d' ? [r.shape[0], r.shape[1], 2 * r.shape[2], 2 * r.shape[3]] : r.shape;
      const outN = outShape.reduce((p, d) => p * d, 1);
      const gys = Float32Array.from({ length: outN }, () => rng.normal());
      const want = reference(r, xh, bh, r.backward ? host(outShape, gys) : null);
      const label = `${r.op} ${r.backward ? 'fwd+bwd' : 'fwd'} [${r.shape.join(',')}]${r.op === 'bias_act' ? '' : ` -> ${outShape[2]}x${outShape[3]}`}`;
      const x = tensor(xs, r.shape).requireGrad(r.backward);
      const b = tensor(bs, [r.shape[1]]).requireGrad(r.backward);
      const gy = tensor(gys, outShape);
      const step = r.backward
        ? () => {
            const y = ours(r, x, b);
            for (const g of grad(y, r.op === 'bias_act' ? [x, b] : [x], { upstream: gy })) g.dispose();
            y.dispose();
          }
        : () => noGrad(() => ours(r, x, b)).dispose();
      const res: Result = { label, check: '', ours: '', tfjs: r.backward || r.op === 'upsample2d' ? '-' : tfReason };
      try {
        // Check the whole result against the float64 reference, then time.
        const y = ours(r, x, b);
        const gs = r.backward ? grad(y, r.op === 'bias_act' ? [x, b] : [x], { upstream: gy }) : [];
        const checks = [checkAgainst(await y.readF32(), want.y.data), ...(await Promise.all(gs.map((g) => g.readF32()))).map((g, i) => checkAgainst(g, want.grads[i]))];
        y.dispose();
        gs.forEach((g) => g.dispose());
        const worst = Math.max(...checks.map(relToMax));
        res.check = worst.toExponential(1);
        if (!checks.every((c) => c.pass)) throw new Error(`WRONG: max|a-b|/max|b| = ${worst}`);
        const t = await measure(target, step, o);
        res.ours = { gbs: (bytesOf(r, n, outN) * t.iterations) / (t.ms / 1e3) / 1e9, us: (t.ms * 1e3) / t.iterations };
      } catch (e) {
        res.ours = errorText(e);
        wrong.push(`${label}: ${errorText(e)}`);
      } finally {
        x.dispose();
        b.dispose();
        gy.dispose();
      }
      if (peer && tf && !r.backward && r.op !== 'upsample2d') res.tfjs = await timeTfjs(peer, tf, r, xs, bs, want.y, o, n, outN);
      log(`  ${label}: ours ${typeof res.ours === 'string' ? res.ours : `${fmt(res.ours.gbs)} GB/s`}, tfjs ${typeof res.tfjs === 'string' ? res.tfjs : `${fmt(res.tfjs.gbs)} GB/s`}`);
      results.push(res);
    }
  } finally {
    peer?.close();
  }
  log('');
  log(formatTable(adapter, target.timestamps, results, probe));
  if (wrong.length) throw new Error(`upfirdn bench: results failed their check:\n${wrong.join('\n')}`);
}

async function timeTfjs(peer: TfjsPeer, tf: TfOps, r: Row, xs: Float32Array, bs: Float32Array, want: HostArray, o: MeasureOptions, n: number, outN: number): Promise<Result['tfjs']> {
  const [N, C, H, W] = r.shape;
  const x = peer.tensor(toNhwc(xs, r.shape), [N, H, W, C]);
  // Depthwise filter [4, 4, C, 1]: the blur kernel for every channel (it is symmetric, so tfjs'
  // correlation equals our true convolution).
  const fdata = new Float32Array(16 * C);
  for (let i = 0; i < 16; i++) fdata.fill(BLUR.data[i], i * C, (i + 1) * C);
  const f = peer.tensor(fdata, [4, 4, C, 1]);
  const b = peer.tensor(bs, [C]);
  const run = () => (r.op === 'blur' ? tf.depthwiseConv2d(x, f, 1, 1) : tf.tidy(() => tf.mul(tf.leakyRelu(tf.add(x, b), 0.2), Math.SQRT2)));
  try {
    const y = run();
    const got = Float32Array.from(await y.data());
    y.dispose();
    const check = checkAgainst(got, toNhwc(Float32Array.from(want.data), want.shape));
    if (!check.pass) return `WRONG: ${relToMax(check).toExponential(1)}`;
    const t = await measure(peer.target, () => run().dispose(), o);
    const bytes = 4 * (r.op === 'bias_act' ? 2 * n : n + outN);
    return { gbs: (bytes * t.iterations) / (t.ms / 1e3) / 1e9, us: (t.ms * 1e3) / t.iterations };
  } catch (e) {
    return `failed: ${errorText(e)}`;
  } finally {
    x.dispose();
    f.dispose();
    b.dispose();
  }
}

function formatTable(adapter: string, timestamps: boolean, results: Result[], probe: ProbeResult | null): string {
  const cols = ['op, shape', 'max rel err', 'ours GB/s', 'ours us', 'tfjs GB/s', 'ours/tfjs', '% of copy BW'];
  const cell = (c: Result['ours'], f: (v: { gbs: number; us: number }) => string) => (typeof c === 'string' ? (c.length > 24 ? `${c.slice(0, 21)}...` : c) : f(c));
  const body = results.map((r) => [
    r.label,
    r.check || '-',
    cell(r.ours, (v) => fmt(v.gbs)),
    cell(r.ours, (v) => v.us.toFixed(1)),
    cell(r.tfjs, (v) => fmt(v.gbs)),
    typeof r.ours !== 'string' && typeof r.tfjs !== 'string' ? `${(r.ours.gbs / r.tfjs.gbs).toFixed(2)}x` : '-',
    typeof r.ours !== 'string' && probe ? `${((100 * r.ours.gbs) / probe.value).toFixed(1)}%` : '-',
  ]);
  const all = [cols, ...body];
  const w = cols.map((_, c) => Math.max(...all.map((row) => row[c].length)));
  const line = (row: string[]) => row.map((s, c) => (c === 0 ? s.padEnd(w[c]) : s.padStart(w[c]))).join(' | ');
  return [
    `upfirdn2d / bias_act benchmark on ${adapter}`,
    `date: ${new Date().toISOString().replace('T', ' ').slice(0, 19)} UTC; timer: ${timestamps ? 'GPU timestamp queries' : 'wall clock'}`,
    '',
    line(cols),
    w.map((n) => '-'.repeat(n)).join('-|-'),
    ...body.map(line),
    '',
    probe ? `${probe.name}: ${probe.value.toFixed(1)} ${probe.unit} (${probe.detail})` : 'copy bandwidth probe not run',
    'note: GB/s of compulsory traffic (see bench/upfirdn2d.ts); tfjs: depthwiseConv2d stand-in for blur, add+leakyRelu+mul for bias_act, forward only',
  ].join('\n');
}
