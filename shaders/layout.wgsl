// Data movement for the layout ops (engine/ops/layout.ts): permute, slice, concat, pad and their
// backward passes. Reshape needs no kernel (contiguous data: a buffer copy).
//
// Dimensions: rank <= 8; shapes, strides and window corners live in array<vec4u, 2> (16-byte
// uniform stride). n = elements the kernel visits (one invocation each), 1D grid of 64-wide
// workgroups folded into y past 65535.
//
// The buffers are array<u32>: these kernels only move bits, so one kernel serves f32 and u32
// tensors alike and never canonicalizes a NaN payload.
//
//   layout_gather:  dst[i] = src[offset + sum_d idx_d(i) * strides[d]], idx over shape (dst's)
//                   (layout_gather4: the same, 4 elements per invocation, where aligned).
//                   Forward of permute (permuted strides) and slice (offset = the corner);
//                   backward of permute (inverse permutation), concat (one slice per input) and
//                   pad (crop).
//   layout_pad:     dst over out_shape; inside the window [lo, lo + win_shape) it reads the
//                   contiguous src, outside it writes `value`. Forward of pad; backward of slice
//                   (value 0: the gradient scattered into zeros).
//   layout_scatter: dst[offset + sum_d idx_d(i) * strides[d]] = src[i], idx over shape (src's).
//                   Forward of concat: each input is written into its band of the output; the
//                   bands tile the output, so no fill is needed.
//   layout_scatter_add: dst[offset + ...] += src[i] on f32 bits, the same addressing. The tape's
//                   accumulation of a slice's gradient into the running gradient of its input
//                   (one dispatch instead of a zero-padded copy and an add); within one dispatch
//                   every target is distinct, so there are no write races.

// Gather and scatter walk one side contiguously (i over `shape`) and address the other through
// `strides`: gather reads src at offset + sum_d idx_d(i) * strides[d], scatter writes dst there.
struct StridedParams {
  n: u32,                          // elements of the contiguous side (gather: dst; scatter: src)
  rank: u32,
  offset: u32,                     // element of the strided side at index (0, ..., 0)
  shape: array<vec4u, 2>,          // shape of the contiguous side
  strides: array<vec4u, 2>,        // stride of the strided side per dimension of `shape`
}

struct PadParams {
  n: u32,                          // elements of dst
  rank: u32,
  value: u32,                      // fill value, as bits of the tensor's dtype
  out_shape: array<vec4u, 2>,
  lo: array<vec4u, 2>,             // window corner in dst
  win_shape: array<vec4u, 2>,      // window extent = src shape
}

@group(0) @binding(0) var<storage, read> src: array<u32>;          // [source elements]
@group(0) @binding(1) var<storage, read_write> dst: array<u32>;    // [destination elements]
@group(0) @binding(0) var<storage, read> src4: array<vec4u>;       // the same, 4 elements at a time (layout_gather4)
@group(0) @binding(1) var<storage, read_write> dst4: array<vec4u>;
@group(0) @binding(2) var<uniform> gparams: StridedParams;
@group(0) @binding(3) var<uniform> pparams: PadParams;
@group(0) @binding(4) var<uniform> sparams: StridedParams;

const WG: u32 = 64u;

fn at(v: array<vec4u, 2>, d: u32) -> u32 {
  return v[d / 4u][d % 4u];
}

// #include <index_math>

// Offset of the row-major index `index` over `shape`, read through `strides`.
fn strided_offset(index: u32, rank: u32, shape: array<vec4u, 2>, strides: array<vec4u, 2>) -> u32 {
  var rem = index;
  var off = 0u;
  for (var d = rank - 1u; d > 0u; d--) {
    let qr = divmod(rem, at(shape, d));
    off += qr.y * at(strides, d);
    rem = qr.x;
  }
  return off + rem * strides[0].x;
}

@compute @workgroup_size(64)
fn layout_gather(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = linear_index(gid, nwg);
  if (i >= gparams.n) { return; }
  dst[i] = src[gparams.offset + strided_offset(i, gparams.rank, gparams.shape, gparams.strides)];
}

// layout_gather 4 elements at a time, where the innermost (merged) dimension is a multiple of 4
// long and contiguous in src, and the offset and the other src strides are multiples of 4: one
// vec4 load and store per invocation (on CPU adapters an access costs per lane whatever its width,
// so a head permute of the ViT moves 4x the data per access).
@compute @workgroup_size(64)
fn layout_gather4(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let v = linear_index(gid, nwg);
  if (v >= gparams.n / 4u) { return; }
  dst4[v] = src4[(gparams.offset + strided_offset(4u * v, gparams.rank, gparams.shape, gparams.strides)) / 4u];
}

@compute @workgroup_size(64)
fn layout_pad(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = linear_index(gid, nwg);
  if (i >= pparams.n) { return; }
  var rem = i;
  var off = 0u;       // row-major offset into the window (= src)
  var stride = 1u;    // src stride of dimension d
  var inside = true;
  for (var d = i32(pparams.rank) - 1; d >= 0; d--) {
    let qr = divmod(rem, at(pparams.out_shape, u32(d)));
    // idx - lo wraps to a huge u32 when idx < lo, so one comparison tests both window edges.
    let w = qr.y - at(pparams.lo, u32(d));
    let ws = at(pparams.win_shape, u32(d));
    inside = inside && w < ws;
    off += w * stride;
    stride *= ws;
    rem = qr.x;
  }
  dst[i] = select(pparams.value, src[select(0u, off, inside)], inside);
}

@compute @workgroup_size(64)
fn layout_scatter(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = linear_index(gid, nwg);
  if (i >= sparams.n) { return; }
  dst[sparams.offset + strided_offset(i, sparams.rank, sparams.shape, sparams.strides)] = src[i];
}

@compute @workgroup_size(64)
fn layout_scatter_add(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = linear_index(gid, nwg);
  if (i >= sparams.n) { return; }
  let j = sparams.offset + strided_offset(i, sparams.rank, sparams.shape, sparams.strides);
  dst[j] = bitcast<u32>(bitcast<f32>(dst[j]) + bitcast<f32>(src[i]));
}
