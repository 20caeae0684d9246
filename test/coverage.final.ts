// Runs after every other test file: each declared kernel (WGSL entry point and specialization)
// must have been dispatched at least once, so no GPU path is silently replaced by a CPU reference.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { declaredKernels, dispatchCountsByKernel } from '../engine/kernel.ts';

const test = suite('coverage');

test('every declared forward and backward kernel was dispatched', () => {
  const counts = dispatchCountsByKernel();
  const never = declaredKernels().filter((k) => !counts.get(k));
  assert.equal(never, [], `never dispatched: ${never.join(', ')}`);
});

test.run();
