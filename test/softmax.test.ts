// softmax beyond its gradcheck rows (engine/cases/softmax.ts, run by test/gradcheck.test.ts):
// numerically extreme logits. Its bad-input errors, grid folding and pool check are in
// test/layout.test.ts, beside the layout ops and layer_norm they share tests with.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { scope, tensor } from '../engine/tensor.ts';
import { softmax } from '../engine/ops/softmax.ts';
import { softmaxForward } from '../engine/reference/softmax.ts';
import { host } from '../engine/reference/host.ts';

const test = suite('softmax');

test('softmax is stable for huge logits and equal rows', async () => {
  await scope(async () => {
    const data = [1000, 1001, 1002, -1000, 88, 89, -88, -89, 5e30, 5e30, 5e30, 5e30];
    const got = await softmax(tensor(data, [3, 4])).readF32();
    const want = softmaxForward(host([3, 4], data)).data;
    got.forEach((v, i) => assert.ok(Math.abs(v - want[i]) <= 1e-6, `element ${i}: got ${v}, expected ${want[i]}`));
  });
});

test.run();
