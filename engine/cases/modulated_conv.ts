// Gradcheck rows of the modulated convolution (engine/ops/modulated_conv.ts): 3x3 with and without
// demodulation, the upsampling 3x3 (transposed conv + blur), the 1x1 ToRGB, on batch 2 with odd
// and non-square planes. Included in the table by allGradCases() (engine/cases/index.ts). Every row
// name ends in "scaled", the formulation the op computes (engine/ops/modulated_conv.ts).
//
// Inputs of every row: x [N, Ci, H, W], weight [Co, Ci, k, k], styles [N, Ci]. The conv sums
// Ci*k*k float32 products, like a matmul: the matmul tolerance.

import { TOLERANCES, type GradCase } from '../gradcheck.ts';
import { modulatedConv2d } from '../ops/modulated_conv.ts';
import { modulatedConvForward, modulatedConvVjp, type ModulatedConvDims, type ModulatedConvOptions } from '../reference/modulated_conv.ts';

interface RowSpec extends ModulatedConvDims {
  label: string;
  options: ModulatedConvOptions;
}

function modulatedConvCase(r: RowSpec): GradCase {
  const o = r.options;
  return {
    name: `modulated_conv[${r.label}, ${r.N}x${r.Ci}x${r.H}x${r.W} -> C_out ${r.Co}, scaled]`,
    inputs: [{ shape: [r.N, r.Ci, r.H, r.W] }, { shape: [r.Co, r.Ci, r.k, r.k] }, { shape: [r.N, r.Ci] }],
    tol: TOLERANCES.matmul,
    forward: ([x, w, s]) => modulatedConvForward(x, w, s, o),
    vjp: ([x, w, s], gy) => modulatedConvVjp(x, w, s, gy, o),
    gpu: ([x, w, s]) => modulatedConv2d(x, w, s, o),
  };
}

export function modulatedConvGradCases(): GradCase[] {
  const rows: RowSpec[] = [
    { label: '3x3 demod', N: 2, Ci: 3, Co: 4, H: 4, W: 5, k: 3, options: { demodulate: true } },
    { label: '3x3 no demod', N: 2, Ci: 5, Co: 4, H: 5, W: 4, k: 3, options: { demodulate: false } },
    { label: 'upsample 3x3 demod', N: 2, Ci: 3, Co: 4, H: 4, W: 3, k: 3, options: { demodulate: true, upsample: true } },
    // Batch 5: the demodulation coefficients are computed 4 batch items per invocation.
    { label: '3x3 demod, batch 5', N: 5, Ci: 2, Co: 3, H: 3, W: 3, k: 3, options: { demodulate: true } },
  ];
  const torgb: RowSpec = { label: 'ToRGB 1x1 no demod', N: 2, Ci: 5, Co: 4, H: 5, W: 3, k: 1, options: { demodulate: false } };
  // Channels >= 8: on adapters with 8-lane subgroups the scaled forward and input gradient take
  // shaders/modulated_conv_subgroup.wgsl (16- and 8-channel tiles, ragged channel and pixel edges).
  const wide: RowSpec[] = [
    { label: '3x3 demod, subgroup tiles', N: 2, Ci: 9, Co: 17, H: 5, W: 11, k: 3, options: { demodulate: true } },
    { label: 'upsample 3x3 demod, subgroup tiles', N: 2, Ci: 10, Co: 8, H: 3, W: 9, k: 3, options: { demodulate: true, upsample: true } },
    { label: 'ToRGB 1x1, subgroup input gradient', N: 2, Ci: 16, Co: 3, H: 4, W: 4, k: 1, options: { demodulate: false } },
    // W % 4 == 0: the forward's rows are unrolled and read as vec4s (zero past both row ends).
    { label: '3x3 demod, subgroup tiles, vec4 rows', N: 2, Ci: 9, Co: 17, H: 5, W: 12, k: 3, options: { demodulate: true } },
    { label: 'upsample 3x3 demod, subgroup tiles, vec4 rows', N: 1, Ci: 8, Co: 8, H: 3, W: 4, k: 3, options: { demodulate: true, upsample: true } },
    // Planes at most 8 wide: each lane's pixels are a whole row, the loads past its ends left out.
    { label: '3x3 no demod, subgroup tiles, 8-wide rows', N: 2, Ci: 9, Co: 8, H: 3, W: 8, k: 3, options: { demodulate: false } },
  ];
  return [
    ...rows.map((r) => modulatedConvCase(r)),
    modulatedConvCase(torgb),
    ...wide.map((r) => modulatedConvCase(r)),
  ];
}
