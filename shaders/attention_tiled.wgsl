// Scaled dot-product attention for hardware GPUs (engine/ops/attention_tiled.ts picks it;
// docs/design.md, "Kernel selection"). Same inputs, outputs and maths as the flash kernels of
// shaders/attention.wgsl (whose header derives the backward), tiled for a GPU instead of a CPU
// adapter. Forward:
//   a workgroup owns BQ query rows of one head (wid.y), one row per invocation, kept in registers
//   (scale * q_i and the accumulator, d4 <= D4 vec4s each); the keys and values are streamed
//   through workgroup memory BKV rows at a time, loaded cooperatively (consecutive invocations
//   read consecutive vec4s of a row), and every invocation reads each staged row at the same
//   address (a broadcast, no bank conflicts). Per block, 4 keys at a time: scores, the new running
//   max m, and the rescale of l and acc by exp(m_old - m_new), so a block costs one exp per key.
// Keys past Tk score NEG_BIG (weight exactly 0); invocations past Tq compute on a clamped row and
// store nothing (they must stay for the barriers). BQ and BKV (a multiple of 4) are
// pipeline-overridable constants. Grid: (ceil(Tq / BQ), B * heads).
// Backward, the same tiling: attention_tiled_dq owns BQ query rows (q, G, delta = G . out and dq
// in registers) and streams keys and values; attention_tiled_dkv owns BQ key rows (k, v, dk, dv)
// and streams the query rows, G, lse and delta. Grids (ceil(Tq / BQ), BH) and (ceil(Tk / BQ), BH).

struct Params {
  tq: u32,
  tk: u32,
  d4: u32,                     // vec4 chunks per row, <= D4 (d is padded to a multiple of 4)
  scale: f32,
}

@group(0) @binding(0) var<storage, read> q: array<vec4f>;          // [BH, Tq, d4]
@group(0) @binding(1) var<storage, read> k: array<vec4f>;          // [BH, Tk, d4]
@group(0) @binding(2) var<storage, read> v: array<vec4f>;          // [BH, Tk, d4]
@group(0) @binding(3) var<storage, read_write> out: array<vec4f>;  // [BH, Tq, d4]
@group(0) @binding(4) var<storage, read_write> lse: array<f32>;    // [BH, Tq]
@group(0) @binding(5) var<uniform> params: Params;
@group(0) @binding(6) var<storage, read> out_saved: array<vec4f>;  // [BH, Tq, d4] forward output
@group(0) @binding(7) var<storage, read> lse_saved: array<f32>;    // [BH, Tq]
@group(0) @binding(8) var<storage, read> gy: array<vec4f>;         // [BH, Tq, d4] upstream gradient
@group(0) @binding(9) var<storage, read_write> gq: array<vec4f>;   // [BH, Tq, d4]
@group(0) @binding(10) var<storage, read_write> delta: array<f32>; // [BH, Tq] rowsum(gy * out)
@group(0) @binding(11) var<storage, read> delta_saved: array<f32>; // [BH, Tq]
@group(0) @binding(12) var<storage, read_write> gk: array<vec4f>;  // [BH, Tk, d4]
@group(0) @binding(13) var<storage, read_write> gv: array<vec4f>;  // [BH, Tk, d4]

override BQ: u32 = 64u;   // query rows per workgroup (= invocations)
override BKV: u32 = 32u;  // key/value rows per workgroup-memory block, a multiple of 4
const D4: u32 = {{D4}}u;  // capacity of a row in vec4s
const NEG_BIG: f32 = -3.0e38;
const LANE = vec4u(0u, 1u, 2u, 3u);

// The staged rows: keys and values (forward, dq), or query rows and their G (dkv) with their
// lse and delta.
var<workgroup> Ks: array<vec4f, BKV * D4>;
var<workgroup> Vs: array<vec4f, BKV * D4>;
var<workgroup> Ls: array<f32, BKV>;
var<workgroup> Ds: array<f32, BKV>;

