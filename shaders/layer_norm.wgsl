// Layer normalization over the last axis with affine parameters (engine/ops/layer_norm.ts).
//
// Dimensions: x [..., D] viewed as [rows, D]; weight, bias [D]; mean, rstd [rows].
//   forward:  mu = mean_j x_j, var = mean_j (x_j - mu)^2 (biased, like PyTorch),
//             rstd = 1 / sqrt(var + eps), xhat_j = (x_j - mu) rstd, y_j = xhat_j w_j + b_j.
//             Two passes over the row (mean, then squared deviations) rather than E[x^2] - mu^2,
//             which cancels catastrophically in float32 when |mu| >> std.
//   backward (x): with g_j = gy_j w_j,
//             gx_j = rstd (g_j - mean_k g_k - xhat_j mean_k (g_k xhat_k)).
//   backward (weight, bias): gw_j = sum_rows gy_j xhat_j, gb_j = sum_rows gy_j.
//   modulated (FiLM, params.tokens > 0): mod [rows / T, 2D], row r of item b = r / T:
//             y_j = (xhat_j w_j + b_j) (1 + a_bj) + s_bj with a_b = mod[b, :D], s_b = mod[b, D:];
//             the backward above runs on gy_j (1 + a_bj), and layer_norm_backward_mod gives
//             ga_bj = sum_t gy_j (xhat_j w_j + b_j), gs_bj = sum_t gy_j (one invocation per (b, j)).
//             Unmodulated (tokens 0), the scale is 1 and the shift 0: the same bits as without.
// layer_norm_forward and layer_norm_backward: one 64-wide workgroup per row (wide rows);
// layer_norm_forward_rows and layer_norm_backward_rows: one invocation per row, serial loops over
// the D features (narrow rows, D <= 64: a workgroup per row would leave most of its lanes idle and
// pay log2(64) barriers per reduction for a few dozen values;
// bench/results/2026-11-notes-from-code.md, "LayerNorm: serial rows for narrow rows");
// layer_norm_backward_params: one 64-wide workgroup per column j, striding over the rows.
// Grids fold into y past 65535 workgroups.

struct Params {
  rows: u32,
  d: u32,                       // D, the normalized axis
  eps: f32,
  tokens: u32,                  // T, rows per modulation row; 0: no modulation
}

@group(0) @binding(0) var<storage, read> x: array<f32>;             // [rows, D] input
@group(0) @binding(1) var<storage, read> weight: array<f32>;        // [D]
@group(0) @binding(2) var<storage, read> bias: array<f32>;          // [D]
@group(0) @binding(3) var<storage, read_write> y: array<f32>;       // [rows, D] output
@group(0) @binding(4) var<storage, read_write> mean: array<f32>;    // [rows] saved for backward
@group(0) @binding(5) var<storage, read_write> rstd: array<f32>;    // [rows] saved for backward
@group(0) @binding(6) var<uniform> params: Params;
@group(0) @binding(7) var<storage, read> mean_saved: array<f32>;    // [rows]
@group(0) @binding(8) var<storage, read> rstd_saved: array<f32>;    // [rows]
@group(0) @binding(9) var<storage, read> gy: array<f32>;            // [rows, D] upstream gradient
@group(0) @binding(10) var<storage, read_write> gx: array<f32>;     // [rows, D]
@group(0) @binding(11) var<storage, read_write> gw: array<f32>;     // [D] weight gradient
@group(0) @binding(12) var<storage, read_write> gb: array<f32>;     // [D] bias gradient
@group(0) @binding(13) var<storage, read> modulation: array<f32>;   // [rows / T, 2D] (a, s); unused if tokens = 0
@group(0) @binding(14) var<storage, read_write> gmod: array<f32>;   // [rows / T, 2D] its gradient

/** 1 + a of row `row`, feature j (1 unmodulated). */
fn mod_scale(row: u32, j: u32) -> f32 {
  if (params.tokens == 0u) { return 1.0; }
  return 1.0 + modulation[(row / params.tokens) * 2u * params.d + j];
}

/** s of row `row`, feature j (0 unmodulated). */
fn mod_shift(row: u32, j: u32) -> f32 {
  if (params.tokens == 0u) { return 0.0; }
  return modulation[(row / params.tokens) * 2u * params.d + params.d + j];
}

const WG: u32 = 64u;
alias Partial = vec2f;

// Layer norm only sums (pairs of sums, for the backward's two means).
fn combine(a: vec2f, b: vec2f, take_max: bool) -> vec2f {
  return a + b;
}

// #include <workgroup_reduce>

