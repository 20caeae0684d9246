// float64 reference of 2-D convolution (cross-correlation, PyTorch's conv2d), forward and vjp.
//
// Dimensions (NCHW):
//   x  [N, C_in, H, W]
//   w  [C_out, C_in/G, kH, kW]        G = groups; output channel o belongs to group o / (C_out/G)
//   b  [C_out]                        optional
//   y  [N, C_out, Ho, Wo]             Ho = floor((H + pt + pb - dy*(kH-1) - 1) / sy) + 1 (same for W)
//
//   y[n, o, oy, ox] = b[o] + sum_{c, ky, kx} w[o, c, ky, kx] * x[n, g*Cg + c, oy*sy - pt + ky*dy, ox*sx - pl + kx*dx]
// with g = o / (C_out/G), Cg = C_in/G, and x = 0 outside [0, H) x [0, W) (zero padding).
//
// Written as a plain gather (one output at a time); the vjp scatters the same products back.
// This is the oracle: no tiling, no cleverness.

import { host, type HostArray } from './host.ts';

/** A resolved geometry: every field explicit. Padding is [top, bottom, left, right]. */
export interface Conv2dGeometry {
  stride: [number, number];
  padding: [number, number, number, number];
  dilation: [number, number];
  groups: number;
}

/** Output size along one axis (may be <= 0 for a kernel larger than the padded input). */
export function convOutSize(size: number, k: number, stride: number, padBefore: number, padAfter: number, dilation: number): number {
  return Math.floor((size + padBefore + padAfter - dilation * (k - 1) - 1) / stride) + 1;
}

interface Dims {
  N: number;
  C: number;
  H: number;
  W: number;
  O: number;
  Cg: number;
  Og: number;
  kH: number;
  kW: number;
  Ho: number;
  Wo: number;
}

function dims(x: HostArray, w: HostArray, g: Conv2dGeometry): Dims {
  const [N, C, H, W] = x.shape;
  const [O, Cg, kH, kW] = w.shape;
  const Ho = convOutSize(H, kH, g.stride[0], g.padding[0], g.padding[1], g.dilation[0]);
  const Wo = convOutSize(W, kW, g.stride[1], g.padding[2], g.padding[3], g.dilation[1]);
  if (Cg * g.groups !== C || O % g.groups !== 0 || Ho <= 0 || Wo <= 0) throw new RangeError('conv2d reference: inconsistent shapes');
  return { N, C, H, W, O, Cg, Og: O / g.groups, kH, kW, Ho, Wo };
}

/**
 * Calls fn(yIndex, xIndex, wIndex) for every product term of the convolution whose input sample is
 * inside the image (padding contributes nothing).
 */
function forEachTerm(d: Dims, g: Conv2dGeometry, fn: (yi: number, xi: number, wi: number) => void): void {
  const [sy, sx] = g.stride;
  const [dy, dx] = g.dilation;
  const pt = g.padding[0];
  const pl = g.padding[2];
  for (let n = 0; n < d.N; n++)
    for (let o = 0; o < d.O; o++) {
      const grp = Math.floor(o / d.Og);
      for (let oy = 0; oy < d.Ho; oy++)
        for (let ox = 0; ox < d.Wo; ox++) {
          const yi = ((n * d.O + o) * d.Ho + oy) * d.Wo + ox;
          for (let c = 0; c < d.Cg; c++)
            for (let ky = 0; ky < d.kH; ky++) {
              const iy = oy * sy - pt + ky * dy;
              if (iy < 0 || iy >= d.H) continue;
              for (let kx = 0; kx < d.kW; kx++) {
                const ix = ox * sx - pl + kx * dx;
                if (ix < 0 || ix >= d.W) continue;
                const xi = ((n * d.C + grp * d.Cg + c) * d.H + iy) * d.W + ix;
                const wi = ((o * d.Cg + c) * d.kH + ky) * d.kW + kx;
                fn(yi, xi, wi);
              }
            }
        }
    }
}

export function conv2dForward(x: HostArray, w: HostArray, bias: HostArray | null, g: Conv2dGeometry): HostArray {
  const d = dims(x, w, g);
  const y = host([d.N, d.O, d.Ho, d.Wo]);
  if (bias) for (let i = 0; i < y.data.length; i++) y.data[i] = bias.data[Math.floor(i / (d.Ho * d.Wo)) % d.O];
  forEachTerm(d, g, (yi, xi, wi) => (y.data[yi] += x.data[xi] * w.data[wi]));
  return y;
}

/** Gradients [gx, gw] (and gb when there is a bias) of <gy, conv2d(x, w, b)>. */
export function conv2dVjp(x: HostArray, w: HostArray, bias: HostArray | null, gy: HostArray, g: Conv2dGeometry): Float64Array[] {
  const d = dims(x, w, g);
  const gx = new Float64Array(x.data.length);
  const gw = new Float64Array(w.data.length);
  forEachTerm(d, g, (yi, xi, wi) => {
    gx[xi] += gy.data[yi] * w.data[wi];
    gw[wi] += gy.data[yi] * x.data[xi];
  });
  if (!bias) return [gx, gw];
  const gb = new Float64Array(d.O);
  for (let i = 0; i < gy.data.length; i++) gb[Math.floor(i / (d.Ho * d.Wo)) % d.O] += gy.data[i];
  return [gx, gw, gb];
}

/** im2col: the [C_in/G * kH * kW, N * Ho * Wo] patch matrix of group `grp` (zeros for padding). */
export function im2col(x: HostArray, kernel: [number, number], g: Conv2dGeometry, grp: number): HostArray {
  const [N, C, H, W] = x.shape;
  const [kH, kW] = kernel;
  const Cg = C / g.groups;
  const Ho = convOutSize(H, kH, g.stride[0], g.padding[0], g.padding[1], g.dilation[0]);
  const Wo = convOutSize(W, kW, g.stride[1], g.padding[2], g.padding[3], g.dilation[1]);
  const cols = host([Cg * kH * kW, N * Ho * Wo]);
  for (let c = 0; c < Cg; c++)
    for (let ky = 0; ky < kH; ky++)
      for (let kx = 0; kx < kW; kx++) {
        const row = (c * kH + ky) * kW + kx;
        for (let n = 0; n < N; n++)
          for (let oy = 0; oy < Ho; oy++)
            for (let ox = 0; ox < Wo; ox++) {
              const iy = oy * g.stride[0] - g.padding[0] + ky * g.dilation[0];
              const ix = ox * g.stride[1] - g.padding[2] + kx * g.dilation[1];
              if (iy < 0 || iy >= H || ix < 0 || ix >= W) continue;
              cols.data[row * N * Ho * Wo + (n * Ho + oy) * Wo + ox] = x.data[((n * C + grp * Cg + c) * H + iy) * W + ix];
            }
      }
  return cols;
}
