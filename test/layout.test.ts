// Layout ops, with softmax and layer norm where a test covers them together: the checks beyond
// the gradcheck rows. The rows themselves (engine/cases/layout.ts, softmax.ts, layer_norm.ts, via
// allGradCases()) run one uvu test each in test/gradcheck.test.ts. Here: bad input errors that
// name the problem, bit-exact data movement (f32 and u32), a grid folded past 65535 workgroups, and
// the pool returning to its baseline after forward and backward passes. Extreme softmax and layer
// norm inputs: test/softmax.test.ts, test/layer_norm.test.ts.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { engine } from '../engine/engine.ts';
import { scope, tensor, type Tensor } from '../engine/tensor.ts';
import { grad } from '../engine/tape.ts';
import { sum } from '../engine/ops/reduce.ts';
import { coalesce, concat, pad, permute, reshape, slice } from '../engine/ops/layout.ts';
import { softmax } from '../engine/ops/softmax.ts';
import { layerNorm } from '../engine/ops/layer_norm.ts';
import { HostRandom, host } from '../engine/reference/host.ts';
import { concatForward, padForward, permuteForward, sliceForward } from '../engine/reference/layout.ts';
import { throwsNaming } from './helpers.ts';

const test = suite('layout');

const iota = (n: number) => Array.from({ length: n }, (_, i) => i);
const randn = (n: number, seed: number) => {
  const r = new HostRandom(seed);
  return Array.from({ length: n }, () => Math.fround(r.normal()));
};

test('reshape rejects a shape with another element count, and bad -1s', () => {
  throwsNaming(() => reshape(tensor(iota(6), [2, 3]), [4, 2]), /cannot reshape \[2, 3\] \(6 elements\) into \[4, 2\]/, /8 elements/);
  throwsNaming(() => reshape(tensor(iota(6), [2, 3]), [-1, -1]), /at most one dimension may be -1/);
  throwsNaming(() => reshape(tensor(iota(6), [2, 3]), [4, -1]), /not divisible by 4/);
  throwsNaming(() => reshape(tensor(iota(6), [2, 3]), [0, 6]), /positive/);
});

test('permute rejects axes that are not a permutation', () => {
  const x = () => tensor(iota(24), [2, 3, 4]);
  throwsNaming(() => permute(x(), [0, 0, 1]), /not a permutation/, /axis 0 is repeated/);
  throwsNaming(() => permute(x(), [1, 0]), /not a permutation/, /expected 3 axes, got 2/);
  throwsNaming(() => permute(x(), [0, 1, 3]), /axis 3 is out of range for rank 3/);
  throwsNaming(() => permute(x(), [0, 1.5, 2]), /not a list of integers/);
});

test('slice rejects out-of-range windows', () => {
  const x = () => tensor(iota(35), [5, 7]);
  throwsNaming(() => slice(x(), [4, 0], [2, 7]), /start 4 \+ size 2 on axis 0 is out of range/, /dimension 5 of input \[5, 7\]/);
  throwsNaming(() => slice(x(), [0, 7], [1, 1]), /start 7 on axis 1 is out of range \[0, 7\)/);
  throwsNaming(() => slice(x(), [-1, 0], [1, 1]), /start -1 on axis 0 is out of range/);
  throwsNaming(() => slice(x(), [0, 0], [0, 1]), /size 0 on axis 0 must be positive/);
  throwsNaming(() => slice(x(), [0], [1]), /rank 2, but got 1 starts and 1 sizes/);
});

test('concat rejects shape mismatches, bad axes and mixed dtypes', () => {
  throwsNaming(() => concat([tensor(iota(6), [2, 3]), tensor(iota(12), [3, 4])], 0), /shape mismatch/, /tensor 1 \[3, 4\]/, /outside axis 0/);
  throwsNaming(() => concat([tensor(iota(6), [2, 3]), tensor(iota(6), [2, 3, 1])], 0), /shape mismatch/);
  throwsNaming(() => concat([tensor(iota(6), [2, 3])], 2), /axis 2 is out of range for tensors of rank 2/);
  throwsNaming(() => concat([], 0), /needs a non-empty list of tensors/);
  throwsNaming(() => concat([tensor(iota(6), [2, 3]), tensor(iota(6), [2, 3], 'u32')], 0), /tensor 1 is u32 but tensor 0 is f32/);
});

test('pad rejects negative pads and a wrong number of pairs', () => {
  const x = () => tensor(iota(6), [2, 3]);
  throwsNaming(() => pad(x(), [[0, -1], [0, 0]]), /negative padding \[0,-1\] on axis 0/);
  throwsNaming(() => pad(x(), [[1, 1]]), /one \[before, after\] pair per axis/);
  throwsNaming(() => pad(x(), [[1, 1], [1] as unknown as [number, number]]), /pads\[1\] must be an integer pair/);
});

test('softmax and layer_norm reject bad dtypes and parameter shapes', () => {
  throwsNaming(() => softmax(tensor(iota(6), [2, 3], 'u32')), /softmax: expects an f32 tensor, got u32/);
  throwsNaming(() => layerNorm(tensor(iota(14), [2, 7]), tensor(iota(6), [6]), tensor(iota(7), [7])), /weight has shape \[6\], expected \[7\]/);
  throwsNaming(() => layerNorm(tensor(iota(14), [2, 7]), tensor(iota(7), [7]), tensor(iota(7), [1, 7])), /bias has shape \[1, 7\], expected \[7\]/);
  throwsNaming(() => layerNorm(tensor(iota(14), [2, 7]), tensor(iota(7), [7]), tensor(iota(7), [7]), -1), /eps must be/);
});

