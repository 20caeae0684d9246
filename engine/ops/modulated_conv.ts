// StyleGAN2's modulated convolution as one op (rosinality's ModulatedConv2d, DESIGN.md section 5):
//   w''[n,o,i,ky,kx] = coef[n,o] * s[n,i] * W[o,i,ky,kx],
//   coef[n,o] = scale * rsqrt(scale^2 * sum_{i,ky,kx} (W s)^2 + 1e-8) (demodulate) or scale, scale = 1/sqrt(Ci*k*k);
// plain: conv with padding (default k//2); upsample: transposed conv stride 2 then the [1,3,3,1] blur,
// fused into one stride-2 gather with a (k+3)-tap kernel split into 4 phases (upsampleLink
// derives it), so nothing but the output is stored. ToRGB is the 1x1 case without demodulation.
//
// Shapes: x [N, Ci, H, W], weight [Co, Ci, k, k] (the raw stored parameter), styles [N, Ci] (the
// affine output s, bias +1 included) -> y [N, Co, Ho, Wo] (Ho = H + 2*padding - k + 1, or 2H).
// Saved for backward: x, weight, styles, coef [N, Co] (computed once per (n, o) by its own small
// kernel), the phase kernels K [Co, Ci, 4, T, T] when upsampling, and y.
//
// Formulation, chosen by measurement: the "scaled" form (the default) keeps W shared by the batch,
// multiplies x by s[n,i] as the conv loads it and the output by coef[n,o]; the "fused" form first
// builds per-sample weights [N, Co, Ci, k, k] and convolves with them, and its backward needs the
// per-sample weight gradient [N, Co, Ci, k, k] reduced three ways. Both are exact, share the conv
// kernels (template slot FUSED) and stay available (`formulation`), so the choice can be re-measured.
//
// MEASUREMENT (bench/modulated_conv.ts, 2026-11-27; lavapipe, Mesa 25.0.7 / LLVM 15, on 2 AMD EPYC cores
// shared with other jobs, load average 8-13; all 11 modulated convs of the Fashion generator at
// batch 1 and 8; the two forms timed in turns, best of 3). Under that load wall-clock and GPU-timestamp
// times swing by 2x, so the deciding metric is the process's CPU time per call (lavapipe's worker
// threads run in the process). fused / scaled, geometric mean over the 22 shapes:
//   forward 1.22, forward + all gradients 1.16, forward + gradients of x and styles 1.58.
// E.g. b8.conv1 (128->128, 8x8) at batch 8: forward 26.8 ms scaled vs 33.4 ms fused, + x and style
// gradients 53.5 vs 92.8 ms; b32.conv0 (64->32, upsampling 16->32) at batch 8: 72.1 vs 84.7 ms and
// 112.6 vs 204.2 ms. The GPU-timestamp GFLOP/s point the same way (b8.conv1 batch 8: 4.49 vs 3.33
// forward, 5.55 vs 2.20 with x and style gradients). Why: the conv kernel is the same, but the fused
// form also writes and reads N copies of the weights (4.7 MB at 128->128, batch 8), and its style
// gradient needs the per-sample weight gradient, a pass as costly as the conv itself, even when the
// weights need no gradient (ILO and SGILO optimize x and the styles only), while the scaled form gets
// sum_p x * u for the style gradient from its input-gradient pass. On an NVIDIA H200 (Dawn/Vulkan,
// GPU timestamps) the scaled form was faster at most shapes too (b8.conv1 batch 8: forward 322 vs
// 278 GFLOP/s, with x and style gradients 327 vs 274).

import { defineKernel, grid1d, type Kernel } from '../kernel.ts';
import { record } from '../tape.ts';
import { Tensor, empty } from '../tensor.ts';
import { shapeString } from '../shape.ts';
import { trySubgroupForward, trySubgroupInputBackward } from './modulated_conv_subgroup.ts';

export type ModConvFormulation = 'scaled' | 'fused';

