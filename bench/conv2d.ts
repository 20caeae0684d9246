// Convolution benchmark: GFLOP/s of our conv2d / conv_transpose2d forward (engine/ops/conv2d.ts,
// conv_transpose2d.ts) and of tfjs-backend-webgpu's tf.conv2d / tf.conv2dTranspose on the same
// adapter, at the shapes of the 32x32 Fashion StyleGAN2 (models/fashion32/README.md: channels
// {4: 128, 8: 128, 16: 64, 32: 32}), batch 1 and 8. Every result of both contenders is spot-checked
// against a float64 sum before it is timed, so a broken kernel cannot report a fast number.
//
// Layouts: ours NCHW with w [C_out, C_in, k, k] (conv) / [C_in, C_out, k, k] (transposed); tfjs
// NHWC with filter [k, k, C_in, C_out] (conv) / [k, k, C_out, C_in] (transposed). The tfjs tensors
// are built in its layout from the same numbers before timing (the transposes are not timed).
// flops = 2 * N * C_out * Ho * Wo * C_in * k^2 (conv), 2 * N * C_in * H * W * C_out * k^2 (transposed:
// the multiply-adds of the scatter definition).

import { describeAdapter } from '../engine/device.ts';
import type { Engine } from '../engine/engine.ts';
import { HostRandom } from '../engine/reference/host.ts';
import { conv2d } from '../engine/ops/conv2d.ts';
import { convTranspose2d } from '../engine/ops/conv_transpose2d.ts';
import { noGrad } from '../engine/tape.ts';
import { tensor } from '../engine/tensor.ts';
import { runFmaPeak, type ProbeResult } from './probes.ts';
import { formatBenchTable, type BenchRow, type Cell } from './table.ts';
import { optionalTfjs, type TfjsPeer } from './tfjs_peer.ts';
import { benchContender, contender, readOnce, type Contender } from './contender.ts';
import { engineTarget, type MeasureOptions, type Timing } from './timing.ts';

export interface ConvShape {
  kind: 'conv' | 'up';
  batch: number;
  cIn: number;
  cOut: number;
  /** Input side (square). */
  size: number;
  k: number;
}

/** StyleGAN2 32x32 Fashion: 3x3 convs at 4..32, the stride-2 upsampling convs, one ToRGB. */
export function styleganShapes(batches: number[] = [1, 8]): ConvShape[] {
  const ch: Record<number, number> = { 4: 128, 8: 128, 16: 64, 32: 32 };
  const out: ConvShape[] = [];
  for (const batch of batches) {
    for (const r of [4, 8, 16, 32]) out.push({ kind: 'conv', batch, cIn: ch[r], cOut: ch[r], size: r, k: 3 });
    for (const r of [4, 8, 16]) out.push({ kind: 'up', batch, cIn: ch[r], cOut: ch[2 * r], size: r, k: 3 });
    out.push({ kind: 'conv', batch, cIn: ch[32], cOut: 3, size: 32, k: 1 });
  }
  return out;
}

function outSize(s: ConvShape): number {
  return s.kind === 'up' ? 2 * s.size + 1 : s.size; // 'same' padding (k - 1) / 2 for convs
}

export function convLabel(s: ConvShape): string {
  const op = s.kind === 'up' ? `up ${s.k}x${s.k}/2` : `conv ${s.k}x${s.k}`;
  return `${op} ${s.cIn}->${s.cOut} @${s.size}x${s.size} N=${s.batch}`;
}

function flopsOf(s: ConvShape): number {
  const pixels = s.kind === 'up' ? s.size * s.size : outSize(s) ** 2;
  return 2 * s.batch * s.cIn * s.cOut * pixels * s.k * s.k;
}

interface Operands {
  x: Float32Array; // [N, C_in, H, W]
  w: Float32Array; // conv [C_out, C_in, k, k]; up [C_in, C_out, k, k]
}

