// Scaled dot-product attention, flash style (engine/ops/attention.ts): the [Tq, Tk] score matrix
// is never stored. Forward and backward entry points side by side.
//
// Dimensions: BH = batch * heads (wid.y), Tq query rows, Tk key rows, d features per row; the op
// pads d to a multiple of 4, so rows are d4 = d / 4 vec4s, d4 <= D4 (a template slot: the size of
// the per-row register arrays); lse / delta [BH, Tq].
// Row addressing (in vec4s): row t of head h of batch item b of a tensor starts at
//   at.w + b at.x + h at.y + t at.z,   at = (batch stride, head stride, row stride, base).
// q and gq share q_at, k and gk k_at, v and gv v_at, out, out_saved and gy o_at. Separate tensors
// [B, H, T, d4] have at = (H T d4, T d4, d4, 0); the ViT's fused projection qkv [B, T, 3, H, d4]
// has q, k and v in one buffer at bases 0, H d4 and 2 H d4, strides (T 3 H d4, d4, 3 H d4), and
// its output [B, T, H, d4] strides (T H d4, d4, H d4): no permute or slice copies either way.
// Then gq, gk and gv are one buffer too; WebGPU forbids binding it twice writable in a dispatch,
// so with params.v_in_gk the dkv pass writes gv into the gk binding at v's addresses.
//
// Work split: one invocation owns R consecutive rows (query rows in the forward and dq, key rows
// in dkv) and keeps them and their accumulators in private arrays; it streams the other side's
// rows four at a time. All invocations of a workgroup walk the same rows of the same head, so
// those loads have uniform addresses, and each loaded vec4 feeds R rows. R = 4 and WG = 16: on
// lavapipe a uniform load inside a loop is a per-lane load, and amortizing it over rows is what
// pays; more rows or narrower workgroups gain nothing, and WG = 32 leaves half the workgroup idle
// at T = 64 (bench/results/2026-11-notes-from-code.md, "Attention: rows per invocation"). No
// workgroup memory or barriers. Short heads share a workgroup: with L = min(WG, ceil(T / R))
// invocations per head, a workgroup takes WG / L heads (at T = 16, four heads of 4 invocations
// instead of one head leaving 12 of its 16 invocations idle). The loops over chunks run to params.d4, not the constant D4:
// fully unrolled, they make lavapipe's shader compiler take minutes per pipeline.
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
//
// Every `var` declared inside a loop is initialized explicitly: on Dawn + lavapipe an
// uninitialized array declared in a loop body kept its previous iteration's values.

struct Params {
  tq: u32,
  tk: u32,
  d4: u32,                     // vec4 chunks per row, <= D4 (d is padded to a multiple of 4)
  scale: f32,
  heads: u32,                  // H: bh = b H + h
  bh: u32,                     // B H, the heads in all
  lanes_q: u32,                // invocations per head over query rows (forward, dq): min(WG, ceil(Tq / R))
  lanes_k: u32,                // over key rows (dkv)
  v_in_gk: u32,                // 1: gv is written into the gk binding (one gradient buffer)
  q_at: vec4u,                 // row addressing of q and gq (see the header)
  k_at: vec4u,                 // of k and gk
  v_at: vec4u,                 // of v and gv
  o_at: vec4u,                 // of out, out_saved and gy
}

@group(0) @binding(0) var<storage, read> q: array<vec4f>;              // Tq rows per head, q_at
@group(0) @binding(1) var<storage, read> k: array<vec4f>;              // Tk rows per head, k_at
@group(0) @binding(2) var<storage, read> v: array<vec4f>;              // Tk rows per head, v_at
@group(0) @binding(3) var<storage, read_write> out: array<vec4f>;      // Tq rows per head, o_at
@group(0) @binding(4) var<storage, read_write> lse: array<f32>;        // [BH, Tq] log-sum-exp of scores
@group(0) @binding(5) var<uniform> params: Params;
@group(0) @binding(6) var<storage, read> out_saved: array<vec4f>;      // forward output, o_at
@group(0) @binding(7) var<storage, read> lse_saved: array<f32>;        // [BH, Tq]
@group(0) @binding(8) var<storage, read> gy: array<vec4f>;             // upstream gradient, o_at
@group(0) @binding(9) var<storage, read_write> gq: array<vec4f>;       // q_at
@group(0) @binding(10) var<storage, read_write> delta: array<f32>;     // [BH, Tq] rowsum(gy * out)
@group(0) @binding(11) var<storage, read> delta_saved: array<f32>;     // [BH, Tq]
@group(0) @binding(12) var<storage, read_write> gk: array<vec4f>;      // k_at (and v_at with v_in_gk)
@group(0) @binding(13) var<storage, read_write> gv: array<vec4f>;      // v_at (unused with v_in_gk)

