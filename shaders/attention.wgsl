// Scaled dot-product attention, flash style (engine/ops/attention.ts): the [Tq, Tk] score matrix
// is never stored. Forward and backward entry points side by side.
//
// Dimensions: BH = batch * heads (one workgroup row per head: wid.y), Tq query rows, Tk key rows,
// d features per row (any d <= 4 * D4). q [BH, Tq, d], k [BH, Tk, d], v [BH, Tk, d],
// out [BH, Tq, d], lse / delta [BH, Tq].
//
// Work split: one invocation owns one row (a query row in the forward and dq, a key row in dkv)
// and keeps that row and its accumulators in registers as array<vec4f, D4>; D4 is a template
// slot (ceil(d/4) rounded up to a supported size; lanes past d are zero). It then streams the
// other side's rows four at a time. Every invocation of a workgroup walks the same rows of the
// same head in lockstep, so those loads have uniform addresses: a broadcast on GPUs, and one
// scalar load per SIMD batch on lavapipe. No workgroup memory or barriers (on CPU adapters a
// barrier costs more than the loads it would save; see shaders/matmul.wgsl).
//
// Forward (online softmax, per query row i, scores s_j = scale q_i . k_j):
//   m = running max, l = running sum of exp(s_j - m), acc = running sum of exp(s_j - m) v_j;
//   a new block of keys with max m' rescales l and acc by exp(m - m'). out_i = acc / l and
//   lse_i = m + log(l) is saved so the backward can recompute p_ij = exp(s_ij - lse_i) exactly.
// Backward, with G = d(loss)/d(out) and delta_i = G_i . out_i (= sum_j p_ij (G_i . v_j)):
//   dp_ij = G_i . v_j,  ds_ij = p_ij (dp_ij - delta_i),
//   dq_i = scale sum_j ds_ij k_j           (attention_backward_dq, per query row; writes delta)
//   dk_j = scale sum_i ds_ij q_i, dv_j = sum_i p_ij G_i   (attention_backward_dkv, per key row)
// Two passes because WGSL has no float atomics: each output row is summed by its own invocation.

struct Params {
  tq: u32,
  tk: u32,
  d: u32,
  scale: f32,
}

@group(0) @binding(0) var<storage, read> q: array<f32>;              // [BH, Tq, d]
@group(0) @binding(1) var<storage, read> k: array<f32>;              // [BH, Tk, d]
@group(0) @binding(2) var<storage, read> v: array<f32>;              // [BH, Tk, d]
@group(0) @binding(3) var<storage, read_write> out: array<f32>;      // [BH, Tq, d] forward output
@group(0) @binding(4) var<storage, read_write> lse: array<f32>;      // [BH, Tq] log-sum-exp of scores
@group(0) @binding(5) var<uniform> params: Params;
@group(0) @binding(6) var<storage, read> out_saved: array<f32>;      // [BH, Tq, d] forward output
@group(0) @binding(7) var<storage, read> lse_saved: array<f32>;      // [BH, Tq]
@group(0) @binding(8) var<storage, read> gy: array<f32>;             // [BH, Tq, d] upstream gradient
@group(0) @binding(9) var<storage, read_write> gq: array<f32>;       // [BH, Tq, d]
@group(0) @binding(10) var<storage, read_write> delta: array<f32>;   // [BH, Tq] rowsum(gy * out)
@group(0) @binding(11) var<storage, read> delta_saved: array<f32>;   // [BH, Tq]
@group(0) @binding(12) var<storage, read_write> gk: array<f32>;      // [BH, Tk, d]
@group(0) @binding(13) var<storage, read_write> gv: array<f32>;      // [BH, Tk, d]

const WG: u32 = 32u;
const D4: u32 = {{D4}}u;           // vec4 chunks per row held in registers
const LANE = vec4u(0u, 1u, 2u, 3u);
const NEG_BIG: f32 = -3.0e38;      // score of a masked key: exp(NEG_BIG - m) is exactly 0

// ---- row access: chunk c of the row starting at `base` (elements 4c..4c+3), zero past d ----
// Rows are not vec4-aligned when d % 4 != 0, so loads are scalar; full chunks (all of them when
// d % 4 == 0) take the unguarded branch, whose condition is uniform.