/** Output [N, C_out, Ho, Wo] element by a float64 sum, and the sum of |terms| (for the tolerance). */
function expected(s: ConvShape, o: Operands, n: number, co: number, oy: number, ox: number): [number, number] {
  const H = s.size;
  const pad = (s.k - 1) / 2;
  let ref = 0;
  let scale = 0;
  for (let ci = 0; ci < s.cIn; ci++)
    for (let ky = 0; ky < s.k; ky++)
      for (let kx = 0; kx < s.k; kx++) {
        let iy: number, ix: number, wi: number;
        if (s.kind === 'conv') {
          iy = oy - pad + ky;
          ix = ox - pad + kx;
          wi = ((co * s.cIn + ci) * s.k + ky) * s.k + kx;
        } else {
          if ((oy - ky) % 2 !== 0 || (ox - kx) % 2 !== 0) continue; // stride 2: oy = 2 iy + ky
          iy = (oy - ky) / 2;
          ix = (ox - kx) / 2;
          wi = ((ci * s.cOut + co) * s.k + ky) * s.k + kx;
        }
        if (iy < 0 || iy >= H || ix < 0 || ix >= H) continue;
        const p = o.x[((n * s.cIn + ci) * H + iy) * H + ix] * o.w[wi];
        ref += p;
        scale += Math.abs(p);
      }
  return [ref, scale];
}

/** 16 elements (corners and random) of an NCHW output against float64 sums; null when all agree. */
export function spotCheckConv(s: ConvShape, o: Operands, out: ArrayLike<number>, seed = 7): string | null {
  const S = outSize(s);
  if (out.length !== s.batch * s.cOut * S * S) return `output has ${out.length} elements, expected ${s.batch * s.cOut * S * S}`;
  const rng = new HostRandom(seed);
  const pick = (m: number) => Math.floor(rng.uniform() * m);
  const picks: number[][] = [
    [0, 0, 0, 0],
    [s.batch - 1, s.cOut - 1, S - 1, S - 1],
    [0, s.cOut - 1, 0, S - 1],
    [s.batch - 1, 0, S - 1, 0],
  ];
  while (picks.length < 16) picks.push([pick(s.batch), pick(s.cOut), pick(S), pick(S)]);
  for (const [n, co, oy, ox] of picks) {
    const [ref, scale] = expected(s, o, n, co, oy, ox);
    const got = out[((n * s.cOut + co) * S + oy) * S + ox];
    if (!(Math.abs(got - ref) <= 1e-4 * scale + 1e-6)) return `wrong result at [${n}, ${co}, ${oy}, ${ox}]: ${got} vs ${ref.toPrecision(7)}`;
  }
  return null;
}

/** Our conv; its result is read back in NCHW. */
function prepareOurs(eng: Engine, s: ConvShape, o: Operands): Contender {
  const x = tensor(o.x, [s.batch, s.cIn, s.size, s.size]);
  const w = s.kind === 'conv' ? tensor(o.w, [s.cOut, s.cIn, s.k, s.k]) : tensor(o.w, [s.cIn, s.cOut, s.k, s.k]);
  const run = () => noGrad(() => (s.kind === 'conv' ? conv2d(x, w, { padding: (s.k - 1) / 2 }) : convTranspose2d(x, w, { stride: 2 })));
  return contender(engineTarget(eng), run, (y) => y.readF32(), [x, w]);
}

/** The tfjs-core functions we call (typed here so the bench does not depend on its type surface). */
interface TfT {
  data(): Promise<ArrayLike<number>>;
  dispose(): void;
}
interface TfConv {
  tensor(values: Float32Array, shape: number[], dtype: 'float32'): TfT;
  transpose(x: TfT, perm: number[]): TfT;
  conv2d(x: TfT, filter: TfT, strides: number, pad: 'same' | 'valid'): TfT;
  conv2dTranspose(x: TfT, filter: TfT, outputShape: number[], strides: number, pad: 'valid'): TfT;
}

/** tfjs's conv in NHWC; its result is read back in NCHW. */
function prepareTfjs(peer: TfjsPeer, tf: TfConv, s: ConvShape, o: Operands): Contender {
  const S = outSize(s);
  // NCHW -> NHWC; conv w [C_out, C_in, k, k] -> [k, k, C_in, C_out]; up w [C_in, C_out, k, k] -> [k, k, C_out, C_in].
  const nchw = tf.tensor(o.x, [s.batch, s.cIn, s.size, s.size], 'float32');
  const x = tf.transpose(nchw, [0, 2, 3, 1]);
  const wRaw = tf.tensor(o.w, s.kind === 'conv' ? [s.cOut, s.cIn, s.k, s.k] : [s.cIn, s.cOut, s.k, s.k], 'float32');
  const w = tf.transpose(wRaw, [2, 3, 1, 0]); // the same permutation for both layouts
  nchw.dispose();
  wRaw.dispose();
  const run = () => (s.kind === 'conv' ? tf.conv2d(x, w, 1, 'same') : tf.conv2dTranspose(x, w, [s.batch, S, S, s.cOut], 2, 'valid'));
  return contender(peer.target, run, (y) => readOnce(() => tf.transpose(y, [0, 3, 1, 2]), (back) => back.data()), [x, w]);
}

