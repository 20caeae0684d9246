// Float64 reference of the partial circulant measurement (engine/ops/partial_circulant.ts), and the
// definition it implements, spelled out through a discrete Fourier transform.
//
// Legend: B = rows, n = signal length, m = kept measurements.
//   x [B, n]   f [n]   s [n] (+-1)   idx [m]   ->   y [B, m]
//
//   forward:  y[b, j] = sum_k f[(idx[j] - k) mod n] s[k] x[b, k]
//   vjp:      gx[b, k] = s[k] sum_j f[(idx[j] - k) mod n] gy[b, j]
//   spec:     y[b, :] = real(IFFT(FFT(x[b] * s) * FFT(f)))[idx]   (circularConvolutionDft)

import { host, type HostArray } from './host.ts';

export interface CirculantParams {
  filt: ArrayLike<number>; // [n]
  signs: ArrayLike<number>; // [n]
  idx: ArrayLike<number>; // [m]
}

const wrap = (t: number, n: number) => ((t % n) + n) % n;

export function partialCirculantForward(x: HostArray, p: CirculantParams): HostArray {
  const [rows, n] = x.shape;
  const m = p.idx.length;
  const y = host([rows, m]);
  for (let b = 0; b < rows; b++) {
    for (let j = 0; j < m; j++) {
      let acc = 0;
      for (let k = 0; k < n; k++) acc += p.filt[wrap(p.idx[j] - k, n)] * p.signs[k] * x.data[b * n + k];
      y.data[b * m + j] = acc;
    }
  }
  return y;
}

export function partialCirculantVjp(x: HostArray, p: CirculantParams, gy: HostArray): Float64Array {
  const [rows, n] = x.shape;
  const m = p.idx.length;
  const gx = new Float64Array(rows * n);
  for (let b = 0; b < rows; b++) {
    for (let k = 0; k < n; k++) {
      let acc = 0;
      for (let j = 0; j < m; j++) acc += p.filt[wrap(p.idx[j] - k, n)] * gy.data[b * m + j];
      gx[b * n + k] = p.signs[k] * acc;
    }
  }
  return gx;
}

/**
 * real(IFFT(FFT(u) * FFT(f))) by an O(n^2) DFT in float64, for any n (the spec's definition, used
 * to check that the direct sum above is the same thing).
 */
export function circularConvolutionDft(u: ArrayLike<number>, f: ArrayLike<number>): Float64Array {
  const n = u.length;
  if (f.length !== n) throw new RangeError(`circularConvolutionDft: lengths ${n} and ${f.length} differ`);
  // Twiddles by (j * k) mod n, so large products never lose precision inside cos/sin.
  const cos = Float64Array.from({ length: n }, (_, t) => Math.cos((2 * Math.PI * t) / n));
  const sin = Float64Array.from({ length: n }, (_, t) => Math.sin((2 * Math.PI * t) / n));
  const dft = (re: ArrayLike<number>, im: ArrayLike<number>, sign: number): [Float64Array, Float64Array] => {
    const oRe = new Float64Array(n);
    const oIm = new Float64Array(n);
    for (let q = 0; q < n; q++) {
      let sr = 0;
      let si = 0;
      for (let k = 0; k < n; k++) {
        const t = (q * k) % n;
        const c = cos[t];
        const s = sign * sin[t];
        sr += re[k] * c - im[k] * s;
        si += re[k] * s + im[k] * c;
      }
      oRe[q] = sr;
      oIm[q] = si;
    }
    return [oRe, oIm];
  };
  const zero = new Float64Array(n);
  const [uRe, uIm] = dft(u, zero, -1);
  const [fRe, fIm] = dft(f, zero, -1);
  const pRe = uRe.map((a, q) => a * fRe[q] - uIm[q] * fIm[q]);
  const pIm = uRe.map((a, q) => a * fIm[q] + uIm[q] * fRe[q]);
  const [cRe] = dft(pRe, pIm, +1);
  return cRe.map((v) => v / n);
}
