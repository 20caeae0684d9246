// Every differentiable op: float64 reference vs finite differences, GPU forward and backward vs
// the reference (engine/gradcheck.ts). One uvu test per gradcheck row, and the negative control.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { formatTable, runGradCase } from '../engine/gradcheck.ts';
import { allGradCases } from '../engine/cases/index.ts';
import { unaryCase } from '../engine/cases/elementwise.ts';
import { defineUnaryOp } from '../engine/ops/elementwise.ts';

const test = suite('gradcheck');

for (const c of allGradCases()) {
  test(c.name, async () => {
    const r = await runGradCase(c);
    assert.ok(r.pass, `${c.name}:\n${r.failures.join('\n')}`);
  });
}

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
