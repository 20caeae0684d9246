// Gradcheck rows of attention (engine/ops/attention.ts): batch 2, one and three heads, token
// counts below and across the kernels' blocks of 4 rows and 32-row workgroups (5, 17), head
// sizes that are and are not a multiple of 4 (4, 7: the flash path pads 7 to 8 and slices back),
// the default and a custom scale, Tq != Tk, and both implementations. Included in the table by
// allGradCases() (engine/cases/index.ts).
//
// Tolerance: the matmul class; the outputs are sums of d and Tk float32 products like a matmul's,
// and the softmax in between is computed stably (the flash path from its saved log-sum-exp).

import { TOLERANCES, type GradCase } from '../gradcheck.ts';
import { attention, type AttentionImpl } from '../ops/attention.ts';
import { attentionForward, attentionVjp, defaultScale } from '../reference/attention.ts';
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

export function attentionGradCases(): GradCase[] {
  return [
    attentionCase('flash', [2, 1, 5, 4]),
    attentionCase('flash', [2, 3, 5, 7]),
    attentionCase('flash', [2, 1, 17, 4]),
    attentionCase('flash', [2, 3, 17, 7], 17, 0.9),
    attentionCase('flash', [2, 1, 5, 7], 17),
    attentionCase('materialized', [2, 3, 5, 7]),
    attentionCase('materialized', [2, 1, 17, 4], 17, 0.9),
  ];
}
