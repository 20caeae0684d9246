// The implicit-GEMM convolution kernels for hardware GPUs (shaders/conv_tiled.wgsl): conv2d's
// forward, conv_transpose2d's forward (conv2d's input gradient), the modulated conv's forward and
// input gradient. engine/ops/conv2d_kernels.ts and modulated_conv.ts call these when
// `convKernels` (engine/device.ts) says 'tiled', before their other kernels; each returns null
// (recording nothing) when the grid would exceed the device's limits. The tile shapes are
// matmul_tiled's (the same GEMM core), chosen per GEMM size by tileFor below.

import { backend } from '../backend.ts';
import { defineKernel, grid1d, type BindingValue, type Kernel } from '../kernel.ts';
import { empty, type Tensor } from '../tensor.ts';
import { tileName, tileProblem, type MatmulTile } from './matmul_tiled.ts';
import type { ModulatedConvPlan } from './modulated_conv_plan.ts';

export type { MatmulTile as ConvTile };

/** What the gathers read of a conv's geometry (engine/ops/conv2d_kernels.ts ConvGeometry). */
interface Geometry {
  stride: readonly number[];
  padding: readonly number[];
  dilation: readonly number[];
  groups: number;
}

/**
 * Why a tile cannot run this kernel on this device, or null when it can: matmul_tiled's limits,
 * plus the workgroup memory of the per-column and per-k index tables (16 bytes an entry).
 */
export function convTileProblem(t: MatmulTile): string | null {
  const problem = tileProblem(t);
  if (problem) return problem;
  const bytes = 4 * t.bk * (t.wgY * t.tm + t.pad + t.wgX * t.tn + t.pad) + 16 * (t.bk + t.wgX * t.tn);
  const limit = backend().gpu.limits.maxComputeWorkgroupStorageSize;
  return bytes > limit ? `${bytes} bytes of workgroup memory exceed the device's ${limit}` : null;
}

let tileOverride: MatmulTile | null = null;

/** Benches (the conv tile sweep) and tests: use this tile for every tiled conv; null restores the per-shape choice. */
export function overrideConvTile(t: MatmulTile | null): void {
  if (t) {
    const problem = convTileProblem(t);
    if (problem) throw new RangeError(`conv tile ${tileName(t)}: ${problem}`);
  }
  tileOverride = t;
}

/**
 * Tile per GEMM (M channels x P pixels): as matmul_tiled's, 128 x 128 blocks of 8 x 8 for big
 * ones, 64 x 64 blocks of 4 x 4 for medium ones, 32 x 32 when a side is small. Untuned until a GPU
 * run of `sgilo bench matmul --sweep --conv` is recorded.
 */
function tileFor(M: number, P: number): MatmulTile {
  if (tileOverride) return tileOverride;
  if (M >= 128 && P >= 1024) return { tm: 8, tn: 8, wgX: 16, wgY: 16, bk: 8, pad: 4 };
  if (M >= 64 && P >= 64) return { tm: 4, tn: 4, wgX: 16, wgY: 16, bk: 16, pad: 4 };
  return { tm: 4, tn: 4, wgX: 8, wgY: 8, bk: 16, pad: 4 };
}

type Variant = 'conv' | 'conv_bias' | 'transposed' | 'transposed_bias' | 'mod' | 'modgrad';

// The slots of each variant (shaders/conv_tiled.wgsl): col_info and k_info hold the index
// arithmetic (computed once per column of a workgroup's block, once per k of a step), so a_at and
// b_at are adds, bounds checks and loads.

/** k over channels x kh x kw taps -> (channel, ty * dy, tx * dx, 0): conv and transposed. */
const CONV_K = `fn k_info(z: u32, k: u32) -> vec4i {
  let khw = params.kh * params.kw;
  let c = k / khw;
  let t = k - c * khw;
  let ty = t / params.kw;
  return vec4i(i32(c), i32(ty * params.dy), i32((t - ty * params.kw) * params.dx), 0);
}`;

/** The output pixel col of a plane wq wide: (row, column). */
const SPLIT_COL = `let oy = col / params.wq;
  let ox = col - oy * params.wq;`;