export interface ModulatedConvOptions {
  /** Normalize each output channel's per-sample weights (default true; false for ToRGB). */
  demodulate?: boolean;
  /** Transposed conv stride 2 + blur, H -> 2H (default false). Needs an odd kernel. */
  upsample?: boolean;
  /** Zero padding of the plain conv (default k//2, same size). Not allowed with upsample. */
  padding?: number;
  /** Default: DEFAULT_FORMULATION (see the file comment). */
  formulation?: ModConvFormulation;
}

export const DEFAULT_FORMULATION: ModConvFormulation = 'scaled';

const SHADER = 'modulated_conv';
const plain = { FUSED: 'false' };
const kernel = (entry: string, bindings: Record<string, 'read' | 'read_write' | 'uniform'>, fused?: boolean): Kernel =>
  defineKernel({
    shader: SHADER,
    entry: `modulated_conv_${entry}`,
    bindings: { p: 'uniform', ...bindings },
    specialize: fused === undefined ? plain : { FUSED: String(fused) },
    ...(fused === undefined ? {} : { variant: fused ? 'fused' : 'scaled' }),
  });

const both = <T>(make: (fused: boolean) => T): Record<ModConvFormulation, T> => ({ scaled: make(false), fused: make(true) });

const K = {
  coef: kernel('coef', { st: 'read', wt: 'read', coef_out: 'read_write' }),
  upWeights: kernel('up_weights', { wt: 'read', keff_out: 'read_write' }),
  fusedWeights: kernel('fused_weights', { keff: 'read', st: 'read', coef: 'read', keff_out: 'read_write' }),
  forward: both((f) => kernel('forward', { x: 'read', keff: 'read', st: 'read', coef: 'read', y: 'read_write' }, f)),
  coefBackward: kernel('coef_backward', { gy: 'read', y_saved: 'read', coef: 'read', h_out: 'read_write' }),
  inputBackward: both((f) => kernel('input_backward', { gy: 'read', keff: 'read', coef: 'read', x: 'read', st: 'read', gx: 'read_write', part_out: 'read_write' }, f)),
  styleBackward: kernel('style_backward', { part: 'read', st: 'read', wt: 'read', h: 'read', gs: 'read_write' }),
  fusedStyleBackward: kernel('fused_style_backward', { keff: 'read', gk: 'read', coef: 'read', st: 'read', wt: 'read', h: 'read', gs: 'read_write' }),
  weightBackward: both((f) => kernel('weight_backward', { gy: 'read', x: 'read', st: 'read', coef: 'read', gk_out: 'read_write' }, f)),
  fusedWeightReduce: kernel('fused_weight_reduce', { gk: 'read', coef: 'read', st: 'read', gk_out: 'read_write' }),
  weightFinish: kernel('weight_finish', { gk: 'read', wt: 'read', st: 'read', h: 'read', gw: 'read_write' }),
};

/** Sizes of one call; `params(total)` is the uniform every kernel of the file reads. */
export interface ModConvPlan {
  N: number;
  Ci: number;
  Co: number;
  H: number;
  W: number;
  k: number;
  up: 1 | 2;
  T: number;
  pad: number;
  Hp: number;
  Wp: number;
  Ho: number;
  Wo: number;
  demod: boolean;
  scale: number;
  /** Phase kernel shape [Co, Ci, PH, T, T]. */
  kshape: number[];
  /** Multiply-adds of the conv itself (the FLOP count is twice this). */
  macs: number;
}

function fail(msg: string): never {
  throw new RangeError(`modulated_conv: ${msg}`);
}

