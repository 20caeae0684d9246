// Optimizer updates, in place on a parameter and its state (PyTorch semantics; the float64
// references in engine/reference/optim.ts spell out the same formulas).
//
// Legend: n = elements of the parameter; p = parameter, g = gradient, buf = SGD momentum buffer,
// m / v = Adam moments; all [n], f32. One invocation per element, i = linear_index
// (shaders/index_math.wgsl: the 1D grid is folded into y past 65535 workgroups).
// Hyperparameters, the learning rate included, arrive as uniforms at every step, so schedules
// change them without recompiling. Optimizers are not differentiable: no backward entries.

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
  var pv = p[i];
  var gv = g[i];
  if (adam.decoupled == 1u) {
    pv = pv * (1.0 - adam.lr * adam.weight_decay);
  } else {
    gv = gv + adam.weight_decay * pv;
  }
  let mi = adam.beta1 * m[i] + (1.0 - adam.beta1) * gv;
  let vi = adam.beta2 * v[i] + (1.0 - adam.beta2) * gv * gv;
  m[i] = mi;
  v[i] = vi;
  p[i] = pv - adam.step_size * mi / (sqrt(vi) / adam.bc2_sqrt + adam.eps);
}
