// StyleGAN2's modulated convolution as one op (rosinality's ModulatedConv2d, docs/design.md, "StyleGAN2"):
//   w''[n,o,i,ky,kx] = coef[n,o] * s[n,i] * W[o,i,ky,kx],
//   coef[n,o] = scale * rsqrt(scale^2 * sum_{i,ky,kx} (W s)^2 + 1e-8) (demodulate) or scale, scale = 1/sqrt(Ci*k*k);
// plain: conv with padding (default k//2); upsample: transposed conv stride 2 then the [1,3,3,1] blur,
// fused into one stride-2 gather with a (k+3)-tap kernel split into 4 phases (upsampleLink
// derives it), so nothing but the output is stored. ToRGB is the 1x1 case without demodulation.
//
// Shapes: x [N, Ci, H, W], weight [Co, Ci, k, k] (the raw stored parameter), styles [N, Ci] (the
// affine output s, bias +1 included) -> y [N, Co, Ho, Wo] (Ho = H + 2*padding - k + 1, or 2H).
// Saved for backward: x, weight, styles, coef [N, Co] (computed once per (n, o) by its own small
// kernel), the phase kernels K [Co, Ci, 4, T, T] when upsampling, and y. Sizes and validation:
// engine/ops/modulated_conv_plan.ts; the 8-lane subgroup kernels: modulated_conv_subgroup.ts; the
// implicit GEMMs of hardware GPUs (forward per upsampling phase, input gradient): conv_tiled.ts.
//
// Large upsampling convs take the split path instead (splitUpsample): the stride-2 transposed conv
// alone as the phase convolution (2 x 2 taps per phase, 9 of them nonzero: 4 times fewer
// multiply-adds than the fused 3 x 3 per phase, which carry the blur in every tap), then the blur
// as its own pass over the output channels (upfirdn2d), as rosinality's model runs it. It stores
// the unblurred map of (2H+2) x 2Wp (Wp = W+1 or W+2, even) for the length of the op (forward)
// and its gradient (backward).
//
// Formulation, chosen by measurement: W stays shared by the batch, x is multiplied by s[n,i] as
// the conv loads it and the output by coef[n,o]; the style gradient's sum_p x * u comes from the
// input-gradient pass. The alternative, per-sample weights [N, Co, Ci, k, k] built first, was
// slower on lavapipe and on an NVIDIA H200 (more weight traffic, and a per-sample weight gradient
// even when the weights need none, as in ILO and SGILO) and is gone; the numbers that decided it
// are in bench/results/2026-11-27-modulated-conv-formulations.md.

import { defineKernel, grid1d, type Kernel } from '../kernel.ts';
import { noGrad, record } from '../tape.ts';
import { Tensor, empty } from '../tensor.ts';
import { shapeString } from '../shape.ts';
import { modulatedConvParams, planModulatedConv, transposedUpsamplePlan, type ModulatedConvOptions, type ModulatedConvPlan } from './modulated_conv_plan.ts';
import { trySubgroupForward, trySubgroupInputBackward } from './modulated_conv_subgroup.ts';
import { tiledModulatedForward, tiledModulatedInputBackward } from './conv_tiled.ts';
import { workgroupTiles } from '../device.ts';
import { makeKernel, upfirdn2d } from './upfirdn2d.ts';
import { backend } from '../backend.ts';

/** Forward kernels in shaders/modulated_conv.wgsl, backward ones in modulated_conv_backward.wgsl. */
const kernel = (entry: string, bindings: Record<string, 'read' | 'read_write' | 'uniform'>, backward = false): Kernel =>
  defineKernel({ shader: backward ? 'modulated_conv_backward' : 'modulated_conv', entry: `modulated_conv_${entry}`, bindings: { p: 'uniform', ...bindings } });