/** Element offsets of chunk c clamped to the row (never read past the last row of a buffer). */
fn tail_index(base: u32, e: u32) -> vec4u {
  return base + min(vec4u(e) + LANE, vec4u(params.d - 1u));
}
fn tail_mask(e: u32) -> vec4f {
  return select(vec4f(0.0), vec4f(1.0), vec4u(e) + LANE < vec4u(params.d));
}
fn ld_q(base: u32, c: u32) -> vec4f {
  let e = 4u * c;
  if (e + 4u <= params.d) { let i = base + e; return vec4f(q[i], q[i + 1u], q[i + 2u], q[i + 3u]); }
  let t = tail_index(base, e);
  return vec4f(q[t.x], q[t.y], q[t.z], q[t.w]) * tail_mask(e);
}
fn ld_k(base: u32, c: u32) -> vec4f {
  let e = 4u * c;
  if (e + 4u <= params.d) { let i = base + e; return vec4f(k[i], k[i + 1u], k[i + 2u], k[i + 3u]); }
  let t = tail_index(base, e);
  return vec4f(k[t.x], k[t.y], k[t.z], k[t.w]) * tail_mask(e);
}
fn ld_v(base: u32, c: u32) -> vec4f {
  let e = 4u * c;
  if (e + 4u <= params.d) { let i = base + e; return vec4f(v[i], v[i + 1u], v[i + 2u], v[i + 3u]); }
  let t = tail_index(base, e);
  return vec4f(v[t.x], v[t.y], v[t.z], v[t.w]) * tail_mask(e);
}
fn ld_gy(base: u32, c: u32) -> vec4f {
  let e = 4u * c;
  if (e + 4u <= params.d) { let i = base + e; return vec4f(gy[i], gy[i + 1u], gy[i + 2u], gy[i + 3u]); }
  let t = tail_index(base, e);
  return vec4f(gy[t.x], gy[t.y], gy[t.z], gy[t.w]) * tail_mask(e);
}
fn ld_out(base: u32, c: u32) -> vec4f {
  let e = 4u * c;
  if (e + 4u <= params.d) { let i = base + e; return vec4f(out_saved[i], out_saved[i + 1u], out_saved[i + 2u], out_saved[i + 3u]); }
  let t = tail_index(base, e);
  return vec4f(out_saved[t.x], out_saved[t.y], out_saved[t.z], out_saved[t.w]) * tail_mask(e);
}

/** Row offsets (into a [BH, n, d] buffer whose head starts at `head`) of rows r..r+3, clamped to n. */
fn rows4(head: u32, r: u32, n: u32) -> vec4u {
  return head + min(vec4u(r) + LANE, vec4u(n - 1u)) * params.d;
}

// ---- forward ----

@compute @workgroup_size(WG)
fn attention_forward(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_index) lid: u32) {
  let bh = wid.y;
  let i = wid.x * WG + lid;
  let row = min(i, params.tq - 1u); // invocations past Tq compute a copy of the last row, store nothing
  let q_row = (bh * params.tq + row) * params.d;
  let kv_head = bh * params.tk * params.d;
  var qs: array<vec4f, D4>;   // scale * q_i (the scale folded in once)
  var acc: array<vec4f, D4>;  // sum_j exp(s_j - m) v_j
  for (var c = 0u; c < D4; c++) { qs[c] = ld_q(q_row, c) * params.scale; acc[c] = vec4f(0.0); }
  var m = NEG_BIG;
  var l = 0.0;
  for (var j = 0u; j < params.tk; j += 4u) {
    let r = rows4(kv_head, j, params.tk);
    var s = vec4f(0.0);
    for (var c = 0u; c < D4; c++) {
      s += vec4f(dot(qs[c], ld_k(r.x, c)), dot(qs[c], ld_k(r.y, c)), dot(qs[c], ld_k(r.z, c)), dot(qs[c], ld_k(r.w, c)));
    }
    s = select(vec4f(NEG_BIG), s, vec4u(j) + LANE < vec4u(params.tk)); // keys past Tk
    let m_new = max(m, max(max(s.x, s.y), max(s.z, s.w)));
    let alpha = exp(m - m_new); // 0 on the first block, where m is NEG_BIG
    let p = exp(s - m_new);
    l = l * alpha + (p.x + p.y) + (p.z + p.w);
    for (var c = 0u; c < D4; c++) {
      acc[c] = acc[c] * alpha + p.x * ld_v(r.x, c) + p.y * ld_v(r.y, c) + p.z * ld_v(r.z, c) + p.w * ld_v(r.w, c);
    }
    m = m_new;
  }
  if (i >= params.tq) { return; }
  let inv = 1.0 / l; // l >= 1: the maximal key contributes exp(0)
  for (var c = 0u; c < D4; c++) {
    let x = acc[c] * inv;
    for (var e = 0u; e < 4u; e++) { if (4u * c + e < params.d) { out[q_row + 4u * c + e] = x[e]; } }
  }
  lse[bh * params.tq + i] = m + log(l);
}

// ---- backward ----

