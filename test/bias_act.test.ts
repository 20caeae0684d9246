// bias_act beyond its gradcheck rows (engine/cases/bias_act.ts, run by test/gradcheck.test.ts):
// errors that name the problem. Its PyTorch golden values and the pool check are in
// test/upfirdn2d.test.ts, beside upfirdn2d's.
import { suite } from 'uvu';
import { tensor } from '../engine/tensor.ts';
import { biasAct } from '../engine/ops/bias_act.ts';
import { throwsNaming } from './helpers.ts';

const test = suite('bias_act');

test('bias_act rejects a bias of the wrong length, bad options and dims', () => {
  const x = () => tensor(new Float32Array(2 * 3 * 4), [2, 3, 4]);
  throwsNaming(() => biasAct(x(), tensor([1, 2], [2])), /bias has shape f32\[2\], expected f32\[3\]/, /3 channels along dim 1/);
  throwsNaming(() => biasAct(x(), tensor([1, 2, 3], [3]), { dim: 2 }), /expected f32\[4\]/);
  throwsNaming(() => biasAct(x(), tensor([1, 2, 3, 4, 5, 6], [2, 3])), /bias has shape f32\[2, 3\], expected f32\[3\]/);
  throwsNaming(() => biasAct(x(), null, { dim: 3 }), /axis 3 is out of range for a tensor of rank 3/);
  throwsNaming(() => biasAct(x(), null, { act: 'relu' as 'lrelu' }), /unknown activation "relu"/);
  throwsNaming(() => biasAct(x(), null, { clamp: -1 }), /clamp must be >= 0, got -1/);
  throwsNaming(() => biasAct(tensor([1, 2], [2], 'u32')), /expects an f32 tensor, got u32/);
  const w = () => tensor([0.5], [1]);
  throwsNaming(() => biasAct(x(), null, { noise: { map: tensor(new Float32Array(8), [2, 1, 4]), weight: w() }, scale: 2 }), /scale and noise do not combine/);
  throwsNaming(() => biasAct(x(), null, { noise: { map: tensor(new Float32Array(8), [2, 4]), weight: w() } }), /noise map has shape f32\[2, 4\], expected f32\[2, 1, 4\] or f32\[1, 1, 4\]/);
  throwsNaming(() => biasAct(x(), null, { noise: { map: tensor(new Float32Array(4), [1, 1, 4]), weight: tensor([1, 2], [2]) } }), /noise weight has shape f32\[2\], expected f32\[1\]/);
  throwsNaming(() => biasAct(x(), null, { scale: Infinity }), /scale must be finite/);
});

test.run();
