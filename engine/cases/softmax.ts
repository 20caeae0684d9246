// Gradcheck rows of softmax over the last axis (engine/ops/softmax.ts): ranks 2-4, rows of 1 to 70,
// and logits spread wide enough to need the max subtraction. Included in the table by
// allGradCases() (engine/cases/index.ts). Rows are reduced in float32: the reduction tolerance.

import { TOLERANCES, type GradCase } from '../gradcheck.ts';
import { softmax } from '../ops/softmax.ts';
import { softmaxForward, softmaxVjp } from '../reference/softmax.ts';
import type { Domain } from '../elementwise_table.ts';
import type { Shape } from '../shape.ts';

const dims = (s: Shape) => s.join('x');

function softmaxCase(shape: Shape, domain?: Domain, label = ''): GradCase {
  return {
    name: `softmax[${dims(shape)}${label}]`,
    inputs: [{ shape, domain }],
    tol: TOLERANCES.reduction,
    forward: ([x]) => softmaxForward(x),
    vjp: ([x], gy) => [softmaxVjp(x, gy)],
    gpu: ([x]) => softmax(x),
  };
}

export function softmaxGradCases(): GradCase[] {
  return [
    softmaxCase([3, 7]),
    softmaxCase([2, 3, 5]),
    softmaxCase([4, 70]),
    softmaxCase([2, 2, 3, 9]),
    // Logits spread over [-30, 30]: exp without the max subtraction would span e^60; rows are
    // near one-hot, so tiny probabilities and their gradients must not lose the large ones.
    softmaxCase([3, 9], { kind: 'positive', lo: -30, hi: 30 }, ', logits in [-30, 30]'),
    softmaxCase([5, 1]),
  ];
}
