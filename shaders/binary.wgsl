// Elementwise binary op template with NumPy broadcasting: one specialization per binary row of
// engine/ops/elementwise_table.ts.
//   {{FWD}}: out from `a`, `b`;  {{DA}}: d out / d a;  {{DB}}: d out / d b  (expressions of a, b).
// Dimensions: n = elements of the broadcast output, rank <= 8. Strides of a and b are in their own
// elements, 0 along broadcast dimensions. The backward writes both gradients at the output's shape;
// the op sums them down to each input's shape.

struct Params {
  n: u32,
  rank: u32,
  same_shape: u32,            // 1: a, b and out share one shape (skip index arithmetic)
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

fn dim_of(v: array<vec4u, 2>, d: u32) -> u32 {
  return v[d / 4u][d % 4u];
}

// Offsets of output element i in a and b.
fn operand_offsets(i: u32) -> vec2u {
  if (params.same_shape == 1u) { return vec2u(i, i); }
  var rem = i;
  var off = vec2u(0u, 0u);
  for (var d = i32(params.rank) - 1; d >= 0; d--) {
    let n = dim_of(params.out_shape, u32(d));
    let c = rem % n;
    rem = rem / n;
    off += c * vec2u(dim_of(params.a_strides, u32(d)), dim_of(params.b_strides, u32(d)));
  }
  return off;
}

fn linear_index(gid: vec3u, nwg: vec3u) -> u32 {
  return gid.x + gid.y * nwg.x * 64u;
}

@compute @workgroup_size(64)
fn binary_forward(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = linear_index(gid, nwg);
  if (i >= params.n) { return; }
  let off = operand_offsets(i);
  let a = a_in[off.x];
  let b = b_in[off.y];
  out[i] = {{FWD}};
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
