// Gradcheck rows of upfirdn2d and its StyleGAN2 helpers (upsample2d, downsample2d, blur).
// Included in the table by allGradCases() (engine/cases/index.ts).
//
// upfirdn2d: up 1/2/3, down 1/2, positive, zero and negative (cropping) pads, per-axis factors,
// non-square images, batch 2, C 3, 4x4, 3x1, 1x3 and 3x2 kernels. The kernels are deliberately
// asymmetric (random values, fixed seed): with a symmetric kernel a missing flip in the forward or
// the backward would go unnoticed. The kernel is a constant of the case, x the only input.

import { TOLERANCES, type GradCase } from '../gradcheck.ts';
import { blur, downsample2d, makeKernel, upfirdn2d, upfirdn2dConfig, upsample2d, type HostKernel, type Upfirdn2dOptions } from '../ops/upfirdn2d.ts';
import { upfirdn2dForward, upfirdn2dVjp } from '../reference/upfirdn2d.ts';
import { HostRandom, host, type HostArray } from '../reference/host.ts';
import type { Tensor } from '../tensor.ts';
import type { Shape } from '../shape.ts';

const dims = (s: Shape) => s.join('x');

/** An asymmetric [kH, kW] kernel with float32-exact values (the GPU sees the same numbers). */
function asymmetricKernel(kH: number, kW: number, seed: number): HostKernel {
  const rng = new HostRandom(seed);
  return { shape: [kH, kW], data: Float64Array.from({ length: kH * kW }, () => Math.fround(0.25 + rng.uniform())) };
}

function asHost(k: HostKernel): HostArray {
  return host(k.shape, Float64Array.from(k.data, (v) => Math.fround(v)));
}

function upfirdn2dCase(xShape: Shape, k: HostKernel, o: Upfirdn2dOptions, label: string, gpu?: (x: Tensor) => Tensor): GradCase {
  const c = upfirdn2dConfig(o);
  const f = asHost(k);
  return {
    name: `upfirdn2d[${dims(xShape)}, k=${dims(k.shape)}, ${label}]`,
    inputs: [{ shape: xShape }],
    // Each output is a short float32 sum of products: the reduction tolerance.
    tol: TOLERANCES.reduction,
    forward: ([x]) => upfirdn2dForward(x, f, c),
    vjp: ([x], gy) => [upfirdn2dVjp(x, f, c, gy)],
    gpu: ([x]) => (gpu ? gpu(x) : upfirdn2d(x, k, o)),
  };
}

export function upfirdn2dGradCases(): GradCase[] {
  const k44 = asymmetricKernel(4, 4, 11);
  const k31 = asymmetricKernel(3, 1, 12);
  const k13 = asymmetricKernel(1, 3, 13);
  const k32 = asymmetricKernel(3, 2, 14);
  const blurK = makeKernel([1, 3, 3, 1], 4);
  return [
    upfirdn2dCase([2, 3, 4, 5], k44, { up: 2, pad: [2, 1, 2, 1] }, 'up=2, pad=2,1,2,1'),
    upfirdn2dCase([2, 3, 6, 7], k44, { down: 2, pad: [1, 1, 1, 1] }, 'down=2, pad=1,1,1,1'),
    upfirdn2dCase([1, 3, 5, 6], k44, { up: 2, down: 2 }, 'up=2, down=2, pad=0'),
    upfirdn2dCase([2, 3, 5, 4], k31, { pad: [-1, 2, 0, -1] }, 'pad=-1,2,0,-1'),
    upfirdn2dCase([2, 3, 4, 3], k13, { up: [2, 1], down: [1, 2], pad: [0, 1, 2, -1] }, 'up=2,1, down=1,2, pad=0,1,2,-1'),
    upfirdn2dCase([1, 3, 3, 4], k32, { up: [1, 3], down: [2, 1], pad: [1, 0, -2, 3] }, 'up=1,3, down=2,1, pad=1,0,-2,3'),
    upfirdn2dCase([2, 3, 7, 6], k44, { up: 2, down: 2, pad: [-3, -2, 1, -1] }, 'up=2, down=2, pad=-3,-2,1,-1'),
    upfirdn2dCase([2, 3, 5, 4], blurK, { up: 2, pad: [2, 1, 2, 1] }, 'upsample2d', (x) => upsample2d(x)),
    upfirdn2dCase([2, 3, 6, 5], makeKernel([1, 3, 3, 1]), { down: 2, pad: [1, 1, 1, 1] }, 'downsample2d', (x) => downsample2d(x)),
    upfirdn2dCase([2, 3, 5, 5], blurK, { pad: [1, 1, 1, 1] }, 'blur pad=1,1 factor=2', (x) => blur(x, [1, 1], { upsampleFactor: 2 })),
  ];
}
