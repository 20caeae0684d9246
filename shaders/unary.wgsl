// Elementwise unary op template: one specialization per row of engine/elementwise_table.ts.
//   {{FWD}}: y as an expression of `a` (the input) and the op's scalars `p0`, `p1`.
//   {{BWD}}: dy/da as an expression of `a`, `y` (the saved output), `p0`, `p1`.
// Dimensions: n = number of elements. 1D grid of 64-wide workgroups, folded into y past 65535.

struct Params {
  n: u32,
  p0: f32,
  p1: f32,
}

@group(0) @binding(0) var<storage, read> x: array<f32>;          // [n] input
@group(0) @binding(1) var<storage, read_write> y: array<f32>;    // [n] forward output
@group(0) @binding(2) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> y_saved: array<f32>;    // [n] forward output (backward)
@group(0) @binding(3) var<storage, read> gy: array<f32>;         // [n] upstream gradient
@group(0) @binding(4) var<storage, read_write> gx: array<f32>;   // [n] input gradient

const INV_SQRT2: f32 = 0.7071067811865476;
const INV_SQRT_2PI: f32 = 0.3989422804014327;

// Overflow-safe logistic: exp of a large positive argument would give inf/inf = NaN.
fn sigmoid_(v: f32) -> f32 {
  let e = exp(-abs(v));
  return select(e / (1.0 + e), 1.0 / (1.0 + e), v >= 0.0);
}

// Overflow-safe tanh (some drivers' tanh returns NaN for |v| > 44).
fn tanh_(v: f32) -> f32 {
  let e = exp(-2.0 * abs(v));
  return sign(v) * (1.0 - e) / (1.0 + e);
}

// erf to float32 accuracy (max abs error ~1.2e-7): Numerical Recipes' erfc Chebyshev fit.
fn erf_(v: f32) -> f32 {
  let z = abs(v);
  let t = 1.0 / (1.0 + 0.5 * z);
  let r = t * exp(-z * z - 1.26551223 + t * (1.00002368 + t * (0.37409196 + t * (0.09678418 +
          t * (-0.18628806 + t * (0.27886807 + t * (-1.13520398 + t * (1.48851587 +
          t * (-0.82215223 + t * 0.17087277)))))))));
  return sign(v) * (1.0 - r);
}

// #include <index_math>

// The row's two expressions, in the names they are written in.
fn forward(a: f32, p0: f32, p1: f32) -> f32 {
  return {{FWD}};
}

// The input gradient g * dy/da. The saved output arrives as y_out and is named y by a local:
// binding reflection (engine/kernel.ts) takes a parameter named like the binding `y` for a use
// of that binding.
fn input_gradient(a: f32, y_out: f32, g: f32, p0: f32, p1: f32) -> f32 {
  let y = y_out;
  return g * ({{BWD}});
}

@compute @workgroup_size(64)
fn unary_forward(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = linear_index(gid, nwg);
  if (i >= params.n) { return; }
  y[i] = forward(x[i], params.p0, params.p1);
}

@compute @workgroup_size(64)
fn unary_backward(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = linear_index(gid, nwg);
  if (i >= params.n) { return; }
  gx[i] = input_gradient(x[i], y_saved[i], gy[i], params.p0, params.p1);
}
