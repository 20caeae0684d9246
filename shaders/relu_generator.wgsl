// Layers of random expansive ReLU generators (nets/relu_generator.ts) and their measurement loss,
// for many independent networks ("instances") at once, each with its own batch of chains.
//
// Legend: I = instances, C = chains (rows) per instance, n_in / n_out = layer widths, m = number of
// measurements. Row-major f32 buffers:
//   x [I, C, n_in]   w [I, n_out, n_in]   y [I, C, n_out]   meas [I, m]   loss [I, C]
//
//   dense_forward:          y[i,c,o]  = act(sum_j x[i,c,j] w[i,o,j])      act = relu, or identity
//   dense_backward_input:   gx[i,c,j] = sum_o gpre[i,c,o] w[i,o,j]        gpre = gy * act'(y)
//   dense_backward_weight:  gw[i,o,j] = sum_c gpre[i,c,o] x[i,c,j]
//   half_sq_err_forward:    loss[i,c] = 0.5 sum_r (x[i,c,r] - meas[i,r])^2
//   half_sq_err_backward:   gx[i,c,r] = gloss[i,c] (x[i,c,r] - meas[i,r])
//
// relu' is taken from the saved output: 1 where y > 0, else 0 (so 0 at the kink, as in the
// reference). Fusing the activation and its mask into the products saves two passes over [I, C, n]
// per layer, and the input-gradient kernel lets the sampler skip weight gradients it never uses.
//
// Tiling (the three dense kernels): each invocation computes a 4 x 4 block of its output in
// registers, no workgroup memory (barriers cost more than they save on CPU adapters); workgroup
// 16 x 4 covers 64 columns x 16 rows; grid = (ceil(cols / 64), ceil(rows / 16), I). Out-of-range
// rows and columns are clamped for the loads and skipped for the stores.

struct DenseParams {
  chains: u32,   // C
  n_in: u32,
  n_out: u32,
  relu: u32,     // 1: relu, 0: identity
}

struct LossParams {
  rows: u32,     // I * C
  chains: u32,   // C
  m: u32,
}

@group(0) @binding(0) var<storage, read> x: array<f32>;            // [I, C, n_in]
@group(0) @binding(1) var<storage, read> w: array<f32>;            // [I, n_out, n_in]
@group(0) @binding(2) var<storage, read_write> y: array<f32>;      // [I, C, n_out]
@group(0) @binding(3) var<uniform> params: DenseParams;

@group(0) @binding(0) var<storage, read> gy: array<f32>;           // [I, C, n_out]
@group(0) @binding(2) var<storage, read_write> gx: array<f32>;     // [I, C, n_in]
@group(0) @binding(4) var<storage, read> y_saved: array<f32>;      // [I, C, n_out]
@group(0) @binding(5) var<storage, read> x_saved: array<f32>;      // [I, C, n_in]
@group(0) @binding(6) var<storage, read_write> gw: array<f32>;     // [I, n_out, n_in]

@group(0) @binding(0) var<storage, read> pred: array<f32>;         // [I, C, m]
@group(0) @binding(1) var<storage, read> meas:   array<f32>;       // [I, m]
@group(0) @binding(2) var<storage, read_write> loss: array<f32>;   // [I, C]
@group(0) @binding(3) var<uniform> lparams: LossParams;
@group(0) @binding(4) var<storage, read> gloss: array<f32>;        // [I, C]
@group(0) @binding(5) var<storage, read_write> gpred: array<f32>;  // [I, C, m]

// gy * act'(y) at flat index e of an [I, C, n_out] buffer.
fn gpre(e: u32) -> f32 {
  let g = gy[e];
  if (params.relu == 0u) { return g; }
  return select(0.0, g, y_saved[e] > 0.0);
}

@compute @workgroup_size(16, 4, 1)
fn dense_forward(@builtin(global_invocation_id) gid: vec3u) {
  let c0 = gid.y * 4u;
  let o0 = gid.x * 4u;
  if (c0 >= params.chains || o0 >= params.n_out) { return; }
  let inst = gid.z;
  var xr: vec4u;  // row starts of x for chains c0..c0+3
  var wr: vec4u;  // row starts of w for outputs o0..o0+3
  for (var i = 0u; i < 4u; i++) {
    xr[i] = (inst * params.chains + min(c0 + i, params.chains - 1u)) * params.n_in;
    wr[i] = (inst * params.n_out + min(o0 + i, params.n_out - 1u)) * params.n_in;
  }
  var acc = array<vec4f, 4>(vec4f(0.0), vec4f(0.0), vec4f(0.0), vec4f(0.0));
  for (var j = 0u; j < params.n_in; j++) {
    let wv = vec4f(w[wr.x + j], w[wr.y + j], w[wr.z + j], w[wr.w + j]);
    acc[0] += x[xr.x + j] * wv;
    acc[1] += x[xr.y + j] * wv;
    acc[2] += x[xr.z + j] * wv;
    acc[3] += x[xr.w + j] * wv;
  }
  for (var i = 0u; i < 4u; i++) {
    let c = c0 + i;
    if (c >= params.chains) { break; }
    let base = (inst * params.chains + c) * params.n_out;
    var v = acc[i];
    if (params.relu != 0u) { v = max(v, vec4f(0.0)); }
    for (var q = 0u; q < 4u; q++) {
      if (o0 + q < params.n_out) { y[base + o0 + q] = v[q]; }
    }
  }
}