export interface ConvBenchOptions {
  /** Default: styleganShapes([1, 8]). */
  shapes?: ConvShape[];
  /** Run the FMA-peak probe for the last column (default true). */
  probes?: boolean;
  /** Seconds per measurement (default 0.3) and measurements per shape, fastest kept (default 2). */
  targetSeconds?: number;
  repeats?: number;
  /** Compare with tfjs-backend-webgpu (default true). */
  tfjs?: boolean;
  log?: (line: string) => void;
}

/** Prints the table shape | ours GFLOP/s | tfjs GFLOP/s | ours/tfjs | % of FMA peak. Throws if ours was wrong. */
export async function runConv2dBench(eng: Engine, options: ConvBenchOptions = {}): Promise<BenchRow[]> {
  const log = options.log ?? ((line: string) => console.log(line));
  const shapes = options.shapes ?? styleganShapes();
  const mo: MeasureOptions = { targetSeconds: options.targetSeconds ?? 0.3, repeats: options.repeats ?? 2 };
  const adapter = describeAdapter(eng.gpu.adapter);
  log(`conv bench on ${adapter}: ${shapes.length} shapes, ~${mo.targetSeconds} s per measurement, best of ${mo.repeats}`);
  const timings: Timing[] = [];
  const probes: ProbeResult[] = [];
  if (options.probes ?? true) {
    const p = await runFmaPeak({ ...mo, repeats: Math.max(3, mo.repeats) });
    probes.push(p);
    log(`  probe ${p.name}: ${p.value.toFixed(1)} ${p.unit} (${p.detail})`);
  }
  const { peer, ops: tf, reason: tfReason } = await optionalTfjs<TfConv>(eng, options.tfjs ?? true, 'conv2d', log);

  const rows: BenchRow[] = [];
  const wrong: string[] = [];
  const rng = new HostRandom(1234);
  const rand = (n: number) => Float32Array.from({ length: n }, () => 2 * rng.uniform() - 1);
  try {
    for (const [i, s] of shapes.entries()) {
      const label = convLabel(s);
      const o: Operands = { x: rand(s.batch * s.cIn * s.size * s.size), w: rand(s.cIn * s.cOut * s.k * s.k) };
      const check = (got: ArrayLike<number>) => spotCheckConv(s, o, got);
      const ours = await benchContender(() => prepareOurs(eng, s, o), check, flopsOf(s), mo, timings);
      if ('error' in ours) wrong.push(`${label}: ${ours.error}`);
      const theirs: Cell = peer && tf ? await benchContender(() => prepareTfjs(peer, tf, s, o), check, flopsOf(s), mo, timings) : { error: tfReason };
      const show = (c: Cell) => ('error' in c ? c.error : `${c.gflops.toFixed(2)} GFLOP/s`);
      log(`  [${i + 1}/${shapes.length}] ${label}: ours ${show(ours)}, tfjs ${show(theirs)}`);
      rows.push({ shape: label, ours, tfjs: theirs });
    }
  } finally {
    peer?.close();
  }
  const gpu = timings.some((t) => t.source === 'gpu timestamps');
  log('');
  log(
    formatBenchTable({
      adapter,
      date: new Date().toISOString().replace('T', ' ').slice(0, 19) + ' UTC',
      timer: gpu ? 'GPU timestamp queries around back-to-back iterations' : 'wall clock of submitted work (no timestamp-query)',
      rows,
      probes,
      fmaPeak: probes[0]?.value ?? null,
      notes: [
        `forward passes only; each number: the fastest of ${mo.repeats} measurement(s) of back-to-back runs, ~${mo.targetSeconds} s each`,
        'conv: stride 1, padding (k-1)/2; up: conv_transpose2d stride 2, no padding (H -> 2H+1); tfjs in NHWC (layout transposes not timed)',
      ],
    }).replace(/^matmul benchmark/, 'conv benchmark'),
  );
  if (wrong.length) throw new Error(`our convolution failed its check against the float64 sums:\n${wrong.join('\n')}`);
  return rows;
}