/** Validates the inputs and sizes the op. Throws an error naming the problem. */
export function planModulatedConv(xShape: readonly number[], wShape: readonly number[], sShape: readonly number[], o: ModulatedConvOptions = {}): ModConvPlan {
  if (xShape.length !== 4) fail(`x must be [N, C_in, H, W], got ${shapeString(xShape)}`);
  if (wShape.length !== 4) fail(`weight must be [C_out, C_in, k, k], got ${shapeString(wShape)}`);
  if (sShape.length !== 2) fail(`styles must be [N, C_in], got ${shapeString(sShape)}`);
  const [N, Ci, H, W] = xShape;
  const [Co, wCi, k, k2] = wShape;
  if (k !== k2) fail(`weight ${shapeString(wShape)} must have a square kernel, got ${k}x${k2}`);
  if (wCi !== Ci) fail(`weight ${shapeString(wShape)} has C_in = ${wCi}, but x ${shapeString(xShape)} has ${Ci} channels`);
  if (sShape[0] !== N || sShape[1] !== Ci) fail(`styles ${shapeString(sShape)} must be [N, C_in] = [${N}, ${Ci}] for x ${shapeString(xShape)}`);
  const demod = o.demodulate ?? true;
  const scale = 1 / Math.sqrt(Ci * k * k);
  let plan: Omit<ModConvPlan, 'kshape' | 'macs' | 'Ho' | 'Wo'>;
  if (o.upsample) {
    if (k % 2 === 0) fail(`upsample needs an odd kernel size (the blur's padding is (5-k)/2 per side), got k = ${k}`);
    // The phase kernels are built with the k = 3 maps hard-coded in the shader (rosinality's
    // upsampling StyledConv is always 3x3); other odd sizes are defined (upsampleLink, the reference).
    if (k !== 3) fail(`upsample is implemented for 3x3 kernels (rosinality's upsampling conv), got k = ${k}`);
    if (o.padding !== undefined) fail(`padding is fixed by the blur when upsampling; got padding ${o.padding}`);
    const pad = Math.floor((k + 3) / 4);
    plan = { N, Ci, Co, H, W, k, up: 2, T: 2 * pad + 1, pad, Hp: H, Wp: W, demod, scale };
  } else {
    const pad = o.padding ?? Math.floor(k / 2);
    if (!Number.isInteger(pad) || pad < 0) fail(`padding must be a non-negative integer, got ${pad}`);
    const Hp = H + 2 * pad - k + 1;
    const Wp = W + 2 * pad - k + 1;
    if (Hp < 1 || Wp < 1) fail(`the ${k}x${k} kernel with padding ${pad} does not fit the ${H}x${W} input`);
    plan = { N, Ci, Co, H, W, k, up: 1, T: k, pad, Hp, Wp, demod, scale };
  }
  const PH = plan.up * plan.up;
  return {
    ...plan,
    Ho: plan.Hp * plan.up,
    Wo: plan.Wp * plan.up,
    kshape: [Co, Ci, PH, plan.T, plan.T],
    macs: N * Co * Ci * PH * plan.T * plan.T * plan.Hp * plan.Wp,
  };
}

/**
 * The upsampling path as a linear map of each (o, i) kernel, one axis at a time: [2, T] phase taps
 * (phase r, tap t) from k kernel taps, link[(r*T + t)*k + ky]; in 2-D it is the outer product
 * K[o,i,ry,rx,ty,tx] = sum_{ky,kx} link[ry,ty,ky] link[rx,tx,kx] W[o,i,ky,kx].
 *
 * Transposed conv, stride 2, no padding: t[q] = sum_p x[p] W[q - 2p] (size 2H+k-2). Blur (upfirdn2d,
 * a true convolution, padding P = (5-k)/2 per side as rosinality pads it, 1 for k = 3):
 * z[r] = sum_j t[r - P + j] bf[j], bf the flipped taps of [1,3,3,1]/4 (the 2-D kernel
 * outer([1,3,3,1])/64*4 is the outer product of these). Together: z[r] = sum_p x[p] E[r - 2p] with
 * E[m] = sum_ky W[ky] bf[ky - m + P], m in [-(k+1)/2, (k+3)/2]. Output r = 2a + ry reads x[a - d]
 * with weight E[2d + ry]; both phases' taps d lie in [-pad, pad], pad = floor((k+3)/4), so with
 * t = pad - d the phase kernel is K[ry][t] = E[2(pad - t) + ry], read at x[a - pad + t], T = 2 pad + 1.
 */
export function upsampleLink(k: number): Float64Array {
  const pad = Math.floor((k + 3) / 4);
  const T = 2 * pad + 1;
  const P = (5 - k) / 2;
  const b = [1, 3, 3, 1].map((v) => v / 4);
  const bf = (j: number) => (j >= 0 && j < 4 ? b[3 - j] : 0);
  const link = new Float64Array(2 * T * k);
  for (let r = 0; r < 2; r++) for (let t = 0; t < T; t++) for (let ky = 0; ky < k; ky++) link[(r * T + t) * k + ky] = bf(ky - (2 * (pad - t) + r) + P);
  return link;
}

