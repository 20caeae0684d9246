// float64 reference of layer normalization over the last axis (biased variance, eps inside the
// square root, per-feature weight and bias), and its VJP for x, weight and bias.
//
// Dimensions: x [..., D] viewed as [rows, D]; weight, bias [D].

import { host, type HostArray } from './host.ts';

interface RowStats {
  mean: number;
  rstd: number;
}

function rowStats(x: Float64Array, base: number, d: number, eps: number): RowStats {
  let s = 0;
  for (let j = 0; j < d; j++) s += x[base + j];
  const mean = s / d;
  let q = 0;
  for (let j = 0; j < d; j++) q += (x[base + j] - mean) ** 2;
  return { mean, rstd: 1 / Math.sqrt(q / d + eps) };
}

export function layerNormForward(x: HostArray, weight: HostArray, bias: HostArray, eps: number): HostArray {
  const d = x.shape[x.shape.length - 1];
  const y = host(x.shape);
  for (let base = 0; base < x.data.length; base += d) {
    const { mean, rstd } = rowStats(x.data, base, d, eps);
    for (let j = 0; j < d; j++) y.data[base + j] = (x.data[base + j] - mean) * rstd * weight.data[j] + bias.data[j];
  }
  return y;
}

/** [gx, gweight, gbias]. With xhat = (x - mean) rstd and g = gy w:
 *  gx = rstd (g - mean(g) - xhat mean(g xhat)) per row; gw = sum_rows gy xhat; gb = sum_rows gy. */
export function layerNormVjp(x: HostArray, weight: HostArray, _bias: HostArray, eps: number, gy: HostArray): Float64Array[] {
  const d = x.shape[x.shape.length - 1];
  const gx = new Float64Array(x.data.length);
  const gw = new Float64Array(d);
  const gb = new Float64Array(d);
  for (let base = 0; base < x.data.length; base += d) {
    const { mean, rstd } = rowStats(x.data, base, d, eps);
    let sg = 0;
    let sgx = 0;
    for (let j = 0; j < d; j++) {
      const xhat = (x.data[base + j] - mean) * rstd;
      const g = gy.data[base + j] * weight.data[j];
      sg += g;
      sgx += g * xhat;
      gw[j] += gy.data[base + j] * xhat;
      gb[j] += gy.data[base + j];
    }
    for (let j = 0; j < d; j++) {
      const xhat = (x.data[base + j] - mean) * rstd;
      gx[base + j] = rstd * (gy.data[base + j] * weight.data[j] - sg / d - (xhat * sgx) / d);
    }
  }
  return [gx, gw, gb];
}
