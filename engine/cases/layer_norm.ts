// Gradcheck rows of layer_norm (engine/ops/layer_norm.ts): ranks 2-4, a mean far from zero, and
// both row implementations forced and by default (the default switches at serialMaxD(): D = 64 on a
// hardware GPU, 256 on a CPU adapter). With a FiLM modulation [Bm, 2D] (T rows per item; rank 3
// and rank 2 x), both row kernels. Included in the table by
// allGradCases() (engine/cases/index.ts). Rows are reduced in float32: the reduction tolerance.

import { TOLERANCES, type GradCase } from '../gradcheck.ts';
import { layerNorm, type LayerNormImpl } from '../ops/layer_norm.ts';
import { layerNormForward, layerNormVjp } from '../reference/layer_norm.ts';
import type { Domain } from '../elementwise_table.ts';
import type { Shape } from '../shape.ts';

const dims = (s: Shape) => s.join('x');

/** impl: the row kernels; absent, the device's default (chooseLayerNormImpl in layer_norm.ts). */
function layerNormCase(shape: Shape, eps: number, domain?: Domain, label = '', impl?: LayerNormImpl): GradCase {
  const d = shape[shape.length - 1];
  return {
    name: `layer_norm[${dims(shape)}, eps=${eps}${label}, ${impl ?? 'default'}]`,
    inputs: [{ shape, domain }, { shape: [d] }, { shape: [d] }],
    tol: TOLERANCES.reduction,
    forward: ([x, w, b]) => layerNormForward(x, w, b, eps),
    vjp: ([x, w, b], gy) => layerNormVjp(x, w, b, eps, gy),
    gpu: ([x, w, b]) => layerNorm(x, w, b, eps, { impl }),
  };
}

/** x [Bm * T.., D] with its modulation [Bm, 2D] as a fourth input. */
function modulatedCase(shape: Shape, items: number, impl: LayerNormImpl): GradCase {
  const d = shape[shape.length - 1];
  return {
    name: `layer_norm[${dims(shape)}, modulation ${items}x${2 * d}, ${impl}]`,
    inputs: [{ shape }, { shape: [d] }, { shape: [d] }, { shape: [items, 2 * d] }],
    tol: TOLERANCES.reduction,
    forward: ([x, w, b, m]) => layerNormForward(x, w, b, 1e-5, m),
    vjp: ([x, w, b, m], gy) => layerNormVjp(x, w, b, 1e-5, gy, m),
    gpu: ([x, w, b, m]) => layerNorm(x, w, b, 1e-5, { impl, modulation: m }),
  };
}

export function layerNormGradCases(): GradCase[] {
  return [
    layerNormCase([4, 7], 1e-5),
    layerNormCase([2, 3, 70], 1e-5),
    layerNormCase([3, 2, 2, 7], 0.1),
    // Mean far from zero relative to the spread: the two-pass variance must not cancel.
    layerNormCase([5, 7], 1e-5, { kind: 'positive', lo: 20, hi: 22 }, ', x in [20, 22]'),
    // Either side of the hardware default's D = 64 switch; 70 rows span two serial workgroups.
    layerNormCase([3, 64], 1e-5),
    layerNormCase([70, 5], 1e-5),
    layerNormCase([4, 7], 1e-5, undefined, '', 'workgroup'),
    layerNormCase([5, 7], 1e-5, { kind: 'positive', lo: 20, hi: 22 }, ', x in [20, 22]', 'workgroup'),
    layerNormCase([2, 70], 1e-5, undefined, '', 'serial'),
    modulatedCase([3, 4, 5], 3, 'serial'),
    modulatedCase([3, 4, 5], 3, 'workgroup'),
    modulatedCase([6, 7], 2, 'serial'),
  ];
}
