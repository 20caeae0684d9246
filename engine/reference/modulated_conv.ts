// float64 reference of StyleGAN2's modulated convolution (rosinality's ModulatedConv2d), forward
// and vector-Jacobian product, written straight from the definition (docs/design.md, "StyleGAN2") with no
// algebraic shortcut, so that it checks the GPU's kernels independently:
//   1. per-sample weights w1[n,o,i,ky,kx] = scale * W[o,i,ky,kx] * s[n,i], scale = 1/sqrt(Ci*k*k);
//   2. demodulation w2[n,o,...] = w1[n,o,...] * d[n,o], d = rsqrt(sum_{i,ky,kx} w1^2 + 1e-8) (else w2 = w1);
//   3. plain: correlation of x[n] with w2[n] (zero padding `padding`, default k//2);
//      upsample: transposed conv stride 2, no padding (H -> 2H+k-2, 2H+1 for k = 3), then upfirdn2d
//      blur with the kernel outer([1,3,3,1])/64*4, a true convolution (flipped), padding (P, P) with
//      rosinality's P = (5-k)/2 (its p = 4-2-(k-1), pads ((p+1)//2+1, p//2+1)): (1,1) for k = 3, -> 2H.
// The VJP walks the same steps backwards, materializing every intermediate.
//
// Dimension legend: N batch, Ci/Co channels, H x W input, k kernel side, Ho x Wo output.

import { host, type HostArray } from './host.ts';

/** The op's options (engine/ops/modulated_conv_plan.ts re-exports this type for the GPU op). */
export interface ModulatedConvOptions {
  /** Normalize each output channel's per-sample weights (default true; false for ToRGB). */
  demodulate?: boolean;
  /** Transposed conv stride 2 + blur, H -> 2H (default false). Needs an odd kernel. */
  upsample?: boolean;
  /** Zero padding of the plain conv (default k//2, same size). Not allowed with upsample. */
  padding?: number;
}

/** The [1,3,3,1] blur as one 4x4 kernel, outer([1,3,3,1]) / 64 * 4 (upfirdn2d with factor 2). */
export const BLUR_KERNEL_4x4: number[] = (() => {
  const b = [1, 3, 3, 1];
  return b.flatMap((u) => b.map((v) => (u * v) / 64 * 4));
})();

/** rosinality's blur padding per side for an upsampling conv with kernel side k (odd). */
export function blurPad(k: number): number {
  return (5 - k) / 2;
}

/**
 * One call's sizes: x [N, Ci, H, W], weight [Co, Ci, k, k], styles [N, Ci]. The one record of them:
 * the GPU op's plan, the gradcheck rows and the tests extend it.
 */
export interface ModulatedConvDims {
  N: number;
  Ci: number;
  Co: number;
  H: number;
  W: number;
  k: number;
}

interface Dims extends ModulatedConvDims {
  pad: number;
}

function dimsOf(x: HostArray, w: HostArray, o: ModulatedConvOptions): Dims {
  const [N, Ci, H, W] = x.shape;
  const [Co, , k] = w.shape;
  return { N, Ci, Co, H, W, k, pad: o.padding ?? Math.floor(k / 2) };
}

/** Per-sample weights w2 [N, Co, Ci, k, k] and the pre-demodulation w1 and d, as in steps 1-2. */
function sampleWeights(w: HostArray, s: HostArray, d: Dims, demodulate: boolean) {
  const { N, Ci, Co, k } = d;
  const kk = k * k;
  const scale = 1 / Math.sqrt(Ci * kk);
  const w1 = new Float64Array(N * Co * Ci * kk); // [N, Co, Ci, k, k]
  const dem = new Float64Array(N * Co).fill(1); // [N, Co]
  for (let n = 0; n < N; n++)
    for (let o = 0; o < Co; o++) {
      let sq = 0;
      for (let i = 0; i < Ci; i++)
        for (let t = 0; t < kk; t++) {
          const v = scale * w.data[(o * Ci + i) * kk + t] * s.data[n * Ci + i];
          w1[((n * Co + o) * Ci + i) * kk + t] = v;
          sq += v * v;
        }
      if (demodulate) dem[n * Co + o] = 1 / Math.sqrt(sq + 1e-8);
    }
  const w2 = w1.map((v, j) => v * dem[Math.floor(j / (Ci * kk))]);
  return { scale, w1, dem, w2 };
}

