// The gradcheck table: one or more cases per differentiable op, on small awkward shapes (odd
// sizes, broadcasting, batches, every transpose). `sgilo gradcheck [op]` and the tests run these.

import { TOLERANCES, type GradCase } from '../gradcheck.ts';
import { binary, binaryOpNames, binaryRow, unary, unaryOpNames, unaryRow } from '../ops/elementwise.ts';
import { broadcastTo, max, mean, sum } from '../ops/reduce.ts';
import { matmul } from '../ops/matmul.ts';
import { binaryForward, binaryVjp, unaryForward, unaryVjp } from '../reference/elementwise.ts';
import { broadcastForward, broadcastVjp, maxForward, maxVjp, sumForward, sumVjp } from '../reference/reduce.ts';
import { matmulForward, matmulVjp } from '../reference/matmul.ts';
import { normalizeAxes, type Shape } from '../shape.ts';
import { layoutGradCases } from './layout.ts';
import { convGradCases } from './conv2d.ts';
import { upfirdnGradCases } from './upfirdn2d.ts';
import { reluGeneratorGradCases } from './relu_generator.ts';
import { circulantGradCases } from './partial_circulant.ts';
import { modulatedConvGradCases } from './modulated_conv.ts';
import { attentionGradCases } from './attention.ts';

const TRANSCENDENTAL = new Set(['exp', 'log', 'sqrt', 'rsqrt', 'sigmoid', 'tanh', 'swish', 'gelu', 'sin', 'cos']);

export function unaryCase(name: string, shape: Shape = [3, 7]): GradCase {
  const row = unaryRow(name);
  const [p0, p1] = row.testParams ?? [0, 0];
  return {
    name,
    inputs: [{ shape, domain: row.domain }],
    tol: TRANSCENDENTAL.has(name) ? TOLERANCES.transcendental : TOLERANCES.elementwise,
    forward: ([x]) => unaryForward(row, x, p0, p1),
    vjp: ([x], gy) => [unaryVjp(row, x, gy, p0, p1)],
    gpu: ([x]) => unary(name, x, p0, p1),
  };
}

function binaryCase(name: string, aShape: Shape, bShape: Shape, label: string): GradCase {
  const row = binaryRow(name);
  return {
    name: `${name}${label}`,
    inputs: [{ shape: aShape }, { shape: bShape, domain: row.domainB }],
    tol: TOLERANCES.elementwise,
    forward: ([a, b]) => binaryForward(row, a, b),
    vjp: ([a, b], gy) => binaryVjp(row, a, b, gy),
    gpu: ([a, b]) => binary(name, a, b),
  };
}

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

function matmulCase(aShape: Shape, bShape: Shape, transposeA: boolean, transposeB: boolean): GradCase {
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

export function allGradCases(): GradCase[] {
  const cases: GradCase[] = [];
  for (const name of unaryOpNames()) cases.push(unaryCase(name));
  for (const name of binaryOpNames()) {
    cases.push(binaryCase(name, [4, 5], [4, 5], ''));
    cases.push(binaryCase(name, [2, 3, 5], [3, 1], '[broadcast 2x3x5, 3x1]'));
    // Innermost merged dimension a multiple of 4: the vec4 kernels, both operands read as vec4s,
    // and one operand broadcast along the inner dimension (read once per 4 outputs).
    cases.push(binaryCase(name, [3, 8], [3, 8], '[vec4]'));
    cases.push(binaryCase(name, [2, 3, 4], [3, 1], '[vec4, broadcast 2x3x4, 3x1]'));
    cases.push(binaryCase(name, [3, 1], [2, 3, 4], '[vec4, broadcast 3x1, 2x3x4]'));
  }
  cases.push(binaryCase('mul', [1, 6], [5, 1], '[broadcast 1x6, 5x1]'));
  cases.push(binaryCase('add', [3, 4], [], '[scalar]'));
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
  cases.push(...layoutGradCases());
  cases.push(...convGradCases());
  cases.push(...upfirdnGradCases());
  cases.push(...reluGeneratorGradCases());
  cases.push(...circulantGradCases());
  cases.push(...modulatedConvGradCases());
  cases.push(...attentionGradCases());
  return cases;
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