const WG: u32 = 16u;               // invocations per workgroup (WG * R = 64 rows of one head)
const R: u32 = 4u;                 // rows per invocation: each row loaded from k, v (or q, gy) serves R rows
const D4: u32 = {{D4}}u;           // capacity of the per-row arrays in vec4s (rows use d4 <= D4)
const LANE = vec4u(0u, 1u, 2u, 3u);
const NEG_BIG: f32 = -3.0e38;      // score of a masked key: exp(NEG_BIG - m) is exactly 0

/** vec4 offset of row t of head bh of a tensor addressed by `at`. */
fn row_at(at: vec4u, bh: u32, t: u32) -> u32 {
  return at.w + (bh / params.heads) * at.x + (bh % params.heads) * at.y + t * at.z;
}

/** vec4 offsets of rows r..r+3 (clamped to n) of head bh of a tensor addressed by `at`. */
fn rows4(at: vec4u, bh: u32, r: u32, n: u32) -> vec4u {
  return row_at(at, bh, 0u) + min(vec4u(r) + LANE, vec4u(n - 1u)) * at.z;
}

// ---- forward ----

@compute @workgroup_size(WG)
fn attention_forward(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_index) lid: u32) {
  let bh = wid.y * (WG / params.lanes_q) + lid / params.lanes_q;
  if (lid / params.lanes_q >= WG / params.lanes_q || bh >= params.bh) { return; }
  let i0 = (wid.x * params.lanes_q + lid % params.lanes_q) * R;
  if (i0 >= params.tq) { return; } // no barriers: invocations past the last row may leave early
  var q_row: array<u32, R>;
  var o_row: array<u32, R>;
  for (var r = 0u; r < R; r++) {
    let row = min(i0 + r, params.tq - 1u);
    q_row[r] = row_at(params.q_at, bh, row);
    o_row[r] = row_at(params.o_at, bh, row);
  }
  var qs: array<vec4f, R * D4>;   // scale * q_i for the R rows, row-major
  var acc: array<vec4f, R * D4>;  // sum_j exp(s_j - m) v_j
  for (var c = 0u; c < params.d4; c++) {
    for (var r = 0u; r < R; r++) { qs[r * D4 + c] = q[q_row[r] + c] * params.scale; acc[r * D4 + c] = vec4f(0.0); }
  }
  var m: array<f32, R>;    // running max per row
  var l: array<f32, R>;    // running sum per row
  for (var r = 0u; r < R; r++) { m[r] = NEG_BIG; l[r] = 0.0; }
  for (var j = 0u; j < params.tk; j += 4u) {
    let kr = rows4(params.k_at, bh, j, params.tk);
    let vr = rows4(params.v_at, bh, j, params.tk);
    var s: array<vec4f, R>;  // s[r] = scores of row r with keys j..j+3
    for (var r = 0u; r < R; r++) { s[r] = vec4f(0.0); }
    for (var c = 0u; c < params.d4; c++) {
      let k0 = k[kr.x + c]; let k1 = k[kr.y + c]; let k2 = k[kr.z + c]; let k3 = k[kr.w + c];
      for (var r = 0u; r < R; r++) {
        let qc = qs[r * D4 + c];
        s[r] += vec4f(dot(qc, k0), dot(qc, k1), dot(qc, k2), dot(qc, k3));
      }
    }
    let valid = vec4u(j) + LANE < vec4u(params.tk); // keys past Tk
    var alpha: array<f32, R>;
    var p: array<vec4f, R>;
    for (var r = 0u; r < R; r++) {
      let sr = select(vec4f(NEG_BIG), s[r], valid);
      let m_new = max(m[r], max(max(sr.x, sr.y), max(sr.z, sr.w)));
      alpha[r] = exp(m[r] - m_new); // 0 on the first block, where m is NEG_BIG
      p[r] = exp(sr - m_new);
      l[r] = l[r] * alpha[r] + (p[r].x + p[r].y) + (p[r].z + p[r].w);
      m[r] = m_new;
    }
    for (var c = 0u; c < params.d4; c++) {
      let v0 = v[vr.x + c]; let v1 = v[vr.y + c]; let v2 = v[vr.z + c]; let v3 = v[vr.w + c];
      for (var r = 0u; r < R; r++) {
        let pr = p[r];
        acc[r * D4 + c] = acc[r * D4 + c] * alpha[r] + pr.x * v0 + pr.y * v1 + pr.z * v2 + pr.w * v3;
      }
    }
  }
  for (var r = 0u; r < R; r++) {
    let i = i0 + r;
    if (i >= params.tq) { break; }
    let inv = 1.0 / l[r]; // l >= 1: the maximal key contributes exp(0)
    for (var c = 0u; c < params.d4; c++) { out[o_row[r] + c] = acc[r * D4 + c] * inv; }
    lse[bh * params.tq + i] = m[r] + log(l[r]);
  }
}

