// The 8-lane subgroup kernels (shaders/modulated_conv_subgroup.wgsl): the modulated conv's forward
// and input gradient, and the same forward as a plain conv2d (no styles or coef, with or without a
// bias: stride 1, one group, square kernel, even padding). engine/ops/modulated_conv.ts and
// engine/ops/conv2d_kernels.ts ask here first and use their general kernels when these decline.
// The WGSL (bindings, helpers, stores, loops) is in shaders/; the slots this file fills are generated
// because subgroupBroadcast takes only a constant lane and accumulators must be named registers, so
// the per-channel and per-tap code is unrolled as text for each (channels, kernel size, padding).

import { subgroupTiles } from '../device.ts';
import { backend } from '../backend.ts';
import { defineKernel, type Kernel } from '../kernel.ts';
import { empty, type Tensor } from '../tensor.ts';
import { modulatedConvParams, type ModulatedConvPlan } from './modulated_conv_plan.ts';

const SHADER = 'modulated_conv_subgroup';

/**
 * What the forward multiplies in: the modulated conv's styles and coef ('scaled'), or nothing, as a
 * plain conv2d, with ('bias') or without ('plain') a bias added.
 */
type ForwardMode = 'scaled' | 'plain' | 'bias';

const FORWARD_STYLE: Record<ForwardMode, string> = { scaled: 'st[n * p.Ci + i]', plain: '1.0', bias: '1.0' };
const FORWARD_OUT: Record<ForwardMode, string> = { scaled: 'coef[n * p.Co + o] * v', plain: 'v', bias: 'v + bias[o]' };

/** The kernel size T and padding a row of taps is unrolled for (tapRow); null: the general loop. */
interface RowShape {
  T: number;
  pad: number;
  /**
   * Set when every lane's 8 pixels start a row (the pixel plane is at most 8 wide): the length of
   * the rows the window reads, so loads past either end are left out altogether.
   */
  width?: number;
  /**
   * Set when lanes may start at column W (the split upsampling forward's phase planes are W + 1
   * wide): the lane's own vec4 is then read only inside the row.
   */
  past?: boolean;
  /** The split upsampling path's forward: tap 0 of the row runs only in phase column 0 (phase column 1's is zero). */
  transposed?: boolean;
}

/** Whether a row of W values can be unrolled: the window (8 + T - 1 values around a lane's 8) within 4 aligned vec4s. */
function rowUnrollable(W: number, T: number, pad: number): boolean {
  return W % 4 === 0 && pad <= 4 && T - pad <= 5;
}

/**
 * One row of taps (the body of the ty loop) of the forward (`forward`) or the input gradient. The
 * forward's window of x slides left (tap tx reads column b0 - pad + tx, its new value enters at the
 * back); the input gradient's window of gy slides right (tap tx reads column px0 + pad - tx, its new
 * value enters at the front). General: the 8-value window read value by value with zero padding
 * (x_at, gy_at) and a loop over tx, one new value per tap. Unrolled (the row a multiple of 4 long,
 * T and pad known; the input gradient only for up = 1, where a gy row is contiguous): the aligned
 * vec4s at columns -4, 0, 4, 8 from the lane's first pixel (those the window touches; zero past the
 * row's ends) hold every value the row needs, so the window's values are static components and each
 * tap's new value is too.
 */
