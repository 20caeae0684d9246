// Gradcheck rows of attention (engine/ops/attention.ts): batch 2, one and three heads, token
// counts below and across the kernels' blocks of 4 rows and 32-row workgroups (5, 17), head
// sizes that are and are not a multiple of 4 (4, 7: the flash path pads 7 to 8 and slices back),
// the default and a custom scale, Tq != Tk, and both implementations. qkvAttention on a fused
// projection [B, T, 3 H d]: in place ('packed', head sizes 4 and 8, token counts 5 and 17) and
// composed (d 7, where only the composition runs). Included in the table by allGradCases()
// (engine/cases/index.ts).
//
// Tolerance: the matmul class; the outputs are sums of d and Tk float32 products like a matmul's,
// and the softmax in between is computed stably (the flash path from its saved log-sum-exp).

import { TOLERANCES, type GradCase } from '../gradcheck.ts';
import { attention, qkvAttention, type AttentionImpl, type QkvAttentionImpl } from '../ops/attention.ts';
import { attentionForward, attentionVjp, defaultScale, qkvAttentionForward, qkvAttentionVjp } from '../reference/attention.ts';
import type { Shape } from '../shape.ts';

function attentionCase(impl: Exclude<AttentionImpl, 'auto'>, qShape: Shape, Tk = qShape[2], scale?: number): GradCase {
  const [B, H, , d] = qShape;
  const kvShape = [B, H, Tk, d];
  const s = scale ?? defaultScale(d);
  const kv = Tk === qShape[2] ? '' : `, Tk=${Tk}`;
  return {
    name: `attention[${qShape.join('x')}${kv}${scale === undefined ? '' : `, scale=${scale}`}, ${impl}]`,
    inputs: [{ shape: qShape }, { shape: kvShape }, { shape: kvShape }],
    tol: TOLERANCES.matmul,
    forward: ([q, k, v]) => attentionForward(q, k, v, s),
    vjp: ([q, k, v], gy) => attentionVjp(q, k, v, gy, s),
    gpu: ([q, k, v]) => attention(q, k, v, { scale, impl }),
  };
}

function qkvAttentionCase(impl: Exclude<QkvAttentionImpl, 'auto'>, B: number, T: number, H: number, d: number, scale?: number): GradCase {
  return {
    name: `qkv_attention[${B}x${T}x3x${H}x${d}${scale === undefined ? '' : `, scale=${scale}`}, ${impl}]`,
    inputs: [{ shape: [B, T, 3 * H * d] }],
    tol: TOLERANCES.matmul,
    forward: ([qkv]) => qkvAttentionForward(qkv, H, scale),
    vjp: ([qkv], gy) => [qkvAttentionVjp(qkv, H, gy, scale)],
    gpu: ([qkv]) => qkvAttention(qkv, H, { scale, impl }),
  };
}

export function attentionGradCases(): GradCase[] {
  return [
    attentionCase('flash', [2, 1, 5, 4]),
    attentionCase('flash', [2, 3, 5, 7]),
    attentionCase('flash', [2, 1, 17, 4]),
    attentionCase('flash', [2, 3, 17, 7], 17, 0.9),
    attentionCase('flash', [2, 1, 5, 7], 17),
    attentionCase('materialized', [2, 3, 5, 7]),
    attentionCase('materialized', [2, 1, 17, 4], 17, 0.9),
    qkvAttentionCase('packed', 2, 5, 3, 4),
    qkvAttentionCase('packed', 2, 17, 2, 8, 0.7),
    qkvAttentionCase('composed', 2, 5, 2, 7),
  ];
}
