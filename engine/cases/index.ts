// The gradcheck table: one or more cases per differentiable op, on small awkward shapes (odd
// sizes, broadcasting, batches, every transpose). `sgilo gradcheck [op]` and the tests run these.

import type { GradCase } from '../gradcheck.ts';
import { elementwiseGradCases } from './elementwise.ts';
import { reduceGradCases } from './reduce.ts';
import { matmulGradCases } from './matmul.ts';
import { layoutGradCases } from './layout.ts';
import { softmaxGradCases } from './softmax.ts';
import { layerNormGradCases } from './layer_norm.ts';
import { conv2dGradCases } from './conv2d.ts';
import { convTranspose2dGradCases } from './conv_transpose2d.ts';
import { upfirdn2dGradCases } from './upfirdn2d.ts';
import { biasActGradCases } from './bias_act.ts';
import { reluGeneratorGradCases } from './relu_generator.ts';
import { partialCirculantGradCases } from './partial_circulant.ts';
import { modulatedConvGradCases } from './modulated_conv.ts';
import { attentionGradCases } from './attention.ts';

/** Every row, one op after another (one file per op in engine/cases/). */
export function allGradCases(): GradCase[] {
  return [
    ...elementwiseGradCases(),
    ...reduceGradCases(),
    ...matmulGradCases(),
    ...layoutGradCases(),
    ...softmaxGradCases(),
    ...layerNormGradCases(),
    ...conv2dGradCases(),
    ...convTranspose2dGradCases(),
    ...upfirdn2dGradCases(),
    ...biasActGradCases(),
    ...reluGeneratorGradCases(),
    ...partialCirculantGradCases(),
    ...modulatedConvGradCases(),
    ...attentionGradCases(),
  ];
}

/** Cases whose op name (before "[") equals `filter`, or whose full name does. */
export function gradCases(filter?: string): GradCase[] {
  const all = allGradCases();
  if (!filter) return all;
  const picked = all.filter((c) => c.name === filter || c.name.split('[')[0] === filter);
  if (picked.length === 0) {
    const ops = [...new Set(all.map((c) => c.name.split('[')[0]))];
    throw new Error(`gradcheck: unknown op "${filter}" (ops: ${ops.join(', ')})`);
  }
  return picked;
}