function tapRow(forward: boolean, tap: TapCode, row: RowShape | null): string {
  const ind = forward ? '      ' : '        ';
  const slide = (next: string) => (forward ? ['v0 = vec4f(v0.yzw, v1.x);', `v1 = vec4f(v1.yzw, ${next});`] : ['v1 = vec4f(v0.w, v1.xyz);', `v0 = vec4f(${next}, v0.xyz);`]);
  if (row === null) {
    const code = forward
      ? { read: 'x_at', scale: 'sr', pos: 'ix', tIndex: 'kofs + ty * p.T + tx', next: 'x_at(row, ix + i32(tx) + 8)' }
      : { read: 'gy_at', scale: 'cr', pos: 'bx', tIndex: 'kbase + ph * tt + ty * p.T + tx', next: 'gy_at(row, bx - i32(tx) - 1)' };
    return generalRow(ind, tap, { ...code, slide: slide('next') });
  }
  if (!forward && row.transposed) return transposedInputRow(ind, tap);
  const { T, pad } = row;
  // Window value j is column pixel - 4 + j: component j % 4 of <name><j / 4> (columns -4 .. 11 from
  // the pixel). The last tap's new value is never used, so the far end stops one short of it.
  const first = forward ? 4 - pad : 4 + pad;
  const [lo, hi] = forward ? [first, Math.max(first + 7, 12 - pad + T - 2)] : [Math.min(3 + pad - (T - 2), first), first + 7];
  const names = forward
    ? { ind, base: 'let xr = (row + b0) / 4u; // vec4 index of column b0 (row and b0 are multiples of 4)', name: 'xw', index: 'xr', buf: 'x4', scale: 'sr', pixel: 'b0', limit: 'p.W' }
    : { ind, base: 'let gr = (row + px0) / 4u; // vec4 index of column px0 (row and px0 are multiples of 4)', name: 'gw', index: 'gr', buf: 'gy4', scale: 'cr', pixel: 'px0', limit: 'p.Wp' };
  const tapIndex = (tx: number) => (forward ? `kofs + ty * ${T}u + ${tx}u` : `kbase + ph * ${T * T}u + ty * ${T}u + ${tx}u`);
  return windowRow(names, { first, lo, hi, T, width: row.width, past: row.past, firstTapIf: row.transposed ? '(ph & 1u) == 0u' : undefined }, tap, tapIndex, (tx, at) => slide(at(forward ? first + 8 + tx : 3 + pad - tx)));
}

/**
 * The split path's input gradient (T = 2, pad = 1, up = 2, Wo % 4 == 0): pixel px0 + j of tap tx
 * reads phase-plane column b = px0 + j + 1 - tx, i.e. column 2b + rx of the interleaved gy row. The
 * 20 columns from 2 px0 (5 aligned vec4s, zero past the row) hold both phases' values of both taps,
 * so each window is static components: even ones for phase column 0 (taps 0 and 1), odd ones for
 * phase column 1 (tap 1 alone; its tap 0 is zero). The phase branch is uniform in the workgroup.
 */
function transposedInputRow(ind: string, tap: TapCode): string {
  const q = (c: number) => `q${c >> 2}.${'xyzw'[c & 3]}`; // column 2 px0 + c
  const win = (m0: number, rx: number) => [0, 1, 2, 3, 4, 5, 6, 7].map((j) => q(2 * (m0 + j) + rx));
  const taps = (list: [number, number, number][]) =>
    list.flatMap(([tx, m0, rx]) => {
      const w = win(m0, rx);
      return ['{', `  let v0 = vec4f(${w.slice(0, 4).join(', ')});`, `  let v1 = vec4f(${w.slice(4).join(', ')});`, `  let t = kbase + ph * 4u + ty * 2u + ${tx}u;`, ...tap(`${tx}u`).map((l) => `  ${l}`), '}'];
    });
  const lines = ['let g4 = (row - (ph & 1u) + 2u * px0) / 4u; // vec4 index of column 2 px0 (row start and 2 px0 are multiples of 4)', 'let q0 = cr * gy4[g4];'];
  for (let v = 1; v < 5; v++) lines.push(`let q${v} = select(vec4f(0.0), cr * gy4[select(g4, g4 + ${v}u, 2u * px0 + ${4 * v}u < p.Wo)], 2u * px0 + ${4 * v}u < p.Wo);`);
  lines.push('if ((ph & 1u) == 0u) {', ...taps([[0, 1, 0], [1, 0, 0]]).map((l) => `  ${l}`), '} else {', ...taps([[1, 0, 1]]).map((l) => `  ${l}`), '}');
  return lines.join(`\n${ind}`);
}

/** What a general row reads: the zero-padded reader, the row's scale, the window's first column, the tap's weight index, the next value, the window's slide. */
interface GeneralRowCode {
  read: string;
  scale: string;
  pos: string;
  tIndex: string;
  next: string;
  slide: string[];
}

/**
 * A row of taps for any width, T and pad: the 8-value window read value by value (zero padding
 * from the reader) and a loop over tx, one new value per tap.
 */
