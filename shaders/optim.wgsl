// Optimizer updates, in place on a parameter and its state (PyTorch semantics; the float64
// references in engine/reference/optim.ts spell out the same formulas).
//
// Legend: n = elements of the parameter; p = parameter, g = gradient, buf = SGD momentum buffer,
// m / v = Adam moments; all [n], f32. One invocation per element, i = linear_index
// (shaders/index_math.wgsl: the 1D grid is folded into y past 65535 workgroups).
// Hyperparameters, the learning rate included, arrive as uniforms at every step, so schedules
// change them without recompiling. Optimizers are not differentiable: no backward entries.
// Training helpers beside them, each one dispatch per parameter where the ops would take several:
//   adam_step_scaled  Adam on g * g_scale[0] (a factor computed on the GPU: global-norm clipping
//                     without a scaled copy of every gradient); adam_step_scaled_ema also updates
//                     an average of the new weights as ema_step does, in the same pass;
//   sum_squares       total[0] (+)= sum_i g_i^2 (the squared global norm, one parameter at a time,
//                     one workgroup: first = 1 overwrites, else adds);
//   ema_step          avg = decay avg + (1 - decay) src, in place (an EMA of the weights).

struct SgdParams {
  n: u32,
  lr: f32,
  momentum: f32,
  dampening: f32,
  weight_decay: f32,
  nesterov: u32,     // 1: step along d + momentum * buf instead of buf
  first: u32,        // 1 on the first step: buf = d (PyTorch starts the buffer at the gradient, undamped)
}

struct AdamParams {
  n: u32,
  lr: f32,
  beta1: f32,
  beta2: f32,
  eps: f32,
  weight_decay: f32,
  decoupled: u32,    // 1: AdamW, p *= 1 - lr * weight_decay; 0: Adam, g += weight_decay * p
  step_size: f32,    // lr / (1 - beta1^t), computed in float64 on the host
  bc2_sqrt: f32,     // sqrt(1 - beta2^t)
}

@group(0) @binding(0) var<storage, read_write> p: array<f32>;    // [n] parameter, updated in place
@group(0) @binding(1) var<storage, read> g: array<f32>;          // [n] gradient
@group(0) @binding(2) var<uniform> sgd: SgdParams;
@group(0) @binding(3) var<storage, read_write> buf: array<f32>;  // [n] momentum buffer (sgd_momentum_step)

@group(0) @binding(2) var<uniform> adam: AdamParams;
@group(0) @binding(3) var<storage, read_write> m: array<f32>;    // [n] first moment
@group(0) @binding(4) var<storage, read_write> v: array<f32>;    // [n] second moment
@group(0) @binding(5) var<storage, read> g_scale: array<f32>;    // [1] factor of g (adam_step_scaled)

struct SumSquaresParams {
  n: u32,
  first: u32,        // 1: total = the sum; 0: total += the sum
}
@group(0) @binding(6) var<storage, read_write> total: array<f32>; // [1]
@group(0) @binding(7) var<uniform> sq: SumSquaresParams;

struct EmaParams {
  n: u32,
  decay: f32,
  rest: f32,         // 1 - decay, computed in float64 on the host
}
@group(0) @binding(8) var<storage, read_write> avg: array<f32>;   // [n] the average, updated in place
@group(0) @binding(9) var<storage, read> src: array<f32>;         // [n] the current weights
@group(0) @binding(10) var<uniform> ema: EmaParams;

struct RowsParams {
  rows: u32,
  len: u32,        // elements per row (the last axis)
}

@group(0) @binding(0) var<storage, read_write> xr: array<f32>;    // [rows, len] rescaled in place
@group(0) @binding(1) var<storage, read> norms: array<f32>;       // [rows] the norm each row gets
@group(0) @binding(11) var<uniform> rp: RowsParams;

// #include <index_math>

// Plain SGD (momentum 0): no state.
@compute @workgroup_size(64)
fn sgd_step(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = linear_index(gid, nwg);
  if (i >= sgd.n) { return; }
  let d = g[i] + sgd.weight_decay * p[i];
  p[i] = p[i] - sgd.lr * d;
}

@compute @workgroup_size(64)
fn sgd_momentum_step(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = linear_index(gid, nwg);
  if (i >= sgd.n) { return; }
  let d = g[i] + sgd.weight_decay * p[i];
  // On the first step buf is uninitialized memory: it is overwritten, never read.
  var b = d;
  if (sgd.first == 0u) { b = sgd.momentum * buf[i] + (1.0 - sgd.dampening) * d; }
  buf[i] = b;
  let step = select(b, d + sgd.momentum * b, sgd.nesterov == 1u);
  p[i] = p[i] - sgd.lr * step;
}

@compute @workgroup_size(64)
fn adam_step(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = linear_index(gid, nwg);
  if (i >= adam.n) { return; }
  _ = adam_update(i, g[i]);
}

@compute @workgroup_size(64)
fn adam_step_scaled(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = linear_index(gid, nwg);
  if (i >= adam.n) { return; }
  _ = adam_update(i, g[i] * g_scale[0]);
}

@compute @workgroup_size(64)
fn adam_step_scaled_ema(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = linear_index(gid, nwg);
  if (i >= adam.n) { return; }
  let pn = adam_update(i, g[i] * g_scale[0]);
  avg[i] = ema.decay * avg[i] + ema.rest * pn;
}

/** Updates p[i], m[i], v[i] by the gradient value and returns the new p[i]. */
fn adam_update(i: u32, grad: f32) -> f32 {
  var pv = p[i];
  var gv = grad;
  if (adam.decoupled == 1u) {
    pv = pv * (1.0 - adam.lr * adam.weight_decay);
  } else {
    gv = gv + adam.weight_decay * pv;
  }
  let mi = adam.beta1 * m[i] + (1.0 - adam.beta1) * gv;
  let vi = adam.beta2 * v[i] + (1.0 - adam.beta2) * gv * gv;
  m[i] = mi;
  v[i] = vi;
  let pn = pv - adam.step_size * mi / (sqrt(vi) / adam.bc2_sqrt + adam.eps);
  p[i] = pn;
  return pn;
}

var<workgroup> partial: array<f32, 64>;

@compute @workgroup_size(64)
fn sum_squares(@builtin(local_invocation_index) lid: u32) {
  var s = 0.0;
  for (var j = lid; j < sq.n; j += 64u) {
    let x = g[j];
    s += x * x;
  }
  partial[lid] = s;
  for (var w = 32u; w > 0u; w /= 2u) {
    workgroupBarrier();
    if (lid < w) { partial[lid] += partial[lid + w]; }
  }
  if (lid == 0u) { total[0] = select(total[0], 0.0, sq.first == 1u) + partial[0]; }
}

@compute @workgroup_size(64)
fn ema_step(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = linear_index(gid, nwg);
  if (i >= ema.n) { return; }
  avg[i] = ema.decay * avg[i] + ema.rest * src[i];
}

// Each row of xr times norms[row] / ||row||: one invocation per row reads it twice (sum of squares
// in index order, then the scaling), so the in-place write never races a read. The same arithmetic
// as mul(x, div(norms, sqrt(sum(square(x), last axis)))) with a serial sum.
@compute @workgroup_size(64)
fn rescale_rows(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let r = linear_index(gid, nwg);
  if (r >= rp.rows) { return; }
  let base = r * rp.len;
  var s = 0.0;
  for (var j = 0u; j < rp.len; j++) {
    let x = xr[base + j];
    s += x * x;
  }
  let f = norms[r] / sqrt(s);
  for (var j = 0u; j < rp.len; j++) { xr[base + j] = xr[base + j] * f; }
}
