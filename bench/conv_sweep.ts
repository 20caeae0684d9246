// `sgilo bench matmul --sweep --conv`: GFLOP/s of the implicit-GEMM conv kernels
// (shaders/conv_tiled.wgsl) per tile shape at the modulated-conv layer shapes of StyleGAN2
// config-f (batch 1), forced on whatever the adapter is, for the forward and for forward + the
// gradients of x and the styles (what ILO and SGILO run: the generator's weights are fixed). The
// first row is the general kernels (shaders/modulated_conv.wgsl, modulated_conv_backward.wgsl) on
// the same device. Every tile's output (y, and gx for the backward pass) is checked against the
// general kernels' on the whole tensor before it is timed (those are tested against the float64
// reference), so a wrong tile reports WRONG, not a number.

import { describeAdapter, overrideKernelFamily, type KernelFamily } from '../engine/device.ts';
import type { Engine } from '../engine/engine.ts';
import { compare, relativeToMax, relToMax } from '../engine/gradcheck.ts';
import { HostRandom } from '../engine/reference/host.ts';
import { modulatedConv2d } from '../engine/ops/modulated_conv.ts';
import { planModulatedConv } from '../engine/ops/modulated_conv_plan.ts';
import { convTileProblem, overrideConvTile } from '../engine/ops/conv_tiled.ts';
import { tileName, type MatmulTile } from '../engine/ops/matmul_tiled.ts';
import { grad, noGrad } from '../engine/tape.ts';
import { tensor, type Tensor } from '../engine/tensor.ts';
import { benchContender, contender, readOnce } from './contender.ts';
import { formatSweep, type SweepRow } from './matmul_sweep.ts';
import type { ModulatedConvLayer } from './modulated_conv.ts';
import type { Cell } from './table.ts';
import { engineTarget, type Timing } from './timing.ts';

/** Config-f (channels 512 up to 64^2, then 256, 128, 64, 32): a layer per GEMM shape class. */
export const CONFIG_F_LAYERS: ModulatedConvLayer[] = [
  { name: 'b64.conv1', Ci: 512, Co: 512, H: 64, k: 3, up: false, demod: true },
  { name: 'b128.conv0 up', Ci: 512, Co: 256, H: 64, k: 3, up: true, demod: true },
  { name: 'b256.conv1', Ci: 128, Co: 128, H: 256, k: 3, up: false, demod: true },
  { name: 'b1024.conv1', Ci: 32, Co: 32, H: 1024, k: 3, up: false, demod: true },
];

/** The same kinds of layer at sizes a CPU adapter runs in seconds (the path check). */
const QUICK_LAYERS: ModulatedConvLayer[] = [
  { name: 'conv1', Ci: 16, Co: 24, H: 12, k: 3, up: false, demod: true },
  { name: 'conv0 up', Ci: 16, Co: 8, H: 6, k: 3, up: true, demod: true },
];

/** The swept tiles: fewer than the matmul sweep's, the shapes that sweep keeps as candidates. */
export const CONV_SWEEP_TILES: MatmulTile[] = [
  { tm: 4, tn: 4, wgX: 8, wgY: 8, bk: 16, pad: 4 },
  { tm: 4, tn: 4, wgX: 16, wgY: 16, bk: 8, pad: 4 },
  { tm: 4, tn: 4, wgX: 16, wgY: 16, bk: 16, pad: 4 },
  { tm: 4, tn: 4, wgX: 16, wgY: 16, bk: 16, pad: 0 },
  { tm: 8, tn: 8, wgX: 8, wgY: 8, bk: 16, pad: 4 },
  { tm: 8, tn: 8, wgX: 16, wgY: 16, bk: 8, pad: 4 },
  { tm: 8, tn: 4, wgX: 16, wgY: 16, bk: 16, pad: 4 },
  { tm: 4, tn: 8, wgX: 16, wgY: 16, bk: 16, pad: 4 },
];

const QUICK_TILES: MatmulTile[] = [
  { tm: 4, tn: 4, wgX: 8, wgY: 8, bk: 16, pad: 4 },
  { tm: 8, tn: 8, wgX: 4, wgY: 4, bk: 8, pad: 0 },
];

type Pass = 'fwd' | 'fwd+bwd(x,s)';
const PASSES: Pass[] = ['fwd', 'fwd+bwd(x,s)'];

export interface ConvSweepOptions {
  layers?: ModulatedConvLayer[];
  tiles?: MatmulTile[];
  targetSeconds?: number;
  /** Two small layers and two tiles, short measurements: a path check on a CPU adapter. */
  quick?: boolean;
  log?: (line: string) => void;
}

/** max|a-b| / max|b| a tile may differ from the general kernels by (float32 sums in another order). */
const CHECK_TOL = 1e-4;

interface LayerInputs {
  x: Tensor;
  w: Tensor;
  s: Tensor;
  gy: Tensor;
  /** The general kernels' y, then gx: the values each tile is checked against. */
  want: Map<Pass, Float32Array>;
  flops: number;
}

const label = (l: ModulatedConvLayer, p: Pass) => `${l.name} ${l.Ci}->${l.Co} ${l.H}^2${l.up ? '->2x' : ''} ${p}`;

