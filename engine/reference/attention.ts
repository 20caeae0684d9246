// float64 reference of scaled dot-product attention (engine/ops/attention.ts), forward and VJP.
//
// Dimensions: q [B, H, Tq, d], k [B, H, Tk, d], v [B, H, Tk, d] -> out [B, H, Tq, d];
// BH = B * H independent heads, each computed on its own.
//
//   S = scale * q k^T            [Tq, Tk]
//   P = softmax(S) along keys    [Tq, Tk]
//   out = P v                    [Tq, d]
//
// VJP with G = d(loss)/d(out):
//   dv = P^T G,  dP = G v^T,  dS = P * (dP - rowsum(dP * P)),  dq = scale dS k,  dk = scale dS^T q.
// (rowsum(dP * P) = rowsum(G * out), the D_i the flash backward uses.)
// The reference materializes P: it is the plain definition the GPU kernels are checked against.
//
// qkvAttention (the fused projection qkv [B, T, 3 H d] -> [B, T, H d]) is defined by its layout:
// qkv viewed as [B, T, 3, H, d], permuted to [3, B, H, T, d], q, k, v its three parts, the output
// [B, H, T, d] permuted to [B, T, H, d]; the VJP routes the gradients back the same way.

import { host, type HostArray } from './host.ts';
import { permuteForward, permuteVjp } from './layout.ts';

function dims(q: HostArray, k: HostArray) {
  const [B, H, Tq, d] = q.shape;
  const Tk = k.shape[2];
  return { BH: B * H, Tq, Tk, d };
}

/** P for one head: [Tq, Tk] probabilities. */
function probabilities(q: Float64Array, k: Float64Array, qOff: number, kOff: number, Tq: number, Tk: number, d: number, scale: number): Float64Array {
  const p = new Float64Array(Tq * Tk);
  for (let i = 0; i < Tq; i++) {
    let m = -Infinity;
    for (let j = 0; j < Tk; j++) {
      let s = 0;
      for (let c = 0; c < d; c++) s += q[qOff + i * d + c] * k[kOff + j * d + c];
      p[i * Tk + j] = scale * s;
      m = Math.max(m, scale * s);
    }
    let sum = 0;
    for (let j = 0; j < Tk; j++) sum += p[i * Tk + j] = Math.exp(p[i * Tk + j] - m);
    for (let j = 0; j < Tk; j++) p[i * Tk + j] /= sum;
  }
  return p;
}

export function defaultScale(d: number): number {
  return 1 / Math.sqrt(d);
}

export function attentionForward(q: HostArray, k: HostArray, v: HostArray, scale = defaultScale(q.shape[3])): HostArray {
  const { BH, Tq, Tk, d } = dims(q, k);
  const out = host(q.shape);
  for (let h = 0; h < BH; h++) {
    const qOff = h * Tq * d;
    const kOff = h * Tk * d;
    const p = probabilities(q.data, k.data, qOff, kOff, Tq, Tk, d, scale);
    for (let i = 0; i < Tq; i++)
      for (let c = 0; c < d; c++) {
        let s = 0;
        for (let j = 0; j < Tk; j++) s += p[i * Tk + j] * v.data[kOff + j * d + c];
        out.data[qOff + i * d + c] = s;
      }
  }
  return out;
}

export function attentionVjp(q: HostArray, k: HostArray, v: HostArray, gy: HostArray, scale = defaultScale(q.shape[3])): [Float64Array, Float64Array, Float64Array] {
  const { BH, Tq, Tk, d } = dims(q, k);
  const gq = new Float64Array(q.data.length);
  const gk = new Float64Array(k.data.length);
  const gv = new Float64Array(v.data.length);
  for (let h = 0; h < BH; h++) {
    const qOff = h * Tq * d;
    const kOff = h * Tk * d;
    const p = probabilities(q.data, k.data, qOff, kOff, Tq, Tk, d, scale);
    for (let i = 0; i < Tq; i++) {
      // dP_ij = G_i . v_j, then dS_ij = P_ij (dP_ij - sum_l P_il dP_il).
      const dp = new Float64Array(Tk);
      let rowDot = 0;
      for (let j = 0; j < Tk; j++) {
        let s = 0;
        for (let c = 0; c < d; c++) s += gy.data[qOff + i * d + c] * v.data[kOff + j * d + c];
        dp[j] = s;
        rowDot += s * p[i * Tk + j];
      }
      for (let j = 0; j < Tk; j++) {
        const pij = p[i * Tk + j];
        const ds = scale * pij * (dp[j] - rowDot);
        for (let c = 0; c < d; c++) {
          gv[kOff + j * d + c] += pij * gy.data[qOff + i * d + c];
          gq[qOff + i * d + c] += ds * k.data[kOff + j * d + c];
          gk[kOff + j * d + c] += ds * q.data[qOff + i * d + c];
        }
      }
    }
  }
  return [gq, gk, gv];
}

/** qkv [B, T, 3 H d] viewed as [B, T, 3, H, d] and the three [B, H, T, d] parts of its permutation. */
function splitQkv(qkv: HostArray, H: number): { x5: HostArray; parts: HostArray[]; B: number; T: number; d: number } {
  const [B, T, width] = qkv.shape;
  const d = width / (3 * H);
  const x5 = host([B, T, 3, H, d], qkv.data);
  const heads = permuteForward(x5, [2, 0, 3, 1, 4]); // [3, B, H, T, d]
  const n = B * H * T * d;
  const parts = [0, 1, 2].map((j) => host([B, H, T, d], heads.data.subarray(j * n, (j + 1) * n)));
  return { x5, parts, B, T, d };
}

export function qkvAttentionForward(qkv: HostArray, H: number, scale?: number): HostArray {
  const { parts, B, T, d } = splitQkv(qkv, H);
  const o = attentionForward(parts[0], parts[1], parts[2], scale ?? defaultScale(d)); // [B, H, T, d]
  return host([B, T, H * d], permuteForward(o, [0, 2, 1, 3]).data);
}

export function qkvAttentionVjp(qkv: HostArray, H: number, gy: HostArray, scale?: number): Float64Array {
  const { x5, parts, B, T, d } = splitQkv(qkv, H);
  const g = permuteForward(host([B, T, H, d], gy.data), [0, 2, 1, 3]); // [B, H, T, d]
  const grads = attentionVjp(parts[0], parts[1], parts[2], g, scale ?? defaultScale(d));
  const n = B * H * T * d;
  const gHeads = host([3, B, H, T, d]);
  grads.forEach((gj, j) => gHeads.data.set(gj, j * n));
  return permuteVjp(x5, [2, 0, 3, 1, 4], gHeads);
}
