// Scaled dot-product attention forward for hardware GPUs (engine/ops/attention_tiled.ts picks it;
// docs/design.md, "Kernel selection"). Same inputs, outputs and maths as attention_forward in
// shaders/attention.wgsl (online softmax; out and the row log-sum-exp lse, which its backward
// kernels read), tiled for a GPU instead of a CPU adapter:
//   a workgroup owns BQ query rows of one head (wid.y), one row per invocation, kept in registers
//   (scale * q_i and the accumulator, d4 <= D4 vec4s each); the keys and values are streamed
//   through workgroup memory BKV rows at a time, loaded cooperatively (consecutive invocations
//   read consecutive vec4s of a row), and every invocation reads each staged row at the same
//   address (a broadcast, no bank conflicts). Per block, 4 keys at a time: scores, the new running
//   max m, and the rescale of l and acc by exp(m_old - m_new), so a block costs one exp per key.
// Keys past Tk score NEG_BIG (weight exactly 0); invocations past Tq compute on a clamped row and
// store nothing (they must stay for the barriers). BQ and BKV (a multiple of 4) are
// pipeline-overridable constants. Grid: (ceil(Tq / BQ), B * heads).

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

override BQ: u32 = 64u;   // query rows per workgroup (= invocations)
override BKV: u32 = 32u;  // key/value rows per workgroup-memory block, a multiple of 4
const D4: u32 = {{D4}}u;  // capacity of a row in vec4s
const NEG_BIG: f32 = -3.0e38;
const LANE = vec4u(0u, 1u, 2u, 3u);

var<workgroup> Ks: array<vec4f, BKV * D4>;
var<workgroup> Vs: array<vec4f, BKV * D4>;

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
