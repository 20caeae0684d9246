// Identity (denoising): A(x) = x. The noise level belongs to the measurement (`measure`'s
// noiseStd; the spec `denoise:0.1` sets it), not to the operator.
//
// Legend: N = images, [C, H, W] = one image. x [N, C, H, W] -> [N, C, H, W].

import { reshape } from '../../../engine/ops/layout.ts';
import { host, type HostArray } from '../../../engine/reference/host.ts';
import { checkImageShape, checkInput, type MeasurementOperator } from './common.ts';

export function identityOperator(inShape: readonly number[], name = 'identity'): MeasurementOperator {
  const shape = checkImageShape(name, inShape);
  const op: MeasurementOperator = {
    name,
    inShape: [...shape],
    outShape: [...shape],
    // A recorded copy (not x itself), so the caller may dispose the result without losing x.
    apply: (x) => (checkInput(op, x), reshape(x, x.shape)),
    reference: (x: HostArray) => host(x.shape, x.data),
  };
  return op;
}