/** Transposed conv, stride 2, no padding, per-sample weights: [N,Ci,H,W] -> [N,Co,2H+1,2W+1] for k = 3. */
function transposedConv(x: HostArray, w2: Float64Array, d: Dims): HostArray {
  const { N, Ci, Co, H, W, k } = d;
  const Ht = 2 * (H - 1) + k;
  const Wt = 2 * (W - 1) + k;
  const t = host([N, Co, Ht, Wt]);
  for (let n = 0; n < N; n++)
    for (let o = 0; o < Co; o++)
      for (let i = 0; i < Ci; i++)
        for (let py = 0; py < H; py++)
          for (let px = 0; px < W; px++) {
            const xv = x.data[((n * Ci + i) * H + py) * W + px];
            for (let ky = 0; ky < k; ky++)
              for (let kx = 0; kx < k; kx++) {
                t.data[((n * Co + o) * Ht + 2 * py + ky) * Wt + 2 * px + kx] += xv * w2[(((n * Co + o) * Ci + i) * k + ky) * k + kx];
              }
          }
  return t;
}

/** upfirdn2d(up 1, down 1, pad (P, P)) with the 4x4 blur: true convolution, so the kernel is flipped. */
function blur(t: HostArray, P: number): HostArray {
  const [N, C, Ht, Wt] = t.shape;
  const Ho = Ht + 2 * P - 3;
  const Wo = Wt + 2 * P - 3;
  const out = host([N, C, Ho, Wo]);
  for (let nc = 0; nc < N * C; nc++)
    for (let r = 0; r < Ho; r++)
      for (let c = 0; c < Wo; c++) {
        let acc = 0;
        for (let jy = 0; jy < 4; jy++)
          for (let jx = 0; jx < 4; jx++) {
            const ty = r + jy - P;
            const tx = c + jx - P;
            if (ty < 0 || ty >= Ht || tx < 0 || tx >= Wt) continue;
            acc += t.data[(nc * Ht + ty) * Wt + tx] * BLUR_KERNEL_4x4[(3 - jy) * 4 + (3 - jx)];
          }
        out.data[(nc * Ho + r) * Wo + c] = acc;
      }
  return out;
}

/** Adjoint of blur: [N,C,Ho,Wo] -> [N,C,Ho+3-2P,Wo+3-2P]. */
function blurAdjoint(g: HostArray, P: number): HostArray {
  const [N, C, Ho, Wo] = g.shape;
  const Ht = Ho + 3 - 2 * P;
  const Wt = Wo + 3 - 2 * P;
  const gt = host([N, C, Ht, Wt]);
  for (let nc = 0; nc < N * C; nc++)
    for (let r = 0; r < Ho; r++)
      for (let c = 0; c < Wo; c++) {
        const gv = g.data[(nc * Ho + r) * Wo + c];
        for (let jy = 0; jy < 4; jy++)
          for (let jx = 0; jx < 4; jx++) {
            const ty = r + jy - P;
            const tx = c + jx - P;
            if (ty < 0 || ty >= Ht || tx < 0 || tx >= Wt) continue;
            gt.data[(nc * Ht + ty) * Wt + tx] += gv * BLUR_KERNEL_4x4[(3 - jy) * 4 + (3 - jx)];
          }
      }
  return gt;
}

