// float64 reference of upfirdn2d (engine/ops/upfirdn2d.ts), written step by step from NVlabs'
// definition (torch_utils/ops/upfirdn2d.py, `_upfirdn2d_ref`) rather than from the kernel's
// index arithmetic, so it is an independent oracle:
//
//   1. upsample: insert up-1 zeros after each sample        [H, W]   -> [H*uy, W*ux]
//   2. pad (negative pads crop)                             -> [Hp, Wp] = [H*uy+py0+py1, W*ux+px0+px1]
//   3. TRUE convolution with f (correlation with the flipped f), "valid" -> [Hp-kH+1, Wp-kW+1]
//   4. keep every down-th sample (starting at 0)            -> [ceil((Hp-kH+1)/dy), ...]
//
// so out = (in*up + p0 + p1 - k + down) // down per axis. The VJP is the adjoint of each step in
// reverse order (4: zero-insertion, 3: scatter through the taps, 2: crop/pad back, 1: take every
// up-th sample), again written from the steps and not from the GPU's "flipped kernel, transformed
// pads" formulation, which the tests check against it.
//
// Dimensions: x [N, C, H, W], f [kH, kW], y [N, C, OH, OW]; every plane (n, c) is independent.

import { host, type HostArray } from './host.ts';

export interface Upfirdn2dConfig {
  upX: number;
  upY: number;
  downX: number;
  downY: number;
  /** [px0, px1, py0, py1]: before/after along W, then along H (NVlabs order). */
  pad: [number, number, number, number];
}

interface Plan {
  H: number;
  W: number;
  kH: number;
  kW: number;
  Hp: number; // padded (or cropped) upsampled height
  Wp: number;
  Hz: number; // after the valid convolution
  Wz: number;
  OH: number;
  OW: number;
}

function plan(x: HostArray, f: HostArray, c: Upfirdn2dConfig): Plan {
  if (x.shape.length !== 4) throw new RangeError(`upfirdn2dForward: x must be [N, C, H, W], got [${x.shape}]`);
  if (f.shape.length !== 2) throw new RangeError(`upfirdn2dForward: f must be [kH, kW], got [${f.shape}]`);
  const [, , H, W] = x.shape;
  const [kH, kW] = f.shape;
  const Hp = H * c.upY + c.pad[2] + c.pad[3];
  const Wp = W * c.upX + c.pad[0] + c.pad[1];
  const Hz = Hp - kH + 1;
  const Wz = Wp - kW + 1;
  if (Hz <= 0 || Wz <= 0) throw new RangeError(`upfirdn2dForward: empty output (${Hz} x ${Wz} before downsampling)`);
  return { H, W, kH, kW, Hp, Wp, Hz, Wz, OH: Math.ceil(Hz / c.downY), OW: Math.ceil(Wz / c.downX) };
}

export function upfirdn2dForward(x: HostArray, f: HostArray, c: Upfirdn2dConfig): HostArray {
  const p = plan(x, f, c);
  const [N, C] = x.shape;
  const y = host([N, C, p.OH, p.OW]);
  const [px0, , py0] = c.pad;
  const U = new Float64Array((p.H * c.upY) * (p.W * c.upX)); // [H*uy, W*ux]
  const P = new Float64Array(p.Hp * p.Wp); // [Hp, Wp]
  const Z = new Float64Array(p.Hz * p.Wz); // [Hz, Wz]
  const Wu = p.W * c.upX;
  for (let plane = 0; plane < N * C; plane++) {
    const xo = plane * p.H * p.W;
    // 1. zero insertion
    U.fill(0);
    for (let i = 0; i < p.H; i++) for (let j = 0; j < p.W; j++) U[i * c.upY * Wu + j * c.upX] = x.data[xo + i * p.W + j];
    // 2. pad / crop: P[a][b] = U[a - py0][b - px0] where that exists
    P.fill(0);
    for (let a = 0; a < p.Hp; a++) {
      for (let b = 0; b < p.Wp; b++) {
        const u = a - py0;
        const v = b - px0;
        if (u >= 0 && u < p.H * c.upY && v >= 0 && v < Wu) P[a * p.Wp + b] = U[u * Wu + v];
      }
    }
    // 3. true convolution: correlation with f flipped in both axes
    for (let a = 0; a < p.Hz; a++) {
      for (let b = 0; b < p.Wz; b++) {
        let s = 0;
        for (let i = 0; i < p.kH; i++) for (let j = 0; j < p.kW; j++) s += P[(a + i) * p.Wp + b + j] * f.data[(p.kH - 1 - i) * p.kW + (p.kW - 1 - j)];
        Z[a * p.Wz + b] = s;
      }
    }
    // 4. downsample
    const yo = plane * p.OH * p.OW;
    for (let a = 0; a < p.OH; a++) for (let b = 0; b < p.OW; b++) y.data[yo + a * p.OW + b] = Z[a * c.downY * p.Wz + b * c.downX];
  }
  return y;
}

/** Gradient of <gy, upfirdn2d(x)> with respect to x (the kernel f is a constant). */
export function upfirdn2dVjp(x: HostArray, f: HostArray, c: Upfirdn2dConfig, gy: HostArray): Float64Array {
  const p = plan(x, f, c);
  const [N, C] = x.shape;
  if (gy.shape.join() !== [N, C, p.OH, p.OW].join()) throw new RangeError(`upfirdn2dVjp: gy is [${gy.shape}], expected [${[N, C, p.OH, p.OW]}]`);
  const gx = new Float64Array(x.data.length);
  const [px0, , py0] = c.pad;
  const gZ = new Float64Array(p.Hz * p.Wz);
  const gP = new Float64Array(p.Hp * p.Wp);
  for (let plane = 0; plane < N * C; plane++) {
    // 4^T: scatter gy into the kept positions, zeros elsewhere
    gZ.fill(0);
    const yo = plane * p.OH * p.OW;
    for (let a = 0; a < p.OH; a++) for (let b = 0; b < p.OW; b++) gZ[a * c.downY * p.Wz + b * c.downX] = gy.data[yo + a * p.OW + b];
    // 3^T: each output of the correlation sends its gradient back through every tap
    gP.fill(0);
    for (let a = 0; a < p.Hz; a++) {
      for (let b = 0; b < p.Wz; b++) {
        const g = gZ[a * p.Wz + b];
        if (g === 0) continue;
        for (let i = 0; i < p.kH; i++) for (let j = 0; j < p.kW; j++) gP[(a + i) * p.Wp + b + j] += g * f.data[(p.kH - 1 - i) * p.kW + (p.kW - 1 - j)];
      }
    }
    // 2^T and 1^T: gU[u][v] = gP[u + py0][v + px0] (0 where cropped away); gx = gU at the samples
    const xo = plane * p.H * p.W;
    for (let i = 0; i < p.H; i++) {
      for (let j = 0; j < p.W; j++) {
        const a = i * c.upY + py0;
        const b = j * c.upX + px0;
        gx[xo + i * p.W + j] = a >= 0 && a < p.Hp && b >= 0 && b < p.Wp ? gP[a * p.Wp + b] : 0;
      }
    }
  }
  return gx;
}