test('bad input allocates nothing that outlives the call', () => {
  const before = engine().memory().bytesInUse;
  throwsNaming(() => reshape(tensor(iota(6), [2, 3]), [5]), /cannot reshape/);
  throwsNaming(() => concat([tensor(iota(6), [2, 3]), tensor(iota(12), [3, 4])], 1), /shape mismatch/);
  assert.is(engine().memory().bytesInUse, before);
});

test('reshape infers -1 and keeps the data', async () => {
  await scope(async () => {
    const y = reshape(tensor(iota(30), [2, 3, 5]), [5, -1, 2]);
    assert.equal([...y.shape], [5, 3, 2]);
    assert.equal([...(await y.readF32())], iota(30));
  });
});

test('layout ops move f32 bits exactly, including rank 0 and odd shapes', async () => {
  await scope(async () => {
    const data = randn(2 * 3 * 5 * 7, 7);
    const x = tensor(data, [2, 3, 5, 7]);
    const hx = host([2, 3, 5, 7], data);
    const exact = async (t: Tensor, want: Float64Array) => assert.equal([...(await t.readF32())], [...Float32Array.from(want)]);
    await exact(permute(x, [2, 3, 0, 1]), permuteForward(hx, [2, 3, 0, 1]).data);
    await exact(slice(x, [1, 0, 2, 3], [1, 3, 2, 4]), sliceForward(hx, [1, 0, 2, 3], [1, 3, 2, 4]).data);
    await exact(pad(x, [[1, 0], [0, 1], [2, 2], [0, 3]], -7.25), padForward(hx, [[1, 0], [0, 1], [2, 2], [0, 3]], -7.25).data);
    await exact(concat([x, x], 2), concatForward([hx, hx], 2).data);
    const s = tensor([3.5], []);
    assert.equal([...(await permute(s, []).readF32())], [3.5]);
    assert.equal([...(await pad(s, []).readF32())], [3.5]);
  });
});

test('layout ops work on u32 tensors bit for bit (no float canonicalization)', async () => {
  await scope(async () => {
    // NaN and infinity bit patterns, and integers above 2^24 that a float round trip would round.
    const data = [0x7fc00001, 0xffffffff, 0x7f800000, 16777217, 0, 1, 0x80000000, 42, 4294967295, 123456789, 7, 8];
    const x = tensor(data, [3, 4], 'u32');
    const read = async (t: Tensor) => [...(await t.read())];
    assert.equal(await read(permute(x, [1, 0])), [...permuteForward(host([3, 4], data), [1, 0]).data]);
    assert.equal(await read(slice(x, [1, 1], [2, -1])), [...sliceForward(host([3, 4], data), [1, 1], [2, 3]).data]);
    assert.equal(await read(concat([x, x], 0)), [...data, ...data]);
    assert.equal(await read(pad(x, [[0, 1], [0, 0]], 0xdeadbeef)), [...data, 0xdeadbeef, 0xdeadbeef, 0xdeadbeef, 0xdeadbeef]);
    assert.equal(await read(reshape(x, [12])), data);
  });
});

test('softmax and layer_norm fold grids past 65535 rows', async () => {
  await scope(async () => {
    const rows = 65537;
    const data = Array.from({ length: rows * 2 }, (_, i) => (i % 2 ? 0 : Math.log(3))); // every row -> [0.75, 0.25]
    const y = await softmax(tensor(data, [rows, 2])).readF32();
    assert.ok(Math.abs(y[2 * (rows - 1)] - 0.75) < 1e-6 && Math.abs(y[2 * rows - 1] - 0.25) < 1e-6, `last row ${y[2 * rows - 2]}, ${y[2 * rows - 1]}`);
    const z = await layerNorm(tensor(data, [rows, 2]), tensor([1, 1], [2]), tensor([0, 0], [2]), 0).readF32();
    assert.ok(Math.abs(z[2 * rows - 2] - 1) < 1e-5 && Math.abs(z[2 * rows - 1] + 1) < 1e-5, `last row ${z[2 * rows - 2]}, ${z[2 * rows - 1]}`);
  });
});

test('forward and backward of every op return the pool to its baseline', async () => {
  const before = engine().memory().bytesInUse;
  for (let step = 0; step < 3; step++) {
    await scope(async () => {
      const x = tensor(randn(2 * 3 * 5, step), [2, 3, 5]).requireGrad();
      const w = tensor(randn(6, 9), [6]).requireGrad();
      const b = tensor(randn(6, 10), [6]).requireGrad();
      // [2,3,5] -> [3,2,5] -> [3,1,4] -> [4,3,5] -> [5,4,3]
      const p = permute(pad(slice(reshape(x, [3, 2, 5]), [0, 1, 1], [3, 1, 4]), [[1, 0], [0, 2], [0, 1]]), [2, 0, 1]);
      const y = layerNorm(softmax(concat([p, p], 2)), w, b); // [5, 4, 6]
      const grads = grad(sum(y), [x, w, b]);
      await Promise.all(grads.map((g) => g.readF32()));
    });
  }
  assert.is(engine().memory().bytesInUse, before);
});

test('coalesce merges dimensions one stride walks through and drops unit dimensions', () => {
  assert.equal(coalesce([3, 1, 4, 5], [20, 7, 5, 1]), { shape: [60], strides: [1] }); // contiguous
  assert.equal(coalesce([2, 3, 4], [1, 8, 2]), { shape: [2, 12], strides: [1, 2] }); // a permutation
  assert.equal(coalesce([4, 5], [1, 4]), { shape: [4, 5], strides: [1, 4] }); // a transpose stays 2-D
  assert.equal(coalesce([1, 1], [3, 1]), { shape: [1], strides: [0] }); // one element
  assert.equal(coalesce([], []), { shape: [1], strides: [0] }); // rank 0
});

test.run();