function params(pl: ModConvPlan, total: number) {
  const { N, Ci, Co, H, W, k, up, T, pad, Hp, Wp, Ho, Wo, scale } = pl;
  return { N, Ci, Co, H, W, k, up, T, pad, Hp, Wp, Ho, Wo, scale, demod: pl.demod ? 1 : 0, total };
}

/** One invocation per item (element, (o, i) pair, ...), 64 per workgroup. */
function perElement(k: Kernel, b: Parameters<Kernel['dispatch']>[0], pl: ModConvPlan, total: number): void {
  k.dispatch({ ...b, p: params(pl, total) }, grid1d(Math.ceil(total / 64)));
}

const quad = (n: number) => Math.ceil(n / 4);

/**
 * The conv kernels' grid: `lanes` invocations along x (pixel groups of every batch item) and one
 * workgroup row per 4-channel tile along y, so a workgroup's weight loads are uniform.
 */
function perTile(k: Kernel, b: Parameters<Kernel['dispatch']>[0], pl: ModConvPlan, lanes: number, tiles: number): void {
  k.dispatch({ ...b, p: params(pl, lanes) }, [Math.ceil(lanes / 64), tiles]);
}

/**
 * y = modulated conv of x [N, Ci, H, W] with weight [Co, Ci, k, k] and styles [N, Ci] -> [N, Co, Ho, Wo].
 * Differentiable in all three inputs (the weight gradient sums over the batch).
 */
export function modulatedConv2d(x: Tensor, weight: Tensor, styles: Tensor, options: ModulatedConvOptions = {}): Tensor {
  for (const [t, name] of [[x, 'x'], [weight, 'weight'], [styles, 'styles']] as const) {
    if (t.dtype !== 'f32') throw new TypeError(`modulated_conv: ${name} must be f32, got ${t.dtype}${shapeString(t.shape)}`);
  }
  const form = options.formulation ?? DEFAULT_FORMULATION;
  if (form !== 'scaled' && form !== 'fused') fail(`formulation must be "scaled" or "fused", got "${form}"`);
  const pl = planModulatedConv(x.shape, weight.shape, styles.shape, options);
  const { N, Ci, Co } = pl;

  const coef = empty([N, Co]); // [N, Co]
  perElement(K.coef, { st: styles, wt: weight, coef_out: coef }, pl, Math.ceil(N / 4) * Co); // per (4 items, o)
  const y = empty([N, Co, pl.Ho, pl.Wo]);
  // Phase kernels [Co, Ci, PH, T, T] (W itself for the plain conv), built only where a kernel reads
  // them: the subgroup forward of an upsampling conv builds them from W as it goes.
  let keff: Tensor | null = pl.up === 2 ? null : weight;
  let convWeights: Tensor | null = null; // fused: per-sample weights [N, Co, Ci, PH, T, T]
  if (form !== 'scaled' || !trySubgroupForward(pl, { x, weight, st: styles, coef, y })) {
    keff ??= phaseKernels(pl, weight);
    if (form === 'fused') {
      convWeights = empty([N, ...pl.kshape]);
      perElement(K.fusedWeights, { keff, st: styles, coef, keff_out: convWeights }, pl, N * Co * Ci); // per (n, o, i)
    }
    const forwardLanes = N * pl.up * pl.up * pl.Hp * Math.ceil(pl.Wp / 8); // 8 pixels each, x 4 channels per tile
    perTile(K.forward[form], { x, keff: convWeights ?? keff, st: styles, coef, y }, pl, forwardLanes, quad(Co));
  }

  const built = [keff, convWeights].filter((t): t is Tensor => t !== null && t !== weight);
  const saved = [x, weight, styles, coef, y, ...built];
  const sv = { x, weight, styles, coef, y, keff, convWeights };
  record('modulated_conv', [x, weight, styles], y, saved, (gy) => backward(pl, form, gy, sv));
  coef.dispose(); // the tape retains what backward needs
  for (const t of built) t.dispose();
  return y;
}