@compute @workgroup_size(64)
fn layer_norm_forward(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
                      @builtin(local_invocation_index) lid: u32) {
  let row = wid.x + wid.y * nwg.x;
  if (row >= params.rows) { return; } // whole workgroup: row is uniform
  let base = row * params.d;
  let inv_d = 1.0 / f32(params.d);
  var s = 0.0;
  for (var j = lid; j < params.d; j += WG) { s += x[base + j]; }
  let mu = workgroup_reduce(vec2f(s, 0.0), lid, false).x * inv_d;
  var q = 0.0;
  for (var j = lid; j < params.d; j += WG) {
    let c = x[base + j] - mu;
    q += c * c;
  }
  let r = inverseSqrt(workgroup_reduce(vec2f(q, 0.0), lid, false).x * inv_d + params.eps);
  for (var j = lid; j < params.d; j += WG) {
    y[base + j] = ((x[base + j] - mu) * r * weight[j] + bias[j]) * mod_scale(row, j) + mod_shift(row, j);
  }
  if (lid == 0u) {
    mean[row] = mu;
    rstd[row] = r;
  }
}

@compute @workgroup_size(64)
fn layer_norm_backward(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
                       @builtin(local_invocation_index) lid: u32) {
  let row = wid.x + wid.y * nwg.x;
  if (row >= params.rows) { return; }
  let base = row * params.d;
  let mu = mean_saved[row];
  let r = rstd_saved[row];
  // Both row sums in one reduction: (sum g, sum g xhat).
  var acc = vec2f(0.0);
  for (var j = lid; j < params.d; j += WG) {
    let g = gy[base + j] * mod_scale(row, j) * weight[j];
    acc += vec2f(g, g * (x[base + j] - mu) * r);
  }
  let sums = workgroup_reduce(acc, lid, false) / f32(params.d);
  for (var j = lid; j < params.d; j += WG) {
    let g = gy[base + j] * mod_scale(row, j) * weight[j];
    let xhat = (x[base + j] - mu) * r;
    gx[base + j] = r * (g - sums.x - xhat * sums.y);
  }
}

@compute @workgroup_size(64)
fn layer_norm_backward_params(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
                              @builtin(local_invocation_index) lid: u32) {
  let j = wid.x + wid.y * nwg.x;
  if (j >= params.d) { return; } // whole workgroup: j is uniform
  // (sum gy xhat, sum gy) over the rows of column j.
  var acc = vec2f(0.0);
  for (var row = lid; row < params.rows; row += WG) {
    let g = gy[row * params.d + j] * mod_scale(row, j);
    acc += vec2f(g * (x[row * params.d + j] - mean_saved[row]) * rstd_saved[row], g);
  }
  let sums = workgroup_reduce(acc, lid, false);
  if (lid == 0u) {
    gw[j] = sums.x;
    gb[j] = sums.y;
  }
}

// Narrow rows: invocation i normalizes row i (same formulas as above, same two-pass variance).
@compute @workgroup_size(64)
fn layer_norm_forward_rows(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let row = gid.x + gid.y * nwg.x * WG;
  if (row >= params.rows) { return; }
  let base = row * params.d;
  let inv_d = 1.0 / f32(params.d);
  var s = 0.0;
  for (var j = 0u; j < params.d; j++) { s += x[base + j]; }
  let mu = s * inv_d;
  var q = 0.0;
  for (var j = 0u; j < params.d; j++) {
    let c = x[base + j] - mu;
    q += c * c;
  }
  let r = inverseSqrt(q * inv_d + params.eps);
  for (var j = 0u; j < params.d; j++) {
    y[base + j] = ((x[base + j] - mu) * r * weight[j] + bias[j]) * mod_scale(row, j) + mod_shift(row, j);
  }
  mean[row] = mu;
  rstd[row] = r;
}

@compute @workgroup_size(64)
fn layer_norm_backward_rows(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let row = gid.x + gid.y * nwg.x * WG;
  if (row >= params.rows) { return; }
  let base = row * params.d;
  let mu = mean_saved[row];
  let r = rstd_saved[row];
  var acc = vec2f(0.0); // (sum g, sum g xhat)
  for (var j = 0u; j < params.d; j++) {
    let g = gy[base + j] * mod_scale(row, j) * weight[j];
    acc += vec2f(g, g * (x[base + j] - mu) * r);
  }
  let sums = acc / f32(params.d);
  for (var j = 0u; j < params.d; j++) {
    let g = gy[base + j] * mod_scale(row, j) * weight[j];
    let xhat = (x[base + j] - mu) * r;
    gx[base + j] = r * (g - sums.x - xhat * sums.y);
  }
}

// The modulation's gradient: invocation (b, j) sums over the T rows of item b.
@compute @workgroup_size(64)
fn layer_norm_backward_mod(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let o = gid.x + gid.y * nwg.x * WG;
  let items = params.rows / params.tokens;
  if (o >= items * params.d) { return; }
  let b = o / params.d;
  let j = o % params.d;
  var ga = 0.0;
  var gs = 0.0;
  for (var t = 0u; t < params.tokens; t++) {
    let row = b * params.tokens + t;
    let g = gy[row * params.d + j];
    ga += g * ((x[row * params.d + j] - mean_saved[row]) * rstd_saved[row] * weight[j] + bias[j]);
    gs += g;
  }
  gmod[b * 2u * params.d + j] = ga;
  gmod[b * 2u * params.d + params.d + j] = gs;
}