const K = {
  coef: kernel('coef', { st: 'read', wt: 'read', coef_out: 'read_write' }),
  upWeights: kernel('up_weights', { wt: 'read', keff_out: 'read_write' }),
  upWeightsTransposed: kernel('up_weights_transposed', { wt: 'read', keff_out: 'read_write' }),
  forward: kernel('forward', { x: 'read', keff: 'read', st: 'read', coef: 'read', y: 'read_write' }),
  coefBackward: kernel('coef_backward', { gy: 'read', y_saved: 'read', coef: 'read', h_out: 'read_write' }, true),
  inputBackward: kernel('input_backward', { gy: 'read', keff: 'read', coef: 'read', x: 'read', st: 'read', gx: 'read_write', part_out: 'read_write' }, true),
  styleBackward: kernel('style_backward', { part: 'read', st: 'read', wt: 'read', h: 'read', gs: 'read_write' }, true),
  weightBackward: kernel('weight_backward', { gy: 'read', x: 'read', st: 'read', coef: 'read', gk_out: 'read_write' }, true),
  weightFinish: kernel('weight_finish', { gk: 'read', wt: 'read', st: 'read', h: 'read', gw: 'read_write' }, true),
};

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

/** One invocation per item (element, (o, i) pair, ...), 64 per workgroup. */
function perElement(k: Kernel, b: Parameters<Kernel['dispatch']>[0], pl: ModulatedConvPlan, total: number): void {
  k.dispatch({ ...b, p: modulatedConvParams(pl, total) }, grid1d(Math.ceil(total / 64)));
}

const quad = (n: number) => Math.ceil(n / 4);

/** rosinality's blur after the transposed conv: [1,3,3,1] outer itself, normalized, times 4 (the factor squared). */
const UP_BLUR = makeKernel([1, 3, 3, 1], 4);
/** Input planes from which an upsampling conv takes the split path (32^2: config-f's 64^2 block and up). */
export const SPLIT_UPSAMPLE_MIN_PIXELS = 32 * 32;

/**
 * The split path's plan where it pays and fits, else null: an upsampling conv on an input of at
 * least SPLIT_UPSAMPLE_MIN_PIXELS pixels and 16 channels, on the CPU adapters' kernels (subgroup or
 * general; hardware GPUs keep the fused phases in their implicit GEMM), whose unblurred map fits
 * one binding. Smaller planes keep the fused path: there the blur's extra dispatch costs more than
 * the multiply-adds it saves.
 */
function splitUpsample(pl: ModulatedConvPlan): ModulatedConvPlan | null {
  if (pl.up !== 2 || pl.H * pl.W < SPLIT_UPSAMPLE_MIN_PIXELS || pl.Ci < 16 || workgroupTiles(backend().gpu)) return null;
  const sp = transposedUpsamplePlan(pl);
  // The unblurred map must be bindable (config-f's 1024^2 layer, 32 x 1026^2 floats, is not on lavapipe's 128 MiB).
  const limits = backend().gpu.limits;
  return 4 * sp.N * sp.Co * sp.Ho * sp.Wo <= Math.min(limits.maxStorageBufferBindingSize, limits.maxBufferSize) ? sp : null;
}

/**
 * The conv kernels' grid: `lanes` invocations along x (pixel groups of every batch item) and one
 * workgroup row per 4-channel tile along y, so a workgroup's weight loads are uniform.
 */
function perTile(k: Kernel, b: Parameters<Kernel['dispatch']>[0], pl: ModulatedConvPlan, lanes: number, tiles: number): void {
  k.dispatch({ ...b, p: modulatedConvParams(pl, lanes) }, [Math.ceil(lanes / 64), tiles]);
}

/**
 * y = modulated conv of x [N, Ci, H, W] with weight [Co, Ci, k, k] and styles [N, Ci] -> [N, Co, Ho, Wo].
 * Differentiable in all three inputs (the weight gradient sums over the batch).
 */
