// The three convolution kernels, shared by conv2d and conv_transpose2d (each is the other's input
// gradient, and both weight gradients are the same correlation). No tape here: the ops in
// conv2d.ts and conv_transpose2d.ts validate their arguments, dispatch through these functions,
// and record their backward rules.
//
//   directConv        conv2d_pack_weights, conv2d_forward (+ conv2d_sum_splits); where the adapter
//                     has 8-lane subgroups and the conv is plain (stride 1, one group, square kernel,
//                     even padding), the forward of engine/ops/modulated_conv_subgroup.ts instead;
//                     on hardware GPUs the implicit GEMM of engine/ops/conv_tiled.ts instead
//   transposedConv    conv2d_pack_weights, conv_transpose2d_forward (+ conv2d_sum_splits); on
//                     hardware GPUs the implicit GEMM of engine/ops/conv_tiled.ts instead
//   convWeightGrad    conv2d_backward_weight (+ conv2d_sum_splits)
// (conv_transpose2d_forward is in shaders/conv_transpose2d.wgsl, the others in shaders/conv2d.wgsl.)
// A sum that would leave a GPU idle (few output blocks, long reductions) is split over several
// invocations writing [S, ...] partials, then added by conv2d_sum_splits.
//
// Dimensions: N batch, G groups; see each function for its tensors.

import { backend } from '../backend.ts';
import { defineKernel, grid1d } from '../kernel.ts';
import { Tensor, empty } from '../tensor.ts';
import { workgroupTiles } from '../device.ts';
import { trySubgroupConv2d } from './modulated_conv_subgroup.ts';
import { tiledConv, tiledTransposedConv } from './conv_tiled.ts';

/** A resolved geometry; padding is [top, bottom, left, right] (the kernels read top and left). */
export interface ConvGeometry {
  stride: [number, number];
  padding: [number, number, number, number];
  dilation: [number, number];
  groups: number;
}

const WG = 64; // workgroup size of the conv kernels
const BLOCK = 4; // pixels per forward invocation; channels (both) per weight-gradient invocation
const CO = 8; // output channels per forward invocation (the WGSL's CO)

const fwdBindings = { x: 'read', wp: 'read', bias: 'read', y: 'read_write', params: 'uniform' } as const;
const K = {
  pack: defineKernel({ shader: 'conv2d', entry: 'conv2d_pack_weights', bindings: { w_in: 'read', w_packed: 'read_write', pparams: 'uniform' } }),
  direct: defineKernel({ shader: 'conv2d', entry: 'conv2d_forward', bindings: fwdBindings }),
  weightGrad: defineKernel({ shader: 'conv2d', entry: 'conv2d_backward_weight', bindings: { x: 'read', gy: 'read', gw: 'read_write', params: 'uniform' } }),
  sum: defineKernel({ shader: 'conv2d', entry: 'conv2d_sum_splits', bindings: { partials: 'read', total: 'read_write', sparams: 'uniform' } }),
  transposed: defineKernel({ shader: 'conv_transpose2d', entry: 'conv_transpose2d_forward', bindings: fwdBindings }),
};

/**
 * Invocations to aim for before a sum is split over several invocations (input channels of the
 * forward kernels, pixel rows of the weight gradient): a GPU wants tens of thousands in flight; a
 * CPU adapter only needs a few workgroups per core, and every split costs a partial-sum pass.
 */
function invocationTarget(): number {
  return backend().gpu.adapter.isSoftware ? 1024 : 32768;
}

/** Fewest input channels (forward) or output pixels (weight gradient) one split sums. */
const MIN_CHANNELS_PER_SPLIT = 16;
const MIN_PIXELS_PER_SPLIT = 64;

const ceilDiv = (a: number, b: number) => Math.ceil(a / b);

/** [S, ...shape] partials -> shape, summed in split order (S = 1: returned as is). */
function sumSplits(partial: Tensor, splits: number, shape: number[]): Tensor {
  if (splits === 1) return partial;
  const out = empty(shape);
  K.sum.dispatch({ partials: partial, total: out, sparams: { m: out.size, splits } }, grid1d(ceilDiv(out.size, WG)));
  partial.dispose();
  return out;
}

/** Input-channel splits of a forward kernel with `base` invocations over Cg channels per group. */
function channelSplits(base: number, cg: number): { splits: number; cSplit: number } {
  const wanted = Math.min(ceilDiv(invocationTarget(), base), ceilDiv(cg, MIN_CHANNELS_PER_SPLIT));
  const cSplit = ceilDiv(cg, Math.max(1, wanted));
  return { splits: ceilDiv(cg, cSplit), cSplit };
}

