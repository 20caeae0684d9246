// Every differentiable op: float64 reference vs finite differences, GPU forward and backward vs
// the reference (engine/gradcheck.ts). One uvu test per gradcheck row, and the negative control.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { TOLERANCES, formatTable, runGradCase, type Tolerance } from '../engine/gradcheck.ts';
import { allGradCases } from '../engine/cases/index.ts';
import { unaryCase } from '../engine/cases/elementwise.ts';
import { defineUnaryOp } from '../engine/ops/elementwise.ts';

const test = suite('gradcheck');

/** The largest max abs err and max rel err of the rows of each tolerance class, for the log. */
const worst = new Map<string, { rows: number; abs: number; rel: number }>();
const classOf = (tol: Tolerance) => {
  const names = Object.entries(TOLERANCES).filter(([, t]) => t.atol === tol.atol && t.rtol === tol.rtol).map(([n]) => n);
  return `${names.length ? `${names.join('/')} ` : ''}(atol ${tol.atol.toExponential(0)}, rtol ${tol.rtol.toExponential(0)})`;
};

for (const c of allGradCases()) {
  test(c.name, async () => {
    const r = await runGradCase(c);
    assert.ok(r.pass, `${c.name}:\n${r.failures.join('\n')}`);
    const w = worst.get(classOf(c.tol)) ?? { rows: 0, abs: 0, rel: 0 };
    worst.set(classOf(c.tol), { rows: w.rows + 1, abs: Math.max(w.abs, r.maxAbsErr), rel: Math.max(w.rel, r.maxRelErr) });
  });
}

test('the measured errors per tolerance class', () => {
  for (const [name, w] of worst) console.log(`  ${name}: ${w.rows} rows, max abs err ${w.abs.toExponential(2)}, max rel err ${w.rel.toExponential(2)}`);
});

// Negative control: an op whose declared derivative is wrong (3a instead of 2a for a^2). The GPU
// backward agrees with the (wrong) reference, so only the finite-difference check can catch it.
defineUnaryOp({
  name: 'square_wrong_derivative',
  fwd: 'a * a',
  bwd: '3.0 * a',
  ref: (a) => a * a,
  dref: (a) => 3 * a,
  domain: { kind: 'normal' },
});

test('negative control: a wrong derivative is reported as FAIL', async () => {
  const r = await runGradCase(unaryCase('square_wrong_derivative'));
  assert.is(r.pass, false);
  assert.ok(r.failures.some((f) => f.includes('finite differences')), r.failures.join('\n'));
  const table = formatTable([r]);
  assert.match(table, /square_wrong_derivative\s+\S+\s+\S+\s+FAIL/);
});

test.run();