@compute @workgroup_size(16, 4, 1)
fn dense_backward_input(@builtin(global_invocation_id) gid: vec3u) {
  let c0 = gid.y * 4u;
  let j0 = gid.x * 4u;
  if (c0 >= params.chains || j0 >= params.n_in) { return; }
  let inst = gid.z;
  var gr: vec4u;  // row starts of gy / y_saved for chains c0..c0+3
  var wc: vec4u;  // column offsets into w for inputs j0..j0+3
  for (var i = 0u; i < 4u; i++) {
    gr[i] = (inst * params.chains + min(c0 + i, params.chains - 1u)) * params.n_out;
    wc[i] = inst * params.n_out * params.n_in + min(j0 + i, params.n_in - 1u);
  }
  var acc = array<vec4f, 4>(vec4f(0.0), vec4f(0.0), vec4f(0.0), vec4f(0.0));
  for (var o = 0u; o < params.n_out; o++) {
    let wo = o * params.n_in;
    let wv = vec4f(w[wc.x + wo], w[wc.y + wo], w[wc.z + wo], w[wc.w + wo]);
    acc[0] += gpre(gr.x + o) * wv;
    acc[1] += gpre(gr.y + o) * wv;
    acc[2] += gpre(gr.z + o) * wv;
    acc[3] += gpre(gr.w + o) * wv;
  }
  for (var i = 0u; i < 4u; i++) {
    let c = c0 + i;
    if (c >= params.chains) { break; }
    let base = (inst * params.chains + c) * params.n_in;
    for (var q = 0u; q < 4u; q++) {
      if (j0 + q < params.n_in) { gx[base + j0 + q] = acc[i][q]; }
    }
  }
}

@compute @workgroup_size(16, 4, 1)
fn dense_backward_weight(@builtin(global_invocation_id) gid: vec3u) {
  let o0 = gid.y * 4u;
  let j0 = gid.x * 4u;
  if (o0 >= params.n_out || j0 >= params.n_in) { return; }
  let inst = gid.z;
  var oc: vec4u;  // column offsets into gy / y_saved for outputs o0..o0+3
  var xc: vec4u;  // column offsets into x_saved for inputs j0..j0+3
  for (var i = 0u; i < 4u; i++) {
    oc[i] = inst * params.chains * params.n_out + min(o0 + i, params.n_out - 1u);
    xc[i] = inst * params.chains * params.n_in + min(j0 + i, params.n_in - 1u);
  }
  var acc = array<vec4f, 4>(vec4f(0.0), vec4f(0.0), vec4f(0.0), vec4f(0.0));
  for (var c = 0u; c < params.chains; c++) {
    let go = c * params.n_out;
    let xo = c * params.n_in;
    let xv = vec4f(x_saved[xc.x + xo], x_saved[xc.y + xo], x_saved[xc.z + xo], x_saved[xc.w + xo]);
    acc[0] += gpre(oc.x + go) * xv;
    acc[1] += gpre(oc.y + go) * xv;
    acc[2] += gpre(oc.z + go) * xv;
    acc[3] += gpre(oc.w + go) * xv;
  }
  for (var i = 0u; i < 4u; i++) {
    let o = o0 + i;
    if (o >= params.n_out) { break; }
    let base = (inst * params.n_out + o) * params.n_in;
    for (var q = 0u; q < 4u; q++) {
      if (j0 + q < params.n_in) { gw[base + j0 + q] = acc[i][q]; }
    }
  }
}

// One invocation per row (chain): m is small (tens to hundreds), rows are many.
@compute @workgroup_size(64)
fn half_sq_err_forward(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let row = gid.x + gid.y * nwg.x * 64u;
  if (row >= lparams.rows) { return; }
  let t0 = (row / lparams.chains) * lparams.m;
  let p0 = row * lparams.m;
  var s = 0.0;
  for (var r = 0u; r < lparams.m; r++) {
    let d = pred[p0 + r] - meas[t0 + r];
    s += d * d;
  }
  loss[row] = 0.5 * s;
}

// One invocation per element of pred.
@compute @workgroup_size(64)
fn half_sq_err_backward(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let e = gid.x + gid.y * nwg.x * 64u;
  if (e >= lparams.rows * lparams.m) { return; }
  let row = e / lparams.m;
  let r = e % lparams.m;
  gpred[e] = gloss[row] * (pred[e] - meas[(row / lparams.chains) * lparams.m + r]);
}