function generalRow(ind: string, tap: TapCode, c: GeneralRowCode): string {
  const at = (j: number) => `${c.read}(row, ${c.pos}${j ? ` + ${j}` : ''})`;
  const window = (js: number[]) => `${c.scale} * vec4f(${js.map(at).join(', ')})`;
  return [
    `var v0 = ${window([0, 1, 2, 3])};`,
    `var v1 = ${window([4, 5, 6, 7])};`,
    'for (var tx = 0u; tx < p.T; tx++) {',
    `  let t = ${c.tIndex};`,
    ...tap('tx').map((l) => `  ${l}`),
    `  let next = ${c.scale} * ${c.next};`,
    ...c.slide.map((l) => `  ${l}`),
    '}',
  ].join(`\n${ind}`);
}

/** The WGSL names an unrolled row uses (indentation, the vec4 index statement, buffer, scale, bounds). */
interface WindowNames {
  ind: string;
  base: string;
  name: string;
  index: string;
  buf: string;
  scale: string;
  pixel: string;
  limit: string;
}

/**
 * An unrolled row over the window values lo..hi (value j is column pixel - 4 + j, held by vec4
 * <name><j / 4>, zero past the row's ends): v0 and v1 start at value `first`, then T taps, each
 * followed by `slide` (not after the last).
 */
function windowRow(
  n: WindowNames,
  { first, lo, hi, T, width, past, firstTapIf }: { first: number; lo: number; hi: number; T: number; width?: number; past?: boolean; firstTapIf?: string },
  tap: TapCode,
  tapIndex: (tx: number) => string,
  slide: (tx: number, at: (j: number) => string) => string[],
): string {
  const at = (j: number) => `${n.name}${j >> 2}.${'xyzw'[j & 3]}`;
  const lines = [n.base];
  for (let v = lo >> 2; v <= hi >> 2; v++) {
    const col = 4 * v - 4; // column offset from the lane's first pixel
    const load = (i: string) => `${n.scale} * ${n.buf}[${i}]`;
    if (width !== undefined) lines.push(`let ${n.name}${v} = ${col < 0 || col >= width ? 'vec4f(0.0)' : load(`${n.index} + ${col / 4}u`)};`);
    else if (col === 0 && past) lines.push(`let ${n.name}${v} = select(vec4f(0.0), ${load(`select(${n.index} - 1u, ${n.index}, ${n.pixel} < ${n.limit})`)}, ${n.pixel} < ${n.limit});`);
    else if (col === 0) lines.push(`let ${n.name}${v} = ${load(n.index)};`);
    else if (col < 0) lines.push(`let ${n.name}${v} = select(vec4f(0.0), ${load(`select(${n.index}, ${n.index} - 1u, ${n.pixel} >= 4u)`)}, ${n.pixel} >= 4u);`);
    else lines.push(`let ${n.name}${v} = select(vec4f(0.0), ${load(`select(${n.index}, ${n.index} + ${col / 4}u, ${n.pixel} + ${col}u < ${n.limit})`)}, ${n.pixel} + ${col}u < ${n.limit});`);
  }
  lines.push(`var v0 = vec4f(${[0, 1, 2, 3].map((e) => at(first + e)).join(', ')});`, `var v1 = vec4f(${[4, 5, 6, 7].map((e) => at(first + e)).join(', ')});`);
  for (let tx = 0; tx < T; tx++) {
    // A tap under a condition is skipped by the whole workgroup at once (the condition is the phase, wid.z).
    lines.push(tx === 0 && firstTapIf ? `if (${firstTapIf}) {` : '{', `  let t = ${tapIndex(tx)};`, ...tap(`${tx}u`).map((l) => `  ${l}`), '}');
    if (tx < T - 1) lines.push(...slide(tx, at));
  }
  return lines.join(`\n${n.ind}`);
}

/** One tap's code (the lane's weights, their broadcasts and the multiply-adds), given the tap's tx expression. */
type TapCode = (tx: string) => string[];

/**
 * The unrolled per-channel code of the file for one variant (the other entry point's slots get the
 * general row, so the module compiles whole).
 */
