// Fused bias + leaky ReLU (or linear) + gain + clamp, StyleGAN2's fused_leaky_relu / NVlabs
// bias_act, and its backward (engine/ops/bias_act.ts; reference engine/reference/bias_act.ts).
//
// Dimensions: x, y, gy, gx are [outer, C, inner] views of one contiguous tensor (C = the bias
// dimension); bias [C]. Element i has channel (i / inner) % C. Forward: one invocation per 4
// elements; backward: see bias_act_backward. 1D grids of 64-wide workgroups folded into y past
// 65535 (grid1d).
//
//   z = (x * xscale + w * noise[o', p]) + bias[c];  y = clamp(gain * (z > 0 ? z : alpha * z), -clamp, clamp)
// 'linear' is alpha = 1. With no bias the op binds x as `bias` too (read-only twice is allowed)
// and has_bias = 0. With no clamp, has_clamp = 0. StyleGAN2's noise injection is fused in when
// has_noise = 1: noise [outer / noise_group, 1, inner] (one map per sample, or one for the whole
// batch with noise_group = outer) broadcast over the channels, times the scalar w = nweight[0];
// without it the op binds x as `noise` and `nweight`, unread. xscale (1 unless asked; never with
// noise) serves StyleGAN2's equalized linear layer, scale * (x W^T) + bias, in one dispatch.
// has_residual = 1 adds `residual` to the output (a residual connection or a skip sum); its
// gradient is gy itself, so the backward kernels ignore it.
//
// Backward recomputes z from x and bias rather than saving anything else; it writes gx = gz * xscale
// (gz: the gradient with respect to z, i.e. to the bias and to w * noise) and per-invocation partial sums of gz, which
// bias_act_bias_grad adds up per channel for the bias gradient (two passes instead of workgroup
// memory or integer division per element). A clamped output passes no gradient.

struct BiasActParams {
  n: u32,          // elements of x
  channels: u32,   // C
  inner: u32,      // product of the dims after the channel dim
  has_bias: u32,
  alpha: f32,      // slope for z <= 0 (1 for linear)
  gain: f32,
  clamp: f32,      // used when has_clamp = 1
  has_clamp: u32,
  has_noise: u32,
  noise_group: u32, // consecutive samples (outer indices) that share one noise map
  xscale: f32,      // x's factor in z
  has_residual: u32, // 1: y += residual (after act, gain and clamp)
}

struct NoiseGradParams {
  maps: u32,       // noise maps: outer / noise_group
  want_w: u32,     // 1: write gw_part (the weight's gradient, summed by the caller)
}

struct BackwardParams {
  rows: u32,       // outer * C
  lanes: u32,      // invocations per row: min(inner, 64)
  want_bias: u32,  // 1: write the partial sums of the bias gradient
}

@group(0) @binding(0) var<storage, read> x: array<f32>;           // [outer, C, inner]
@group(0) @binding(1) var<storage, read> bias: array<f32>;        // [C] (or x, unused, when has_bias = 0)
@group(0) @binding(2) var<storage, read_write> y: array<f32>;     // [outer, C, inner]
@group(0) @binding(3) var<uniform> params: BiasActParams;
@group(0) @binding(4) var<storage, read> gy: array<f32>;          // [outer, C, inner]
@group(0) @binding(2) var<storage, read_write> gx: array<f32>;    // [outer, C, inner] = gz
@group(0) @binding(5) var<uniform> bparams: BackwardParams;
@group(0) @binding(6) var<storage, read_write> partial: array<f32>; // [outer, C, lanes] (a dummy [1] without bias)
@group(0) @binding(6) var<storage, read> partial_in: array<f32>;    // [outer, C, lanes]
@group(0) @binding(2) var<storage, read_write> gbias: array<f32>;   // [C]
@group(0) @binding(6) var<storage, read> gz_in: array<f32>;         // [outer, C, inner] (bias_act_backward's gx)
@group(0) @binding(12) var<storage, read> residual: array<f32>;   // [outer, C, inner] (or x, unused)
@group(0) @binding(7) var<storage, read> noise: array<f32>;         // [outer / noise_group, inner] (or x, unused)
@group(0) @binding(8) var<storage, read> nweight: array<f32>;       // [1] (or x, unused)
@group(0) @binding(9) var<storage, read_write> gnoise: array<f32>;  // [outer / noise_group, inner]
@group(0) @binding(10) var<storage, read_write> gw_part: array<f32>; // [outer / noise_group, inner]
@group(0) @binding(11) var<uniform> nparams: NoiseGradParams;

const WG: u32 = 64u;

fn channel_of(i: u32) -> u32 {
  return (i / params.inner) % params.channels;
}

fn act(z: f32) -> f32 {
  var v = select(params.alpha * z, z, z > 0.0) * params.gain;
  if (params.has_clamp != 0u) { v = clamp(v, -params.clamp, params.clamp); }
  return v;
}

// d act / d z, 0 where the output was clamped (same pre-clamp expression as `act`).
fn act_grad(z: f32) -> f32 {
  let pre = select(params.alpha * z, z, z > 0.0) * params.gain;
  let unclamped = params.has_clamp == 0u || abs(pre) <= params.clamp;
  return select(0.0, select(params.alpha, 1.0, z > 0.0) * params.gain, unclamped);
}