/** conv, z = n * G + g: A = w [G*M, K] by rows; B = x at (oy*sy - pt + ty*dy, ox*sx - pl + tx*dx). */
const CONV_A = `fn a_at(z: u32, m: u32, k: u32, ki: vec4i) -> f32 {
  return wt[((z % params.zin) * params.M + m) * params.K + k];
}`;
const CONV_COL = `fn col_info(z: u32, col: u32) -> vec4i {
  ${SPLIT_COL}
  let ch = (z / params.zin) * params.c_in + (z % params.zin) * params.cin_g;
  return vec4i(i32(oy * params.sy) - i32(params.pt), i32(ox * params.sx) - i32(params.pl), i32(ch), 0);
}`;
const CONV_B = `fn b_at(z: u32, ki: vec4i, ci: vec4i) -> f32 {
  let iy = ci.x + ki.y;
  let ix = ci.y + ki.z;
  if (iy < 0 || ix < 0 || iy >= i32(params.h) || ix >= i32(params.w)) { return 0.0; }
  return src[(u32(ci.z + ki.x) * params.h + u32(iy)) * params.w + u32(ix)];
}`;

/** transposed: w [G*Cg, M, kh, kw]; input pixel iy with iy*sy - pt + ty*dy = oy, where it is an integer. */
const TRANSPOSED_A = `fn a_at(z: u32, m: u32, k: u32, ki: vec4i) -> f32 {
  let khw = params.kh * params.kw;
  let c = u32(ki.x);
  return wt[(((z % params.zin) * params.cin_g + c) * params.M + m) * khw + k - c * khw];
}`;
const TRANSPOSED_COL = `fn col_info(z: u32, col: u32) -> vec4i {
  ${SPLIT_COL}
  let ch = (z / params.zin) * params.c_in + (z % params.zin) * params.cin_g;
  return vec4i(i32(oy + params.pt), i32(ox + params.pl), i32(ch), 0);
}`;
const TRANSPOSED_B = `fn b_at(z: u32, ki: vec4i, ci: vec4i) -> f32 {
  let ny = ci.x - ki.y;
  let nx = ci.y - ki.z;
  if (ny < 0 || nx < 0) { return 0.0; }
  let iy = u32(ny) / params.sy;
  let ix = u32(nx) / params.sx;
  if (iy * params.sy != u32(ny) || ix * params.sx != u32(nx) || iy >= params.h || ix >= params.w) { return 0.0; }
  return src[(u32(ci.z + ki.x) * params.h + iy) * params.w + ix];
}`;

/** conv and transposed: y [N, G*M, Ho, Wo], plus the bias where there is one. */
const convStore = (withBias: boolean) => `fn store(z: u32, m: u32, col: u32, v: f32) {
  let o = (z % params.zin) * params.M + m;
  out[((z / params.zin) * params.c_out + o) * params.P + col] = v${withBias ? ' + bias[o]' : ''};
}`;

/** The modulated conv's k: (channel, ty, tx, 0) over T x T taps (kh = kw = T). */
const MOD_K = `fn k_info(z: u32, k: u32) -> vec4i {
  let tt = params.kh * params.kw;
  let c = k / tt;
  let t = k - c * tt;
  let ty = t / params.kw;
  return vec4i(i32(c), i32(ty), i32(t - ty * params.kw), 0);
}`;

/** mod, z = n * PH + ph: A = K[o, i, ph] (the weight itself when PH = 1); B = s[n,i] x[n,i, a - pad + ty, b - pad + tx]. */
const MOD_A = `fn a_at(z: u32, m: u32, k: u32, ki: vec4i) -> f32 {
  let tt = params.kh * params.kw;
  let i = u32(ki.x);
  return wt[((m * params.aux + i) * params.zin + z % params.zin) * tt + k - i * tt];
}`;
const MOD_COL = `fn col_info(z: u32, col: u32) -> vec4i {
  ${SPLIT_COL}
  return vec4i(i32(oy) - i32(params.pt), i32(ox) - i32(params.pl), i32((z / params.zin) * params.c_in), 0);
}`;
const MOD_B = `fn b_at(z: u32, ki: vec4i, ci: vec4i) -> f32 {
  let iy = ci.x + ki.y;
  let ix = ci.y + ki.z;
  if (iy < 0 || ix < 0 || iy >= i32(params.h) || ix >= i32(params.w)) { return 0.0; }
  let nc = u32(ci.z + ki.x);
  return st[nc] * src[(nc * params.h + u32(iy)) * params.w + u32(ix)];
}`;
/** y[n, o, a*up + ry, b*up + rx] = coef[n,o] v, phase ph = 2 ry + rx. */
const MOD_STORE = `fn store(z: u32, m: u32, col: u32, v: f32) {
  let n = z / params.zin;
  let ph = z % params.zin;
  ${SPLIT_COL}
  let y_row = oy * params.up + (ph >> 1u);
  let y_col = ox * params.up + (ph & 1u);
  out[((n * params.c_out + m) * params.ho + y_row) * params.wo + y_col] = coef[n * params.c_out + m] * v;
}`;