function modulatedConvSubgroupSpecialization(v: Variant): Record<string, string | number> {
  const { ch, mode, linked, vecStore, transposed } = v;
  const row = v.entry === 'forward' ? v.row : null;
  const ibRow = v.entry === 'input_backward' ? v.row : null;
  const blocks = ch / 8;
  const accs: string[] = [];
  const macs: string[] = [];
  for (let c = 0; c < ch; c++) {
    accs.push(`var acc${c}_0 = vec4f(0.0);`, `var acc${c}_1 = vec4f(0.0);`);
    macs.push(`let w${c} = vec4f(subgroupBroadcast(wl${c >> 3}, ${c & 7}u));`, `acc${c}_0 = fma(w${c}, v0, acc${c}_0);`, `acc${c}_1 = fma(w${c}, v1, acc${c}_1);`);
  }
  const blockIds = [...Array(blocks).keys()];
  const fromK: TapCode = () => [...blockIds.map((b) => `let wl${b} = keff[kw${b} + t];`), ...macs];
  const fromLinked: TapCode = (tx) => [...blockIds.map((b) => `let wl${b} = kp${b}[${tx}][ty]; // column tx, row ty`), ...macs];
  const fwdSetup: string[] = [];
  const fwdPerInput: string[] = [];
  const ibSetup: string[] = [];
  for (let b = 0; b < blocks; b++) {
    if (linked) {
      fwdSetup.push(`let kw${b} = min(c0 + ${8 * b}u + lane, p.Co - 1u) * p.Ci * 9u; // raw 3x3 weights of the lane's channel`);
      fwdPerInput.push(
        `let wb${b} = kw${b} + i * 9u;`,
        `let kp${b} = lry * mat3x3f(vec3f(wt[wb${b}], wt[wb${b} + 3u], wt[wb${b} + 6u]), vec3f(wt[wb${b} + 1u], wt[wb${b} + 4u], wt[wb${b} + 7u]), vec3f(wt[wb${b} + 2u], wt[wb${b} + 5u], wt[wb${b} + 8u])) * lrx_t;`,
      );
    } else {
      fwdSetup.push(`let kw${b} = (min(c0 + ${8 * b}u + lane, p.Co - 1u) * p.Ci * PH + ph) * tt;`);
    }
    ibSetup.push(`let kw${b} = min(c0 + ${8 * b}u + lane, p.Ci - 1u) * PH * tt;`);
  }
  if (linked) fwdSetup.unshift('let lry = link(ph >> 1u);', 'let lrx_t = transpose(link(ph & 1u));');
  const fwdStore: string[] = [];
  const ibStore: string[] = [];
  for (let c = 0; c < ch; c++) {
    fwdStore.push(`store_y${vecStore ? '4' : ''}(live, n, c0 + ${c}u, oy, ox0, b0, acc${c}_0, acc${c}_1);`);
    ibStore.push(`store_gx${vecStore ? '4' : ''}(live, n, c0 + ${c}u, py, px0, px0 / 8u, acc${c}_0, acc${c}_1);`);
  }
  const join = (lines: string[], indent: string) => lines.join(`\n${indent}`);
  return {
    CH: ch,
    FWD_STYLE: FORWARD_STYLE[mode],
    FWD_OUT: FORWARD_OUT[mode],
    FWD_SETUP: join([...fwdSetup, ...accs], '  '),
    FWD_PER_INPUT: join(fwdPerInput, '    '),
    FWD_TY0: transposed && v.entry === 'forward' ? 'ph >> 1u' : '0u',
    IB_TY0: transposed && v.entry === 'input_backward' ? 'ph >> 1u' : '0u',
    FWD_ROW: tapRow(true, linked ? fromLinked : fromK, row),
    FWD_STORE: join(fwdStore, '  '),
    IB_SETUP: join([...ibSetup, ...accs], '  '),
    IB_ROW: tapRow(false, fromK, ibRow),
    IB_STORE: join(ibStore, '  '),
  };
}

type Bindings = Record<string, 'read' | 'read_write' | 'uniform'>;
const forwardBindings: Record<ForwardMode, Bindings> = {
  scaled: { p: 'uniform', x: 'read', keff: 'read', st: 'read', coef: 'read', y: 'read_write' },
  plain: { p: 'uniform', x: 'read', keff: 'read', y: 'read_write' },
  bias: { p: 'uniform', x: 'read', keff: 'read', bias: 'read', y: 'read_write' },
};
const inputBindings: Bindings = { p: 'uniform', x: 'read', keff: 'read', st: 'read', coef: 'read', gy: 'read', gx: 'read_write', part_out: 'read_write' };