export function modulatedConv2d(x: Tensor, weight: Tensor, styles: Tensor, options: ModulatedConvOptions = {}): Tensor {
  for (const [t, name] of [[x, 'x'], [weight, 'weight'], [styles, 'styles']] as const) {
    if (t.dtype !== 'f32') throw new TypeError(`modulated_conv: ${name} must be f32, got ${t.dtype}${shapeString(t.shape)}`);
  }
  const pl = planModulatedConv(x.shape, weight.shape, styles.shape, options);
  const { N, Co } = pl;

  const coef = empty([N, Co]); // [N, Co]
  perElement(K.coef, { st: styles, wt: weight, coef_out: coef }, pl, Math.ceil(N / 4) * Co); // per (4 items, o)
  const split = splitUpsample(pl);
  if (split) {
    const y = splitForward(pl, split, { x, weight, st: styles, coef });
    const sv = { x, weight, styles, coef, y, keff: null };
    record('modulated_conv', [x, weight, styles], y, [x, weight, styles, coef, y], (gy) => backward(pl, gy, sv, split));
    coef.dispose(); // the tape retains what backward needs
    return y;
  }
  const y = empty([N, Co, pl.Ho, pl.Wo]);
  // Phase kernels [Co, Ci, PH, T, T] (W itself for the plain conv), built only where a kernel reads
  // them: the subgroup forward of an upsampling conv builds them from W as it goes.
  let keff: Tensor | null = pl.up === 2 ? null : weight;
  // Hardware GPUs: the implicit GEMM (one per batch item and phase), which reads the phase kernels;
  // CPU adapters with 8-lane subgroups: the subgroup kernel; else, or where they decline, the general one.
  let done: boolean;
  if (workgroupTiles(backend().gpu)) {
    keff ??= phaseKernels(pl, weight);
    done = tiledModulatedForward(pl, { x, keff, st: styles, coef, y });
  } else done = trySubgroupForward(pl, { x, weight, st: styles, coef, y });
  if (!done) {
    keff ??= phaseKernels(pl, weight);
    const forwardLanes = N * pl.up * pl.up * pl.Hp * Math.ceil(pl.Wp / 8); // 8 pixels each, x 4 channels per tile
    perTile(K.forward, { x, keff, st: styles, coef, y }, pl, forwardLanes, quad(Co));
  }

  const built = keff !== null && keff !== weight ? [keff] : [];
  const saved = [x, weight, styles, coef, y, ...built];
  const sv = { x, weight, styles, coef, y, keff };
  record('modulated_conv', [x, weight, styles], y, saved, (gy) => backward(pl, gy, sv));
  coef.dispose(); // the tape retains what backward needs
  for (const t of built) t.dispose();
  return y;
}

/**
 * The upsampling phase kernels of the raw weight: [Co, Ci, 4, 3, 3] (upsampleLink) for the fused
 * path, [Co, Ci, 4, 2, 2] (the transposed conv's taps) for the split path's plan.
 */
function phaseKernels(pl: ModulatedConvPlan, weight: Tensor): Tensor {
  const keff = empty(pl.kshape);
  perElement(pl.T === 2 ? K.upWeightsTransposed : K.upWeights, { wt: weight, keff_out: keff }, pl, pl.Co * pl.Ci); // per (o, i)
  return keff;
}

/** The split path's forward: the transposed conv t [N, Co, 2H+2, 2Wp] (scaled by coef), then y = blur(t). */
function splitForward(pl: ModulatedConvPlan, sp: ModulatedConvPlan, b: { x: Tensor; weight: Tensor; st: Tensor; coef: Tensor }): Tensor {
  const keff = phaseKernels(sp, b.weight);
  const t = empty([sp.N, sp.Co, sp.Ho, sp.Wo]);
  if (!trySubgroupForward(sp, { ...b, keff, y: t })) {
    const lanes = sp.N * 4 * sp.Hp * Math.ceil(sp.Wp / 8);
    perTile(K.forward, { x: b.x, keff, st: b.st, coef: b.coef, y: t }, sp, lanes, quad(sp.Co));
  }
  keff.dispose();
  // t[2a + r] holds rosinality's transposed-conv output at 2a + r (zero past 2H and 2W); the blur pads 1 before and crops after.
  const y = noGrad(() => upfirdn2d(t, UP_BLUR, { pad: [1, 2 * sp.W + 2 - sp.Wo, 1, 2 * sp.H + 2 - sp.Ho] }));
  t.dispose();
  if (y.shape[2] !== pl.Ho || y.shape[3] !== pl.Wo) throw new Error(`modulated_conv: the split path made ${y.shape[2]}x${y.shape[3]}, expected ${pl.Ho}x${pl.Wo}`);
  return y;
}