/**
 * modgrad, z = n, m = input channel i, k = (o, ph, ty, tx): A = K[o, i, ph, ty, tx];
 * B = coef[n,o] gy[n, o, (py + pad - ty)*up + ry, (px + pad - tx)*up + rx] inside the phase plane.
 */
const MODGRAD_K = `fn k_info(z: u32, k: u32) -> vec4i {
  let tt = params.kh * params.kw;
  let o = k / (params.zin * tt);
  let r = k - o * params.zin * tt;
  let ph = r / tt;
  let t = r - ph * tt;
  let ty = t / params.kw;
  return vec4i(i32(o), i32(ty), i32(t - ty * params.kw), i32(ph));
}`;
const MODGRAD_A = `fn a_at(z: u32, m: u32, k: u32, ki: vec4i) -> f32 {
  let per_o = params.zin * params.kh * params.kw;
  let o = u32(ki.x);
  return wt[(o * params.M + m) * per_o + k - o * per_o];
}`;
const MODGRAD_COL = `fn col_info(z: u32, col: u32) -> vec4i {
  ${SPLIT_COL}
  return vec4i(i32(oy + params.pt), i32(ox + params.pl), i32(z * params.aux), 0);
}`;
const MODGRAD_B = `fn b_at(z: u32, ki: vec4i, ci: vec4i) -> f32 {
  let a = ci.x - ki.y;
  let b = ci.y - ki.z;
  if (a < 0 || b < 0 || a >= i32(params.hq) || b >= i32(params.wo / params.up)) { return 0.0; }
  let no = u32(ci.z + ki.x);
  let ph = u32(ki.w);
  return coef[no] * src[(no * params.ho + u32(a) * params.up + (ph >> 1u)) * params.wo + u32(b) * params.up + (ph & 1u)];
}`;
/** gx = s[n,i] u, and x u for the style gradient's pieces. */
const MODGRAD_STORE = `fn store(z: u32, m: u32, col: u32, v: f32) {
  let ni = z * params.M + m;
  let e = ni * params.P + col;
  out[e] = st[ni] * v;
  xu[e] = x[e] * v;
}`;

/** Per variant: col_info, k_info, a_at, b_at, store. */
const SLOTS: Record<Variant, [string, string, string, string, string]> = {
  conv: [CONV_COL, CONV_K, CONV_A, CONV_B, convStore(false)],
  conv_bias: [CONV_COL, CONV_K, CONV_A, CONV_B, convStore(true)],
  transposed: [TRANSPOSED_COL, CONV_K, TRANSPOSED_A, TRANSPOSED_B, convStore(false)],
  transposed_bias: [TRANSPOSED_COL, CONV_K, TRANSPOSED_A, TRANSPOSED_B, convStore(true)],
  mod: [MOD_COL, MOD_K, MOD_A, MOD_B, MOD_STORE],
  modgrad: [MODGRAD_COL, MODGRAD_K, MODGRAD_A, MODGRAD_B, MODGRAD_STORE],
};

const BINDINGS: Record<Variant, Record<string, 'read' | 'read_write' | 'uniform'>> = {
  conv: { src: 'read', wt: 'read', out: 'read_write', params: 'uniform' },
  conv_bias: { src: 'read', wt: 'read', bias: 'read', out: 'read_write', params: 'uniform' },
  transposed: { src: 'read', wt: 'read', out: 'read_write', params: 'uniform' },
  transposed_bias: { src: 'read', wt: 'read', bias: 'read', out: 'read_write', params: 'uniform' },
  mod: { src: 'read', wt: 'read', st: 'read', coef: 'read', out: 'read_write', params: 'uniform' },
  modgrad: { src: 'read', wt: 'read', st: 'read', coef: 'read', x: 'read', xu: 'read_write', out: 'read_write', params: 'uniform' },
};

