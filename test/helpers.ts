// Small assertions shared by the test files.
import * as assert from 'uvu/assert';
import { scope } from '../engine/tensor.ts';

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
