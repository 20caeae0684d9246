// Elementwise binary op template with NumPy broadcasting: one specialization per binary row of
// engine/elementwise_table.ts.
//   {{FWD}}: out from `a`, `b`;  {{DA}}: d out / d a;  {{DB}}: d out / d b  (expressions of a, b).
// Dimensions: n = elements of the broadcast output, rank <= 8. Strides of a and b are in their own
// elements, 0 along broadcast dimensions. The backward writes both gradients at the output's shape;
// the op sums them down to each input's shape.

struct Params {
  n: u32,
  rank: u32,                  // after merging dimensions (engine/shape.ts coalesceDims): 1 for equal shapes
  a_vec: u32,                 // vec4 kernels: 1 when a's innermost stride is 1 (vec4 loads), 0 when 0 (one value)
  b_vec: u32,
  out_shape: array<vec4u, 2>,
  a_strides: array<vec4u, 2>,
  b_strides: array<vec4u, 2>,
}

@group(0) @binding(0) var<storage, read> a_in: array<f32>;       // [a elements]
@group(0) @binding(1) var<storage, read> b_in: array<f32>;       // [b elements]
@group(0) @binding(2) var<storage, read_write> out: array<f32>;  // [n]
@group(0) @binding(3) var<uniform> params: Params;
@group(0) @binding(2) var<storage, read> gy: array<f32>;         // [n] upstream gradient
@group(0) @binding(4) var<storage, read_write> ga: array<f32>;   // [n] gradient for a, unreduced
@group(0) @binding(5) var<storage, read_write> gb: array<f32>;   // [n] gradient for b, unreduced
// The same buffers as vec4s, for the *4 kernels (an entry point uses one view of each binding).
@group(0) @binding(0) var<storage, read> a4: array<vec4f>;
@group(0) @binding(1) var<storage, read> b4: array<vec4f>;
@group(0) @binding(2) var<storage, read_write> out4: array<vec4f>;
@group(0) @binding(2) var<storage, read> gy4: array<vec4f>;
@group(0) @binding(4) var<storage, read_write> ga4: array<vec4f>;
@group(0) @binding(5) var<storage, read_write> gb4: array<vec4f>;

fn dim_of(v: array<vec4u, 2>, d: u32) -> u32 {
  return v[d / 4u][d % 4u];
}

// #include <index_math>

// Offsets of output element i in a and b.
fn operand_offsets(i: u32) -> vec2u {
  var rem = i;
  var off = vec2u(0u, 0u);
  for (var d = params.rank - 1u; d > 0u; d--) {
    let qr = divmod(rem, dim_of(params.out_shape, d));
    rem = qr.x;
    off += qr.y * vec2u(dim_of(params.a_strides, d), dim_of(params.b_strides, d));
  }
  return off + rem * vec2u(params.a_strides[0].x, params.b_strides[0].x);
}

// The row's forward expression, in the names it is written in, for one element and for 4 (the
// gradient expressions may be constants, so they stay inline where `g *` gives them a type).
fn forward(a: f32, b: f32) -> f32 {
  return {{FWD}};
}

fn forward4(a: vec4f, b: vec4f) -> vec4f {
  return {{FWD}};
}

@compute @workgroup_size(64)
fn binary_forward(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = linear_index(gid, nwg);
  if (i >= params.n) { return; }
  let off = operand_offsets(i);
  out[i] = forward(a_in[off.x], b_in[off.y]);
}

@compute @workgroup_size(64)
fn binary_backward(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = linear_index(gid, nwg);
  if (i >= params.n) { return; }
  let off = operand_offsets(i);
  let a = a_in[off.x];
  let b = b_in[off.y];
  let g = gy[i];
  ga[i] = g * ({{DA}});
  gb[i] = g * ({{DB}});
}

// The vec4 kernels: 4 consecutive outputs per invocation, when the innermost (merged) dimension is
// a multiple of 4 and each operand's innermost stride is 1 (a vec4 load) or 0 (one value for all
// 4). On lavapipe a storage access costs per lane whatever its width, so this makes fewer
// accesses and a quarter of the index arithmetic (bench/results/2026-11-notes-from-code.md,
// "Elementwise binary ops: vec4 kernels").
fn load4(from_a: bool, off: u32) -> vec4f {
  if (from_a) {
    if (params.a_vec == 1u) { return a4[off / 4u]; }
    return vec4f(a4[off / 4u][off % 4u]);
  }
  if (params.b_vec == 1u) { return b4[off / 4u]; }
  return vec4f(b4[off / 4u][off % 4u]);
}

@compute @workgroup_size(64)
fn binary_forward4(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let v = linear_index(gid, nwg);
  if (v >= params.n / 4u) { return; }
  let off = operand_offsets(4u * v);
  out4[v] = forward4(load4(true, off.x), load4(false, off.y));
}

@compute @workgroup_size(64)
fn binary_backward4(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let v = linear_index(gid, nwg);
  if (v >= params.n / 4u) { return; }
  let off = operand_offsets(4u * v);
  let a = load4(true, off.x);
  let b = load4(false, off.y);
  let g = gy4[v];
  ga4[v] = g * ({{DA}});
  gb4[v] = g * ({{DB}});
}
