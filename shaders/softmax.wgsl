// Softmax over the last axis (engine/ops/softmax.ts), forward and backward.
//
// Dimensions: the input [..., D] is viewed as [rows, D], rows = product of the leading dims.
// One 64-wide workgroup per row (grid folded into y past 65535 rows): each invocation strides
// over the row, then a tree reduction in workgroup memory combines the 64 partials.
//
// Forward:  m = max_j x_j (subtracted so exp never overflows: the largest term is exp(0) = 1),
//           y_j = exp(x_j - m) / sum_k exp(x_k - m).
// Backward: dy_j/dx_i = y_j (delta_ij - y_i), so gx_i = y_i (gy_i - sum_j gy_j y_j). Only the
//           saved output is needed, not x.

struct Params {
  rows: u32,
  d: u32,                       // D, the softmax axis
}

@group(0) @binding(0) var<storage, read> x: array<f32>;            // [rows, D] input
@group(0) @binding(1) var<storage, read_write> y: array<f32>;      // [rows, D] output
@group(0) @binding(2) var<uniform> params: Params;
@group(0) @binding(3) var<storage, read> y_saved: array<f32>;      // [rows, D] forward output
@group(0) @binding(4) var<storage, read> gy: array<f32>;           // [rows, D] upstream gradient
@group(0) @binding(5) var<storage, read_write> gx: array<f32>;     // [rows, D] input gradient

const WG: u32 = 64u;
alias Partial = f32;

fn combine(a: f32, b: f32, take_max: bool) -> f32 {
  return select(a + b, max(a, b), take_max);
}

// #include <workgroup_reduce>

@compute @workgroup_size(64)
fn softmax_forward(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
                   @builtin(local_invocation_index) lid: u32) {
  let row = wid.x + wid.y * nwg.x;
  if (row >= params.rows) { return; } // whole workgroup: row is uniform
  let base = row * params.d;
  var m = -3.4e38; // below any finite f32 input; invocations past D keep it, harmlessly
  for (var j = lid; j < params.d; j += WG) { m = max(m, x[base + j]); }
  m = workgroup_reduce(m, lid, true);
  var s = 0.0;
  for (var j = lid; j < params.d; j += WG) { s += exp(x[base + j] - m); }
  s = workgroup_reduce(s, lid, false);
  let inv = 1.0 / s; // s >= 1: the maximal element contributes exp(0)
  for (var j = lid; j < params.d; j += WG) { y[base + j] = exp(x[base + j] - m) * inv; }
}

@compute @workgroup_size(64)
fn softmax_backward(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
                    @builtin(local_invocation_index) lid: u32) {
  let row = wid.x + wid.y * nwg.x;
  if (row >= params.rows) { return; }
  let base = row * params.d;
  var dot = 0.0;
  for (var j = lid; j < params.d; j += WG) { dot += gy[base + j] * y_saved[base + j]; }
  dot = workgroup_reduce(dot, lid, false);
  for (var j = lid; j < params.d; j += WG) { gx[base + j] = y_saved[base + j] * (gy[base + j] - dot); }
}