@compute @workgroup_size(WG)
fn attention_backward_dq(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_index) lid: u32) {
  let bh = wid.y;
  let i = wid.x * WG + lid;
  let row = min(i, params.tq - 1u);
  let q_row = (bh * params.tq + row) * params.d;
  let kv_head = bh * params.tk * params.d;
  var qs: array<vec4f, D4>;   // scale * q_i
  var g: array<vec4f, D4>;    // G_i
  var dq: array<vec4f, D4>;   // sum_j ds_ij k_j
  var dlt = 0.0;              // delta_i = G_i . out_i
  for (var c = 0u; c < D4; c++) {
    qs[c] = ld_q(q_row, c) * params.scale;
    g[c] = ld_gy(q_row, c);
    dlt += dot(g[c], ld_out(q_row, c));
    dq[c] = vec4f(0.0);
  }
  let lse_i = lse_saved[bh * params.tq + row];
  for (var j = 0u; j < params.tk; j += 4u) {
    let r = rows4(kv_head, j, params.tk);
    var s = vec4f(0.0);
    var dp = vec4f(0.0);
    for (var c = 0u; c < D4; c++) {
      s += vec4f(dot(qs[c], ld_k(r.x, c)), dot(qs[c], ld_k(r.y, c)), dot(qs[c], ld_k(r.z, c)), dot(qs[c], ld_k(r.w, c)));
      dp += vec4f(dot(g[c], ld_v(r.x, c)), dot(g[c], ld_v(r.y, c)), dot(g[c], ld_v(r.z, c)), dot(g[c], ld_v(r.w, c)));
    }
    let p = select(vec4f(0.0), exp(s - lse_i), vec4u(j) + LANE < vec4u(params.tk));
    let ds = p * (dp - dlt);
    for (var c = 0u; c < D4; c++) {
      dq[c] += ds.x * ld_k(r.x, c) + ds.y * ld_k(r.y, c) + ds.z * ld_k(r.z, c) + ds.w * ld_k(r.w, c);
    }
  }
  if (i >= params.tq) { return; }
  delta[bh * params.tq + i] = dlt;
  for (var c = 0u; c < D4; c++) {
    let x = dq[c] * params.scale;
    for (var e = 0u; e < 4u; e++) { if (4u * c + e < params.d) { gq[q_row + 4u * c + e] = x[e]; } }
  }
}

@compute @workgroup_size(WG)
fn attention_backward_dkv(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_index) lid: u32) {
  let bh = wid.y;
  let j = wid.x * WG + lid;
  let row = min(j, params.tk - 1u);
  let kv_row = (bh * params.tk + row) * params.d;
  let q_head = bh * params.tq * params.d;
  var ks: array<vec4f, D4>;   // scale * k_j
  var vr: array<vec4f, D4>;   // v_j
  var dk: array<vec4f, D4>;   // sum_i ds_ij q_i
  var dv: array<vec4f, D4>;   // sum_i p_ij G_i
  for (var c = 0u; c < D4; c++) {
    ks[c] = ld_k(kv_row, c) * params.scale;
    vr[c] = ld_v(kv_row, c);
    dk[c] = vec4f(0.0);
    dv[c] = vec4f(0.0);
  }
  let stat_head = bh * params.tq;
  for (var i = 0u; i < params.tq; i += 4u) {
    let r = rows4(q_head, i, params.tq);
    let si = stat_head + min(vec4u(i) + LANE, vec4u(params.tq - 1u));
    let lse4 = vec4f(lse_saved[si.x], lse_saved[si.y], lse_saved[si.z], lse_saved[si.w]);
    let dlt4 = vec4f(delta_saved[si.x], delta_saved[si.y], delta_saved[si.z], delta_saved[si.w]);
    var s = vec4f(0.0);
    var dp = vec4f(0.0);
    for (var c = 0u; c < D4; c++) {
      s += vec4f(dot(ks[c], ld_q(r.x, c)), dot(ks[c], ld_q(r.y, c)), dot(ks[c], ld_q(r.z, c)), dot(ks[c], ld_q(r.w, c)));
      dp += vec4f(dot(vr[c], ld_gy(r.x, c)), dot(vr[c], ld_gy(r.y, c)), dot(vr[c], ld_gy(r.z, c)), dot(vr[c], ld_gy(r.w, c)));
    }
    let p = select(vec4f(0.0), exp(s - lse4), vec4u(i) + LANE < vec4u(params.tq)); // queries past Tq
    let ds = p * (dp - dlt4);
    for (var c = 0u; c < D4; c++) {
      dv[c] += p.x * ld_gy(r.x, c) + p.y * ld_gy(r.y, c) + p.z * ld_gy(r.z, c) + p.w * ld_gy(r.w, c);
      dk[c] += ds.x * ld_q(r.x, c) + ds.y * ld_q(r.y, c) + ds.z * ld_q(r.z, c) + ds.w * ld_q(r.w, c);
    }
  }
  if (j >= params.tk) { return; }
  for (var c = 0u; c < D4; c++) {
    let xk = dk[c] * params.scale;
    let xv = dv[c];
    for (var e = 0u; e < 4u; e++) {
      if (4u * c + e < params.d) {
        gk[kv_row + 4u * c + e] = xk[e];
        gv[kv_row + 4u * c + e] = xv[e];
      }
    }
  }
}