const specialization = (v: Variant) => {
  const [COL_FN, K_FN, A_FN, B_FN, STORE_FN] = SLOTS[v];
  return { COL_FN, K_FN, A_FN, B_FN, STORE_FN };
};

const kernels = new Map<string, Kernel>();
function kernelFor(v: Variant, t: MatmulTile): Kernel {
  const variant = `${v}/${tileName(t)}`;
  let k = kernels.get(variant);
  if (!k) {
    k = defineKernel({
      shader: 'conv_tiled',
      entry: 'conv_tiled',
      variant,
      specialize: specialization(v),
      constants: { TM: t.tm, TN: t.tn, WG_X: t.wgX, WG_Y: t.wgY, BK: t.bk, PAD: t.pad },
      bindings: BINDINGS[v],
    });
    kernels.set(variant, k);
  }
  return k;
}

let piecesKernel: Kernel | null = null;
function pieces(): Kernel {
  piecesKernel ??= defineKernel({
    shader: 'conv_tiled',
    entry: 'conv_tiled_pieces',
    specialize: specialization('modgrad'),
    bindings: { xu_in: 'read', part_out: 'read_write', params: 'uniform' },
  });
  return piecesKernel;
}

/** Every member of the uniform, zero where a variant does not read it. */
const ZERO = { M: 0, K: 0, P: 0, zin: 1, c_in: 0, h: 0, w: 0, c_out: 0, ho: 0, wo: 0, kh: 1, kw: 1, sy: 1, sx: 1, dy: 1, dx: 1, pt: 0, pl: 0, cin_g: 0, wq: 1, hq: 0, up: 1, aux: 0, pieces: 0 };
type Params = typeof ZERO;

/** Dispatches one implicit GEMM, or returns false when its grid exceeds the device's limits. */
function gemm(v: Variant, p: Params, Z: number, bindings: Record<string, BindingValue>): boolean {
  const t = tileFor(p.M, p.P);
  const grid = [Math.ceil(p.P / (t.wgX * t.tn)), Math.ceil(p.M / (t.wgY * t.tm)), Z];
  if (grid.some((g) => g > backend().gpu.limits.maxComputeWorkgroupsPerDimension)) return false;
  kernelFor(v, t).dispatch({ ...bindings, params: p }, grid);
  return true;
}

/** The conv geometry's uniform members for x [N, C_in, H, W] and the output plane. */
function geometry(x: Tensor, g: Geometry, kernel: readonly number[], out: [number, number]) {
  const [, cIn, h, w] = x.shape;
  return {
    c_in: cIn, h, w, ho: out[0], wo: out[1], wq: out[1], kh: kernel[2], kw: kernel[3], zin: g.groups, cin_g: cIn / g.groups,
    sy: g.stride[0], sx: g.stride[1], dy: g.dilation[0], dx: g.dilation[1], pt: g.padding[0], pl: g.padding[2],
  };
}

/**
 * conv2d forward: x [N, C_in, H, W], w [C_out, C_in/G, kH, kW], bias [C_out] or null ->
 * y [N, C_out, Ho, Wo]; null when the grid does not fit.
 */
export function tiledConv(x: Tensor, w: Tensor, bias: Tensor | null, g: Geometry, out: [number, number]): Tensor | null {
  const [n] = x.shape;
  const [cOut, cinG, kh, kw] = w.shape;
  const p = { ...ZERO, ...geometry(x, g, w.shape, out), M: cOut / g.groups, K: cinG * kh * kw, P: out[0] * out[1], c_out: cOut };
  const y = empty([n, cOut, out[0], out[1]]);
  const ok = gemm(bias ? 'conv_bias' : 'conv', p, n * g.groups, bias ? { src: x, wt: w, bias, out: y } : { src: x, wt: w, out: y });
  if (!ok) y.dispose();
  return ok ? y : null;
}