/**
 * The kernel-specific members of ConvParams (shaders/conv_common.wgsl, one struct for all three
 * kernels) at 0: each kernel overrides the ones it reads.
 */
const UNUSED = { co_blocks: 0, ci_blocks: 0, pix_blocks: 0, rows_per_split: 0, q_rows: 0, q_blocks: 0, c_split: 0, per_split: 0, has_bias: 0 };

/** The members of ConvParams every kernel reads (each kernel adds its own block counts). */
function common(x: Tensor, cOut: number, kernel: readonly number[], out: [number, number], g: ConvGeometry, cinG: number, coutG: number) {
  const [n, cIn, h, w] = x.shape;
  return {
    n, c_in: cIn, h, w, c_out: cOut, ho: out[0], wo: out[1], groups: g.groups, cin_g: cinG, cout_g: coutG,
    kh: kernel[kernel.length - 2], kw: kernel[kernel.length - 1], sy: g.stride[0], sx: g.stride[1], dy: g.dilation[0], dx: g.dilation[1],
    pt: g.padding[0], pl: g.padding[2],
  };
}

/**
 * Packs weights for the forward kernels: [G, OB, Cg, kH, kW, 4] with OB = ceil(Og / CO) * CO / 4,
 * lane l of block ob = output channel 4*ob + l of the group (zeros past Og). `layout` says where
 * output channel o and input channel c of group g sit in w: 'conv' [G*Og, Cg, kH, kW] or
 * 'transposed' [G*Cg, Og, kH, kW].
 */
function packWeights(w: Tensor, groups: number, cg: number, og: number, layout: 'conv' | 'transposed'): Tensor {
  const kk = w.shape[2] * w.shape[3];
  const ob = ceilDiv(og, CO) * (CO / 4);
  const n = groups * ob * cg * kk * 4;
  const packed = empty([n]);
  const strides = layout === 'conv' ? { s_o: cg * kk, s_c: kk } : { s_o: kk, s_c: og * kk };
  K.pack.dispatch({ w_in: w, w_packed: packed, pparams: { n, og, ob, cg, kk, s_group: og * cg * kk, ...strides } }, grid1d(ceilDiv(n, WG)));
  return packed;
}

/**
 * Convolution (cross-correlation) with an explicit output size:
 *   x [N, C_in, H, W], w [C_out, C_in/G, kH, kW], bias [C_out] or null -> y [N, C_out, Ho, Wo]
 * Output positions whose window falls outside the (zero-padded) input just get fewer terms.
 */
export function directConv(x: Tensor, w: Tensor, bias: Tensor | null, g: ConvGeometry, out: [number, number]): Tensor {
  const tiled = workgroupTiles(backend().gpu) ? tiledConv(x, w, bias, g, out) : null;
  if (tiled) return tiled;
  const pad = plainPadding(x, w, g, out);
  const fast = pad === null ? null : trySubgroupConv2d(x, w, bias, pad);
  if (fast) return fast;
  const cOut = w.shape[0];
  const coutG = cOut / g.groups;
  const cinG = w.shape[1];
  const p = common(x, cOut, w.shape, out, g, cinG, coutG);
  const coBlocks = ceilDiv(coutG, CO);
  const pixBlocks = ceilDiv(out[0] * out[1], BLOCK);
  const perSplit = pixBlocks * g.groups * coBlocks * p.n;
  const { splits, cSplit } = channelSplits(perSplit, cinG);
  const wp = packWeights(w, g.groups, cinG, coutG, 'conv');
  const yShape = [p.n, cOut, out[0], out[1]];
  const y = empty(splits === 1 ? yShape : [splits, ...yShape]);
  const params = { ...p, ...UNUSED, co_blocks: coBlocks, pix_blocks: pixBlocks, c_split: cSplit, per_split: perSplit, has_bias: bias ? 1 : 0, total: perSplit * splits };
  // Without a bias, x stands in for the binding (read-only, never read by the kernel).
  K.direct.dispatch({ x, wp, bias: bias ?? x, y, params }, grid1d(ceilDiv(params.total, WG)));
  wp.dispose();
  return sumSplits(y, splits, yShape);
}