interface Saved {
  x: Tensor;
  weight: Tensor;
  styles: Tensor;
  coef: Tensor;
  y: Tensor;
  /** Null when the forward did not build the phase kernels (the subgroup upsampling forward). */
  keff: Tensor | null;
}

/**
 * The op's gradients. With the split path's plan `sp`, the conv kernels run on the plan `sp` and
 * gt = blur^T(gy) [N, Co, 2H+2, 2Wp]; h needs no change: sum gt*t = sum gy*blur(t) = sum gy*y.
 */
function backward(pl: ModulatedConvPlan, gyOut: Tensor, sv: Saved, sp: ModulatedConvPlan | null = null): (Tensor | null)[] {
  const { N, Ci, Co } = pl;
  // The blur's adjoint: its kernel is symmetric, so an upfirdn2d with pads k-1-p0 = 2 before and what makes t's size after.
  const gy = sp ? noGrad(() => upfirdn2d(gyOut, UP_BLUR, { pad: [2, sp.Wo - 2 * sp.W + 1, 2, sp.Ho - 2 * sp.H + 1] })) : gyOut;
  const cp = sp ?? pl; // the conv kernels' plan
  const { x, weight, styles, coef, y, keff } = sv;
  const wantInput = x.requiresGrad || styles.requiresGrad;
  const wantWeight = weight.requiresGrad;
  // h[n,o] = coef^2 sum gy*y: what the demodulation adds to the style and weight gradients.
  const h = empty([N, Co]); // [N, Co]
  perElement(K.coefBackward, { gy: gyOut, y_saved: y, coef, h_out: h }, pl, N * Co);
  const inputLanes = N * pl.H * Math.ceil(pl.W / 8); // 8 pixels each, x 4 channels per tile
  const nTaps = cp.up * cp.up * cp.T * cp.T;
  let gx: Tensor | null = null;
  let gs: Tensor | null = null;
  let gw: Tensor | null = null;
  if (wantInput) {
    gs = empty([N, Ci]); // [N, Ci]
    gx = empty(x.shape);
    const k = keff ?? phaseKernels(cp, weight);
    const part = empty([N, Ci, pl.H, Math.ceil(pl.W / 8)]); // pieces of sum_p x * gx / s
    const b = { gy, keff: k, coef, x, st: styles, gx, part_out: part };
    const done = workgroupTiles(backend().gpu) && !sp ? tiledModulatedInputBackward(pl, b) : trySubgroupInputBackward(cp, b);
    if (!done) {
      perTile(K.inputBackward, { gy, keff: k, coef, x, st: styles, gx, part_out: part }, cp, inputLanes, quad(Ci));
    }
    perElement(K.styleBackward, { part, st: styles, wt: weight, h, gs }, pl, N * Ci);
    part.dispose();
    if (k !== keff) k.dispose();
  }
  if (wantWeight) {
    const gk = empty(cp.kshape); // [Co, Ci, PH, T, T]
    perElement(K.weightBackward, { gy, x, st: styles, coef, gk_out: gk }, cp, quad(Co) * quad(Ci) * nTaps);
    gw = empty(weight.shape);
    perElement(K.weightFinish, { gk, wt: weight, st: styles, h, gw }, cp, Co * Ci); // per (o, i)
    gk.dispose();
  }
  h.dispose();
  if (gy !== gyOut) gy.dispose();
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