// ---- backward ----

@compute @workgroup_size(WG)
fn attention_backward_dq(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_index) lid: u32) {
  let bh = wid.y * (WG / params.lanes_q) + lid / params.lanes_q;
  if (lid / params.lanes_q >= WG / params.lanes_q || bh >= params.bh) { return; }
  let i0 = (wid.x * params.lanes_q + lid % params.lanes_q) * R;
  if (i0 >= params.tq) { return; } // no barriers: invocations past the last row may leave early
  var q_row: array<u32, R>;
  var o_row: array<u32, R>;
  var lse_i: array<f32, R>;
  var dlt: array<f32, R>;          // delta_i = G_i . out_i
  var qs: array<vec4f, R * D4>;    // scale * q_i
  var g: array<vec4f, R * D4>;     // G_i
  var dq: array<vec4f, R * D4>;    // sum_j ds_ij k_j
  for (var r = 0u; r < R; r++) {
    let row = min(i0 + r, params.tq - 1u);
    q_row[r] = row_at(params.q_at, bh, row);
    o_row[r] = row_at(params.o_at, bh, row);
    lse_i[r] = lse_saved[bh * params.tq + row];
    dlt[r] = 0.0;
  }
  for (var c = 0u; c < params.d4; c++) {
    for (var r = 0u; r < R; r++) {
      let x = r * D4 + c;
      qs[x] = q[q_row[r] + c] * params.scale;
      g[x] = gy[o_row[r] + c];
      dlt[r] += dot(g[x], out_saved[o_row[r] + c]);
      dq[x] = vec4f(0.0);
    }
  }
  for (var j = 0u; j < params.tk; j += 4u) {
    let kr = rows4(params.k_at, bh, j, params.tk);
    let vr = rows4(params.v_at, bh, j, params.tk);
    var s: array<vec4f, R>;   // scores of row r with keys j..j+3
    var dp: array<vec4f, R>;  // G_i . v_j
    for (var r = 0u; r < R; r++) { s[r] = vec4f(0.0); dp[r] = vec4f(0.0); }
    for (var c = 0u; c < params.d4; c++) {
      let k0 = k[kr.x + c]; let k1 = k[kr.y + c]; let k2 = k[kr.z + c]; let k3 = k[kr.w + c];
      let v0 = v[vr.x + c]; let v1 = v[vr.y + c]; let v2 = v[vr.z + c]; let v3 = v[vr.w + c];
      for (var r = 0u; r < R; r++) {
        let qc = qs[r * D4 + c];
        let gc = g[r * D4 + c];
        s[r] += vec4f(dot(qc, k0), dot(qc, k1), dot(qc, k2), dot(qc, k3));
        dp[r] += vec4f(dot(gc, v0), dot(gc, v1), dot(gc, v2), dot(gc, v3));
      }
    }
    let valid = vec4u(j) + LANE < vec4u(params.tk);
    var ds: array<vec4f, R>;
    for (var r = 0u; r < R; r++) {
      let p = select(vec4f(0.0), exp(s[r] - lse_i[r]), valid);
      ds[r] = p * (dp[r] - dlt[r]);
    }
    for (var c = 0u; c < params.d4; c++) {
      let k0 = k[kr.x + c]; let k1 = k[kr.y + c]; let k2 = k[kr.z + c]; let k3 = k[kr.w + c];
      for (var r = 0u; r < R; r++) {
        let d = ds[r];
        dq[r * D4 + c] += d.x * k0 + d.y * k1 + d.z * k2 + d.w * k3;
      }
    }
  }
  for (var r = 0u; r < R; r++) {
    let i = i0 + r;
    if (i >= params.tq) { break; }
    delta[bh * params.tq + i] = dlt[r];
    for (var c = 0u; c < params.d4; c++) { gq[q_row[r] + c] = dq[r * D4 + c] * params.scale; }
  }
}