/** One kernel of the file: its entry point, channels per workgroup, forward mode, unrolled row, linked phases, vec4 stores. */
interface Variant {
  entry: 'forward' | 'input_backward';
  ch: number;
  mode: ForwardMode;
  row: RowShape | null;
  /** The upsampling forward builds each phase kernel from the raw 3x3 weights (K = L_ry W L_rx^T). */
  linked: boolean;
  /** The outputs are written (and the input gradient's x read) as vec4s (store_y4, store_gx4). */
  vecStore: boolean;
  /** The split upsampling path's transposed conv (up = 2, T = 2): the taps zero in every phase kernel are left out. */
  transposed: boolean;
}

/**
 * The WGSL name of each binding the op passes under its plain name: an unrolled row reads its
 * window as vec4s (x4, gy4), vec4 stores write y4 or gx4 (and read x4), and a linked forward reads
 * the raw weights (wt) where the others read K (keff). One map for declaring and for binding.
 */
function wgslNames(v: Variant): Record<string, string> {
  const forward = v.entry === 'forward';
  const names: Record<string, string> = {};
  if (v.row) names[forward ? 'x' : 'gy'] = forward ? 'x4' : 'gy4';
  if (v.linked) names.keff = 'wt';
  if (v.vecStore) Object.assign(names, forward ? { y: 'y4' } : { gx: 'gx4', x: 'x4' });
  return names;
}

const kernels = new Map<string, Kernel>();

/** Records one dispatch of a variant; `tensors` are keyed by plain binding name (x, y, keff, ...). */
function dispatchVariant(v: Variant, tensors: Record<string, Tensor>, p: Record<string, number>, grid: number[]): void {
  const names = wgslNames(v);
  const name = `${v.ch}ch${v.mode === 'scaled' ? '' : ` ${v.mode} conv2d`}${v.linked ? ' linked' : ''}${v.row ? ` T${v.row.T} pad${v.row.pad}${v.row.width ? ` width${v.row.width}` : ''}${v.row.past ? ' past' : ''}` : ''}${v.vecStore ? ' vec4 out' : ''}${v.transposed ? ' transposed' : ''}`;
  let k = kernels.get(`${v.entry}/${name}`);
  if (!k) {
    const declared = v.entry === 'forward' ? forwardBindings[v.mode] : inputBindings;
    const bindings = Object.fromEntries(Object.entries(declared).map(([n, kind]) => [names[n] ?? n, kind]));
    k = defineKernel({ shader: SHADER, entry: v.entry, variant: name, specialize: modulatedConvSubgroupSpecialization(v), bindings });
    kernels.set(`${v.entry}/${name}`, k);
  }
  k.dispatch({ ...Object.fromEntries(Object.entries(tensors).map(([n, t]) => [names[n] ?? n, t])), p }, grid);
}

/**
 * Records one forward: the unrolled vec4 row where the shape allows, vec4 stores where rows of y
 * are, and for an upsampling conv (`linked`) the phase kernels built from the raw weight (keff).
 */
function dispatchForward(ch: number, mode: ForwardMode, sizes: { W: number; Wp: number; up: number; T: number; pad: number }, tensors: Record<string, Tensor>, p: Record<string, number>, grid: number[], linked = false): void {
  const transposed = sizes.up === 2 && sizes.T === 2;
  const row = rowUnrollable(sizes.W, sizes.T, sizes.pad) ? { T: sizes.T, pad: sizes.pad, width: sizes.Wp <= 8 ? sizes.W : undefined, past: sizes.Wp > sizes.W || undefined, transposed: transposed || undefined } : null;
  const vecStore = sizes.up === 1 && sizes.Wp % 4 === 0;
  dispatchVariant({ entry: 'forward', ch, mode, row, linked, vecStore, transposed }, tensors, p, grid);
}

/** 16 channels per workgroup where there are that many, else 8; null below 8 (ToRGB's 3 outputs). */
function channelsPerTile(channels: number): number | null {
  if (!subgroupTiles(backend().gpu) || channels < 8) return null;
  return channels >= 16 ? 16 : 8; // not 32: more accumulators than registers
}

function fits(grid: number[]): boolean {
  return grid.every((g) => g <= backend().gpu.limits.maxComputeWorkgroupsPerDimension);
}

/**
 * Records the scaled forward y = conv(x * s, K) * coef with the subgroup kernel, or returns false.
 * K is the raw weight for a plain conv; an upsampling conv (k = 3) builds its phase kernels from
 * the raw weight inside the kernel, so it needs no K [Co, Ci, 4, 3, 3] (whose strided reads cost
 * cache traffic, and whose construction is a large share of config-f's 512-channel upsampling
 * forward: bench/results/2026-11-notes-from-code.md, "Modulated convolution: tiles and helper
 * kernels").
 */