function makeInputs(l: ModulatedConvLayer, rng: HostRandom): Omit<LayerInputs, 'want'> {
  const rand = (n: number, mean = 0, std = 1) => Float32Array.from({ length: n }, () => mean + std * rng.normal());
  const opts = { demodulate: l.demod, upsample: l.up };
  const pl = planModulatedConv([1, l.Ci, l.H, l.H], [l.Co, l.Ci, l.k, l.k], [1, l.Ci], opts);
  return {
    x: tensor(rand(l.Ci * l.H * l.H), [1, l.Ci, l.H, l.H]),
    w: tensor(rand(l.Co * l.Ci * l.k * l.k), [l.Co, l.Ci, l.k, l.k]),
    s: tensor(rand(l.Ci, 1, 0.3), [1, l.Ci]),
    gy: tensor(rand(l.Co * pl.Ho * pl.Wo), [1, l.Co, pl.Ho, pl.Wo]),
    flops: 2 * pl.macs,
  };
}

/** One step of the pass: y (forward) or gx (forward + gradients of x and s; the weight needs none). */
function run(l: ModulatedConvLayer, inp: Omit<LayerInputs, 'want'>, pass: Pass): Tensor {
  const opts = { demodulate: l.demod, upsample: l.up };
  if (pass === 'fwd') return noGrad(() => modulatedConv2d(inp.x, inp.w, inp.s, opts));
  const [gx, gs] = grad(modulatedConv2d(inp.x, inp.w, inp.s, opts), [inp.x, inp.s], { upstream: inp.gy });
  gs.dispose();
  return gx;
}

/** Runs `fn` under a forced kernel family (and conv tile), restoring the selection after. */
async function under<T>(family: KernelFamily, tile: MatmulTile | null, fn: () => Promise<T>): Promise<T> {
  overrideKernelFamily(family);
  overrideConvTile(tile);
  try {
    return await fn();
  } finally {
    overrideConvTile(null);
    overrideKernelFamily(null);
  }
}

export async function runConvSweep(eng: Engine, options: ConvSweepOptions = {}): Promise<SweepRow[]> {
  const log = options.log ?? ((line: string) => console.log(line));
  const o = { targetSeconds: options.targetSeconds ?? (options.quick ? 0.05 : 0.15), repeats: 1 };
  const layers = options.layers ?? (options.quick ? QUICK_LAYERS : CONFIG_F_LAYERS);
  const tiles = options.tiles ?? (options.quick ? QUICK_TILES : CONV_SWEEP_TILES);
  const columns = layers.flatMap((l) => PASSES.map((p) => label(l, p)));
  log(`conv tile sweep (shaders/conv_tiled.wgsl forced; the modulated conv, batch 1) on ${describeAdapter(eng.gpu.adapter)}`);
  const rng = new HostRandom(2024);
  const inputs: LayerInputs[] = [];
  const rows: SweepRow[] = [{ tile: 'general kernels', cells: [] }];
  const timings: Timing[] = [];
  const wrong: string[] = [];
  try {
    // The general kernels: the values every tile is checked against, and the first row.
    await under('general', null, async () => {
      for (const l of layers) {
        const base = makeInputs(l, rng);
        for (const t of [base.x, base.s]) t.requireGrad();
        const want = new Map<Pass, Float32Array>();
        for (const p of PASSES) {
          want.set(p, await readOnce(() => run(l, base, p), (t) => t.readF32()));
          rows[0].cells.push(await benchContender(() => contender(engineTarget(eng), () => run(l, base, p), (t) => t.readF32(), []), () => null, base.flops * (p === 'fwd' ? 1 : 2), o, timings));
        }
        inputs.push({ ...base, want });
      }
    });
    log(`  general kernels: ${rows[0].cells.map((c) => ('error' in c ? c.error : c.gflops.toFixed(1))).join(' | ')}`);
    for (const t of tiles) {
      const problem = convTileProblem(t);
      if (problem) {
        log(`  ${tileName(t)}: skipped (${problem})`);
        rows.push({ tile: tileName(t), cells: columns.map(() => ({ error: 'skipped' })) });
        continue;
      }
      const cells: Cell[] = [];
      await under('tiled', t, async () => {
        for (const [i, l] of layers.entries()) {
          const inp = inputs[i];
          for (const p of PASSES) {
            const want = inp.want.get(p)!;
            const check = (got: ArrayLike<number>) => {
              const c = compare(got, want, relativeToMax(want, CHECK_TOL, 1e-30));
              return c.pass ? null : `differs from the general kernels by ${relToMax(c).toExponential(2)} of max`;
            };
            const c = await benchContender(() => contender(engineTarget(eng), () => run(l, inp, p), (t) => t.readF32(), []), check, inp.flops * (p === 'fwd' ? 1 : 2), o, timings);
            if ('error' in c) wrong.push(`${tileName(t)} at ${label(l, p)}: ${c.error}`);
            cells.push(c);
          }
        }
      });
      rows.push({ tile: tileName(t), cells });
      log(`  ${tileName(t)}: ${cells.map((c) => ('error' in c ? c.error : c.gflops.toFixed(1))).join(' | ')}`);
    }
  } finally {
    for (const inp of inputs) for (const t of [inp.x, inp.w, inp.s, inp.gy]) t.dispose();
  }
  log('');
  log(formatSweep(columns, rows));
  log('tile: BMxBN / TMxTN per invocation / k step / padding; GFLOP/s (2 x the conv multiply-adds, x2 for fwd+bwd(x,s)), each the best of one measurement of back-to-back calls');
  if (wrong.length) throw new Error(`tiled conv failed its check against the general kernels:\n${wrong.join('\n')}`);
  return rows;
}
