// float64 reference of 2-D transposed convolution (PyTorch's conv_transpose2d), forward and vjp.
//
// Dimensions (NCHW):
//   x  [N, C_in, H, W]
//   w  [C_in, C_out/G, kH, kW]        G = groups; input channel i belongs to group i / (C_in/G)
//   b  [C_out]                        optional
//   y  [N, C_out, Ho, Wo]             Ho = (H - 1)*sy - pt - pb + dy*(kH - 1) + opy + 1 (same for W)
//
// Definition (a scatter: every input sample paints a dilated copy of its kernel, stride apart):
//   y[n, g*Og + o, iy*sy - pt + ky*dy, ix*sx - pl + kx*dx] += x[n, i, iy, ix] * w[i, o, ky, kx]
// for g = i / (C_in/G), Og = C_out/G; positions outside [0, Ho) x [0, Wo) are dropped (that is
// what padding does here: it crops the full output). Output padding op only adds rows/columns at
// the bottom/right, which only bias (or nothing) reaches.
//
// StyleGAN2's upsampling conv: stride 2, no padding, 3x3, so H -> 2H + 1.

import { host, type HostArray } from './host.ts';

/** A resolved geometry. Padding is [top, bottom, left, right]; outputPadding is [y, x]. */
export interface ConvTranspose2dGeometry {
  stride: [number, number];
  padding: [number, number, number, number];
  outputPadding: [number, number];
  dilation: [number, number];
  groups: number;
}

export function convTransposeOutSize(size: number, k: number, stride: number, padBefore: number, padAfter: number, dilation: number, outputPadding: number): number {
  return (size - 1) * stride - padBefore - padAfter + dilation * (k - 1) + outputPadding + 1;
}

function forEachTerm(x: HostArray, w: HostArray, g: ConvTranspose2dGeometry, fn: (yi: number, xi: number, wi: number) => void): number[] {
  const [N, C, H, W] = x.shape;
  const [Cw, Og, kH, kW] = w.shape;
  const O = Og * g.groups;
  const Cg = C / g.groups;
  const Ho = convTransposeOutSize(H, kH, g.stride[0], g.padding[0], g.padding[1], g.dilation[0], g.outputPadding[0]);
  const Wo = convTransposeOutSize(W, kW, g.stride[1], g.padding[2], g.padding[3], g.dilation[1], g.outputPadding[1]);
  if (Cw !== C || C % g.groups !== 0 || Ho <= 0 || Wo <= 0) throw new RangeError('conv_transpose2d reference: inconsistent shapes');
  for (let n = 0; n < N; n++)
    for (let i = 0; i < C; i++) {
      const grp = Math.floor(i / Cg);
      for (let iy = 0; iy < H; iy++)
        for (let ix = 0; ix < W; ix++) {
          const xi = ((n * C + i) * H + iy) * W + ix;
          for (let o = 0; o < Og; o++)
            for (let ky = 0; ky < kH; ky++) {
              const oy = iy * g.stride[0] - g.padding[0] + ky * g.dilation[0];
              if (oy < 0 || oy >= Ho) continue;
              for (let kx = 0; kx < kW; kx++) {
                const ox = ix * g.stride[1] - g.padding[2] + kx * g.dilation[1];
                if (ox < 0 || ox >= Wo) continue;
                fn(((n * O + grp * Og + o) * Ho + oy) * Wo + ox, xi, ((i * Og + o) * kH + ky) * kW + kx);
              }
            }
        }
    }
  return [N, O, Ho, Wo];
}

export function convTranspose2dForward(x: HostArray, w: HostArray, bias: HostArray | null, g: ConvTranspose2dGeometry): HostArray {
  const terms: [number, number, number][] = [];
  const shape = forEachTerm(x, w, g, (yi, xi, wi) => terms.push([yi, xi, wi]));
  const y = host(shape);
  const plane = shape[2] * shape[3];
  if (bias) for (let i = 0; i < y.data.length; i++) y.data[i] = bias.data[Math.floor(i / plane) % shape[1]];
  for (const [yi, xi, wi] of terms) y.data[yi] += x.data[xi] * w.data[wi];
  return y;
}

/** Gradients [gx, gw] (and gb when there is a bias) of <gy, conv_transpose2d(x, w, b)>. */
export function convTranspose2dVjp(x: HostArray, w: HostArray, bias: HostArray | null, gy: HostArray, g: ConvTranspose2dGeometry): Float64Array[] {
  const gx = new Float64Array(x.data.length);
  const gw = new Float64Array(w.data.length);
  const shape = forEachTerm(x, w, g, (yi, xi, wi) => {
    gx[xi] += gy.data[yi] * w.data[wi];
    gw[wi] += gy.data[yi] * x.data[xi];
  });
  if (!bias) return [gx, gw];
  const gb = new Float64Array(shape[1]);
  const plane = shape[2] * shape[3];
  for (let i = 0; i < gy.data.length; i++) gb[Math.floor(i / plane) % shape[1]] += gy.data[i];
  return [gx, gw, gb];
}