/** The upsampling phase kernels [Co, Ci, 4, 3, 3] of the raw weight (upsampleLink). */
function phaseKernels(pl: ModConvPlan, weight: Tensor): Tensor {
  const keff = empty(pl.kshape);
  perElement(K.upWeights, { wt: weight, keff_out: keff }, pl, pl.Co * pl.Ci); // per (o, i)
  return keff;
}

interface Saved {
  x: Tensor;
  weight: Tensor;
  styles: Tensor;
  coef: Tensor;
  y: Tensor;
  /** Null when the forward did not build the phase kernels (the subgroup upsampling forward). */
  keff: Tensor | null;
  /** The fused formulation's per-sample weights; null for the scaled one. */
  convWeights: Tensor | null;
}

function backward(pl: ModConvPlan, form: ModConvFormulation, gy: Tensor, sv: Saved): (Tensor | null)[] {
  const { N, Ci, Co } = pl;
  const { x, weight, styles, coef, y, keff, convWeights } = sv;
  const wantInput = x.requiresGrad || styles.requiresGrad;
  const wantWeight = weight.requiresGrad;
  // h[n,o] = coef^2 sum gy*y: what the demodulation adds to the style and weight gradients.
  const h = empty([N, Co]); // [N, Co]
  perElement(K.coefBackward, { gy, y_saved: y, coef, h_out: h }, pl, N * Co);
  const inputLanes = N * pl.H * Math.ceil(pl.W / 8); // 8 pixels each, x 4 channels per tile
  const nTaps = pl.up * pl.up * pl.T * pl.T;
  let gx: Tensor | null = null;
  let gs: Tensor | null = null;
  let gw: Tensor | null = null;
  let perSample: Tensor | null = null; // fused: per-sample weight gradient [N, Co, Ci, PH, T, T]
  if (form === 'fused' && (wantInput || wantWeight)) {
    perSample = empty([N, ...pl.kshape]);
    perElement(K.weightBackward.fused, { gy, x, st: styles, coef, gk_out: perSample }, pl, N * quad(Co) * quad(Ci) * nTaps);
  }
  if (wantInput) {
    gs = empty([N, Ci]); // [N, Ci]
    gx = empty(x.shape);
    if (form === 'scaled') {
      const k = keff ?? phaseKernels(pl, weight);
      const part = empty([N, Ci, pl.H, Math.ceil(pl.W / 8)]); // pieces of sum_p x * gx / s
      if (!trySubgroupInputBackward(pl, { gy, keff: k, coef, x, st: styles, gx, part_out: part })) {
        perTile(K.inputBackward.scaled, { gy, keff: k, coef, x, st: styles, gx, part_out: part }, pl, inputLanes, quad(Ci));
      }
      perElement(K.styleBackward, { part, st: styles, wt: weight, h, gs }, pl, N * Ci);
      part.dispose();
      if (k !== keff) k.dispose();
    } else {
      const unused = empty([1]); // the fused variant writes no pieces
      perTile(K.inputBackward.fused, { gy, keff: convWeights!, coef, x, st: styles, gx, part_out: unused }, pl, inputLanes, quad(Ci));
      unused.dispose();
      perElement(K.fusedStyleBackward, { keff: keff!, gk: perSample!, coef, st: styles, wt: weight, h, gs }, pl, N * Ci);
    }
  }
  if (wantWeight) {
    const gk = empty(pl.kshape); // [Co, Ci, PH, T, T]
    if (form === 'scaled') perElement(K.weightBackward.scaled, { gy, x, st: styles, coef, gk_out: gk }, pl, quad(Co) * quad(Ci) * nTaps);
    else perElement(K.fusedWeightReduce, { gk: perSample!, coef, st: styles, gk_out: gk }, pl, Co * Ci); // per (o, i)
    gw = empty(weight.shape);
    perElement(K.weightFinish, { gk, wt: weight, st: styles, h, gw }, pl, Co * Ci); // per (o, i)
    gk.dispose();
  }
  perSample?.dispose();
  h.dispose();
  if (gx && !x.requiresGrad) {
    gx.dispose();
    gx = null;
  }
  if (gs && !styles.requiresGrad) {
    gs.dispose();
    gs = null;
  }
  return [gx, gw, gs];
}