// c < C <= the length of either bound buffer (bias, or x without a bias), so the read is in range.
fn bias_at(c: u32) -> f32 {
  return select(0.0, bias[c], params.has_bias != 0u);
}

// The residual added to output i (0 without one; x is bound in its place then, same length).
fn residual_at(i: u32) -> f32 {
  return select(0.0, residual[i], params.has_residual != 0u);
}

// Index into the noise maps of element i of x: its map's start plus its position in the plane.
fn noise_index(i: u32) -> u32 {
  let per = params.inner * params.channels;
  let o = i / per;
  return (o / params.noise_group) * params.inner + (i - o * per) % params.inner;
}

// w * noise[j] (0 without noise); x + it comes before the bias, the order of the unfused
// add(add(x, mul(noise, w)), bias). j < noise's length, which is <= x's, so either binding is in range.
fn noise_term(j: u32) -> f32 {
  return select(0.0, nweight[0] * noise[j], params.has_noise != 0u);
}

// Each invocation does 4 consecutive elements. When inner % 4 == 0 they share one channel, so the
// channel (two integer divisions, scalarized per lane on CPU adapters) is computed once.
fn elements(gid: vec3u, nwg: vec3u) -> u32 {
  return 4u * (gid.x + gid.y * nwg.x * WG);
}

@compute @workgroup_size(64)
fn bias_act_forward(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i0 = elements(gid, nwg);
  if (i0 >= params.n) { return; }
  if (params.inner % 4u == 0u && i0 + 3u < params.n) {
    let b = bias_at(channel_of(i0));
    // inner % 4 == 0: the 4 elements are consecutive positions of one plane.
    let j0 = select(0u, noise_index(i0), params.has_noise != 0u);
    for (var k = 0u; k < 4u; k++) { y[i0 + k] = act((x[i0 + k] * params.xscale + noise_term(j0 + k)) + b) + residual_at(i0 + k); }
  } else {
    for (var i = i0; i < min(i0 + 4u, params.n); i++) {
      let j = select(0u, noise_index(i), params.has_noise != 0u);
      y[i] = act((x[i] * params.xscale + noise_term(j)) + bias_at(channel_of(i))) + residual_at(i);
    }
  }
}

// Backward: invocation t = (row, lane) of rows = outer*C rows of `inner` elements, lanes =
// min(inner, 64) per row; it does the row's elements lane, lane + lanes, ... (adjacent invocations
// touch adjacent addresses), writes gx, and with a bias the partial sum of its gz for the bias
// gradient (finished by bias_act_bias_grad). No workgroup memory, no division in the loop.
@compute @workgroup_size(64)
fn bias_act_backward(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let t = gid.x + gid.y * nwg.x * WG;
  let lanes = bparams.lanes;
  if (t >= bparams.rows * lanes) { return; }
  let row = t / lanes;
  let lane = t - row * lanes;
  let b = bias_at(row % params.channels);
  let start = row * params.inner;
  let nstart = (row / params.channels / params.noise_group) * params.inner; // this row's noise map
  var acc = 0.0;
  for (var j = lane; j < params.inner; j += lanes) {
    let g = gy[start + j] * act_grad((x[start + j] * params.xscale + noise_term(nstart + j)) + b);
    gx[start + j] = g * params.xscale;
    acc += g;
  }
  if (bparams.want_bias != 0u) { partial[t] = acc; }
}

// gbias[c] = sum over o < outer, lane < lanes of partial[(o*C + c)*lanes + lane]; one invocation
// per channel.
@compute @workgroup_size(64)
fn bias_act_bias_grad(@builtin(global_invocation_id) gid: vec3u) {
  let c = gid.x;
  if (c >= params.channels) { return; }
  let lanes = bparams.lanes;
  let outer = bparams.rows / params.channels;
  var acc = 0.0;
  for (var o = 0u; o < outer; o++) {
    let base = (o * params.channels + c) * lanes;
    for (var l = 0u; l < lanes; l++) { acc += partial_in[base + l]; }
  }
  gbias[c] = acc;
}

// The noise map's gradient: gnoise[m, p] = w * S and gw_part[m, p] = noise[m, p] * S with
// S = sum of gz over the channels and the noise_group samples of map m at position p (the
// weight's gradient is the sum of gw_part). One invocation per element of the noise maps.
@compute @workgroup_size(64)
fn bias_act_noise_grad(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let t = gid.x + gid.y * nwg.x * WG;
  if (t >= nparams.maps * params.inner) { return; }
  let m = t / params.inner;
  let p = t - m * params.inner;
  let per = params.inner * params.channels;
  var acc = 0.0;
  for (var o = m * params.noise_group; o < (m + 1u) * params.noise_group; o++) {
    for (var c = 0u; c < params.channels; c++) { acc += gz_in[o * per + c * params.inner + p]; }
  }
  gnoise[t] = nweight[0] * acc;
  if (nparams.want_w != 0u) { gw_part[t] = noise[t] * acc; }
}
