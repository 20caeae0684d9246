// conv_transpose2d beyond its gradcheck rows (engine/cases/conv_transpose2d.ts, run by
// test/gradcheck.test.ts): bad input errors that name the problem. Its adjoint identity with
// conv2d, StyleGAN2-like shapes, PyTorch golden values and the pool check are in test/conv2d.test.ts.
import { suite } from 'uvu';
import { tensor } from '../engine/tensor.ts';
import { convTranspose2d } from '../engine/ops/conv_transpose2d.ts';
import { throwsNaming } from './helpers.ts';

const test = suite('conv_transpose2d');

const size = (s: number[]) => s.reduce((a, b) => a * b, 1);

test('conv_transpose2d names bad input: channels, groups, output padding, bias, cropping', () => {
  const z = (s: number[]) => tensor(new Float32Array(size(s)), s);
  throwsNaming(() => convTranspose2d(z([1, 4, 3, 3]), z([3, 2, 3, 3]), { stride: 2 }), /channel mismatch/, /4 input channels/, /C_in = 3/);
  throwsNaming(() => convTranspose2d(z([1, 4, 3, 3]), z([4, 2, 3, 3]), { groups: 3 }), /groups 3 does not divide the 4 input channels/);
  throwsNaming(() => convTranspose2d(z([1, 4, 3, 3]), z([4, 2, 3, 3]), { stride: 2, outputPadding: 2 }), /outputPadding 2 must be .* below max\(stride, dilation\) = 2/);
  throwsNaming(() => convTranspose2d(z([1, 4, 3, 3]), z([4, 2, 3, 3]), z([2]), { groups: 2 }), /bias has shape \[2\], expected \[4\]/);
  throwsNaming(() => convTranspose2d(z([1, 1, 1, 1]), z([1, 1, 1, 1]), { padding: 1 }), /crops the whole output/);
});

test.run();
