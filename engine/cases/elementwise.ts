// Gradcheck rows of the elementwise ops (engine/ops/elementwise.ts): every unary op of the table
// on [3, 7], every binary op on equal shapes, broadcasts and the vec4 kernels' shapes. Included in
// the table by allGradCases() (engine/cases/index.ts).

import { TOLERANCES, type GradCase } from '../gradcheck.ts';
import { binary, binaryOpNames, binaryRow, unary, unaryOpNames, unaryRow } from '../ops/elementwise.ts';
import { binaryForward, binaryVjp, unaryForward, unaryVjp } from '../reference/elementwise.ts';
import type { Shape } from '../shape.ts';

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

export function elementwiseGradCases(): GradCase[] {
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
  return cases;
}