/**
 * The padding when the conv is the plain case the subgroup kernel takes (stride 1, no dilation, one
 * group, a square kernel, the same padding on all sides, the output size it implies), else null.
 */
function plainPadding(x: Tensor, w: Tensor, g: ConvGeometry, out: [number, number]): number | null {
  const [k, k2] = [w.shape[2], w.shape[3]];
  const p = g.padding[0];
  const plain = g.groups === 1 && k === k2 && g.stride.every((s) => s === 1) && g.dilation.every((d) => d === 1) && g.padding.every((q) => q === p);
  return plain && out[0] === x.shape[2] + 2 * p - k + 1 && out[1] === x.shape[3] + 2 * p - k + 1 ? p : null;
}

/**
 * Transposed convolution with an explicit output size:
 *   x [N, C_in, H, W], w [C_in, C_out/G, kH, kW], bias [C_out] or null -> y [N, C_out, Ho, Wo]
 */
export function transposedConv(x: Tensor, w: Tensor, bias: Tensor | null, g: ConvGeometry, out: [number, number]): Tensor {
  const tiled = workgroupTiles(backend().gpu) ? tiledTransposedConv(x, w, bias, g, out) : null;
  if (tiled) return tiled;
  const coutG = w.shape[1];
  const cOut = coutG * g.groups;
  const cinG = x.shape[1] / g.groups;
  const p = common(x, cOut, w.shape, out, g, cinG, coutG);
  const coBlocks = ceilDiv(coutG, CO);
  // Output pixels by residue class (oy mod sy, ox mod sx): rows and 4-column blocks per class.
  const qRows = ceilDiv(out[0], g.stride[0]);
  const qBlocks = ceilDiv(ceilDiv(out[1], g.stride[1]), BLOCK);
  const perSplit = g.stride[0] * g.stride[1] * p.n * g.groups * coBlocks * qRows * qBlocks;
  const { splits, cSplit } = channelSplits(perSplit, cinG);
  const wp = packWeights(w, g.groups, cinG, coutG, 'transposed');
  const yShape = [p.n, cOut, out[0], out[1]];
  const y = empty(splits === 1 ? yShape : [splits, ...yShape]);
  const params = { ...p, ...UNUSED, co_blocks: coBlocks, q_rows: qRows, q_blocks: qBlocks, c_split: cSplit, per_split: perSplit, has_bias: bias ? 1 : 0, total: perSplit * splits };
  K.transposed.dispatch({ x, wp, bias: bias ?? x, y, params }, grid1d(ceilDiv(params.total, WG)));
  wp.dispose();
  return sumSplits(y, splits, yShape);
}

/**
 * Weight gradient of directConv(x, w) given its output gradient:
 *   x [N, C_in, H, W], gy [N, C_out, Ho, Wo] -> gw [C_out, C_in/G, kH, kW]
 * (Also the weight gradient of a transposed convolution, with x and gy swapped.) When the weights
 * are few and the pixels many, the N*Ho rows are split into S chunks summed by separate
 * invocations into [S, ...gw] partials, then added.
 */
export function convWeightGrad(x: Tensor, gy: Tensor, g: ConvGeometry, kernel: [number, number]): Tensor {
  const [n, cOut, ho, wo] = gy.shape;
  const cinG = x.shape[1] / g.groups;
  const p = common(x, cOut, kernel, [ho, wo], g, cinG, cOut / g.groups);
  const coBlocks = ceilDiv(cOut / g.groups, BLOCK);
  const ciBlocks = ceilDiv(cinG, BLOCK);
  const base = g.groups * coBlocks * ciBlocks * kernel[0] * kernel[1];
  const rows = n * ho;
  const wanted = Math.min(ceilDiv(invocationTarget(), base), ceilDiv(rows * wo, MIN_PIXELS_PER_SPLIT), rows);
  const rowsPerSplit = ceilDiv(rows, Math.max(1, wanted));
  const splits = ceilDiv(rows, rowsPerSplit);
  const wShape = [cOut, cinG, kernel[0], kernel[1]];
  const partial = empty(splits === 1 ? wShape : [splits, ...wShape]);
  const params = { ...p, ...UNUSED, co_blocks: coBlocks, ci_blocks: ciBlocks, rows_per_split: rowsPerSplit, total: base * splits };
  K.weightGrad.dispatch({ x, gy, gw: partial, params }, grid1d(ceilDiv(params.total, WG)));
  return sumSplits(partial, splits, wShape);
}