export function modulatedConvForward(x: HostArray, w: HostArray, s: HostArray, o: ModulatedConvOptions = {}): HostArray {
  const d = dimsOf(x, w, o);
  const { w2 } = sampleWeights(w, s, d, o.demodulate ?? true);
  if (o.upsample) return blur(transposedConv(x, w2, d), blurPad(d.k));
  const { N, Ci, Co, H, W, k, pad } = d;
  const Ho = H + 2 * pad - k + 1;
  const Wo = W + 2 * pad - k + 1;
  const y = host([N, Co, Ho, Wo]);
  for (let n = 0; n < N; n++)
    for (let oc = 0; oc < Co; oc++)
      for (let r = 0; r < Ho; r++)
        for (let c = 0; c < Wo; c++) {
          let acc = 0;
          for (let i = 0; i < Ci; i++)
            for (let ky = 0; ky < k; ky++)
              for (let kx = 0; kx < k; kx++) {
                const iy = r - pad + ky;
                const ix = c - pad + kx;
                if (iy < 0 || iy >= H || ix < 0 || ix >= W) continue;
                acc += x.data[((n * Ci + i) * H + iy) * W + ix] * w2[(((n * Co + oc) * Ci + i) * k + ky) * k + kx];
              }
          y.data[((n * Co + oc) * Ho + r) * Wo + c] = acc;
        }
  return y;
}

/** Gradients [gx, gW, gs] of <gy, forward(x, W, s)>. */
export function modulatedConvVjp(x: HostArray, w: HostArray, s: HostArray, gy: HostArray, o: ModulatedConvOptions = {}): Float64Array[] {
  const demodulate = o.demodulate ?? true;
  const d = dimsOf(x, w, o);
  const { N, Ci, Co, H, W, k } = d;
  const kk = k * k;
  const { scale, w1, dem, w2 } = sampleWeights(w, s, d, demodulate);
  const gx = new Float64Array(x.data.length);
  const gw2 = new Float64Array(w2.length); // [N, Co, Ci, k, k]
  // Step 3 backwards: the conv as sum over (output q, input p, tap) of g[q] x[p] w2[tap].
  const g = o.upsample ? blurAdjoint(gy, blurPad(k)) : gy;
  const [, , Hg, Wg] = g.shape;
  // Output index fed by input p through tap t: correlation q = p + pad - t; transposed conv q = 2p + t.
  const feeds = (p: number, t: number) => (o.upsample ? 2 * p + t : p + d.pad - t);
  for (let n = 0; n < N; n++)
    for (let oc = 0; oc < Co; oc++)
      for (let i = 0; i < Ci; i++)
        for (let py = 0; py < H; py++)
          for (let px = 0; px < W; px++)
            for (let ky = 0; ky < k; ky++)
              for (let kx = 0; kx < k; kx++) {
                const qy = feeds(py, ky);
                const qx = feeds(px, kx);
                if (qy < 0 || qy >= Hg || qx < 0 || qx >= Wg) continue;
                const gv = g.data[((n * Co + oc) * Hg + qy) * Wg + qx];
                const wi = (((n * Co + oc) * Ci + i) * k + ky) * k + kx;
                const xi = ((n * Ci + i) * H + py) * W + px;
                gx[xi] += gv * w2[wi];
                gw2[wi] += gv * x.data[xi];
              }
  // Step 2 backwards: w2 = w1 * d(w1), d = (sum w1^2 + eps)^(-1/2), dd/dw1 = -d^3 w1.
  const gw1 = new Float64Array(w1.length);
  const block = Ci * kk;
  for (let no = 0; no < N * Co; no++) {
    let dot = 0;
    for (let j = 0; j < block; j++) dot += gw2[no * block + j] * w1[no * block + j];
    const dn = dem[no];
    for (let j = 0; j < block; j++) {
      const at = no * block + j;
      gw1[at] = demodulate ? dn * gw2[at] - dn * dn * dn * w1[at] * dot : gw2[at];
    }
  }
  // Step 1 backwards: w1 = scale * W[o,i,t] * s[n,i].
  const gW = new Float64Array(w.data.length);
  const gs = new Float64Array(s.data.length);
  for (let n = 0; n < N; n++)
    for (let oc = 0; oc < Co; oc++)
      for (let i = 0; i < Ci; i++)
        for (let t = 0; t < kk; t++) {
          const g1 = gw1[((n * Co + oc) * Ci + i) * kk + t];
          gW[(oc * Ci + i) * kk + t] += scale * s.data[n * Ci + i] * g1;
          gs[n * Ci + i] += scale * w.data[(oc * Ci + i) * kk + t] * g1;
        }
  return [gx, gW, gs];
}
