// Colorization: the grayscale image 0.2989 R + 0.5870 G + 0.1140 B, repeated to three channels
// (so the measurement has the image's shape and displays as a gray image).
//
// Legend: N = images, [3, H, W] = one RGB image.
//   x [N, 3, H, W] -> [N, 3, H, W]   G [3, 3] = every row (0.2989, 0.5870, 0.1140)
// Applied as one matmul G x over the channel axis; the adjoint (G^T) is the matmul's backward.

import { matmul } from '../../../engine/ops/matmul.ts';
import { reshape } from '../../../engine/ops/layout.ts';
import { tensor } from '../../../engine/tensor.ts';
import { host, type HostArray } from '../../../engine/reference/host.ts';
import { checkImageShape, checkInput, keepAll, type MeasurementOperator } from './common.ts';

export const GRAY_WEIGHTS = [0.2989, 0.587, 0.114] as const;

export function colorizeOperator(inShape: readonly number[], name = 'colorize'): MeasurementOperator {
  const [C, H, W] = checkImageShape(name, inShape);
  if (C !== 3) throw new RangeError(`operator ${name}: needs RGB images (3 channels), got ${C} channel${C === 1 ? '' : 's'} (shape ${JSON.stringify(inShape)})`);
  const g = tensor([...GRAY_WEIGHTS, ...GRAY_WEIGHTS, ...GRAY_WEIGHTS], [3, 3]);
  const held = keepAll(g);
  const op: MeasurementOperator = {
    name,
    inShape: [3, H, W],
    outShape: [3, H, W],
    apply: (x) => {
      const N = checkInput(op, x);
      const flat = reshape(x, [N, 3, H * W]);
      const gray = matmul(g, flat); // [N, 3, H W], each channel the same gray value
      const y = reshape(gray, [N, 3, H, W]);
      flat.dispose();
      gray.dispose();
      return y;
    },
    reference: (x: HostArray) => {
      const y = host(x.shape);
      const P = H * W;
      for (let n = 0; n < x.shape[0]; n++) {
        for (let p = 0; p < P; p++) {
          const v = GRAY_WEIGHTS.reduce((acc, w, c) => acc + w * x.data[(n * 3 + c) * P + p], 0);
          for (let c = 0; c < 3; c++) y.data[(n * 3 + c) * P + p] = v;
        }
      }
      return y;
    },
    dispose: held.dispose,
  };
  return op;
}
