// Gradcheck rows of the reductions and broadcast_to (engine/ops/reduce.ts): sum, mean and max over
// some, all or the last axes, with and without keepdims, on both kernels (the workgroup tree for
// few long rows, the serial loop for many). Included in the table by allGradCases() (engine/cases/index.ts).

import { TOLERANCES, type GradCase } from '../gradcheck.ts';
import { broadcastTo, max, mean, sum } from '../ops/reduce.ts';
import { broadcastForward, broadcastVjp, maxForward, maxVjp, sumForward, sumVjp } from '../reference/reduce.ts';
import { normalizeAxes, type Shape } from '../shape.ts';

function reduceCase(op: 'sum' | 'mean' | 'max', shape: Shape, axes: number[] | undefined, keepdims: boolean): GradCase {
  const ax = normalizeAxes(axes, shape.length, op);
  const outShape = keepdims ? shape.map((d, i) => (ax.includes(i) ? 1 : d)) : shape.filter((_, i) => !ax.includes(i));
  const label = `${op}[${shape.join('x')}, axes=${axes ? axes.join(',') : 'all'}${keepdims ? ', keepdims' : ''}]`;
  const gpuOp = { sum, mean, max }[op];
  return {
    name: label,
    inputs: [{ shape }],
    tol: TOLERANCES.reduction,
    forward: ([x]) => (op === 'max' ? maxForward(x, ax, outShape) : sumForward(x, ax, outShape, op === 'mean')),
    vjp: ([x], gy) => [op === 'max' ? maxVjp(x, ax, gy) : sumVjp(x, ax, gy, op === 'mean')],
    gpu: ([x]) => gpuOp(x, axes, { keepdims }),
  };
}

export function reduceGradCases(): GradCase[] {
  const cases: GradCase[] = [];
  cases.push(reduceCase('sum', [3, 4, 5], [1], false));
  cases.push(reduceCase('sum', [3, 4, 5], [0, 2], true));
  cases.push(reduceCase('sum', [7, 9], undefined, false));
  cases.push(reduceCase('sum', [2, 300], [1], false)); // few outputs, long R: the workgroup tree
  cases.push(reduceCase('sum', [90, 260], [0], false)); // many outputs, R > 64: the serial kernel
  cases.push(reduceCase('mean', [3, 4, 5], [2], false));
  cases.push(reduceCase('mean', [6, 5], undefined, true));
  cases.push(reduceCase('max', [3, 4, 5], [1], false));
  cases.push(reduceCase('max', [4, 70], [1], true));
  cases.push(reduceCase('max', [5, 6], undefined, false));
  cases.push({
    name: 'broadcast_to[3x1 -> 2x3x4]',
    inputs: [{ shape: [3, 1] }],
    tol: TOLERANCES.elementwise,
    forward: ([x]) => broadcastForward(x, [2, 3, 4]),
    vjp: ([x], gy) => [broadcastVjp(x, gy)],
    gpu: ([x]) => broadcastTo(x, [2, 3, 4]),
  });
  return cases;
}