@compute @workgroup_size(BQ)
fn attention_tiled_forward(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_index) lid: u32) {
  let bh = wid.y;
  let i = wid.x * BQ + lid;
  let d4 = params.d4;
  let q_row = (bh * params.tq + min(i, params.tq - 1u)) * d4;
  let kv_head = bh * params.tk * d4;
  var qs: array<vec4f, D4>;
  var acc: array<vec4f, D4>;
  for (var c = 0u; c < d4; c++) {
    qs[c] = q[q_row + c] * params.scale;
    acc[c] = vec4f(0.0);
  }
  var m = NEG_BIG;
  var l = 0.0;
  for (var j0 = 0u; j0 < params.tk; j0 += BKV) {
    for (var idx = lid; idx < BKV * d4; idx += BQ) {
      let r = idx / d4;
      let c = idx - r * d4;
      let src = kv_head + min(j0 + r, params.tk - 1u) * d4 + c;
      Ks[r * D4 + c] = k[src];
      Vs[r * D4 + c] = v[src];
    }
    workgroupBarrier();
    for (var r = 0u; r < BKV; r += 4u) {
      var s = vec4f(0.0);
      for (var c = 0u; c < d4; c++) {
        let qc = qs[c];
        s += vec4f(dot(qc, Ks[r * D4 + c]), dot(qc, Ks[(r + 1u) * D4 + c]), dot(qc, Ks[(r + 2u) * D4 + c]), dot(qc, Ks[(r + 3u) * D4 + c]));
      }
      s = select(vec4f(NEG_BIG), s, vec4u(j0 + r) + LANE < vec4u(params.tk));
      let m_new = max(m, max(max(s.x, s.y), max(s.z, s.w)));
      let alpha = exp(m - m_new);  // 0 on the first keys, where m is NEG_BIG
      let p = exp(s - m_new);
      l = l * alpha + (p.x + p.y) + (p.z + p.w);
      m = m_new;
      for (var c = 0u; c < d4; c++) {
        acc[c] = acc[c] * alpha + p.x * Vs[r * D4 + c] + p.y * Vs[(r + 1u) * D4 + c] + p.z * Vs[(r + 2u) * D4 + c] + p.w * Vs[(r + 3u) * D4 + c];
      }
    }
    workgroupBarrier();
  }
  if (i < params.tq) {
    let inv = 1.0 / l;  // l >= 1: the maximal key contributes exp(0)
    for (var c = 0u; c < d4; c++) { out[q_row + c] = acc[c] * inv; }
    lse[bh * params.tq + i] = m + log(l);
  }
}

@compute @workgroup_size(BQ)
fn attention_tiled_dq(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_index) lid: u32) {
  let bh = wid.y;
  let i = wid.x * BQ + lid;
  let d4 = params.d4;
  let row = bh * params.tq + min(i, params.tq - 1u);
  let q_row = row * d4;
  let kv_head = bh * params.tk * d4;
  let lse_i = lse_saved[row];
  var qs: array<vec4f, D4>;  // scale * q_i
  var g: array<vec4f, D4>;   // G_i
  var dq: array<vec4f, D4>;  // sum_j ds_ij k_j
  var dlt = 0.0;             // delta_i = G_i . out_i
  for (var c = 0u; c < d4; c++) {
    qs[c] = q[q_row + c] * params.scale;
    g[c] = gy[q_row + c];
    dlt += dot(g[c], out_saved[q_row + c]);
    dq[c] = vec4f(0.0);
  }
  for (var j0 = 0u; j0 < params.tk; j0 += BKV) {
    for (var idx = lid; idx < BKV * d4; idx += BQ) {
      let r = idx / d4;
      let c = idx - r * d4;
      let src = kv_head + min(j0 + r, params.tk - 1u) * d4 + c;
      Ks[r * D4 + c] = k[src];
      Vs[r * D4 + c] = v[src];
    }
    workgroupBarrier();
    for (var r = 0u; r < BKV; r += 4u) {
      var s = vec4f(0.0);
      var dp = vec4f(0.0);  // G_i . v_j
      for (var c = 0u; c < d4; c++) {
        let qc = qs[c];
        let gc = g[c];
        s += vec4f(dot(qc, Ks[r * D4 + c]), dot(qc, Ks[(r + 1u) * D4 + c]), dot(qc, Ks[(r + 2u) * D4 + c]), dot(qc, Ks[(r + 3u) * D4 + c]));
        dp += vec4f(dot(gc, Vs[r * D4 + c]), dot(gc, Vs[(r + 1u) * D4 + c]), dot(gc, Vs[(r + 2u) * D4 + c]), dot(gc, Vs[(r + 3u) * D4 + c]));
      }
      let p = select(vec4f(0.0), exp(s - lse_i), vec4u(j0 + r) + LANE < vec4u(params.tk));
      let ds = p * (dp - dlt);
      for (var c = 0u; c < d4; c++) {
        dq[c] += ds.x * Ks[r * D4 + c] + ds.y * Ks[(r + 1u) * D4 + c] + ds.z * Ks[(r + 2u) * D4 + c] + ds.w * Ks[(r + 3u) * D4 + c];
      }
    }
    workgroupBarrier();
  }
  if (i < params.tq) {
    delta[row] = dlt;
    for (var c = 0u; c < d4; c++) { gq[q_row + c] = dq[c] * params.scale; }
  }
}

