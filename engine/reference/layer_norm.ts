// float64 reference of layer normalization over the last axis (biased variance, eps inside the
// square root, per-feature weight and bias), and its VJP for x, weight and bias.
//
// Dimensions: x [..., D] viewed as [rows, D]; weight, bias [D].
// With a modulation mod [Bm, 2D] (FiLM; rows = Bm * T, row r belongs to item b = floor(r / T)):
//   y = (xhat w + bias) (1 + a_b) + s_b,   a_b = mod[b, :D], s_b = mod[b, D:];
// its VJP is the plain one on u = gy (1 + a_b), and ga_b = sum_T gy (xhat w + bias), gs_b = sum_T gy.

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

/** Scale (1 + a) and shift s of row `base / d`'s feature j; (1, 0) without a modulation. */
function modulation(mod: HostArray | undefined, rows: number, d: number): (base: number, j: number) => [number, number] {
  if (!mod) return () => [1, 0];
  const tokens = rows / mod.shape[0];
  return (base, j) => {
    const m = Math.floor(base / d / tokens) * 2 * d;
    return [1 + mod.data[m + j], mod.data[m + d + j]];
  };
}

export function layerNormForward(x: HostArray, weight: HostArray, bias: HostArray, eps: number, mod?: HostArray): HostArray {
  const d = x.shape[x.shape.length - 1];
  const y = host(x.shape);
  const at = modulation(mod, x.data.length / d, d);
  for (let base = 0; base < x.data.length; base += d) {
    const { mean, rstd } = rowStats(x.data, base, d, eps);
    for (let j = 0; j < d; j++) {
      const [scale, shift] = at(base, j);
      y.data[base + j] = ((x.data[base + j] - mean) * rstd * weight.data[j] + bias.data[j]) * scale + shift;
    }
  }
  return y;
}

/** [gx, gweight, gbias] (and gmod with a modulation). With xhat = (x - mean) rstd, u = gy (1 + a)
 *  (u = gy unmodulated) and g = u w: gx = rstd (g - mean(g) - xhat mean(g xhat)) per row;
 *  gw = sum_rows u xhat; gb = sum_rows u. */
export function layerNormVjp(x: HostArray, weight: HostArray, bias: HostArray, eps: number, gy: HostArray, mod?: HostArray): Float64Array[] {
  const d = x.shape[x.shape.length - 1];
  const rows = x.data.length / d;
  const gx = new Float64Array(x.data.length);
  const gw = new Float64Array(d);
  const gb = new Float64Array(d);
  const gmod = mod ? new Float64Array(mod.data.length) : null;
  const tokens = mod ? rows / mod.shape[0] : 1;
  const at = modulation(mod, rows, d);
  for (let base = 0; base < x.data.length; base += d) {
    const { mean, rstd } = rowStats(x.data, base, d, eps);
    const u = Float64Array.from({ length: d }, (_, j) => gy.data[base + j] * at(base, j)[0]);
    let sg = 0;
    let sgx = 0;
    for (let j = 0; j < d; j++) {
      const xhat = (x.data[base + j] - mean) * rstd;
      const g = u[j] * weight.data[j];
      sg += g;
      sgx += g * xhat;
      gw[j] += u[j] * xhat;
      gb[j] += u[j];
      if (gmod) {
        const m = Math.floor(base / d / tokens) * 2 * d;
        gmod[m + j] += gy.data[base + j] * (xhat * weight.data[j] + bias.data[j]);
        gmod[m + d + j] += gy.data[base + j];
      }
    }
    for (let j = 0; j < d; j++) {
      const xhat = (x.data[base + j] - mean) * rstd;
      gx[base + j] = rstd * (u[j] * weight.data[j] - sg / d - (xhat * sgx) / d);
    }
  }
  return gmod ? [gx, gw, gb, gmod] : [gx, gw, gb];
}