export function trySubgroupForward(pl: ModulatedConvPlan, b: { x: Tensor; weight: Tensor; st: Tensor; coef: Tensor; y: Tensor; keff?: Tensor }): boolean {
  const ch = channelsPerTile(pl.Co);
  if (ch === null) return false;
  const lanes = pl.N * pl.Hp * Math.ceil(pl.Wp / 8);
  const grid = [Math.ceil(lanes / 8), Math.ceil(pl.Co / ch), pl.up * pl.up];
  if (!fits(grid)) return false;
  const { weight, keff, ...rest } = b;
  // Linked: the fused upsampling phase kernels (T = 3) built in the kernel; the split path's (T = 2) come built in keff.
  const linked = pl.up === 2 && pl.T === 3;
  if (!linked && pl.up === 2 && !keff) throw new Error('modulated_conv: the split upsampling forward needs its phase kernels');
  dispatchForward(ch, 'scaled', pl, { ...rest, keff: linked ? weight : (keff ?? weight) }, modulatedConvParams(pl, lanes), grid, linked);
  return true;
}

/** Records the scaled input gradient gx and the style-gradient pieces part_out, or returns false. */
export function trySubgroupInputBackward(pl: ModulatedConvPlan, b: { gy: Tensor; keff: Tensor; coef: Tensor; x: Tensor; st: Tensor; gx: Tensor; part_out: Tensor }): boolean {
  const ch = channelsPerTile(pl.Ci);
  if (ch === null) return false;
  const lanes = pl.N * pl.H * Math.ceil(pl.W / 8);
  const grid = [Math.ceil(lanes / 8), Math.ceil(pl.Ci / ch)];
  if (!fits(grid)) return false;
  const transposed = pl.up === 2 && pl.T === 2;
  let row: RowShape | null = pl.up === 1 && rowUnrollable(pl.Wp, pl.T, pl.pad) ? { T: pl.T, pad: pl.pad, width: pl.W <= 8 ? pl.Wp : undefined } : null;
  if (transposed && pl.pad === 1 && pl.Wo % 4 === 0 && pl.Wp >= pl.W + 1) row = { T: 2, pad: 1, transposed: true };
  dispatchVariant({ entry: 'input_backward', ch, mode: 'scaled', row, linked: false, vecStore: pl.W % 4 === 0, transposed }, b, modulatedConvParams(pl, lanes), grid);
  return true;
}

/**
 * A plain conv2d y = conv(x, w) (+ bias) with the forward kernel: stride 1, no dilation, one group,
 * a square k x k kernel and the same padding on every side. x [N, Ci, H, W], w [Co, Ci, k, k] (the
 * kernel's [Co, Ci, 1, k, k]) -> y [N, Co, Ho, Wo], Ho = H + 2 pad - k + 1. Returns null (recording
 * nothing) when the device lacks 8-lane subgroups or there are fewer than 8 output channels.
 */
export function trySubgroupConv2d(x: Tensor, w: Tensor, bias: Tensor | null, pad: number): Tensor | null {
  const [N, Ci, H, W] = x.shape;
  const [Co, , k] = w.shape;
  const [Ho, Wo] = [H + 2 * pad - k + 1, W + 2 * pad - k + 1];
  const ch = channelsPerTile(Co);
  if (ch === null) return null;
  const lanes = N * Ho * Math.ceil(Wo / 8);
  const grid = [Math.ceil(lanes / 8), Math.ceil(Co / ch), 1];
  if (!fits(grid)) return null;
  const y = empty([N, Co, Ho, Wo]);
  // The modulated conv's uniform; demod and scale are unused (the plain modes read no styles or coef).
  const p = { N, Ci, Co, H, W, k, up: 1, T: k, pad, Hp: Ho, Wp: Wo, Ho, Wo, demod: 0, scale: 1, total: lanes };
  const mode: ForwardMode = bias ? 'bias' : 'plain';
  dispatchForward(ch, mode, { W, Wp: Wo, up: 1, T: k, pad }, { x, keff: w, y, ...(bias ? { bias } : {}) }, p, grid);
  return y;
}
