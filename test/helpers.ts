// Small assertions shared by the test files.
import * as assert from 'uvu/assert';
import { scope } from '../engine/tensor.ts';
import { compare, describeMismatch, type Comparison, type Tolerance } from '../engine/gradcheck.ts';

export { relativeToMax, relToMax } from '../engine/gradcheck.ts';

/** Runs fn in a scope (freeing its tensors) and asserts it throws a message matching each pattern. */
export function throwsNaming(fn: () => unknown, ...patterns: RegExp[]): void {
  let message = '';
  try {
    scope(fn);
  } catch (e) {
    message = (e as Error).message;
  }
  assert.ok(message, 'expected an error');
  for (const p of patterns) assert.match(message, p);
}

/**
 * Asserts |actual - expected| <= atol + rtol |expected| for every element (engine/gradcheck.ts's
 * compare, the gradcheck table's tally) and returns the tally, so a test can print its measured
 * errors. The failure message names the worst element.
 */
export function assertClose(actual: ArrayLike<number>, expected: ArrayLike<number>, tol: Tolerance, label: string): Comparison {
  assert.is(actual.length, expected.length, `${label}: length`);
  const c = compare(actual, expected, tol);
  if (!c.pass) assert.unreachable(describeMismatch(label, actual, expected, c, tol));
  return c;
}