@compute @workgroup_size(WG)
fn attention_backward_dkv(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_index) lid: u32) {
  let bh = wid.y * (WG / params.lanes_k) + lid / params.lanes_k;
  if (lid / params.lanes_k >= WG / params.lanes_k || bh >= params.bh) { return; }
  let j0 = (wid.x * params.lanes_k + lid % params.lanes_k) * R;
  if (j0 >= params.tk) { return; }
  let stat_head = bh * params.tq;
  var k_row: array<u32, R>;
  var v_row: array<u32, R>;
  var ks: array<vec4f, R * D4>;   // scale * k_j
  var vr: array<vec4f, R * D4>;   // v_j
  var dk: array<vec4f, R * D4>;   // sum_i ds_ij q_i
  var dv: array<vec4f, R * D4>;   // sum_i p_ij G_i
  for (var r = 0u; r < R; r++) {
    let row = min(j0 + r, params.tk - 1u);
    k_row[r] = row_at(params.k_at, bh, row);
    v_row[r] = row_at(params.v_at, bh, row);
  }
  for (var c = 0u; c < params.d4; c++) {
    for (var r = 0u; r < R; r++) {
      let x = r * D4 + c;
      ks[x] = k[k_row[r] + c] * params.scale;
      vr[x] = v[v_row[r] + c];
      dk[x] = vec4f(0.0);
      dv[x] = vec4f(0.0);
    }
  }
  for (var i = 0u; i < params.tq; i += 4u) {
    let qr = rows4(params.q_at, bh, i, params.tq);
    let gr = rows4(params.o_at, bh, i, params.tq);
    let si = stat_head + min(vec4u(i) + LANE, vec4u(params.tq - 1u));
    let lse4 = vec4f(lse_saved[si.x], lse_saved[si.y], lse_saved[si.z], lse_saved[si.w]);
    let dlt4 = vec4f(delta_saved[si.x], delta_saved[si.y], delta_saved[si.z], delta_saved[si.w]);
    var s: array<vec4f, R>;   // scores of key row r with queries i..i+3
    var dp: array<vec4f, R>;  // G_i . v_j
    for (var r = 0u; r < R; r++) { s[r] = vec4f(0.0); dp[r] = vec4f(0.0); }
    for (var c = 0u; c < params.d4; c++) {
      let q0 = q[qr.x + c]; let q1 = q[qr.y + c]; let q2 = q[qr.z + c]; let q3 = q[qr.w + c];
      let g0 = gy[gr.x + c]; let g1 = gy[gr.y + c]; let g2 = gy[gr.z + c]; let g3 = gy[gr.w + c];
      for (var r = 0u; r < R; r++) {
        let kc = ks[r * D4 + c];
        let vc = vr[r * D4 + c];
        s[r] += vec4f(dot(kc, q0), dot(kc, q1), dot(kc, q2), dot(kc, q3));
        dp[r] += vec4f(dot(vc, g0), dot(vc, g1), dot(vc, g2), dot(vc, g3));
      }
    }
    let valid = vec4u(i) + LANE < vec4u(params.tq); // queries past Tq
    var p: array<vec4f, R>;
    var ds: array<vec4f, R>;
    for (var r = 0u; r < R; r++) {
      p[r] = select(vec4f(0.0), exp(s[r] - lse4), valid);
      ds[r] = p[r] * (dp[r] - dlt4);
    }
    for (var c = 0u; c < params.d4; c++) {
      let q0 = q[qr.x + c]; let q1 = q[qr.y + c]; let q2 = q[qr.z + c]; let q3 = q[qr.w + c];
      let g0 = gy[gr.x + c]; let g1 = gy[gr.y + c]; let g2 = gy[gr.z + c]; let g3 = gy[gr.w + c];
      for (var r = 0u; r < R; r++) {
        let x = r * D4 + c;
        let pr = p[r];
        let d = ds[r];
        dv[x] += pr.x * g0 + pr.y * g1 + pr.z * g2 + pr.w * g3;
        dk[x] += d.x * q0 + d.y * q1 + d.z * q2 + d.w * q3;
      }
    }
  }
  for (var r = 0u; r < R; r++) {
    if (j0 + r >= params.tk) { break; }
    for (var c = 0u; c < params.d4; c++) { gk[k_row[r] + c] = dk[r * D4 + c] * params.scale; }
    if (params.v_in_gk != 0u) {
      for (var c = 0u; c < params.d4; c++) { gk[v_row[r] + c] = dv[r * D4 + c]; }
    } else {
      for (var c = 0u; c < params.d4; c++) { gv[v_row[r] + c] = dv[r * D4 + c]; }
    }
  }
}
