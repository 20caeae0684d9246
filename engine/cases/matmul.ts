// Gradcheck rows of matmul (engine/ops/matmul.ts): every transpose, batches (folded into rows where
// b is shared), wide tiles, and the vec4-aligned shapes of the subgroup kernel. Included in the table
// by allGradCases() (engine/cases/index.ts).

import { TOLERANCES, type GradCase } from '../gradcheck.ts';
import { matmul } from '../ops/matmul.ts';
import { matmulForward, matmulVjp } from '../reference/matmul.ts';
import type { Shape } from '../shape.ts';

export function matmulCase(aShape: Shape, bShape: Shape, transposeA: boolean, transposeB: boolean): GradCase {
  const o = { transposeA, transposeB };
  const t = `${transposeA ? 'T' : 'N'}${transposeB ? 'T' : 'N'}`;
  return {
    name: `matmul[${aShape.join('x')} ${t} ${bShape.join('x')}]`,
    inputs: [{ shape: aShape }, { shape: bShape }],
    tol: TOLERANCES.matmul,
    forward: ([a, b]) => matmulForward(a, b, o),
    vjp: ([a, b], gy) => matmulVjp(a, b, gy, o),
    gpu: ([a, b]) => matmul(a, b, o),
  };
}

export function matmulGradCases(): GradCase[] {
  const cases: GradCase[] = [];
  cases.push(matmulCase([5, 7], [7, 6], false, false));
  cases.push(matmulCase([7, 5], [7, 6], true, false));
  cases.push(matmulCase([5, 7], [6, 7], false, true));
  cases.push(matmulCase([7, 5], [6, 7], true, true));
  cases.push(matmulCase([3, 9, 4], [3, 4, 10], false, false));
  cases.push(matmulCase([2, 3, 33, 5], [5, 35], false, false)); // shared b: the batch folds into rows
  cases.push(matmulCase([4, 6, 5], [1, 7, 5], false, true)); // folded, b transposed with a unit batch
  cases.push(matmulCase([4, 5, 6], [5, 7], true, false)); // a transposed: no fold, dB summed over the batch
  cases.push(matmulCase([6, 4], [3, 6, 5], true, false));
  cases.push(matmulCase([9, 20], [150, 20], false, true)); // wide tiles: 8 rows x 4 columns, 64 lanes
  cases.push(matmulCase([2, 5, 12], [12, 100], false, false)); // folded to 10 rows, 2 columns per lane
  // vec4-aligned shapes: on adapters with 8-lane subgroups these take shaders/matmul_subgroup.wgsl in
  // all four operand layouts (forward and both gradients), with ragged row and column edges.
  cases.push(matmulCase([20, 12], [12, 36], false, false));
  cases.push(matmulCase([12, 20], [12, 68], true, false));
  cases.push(matmulCase([20, 12], [44, 12], false, true));
  cases.push(matmulCase([12, 4], [20, 12], true, true));
  cases.push(matmulCase([3, 7, 8], [8, 12], false, false)); // folded batch, 21 rows
  cases.push(matmulCase([2, 8, 12], [2, 8, 16], true, false)); // batched, A by columns
  return cases;
}