/**
 * Transposed conv forward (conv2d's input gradient): x [N, C_in, H, W], w [C_in, C_out/G, kH, kW],
 * bias [C_out] or null -> y [N, C_out, Ho, Wo]; null when the grid does not fit. Every tap is
 * gathered and those the stride skips read zero (phase decomposition by stride is not done here).
 */
export function tiledTransposedConv(x: Tensor, w: Tensor, bias: Tensor | null, g: Geometry, out: [number, number]): Tensor | null {
  const [n] = x.shape;
  const [, coutG, kh, kw] = w.shape;
  const cOut = coutG * g.groups;
  const cinG = x.shape[1] / g.groups;
  const p = { ...ZERO, ...geometry(x, g, w.shape, out), M: coutG, K: cinG * kh * kw, P: out[0] * out[1], c_out: cOut };
  const y = empty([n, cOut, out[0], out[1]]);
  const ok = gemm(bias ? 'transposed_bias' : 'transposed', p, n * g.groups, bias ? { src: x, wt: w, bias, out: y } : { src: x, wt: w, out: y });
  if (!ok) y.dispose();
  return ok ? y : null;
}

/** The modulated conv's members of the uniform (T x T taps per phase, pad on every side). */
function modGeometry(pl: ModulatedConvPlan) {
  return { kh: pl.T, kw: pl.T, pt: pl.pad, pl: pl.pad, ho: pl.Ho, wo: pl.Wo, hq: pl.Hp, up: pl.up, zin: pl.up * pl.up };
}

/**
 * Modulated conv forward into y [N, Co, Ho, Wo]: keff [Co, Ci, PH, T, T] (the weight itself when
 * PH = 1), styles [N, Ci] folded into the input tile, coef [N, Co] into the store; one GEMM per
 * (item, phase). False when the grid does not fit.
 */
export function tiledModulatedForward(pl: ModulatedConvPlan, b: { x: Tensor; keff: Tensor; st: Tensor; coef: Tensor; y: Tensor }): boolean {
  const p = { ...ZERO, ...modGeometry(pl), M: pl.Co, K: pl.Ci * pl.T * pl.T, P: pl.Hp * pl.Wp, c_in: pl.Ci, h: pl.H, w: pl.W, c_out: pl.Co, wq: pl.Wp, aux: pl.Ci };
  return gemm('mod', p, pl.N * pl.up * pl.up, { src: b.x, wt: b.keff, st: b.st, coef: b.coef, out: b.y });
}

/**
 * Modulated conv input gradient: gx [N, Ci, H, W] = s[n,i] u with u the adjoint of the phase
 * convolution of coef * gy, and part_out [N, Ci, H, ceil(W/8)] the 8-pixel pieces of sum x * u
 * (as the general kernel writes them). False (nothing recorded) when a grid does not fit.
 */
export function tiledModulatedInputBackward(pl: ModulatedConvPlan, b: { gy: Tensor; keff: Tensor; coef: Tensor; x: Tensor; st: Tensor; gx: Tensor; part_out: Tensor }): boolean {
  const PH = pl.up * pl.up;
  const piecesPerRow = Math.ceil(pl.W / 8);
  const rows = pl.N * pl.Ci * pl.H;
  const t = tileFor(pl.Ci, pl.H * pl.W);
  const maxDim = backend().gpu.limits.maxComputeWorkgroupsPerDimension;
  if (Math.ceil((pl.H * pl.W) / (t.wgX * t.tn)) > maxDim || pl.N > maxDim || Math.ceil((rows * piecesPerRow) / 64) > maxDim * maxDim) return false;
  const xu = empty(b.x.shape);
  const p = { ...ZERO, ...modGeometry(pl), M: pl.Ci, K: pl.Co * PH * pl.T * pl.T, P: pl.H * pl.W, c_in: pl.Co, h: pl.Ho, w: pl.Wo, c_out: pl.Ci, wq: pl.W, aux: pl.Co };
  gemm('modgrad', p, pl.N, { src: b.gy, wt: b.keff, st: b.st, coef: b.coef, x: b.x, xu, out: b.gx });
  pieces().dispatch({ xu_in: xu, part_out: b.part_out, params: { ...ZERO, P: rows, w: pl.W, pieces: piecesPerRow } }, grid1d(Math.ceil((rows * piecesPerRow) / 64)));
  xu.dispose();
  return true;
}