@compute @workgroup_size(BQ)
fn attention_tiled_dkv(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_index) lid: u32) {
  let bh = wid.y;
  let j = wid.x * BQ + lid;
  let d4 = params.d4;
  let kv_row = (bh * params.tk + min(j, params.tk - 1u)) * d4;
  let q_head = bh * params.tq;
  var ks: array<vec4f, D4>;  // scale * k_j
  var vr: array<vec4f, D4>;  // v_j
  var dk: array<vec4f, D4>;  // sum_i ds_ij q_i
  var dv: array<vec4f, D4>;  // sum_i p_ij G_i
  for (var c = 0u; c < d4; c++) {
    ks[c] = k[kv_row + c] * params.scale;
    vr[c] = v[kv_row + c];
    dk[c] = vec4f(0.0);
    dv[c] = vec4f(0.0);
  }
  for (var i0 = 0u; i0 < params.tq; i0 += BKV) {
    for (var idx = lid; idx < BKV * d4; idx += BQ) {
      let r = idx / d4;
      let c = idx - r * d4;
      let src = (q_head + min(i0 + r, params.tq - 1u)) * d4 + c;
      Ks[r * D4 + c] = q[src];
      Vs[r * D4 + c] = gy[src];
    }
    for (var r = lid; r < BKV; r += BQ) {
      let si = q_head + min(i0 + r, params.tq - 1u);
      Ls[r] = lse_saved[si];
      Ds[r] = delta_saved[si];
    }
    workgroupBarrier();
    for (var r = 0u; r < BKV; r += 4u) {
      var s = vec4f(0.0);   // scores of key j with query rows r..r+3
      var dp = vec4f(0.0);  // G_i . v_j
      for (var c = 0u; c < d4; c++) {
        let kc = ks[c];
        let vc = vr[c];
        s += vec4f(dot(kc, Ks[r * D4 + c]), dot(kc, Ks[(r + 1u) * D4 + c]), dot(kc, Ks[(r + 2u) * D4 + c]), dot(kc, Ks[(r + 3u) * D4 + c]));
        dp += vec4f(dot(vc, Vs[r * D4 + c]), dot(vc, Vs[(r + 1u) * D4 + c]), dot(vc, Vs[(r + 2u) * D4 + c]), dot(vc, Vs[(r + 3u) * D4 + c]));
      }
      let lse4 = vec4f(Ls[r], Ls[r + 1u], Ls[r + 2u], Ls[r + 3u]);
      let dlt4 = vec4f(Ds[r], Ds[r + 1u], Ds[r + 2u], Ds[r + 3u]);
      let p = select(vec4f(0.0), exp(s - lse4), vec4u(i0 + r) + LANE < vec4u(params.tq));
      let ds = p * (dp - dlt4);
      for (var c = 0u; c < d4; c++) {
        dv[c] += p.x * Vs[r * D4 + c] + p.y * Vs[(r + 1u) * D4 + c] + p.z * Vs[(r + 2u) * D4 + c] + p.w * Vs[(r + 3u) * D4 + c];
        dk[c] += ds.x * Ks[r * D4 + c] + ds.y * Ks[(r + 1u) * D4 + c] + ds.z * Ks[(r + 2u) * D4 + c] + ds.w * Ks[(r + 3u) * D4 + c];
      }
    }
    workgroupBarrier();
  }
  if (j < params.tk) {
    for (var c = 0u; c < d4; c++) {
      gk[kv_row + c] = dk[c] * params.scale;
      gv[kv_row + c] = dv[c];
    }
  }
}
