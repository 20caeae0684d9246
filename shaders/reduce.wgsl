// Reductions over any set of axes, and their backward (a broadcast).
//
// Forward: the input is viewed as (kept dims) x (reduced dims), both in input order. Output element
// o (row-major over the kept dims) is reduced by one 64-wide workgroup: each invocation strides
// over the R reduced elements, then a tree reduction in workgroup memory combines the 64 partials.
// Sums with many outputs and moderate R use one invocation per output instead (reduce_sum_serial).
// Max keeps the first index of the maximum (flat, row-major over the reduced dims) for backward.
//
// Backward (also `broadcast_to`): for each input element i, its output element o and its flat
// reduced index r come from per-dimension strides (0 where a dimension does not contribute).
// rank <= 8; shapes and strides live in array<vec4u, 2> (16-byte uniform stride).

struct ReduceParams {
  n_out: u32,
  reduce_size: u32,           // R
  kept_rank: u32,
  red_rank: u32,
  scale: f32,                 // 1 for sum and max, 1/R for mean
  kept_shape: array<vec4u, 2>,
  kept_strides: array<vec4u, 2>, // input strides of the kept dims
  red_shape: array<vec4u, 2>,
  red_strides: array<vec4u, 2>,  // input strides of the reduced dims
}

struct BroadcastParams {
  n: u32,                     // elements of the (input-shaped) gradient
  rank: u32,
  scale: f32,
  in_shape: array<vec4u, 2>,
  out_strides: array<vec4u, 2>, // stride into gy per input dim, 0 for reduced dims
  red_strides: array<vec4u, 2>, // stride of the flat reduced index per input dim, 0 for kept dims
}

@group(0) @binding(0) var<storage, read> x: array<f32>;            // [input elements]
@group(0) @binding(1) var<storage, read_write> y: array<f32>;      // [n_out]
@group(0) @binding(2) var<uniform> params: ReduceParams;
@group(0) @binding(3) var<storage, read_write> arg: array<u32>;    // [n_out] argmax (max only)

@group(0) @binding(0) var<storage, read> gy: array<f32>;           // [output elements]
@group(0) @binding(1) var<storage, read_write> gx: array<f32>;     // [n]
@group(0) @binding(2) var<uniform> bparams: BroadcastParams;
@group(0) @binding(3) var<storage, read> arg_saved: array<u32>;    // [output elements]

const WG: u32 = 64u;
var<workgroup> partial: array<f32, 64>;
var<workgroup> partial_index: array<u32, 64>;

fn at(v: array<vec4u, 2>, d: u32) -> u32 {
  return v[d / 4u][d % 4u];
}

// Input offset of a row-major index over `rank` dims of `shape`, using `strides`.
fn offset_of(index: u32, rank: u32, shape: array<vec4u, 2>, strides: array<vec4u, 2>) -> u32 {
  var rem = index;
  var off = 0u;
  for (var d = i32(rank) - 1; d >= 0; d--) {
    let n = at(shape, u32(d));
    off += (rem % n) * at(strides, u32(d));
    rem = rem / n;
  }
  return off;
}

@compute @workgroup_size(64)
fn reduce_sum(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
              @builtin(local_invocation_index) lid: u32) {
  let o = wid.x + wid.y * nwg.x;
  if (o >= params.n_out) { return; }
  let base = offset_of(o, params.kept_rank, params.kept_shape, params.kept_strides);
  var acc = 0.0;
  for (var r = lid; r < params.reduce_size; r += WG) {
    acc += x[base + offset_of(r, params.red_rank, params.red_shape, params.red_strides)];
  }
  partial[lid] = acc;
  workgroupBarrier();
  for (var s = WG / 2u; s > 0u; s = s / 2u) {
    if (lid < s) { partial[lid] += partial[lid + s]; }
    workgroupBarrier();
  }
  if (lid == 0u) { y[o] = partial[0] * params.scale; }
}

// The same sum with one invocation per output element and a serial loop over R: for many outputs
// with short or moderate R (bias gradients: [rows, C] -> [C]) the tree's 64-wide workgroup and
// its barriers per output cost far more than the additions, above all on CPU adapters. Adjacent
// invocations read adjacent kept elements, so the loads coalesce when the kept dims are innermost.
@compute @workgroup_size(64)
fn reduce_sum_serial(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let o = gid.x + gid.y * nwg.x * WG;
  if (o >= params.n_out) { return; }
  let base = offset_of(o, params.kept_rank, params.kept_shape, params.kept_strides);
  var acc = 0.0;
  if (params.red_rank == 1u) {
    // One reduced dim (adjacent ones arrive merged): a plain stride, no index arithmetic per element.
    let stride = params.red_strides[0].x;
    for (var r = 0u; r < params.reduce_size; r++) { acc += x[base + r * stride]; }
  } else {
    for (var r = 0u; r < params.reduce_size; r++) {
      acc += x[base + offset_of(r, params.red_rank, params.red_shape, params.red_strides)];
    }
  }
  y[o] = acc * params.scale;
}

@compute @workgroup_size(64)
fn reduce_max(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
              @builtin(local_invocation_index) lid: u32) {
  let o = wid.x + wid.y * nwg.x;
  if (o >= params.n_out) { return; }
  let base = offset_of(o, params.kept_rank, params.kept_shape, params.kept_strides);
  var best = -3.4e38; // replaced by the first element (best_r marks "none yet")
  var best_r = 0xffffffffu;
  for (var r = lid; r < params.reduce_size; r += WG) {
    let v = x[base + offset_of(r, params.red_rank, params.red_shape, params.red_strides)];
    if (v > best || best_r == 0xffffffffu) { best = v; best_r = r; }
  }
  partial[lid] = best;
  partial_index[lid] = best_r;
  workgroupBarrier();
  for (var s = WG / 2u; s > 0u; s = s / 2u) {
    if (lid < s) {
      let v = partial[lid + s];
      let r = partial_index[lid + s];
      // Larger value wins; on ties the smaller flat index wins, so the result is deterministic.
      if (r != 0xffffffffu && (partial_index[lid] == 0xffffffffu || v > partial[lid] || (v == partial[lid] && r < partial_index[lid]))) {
        partial[lid] = v;
        partial_index[lid] = r;
      }
    }
    workgroupBarrier();
  }
  if (lid == 0u) {
    y[o] = partial[0];
    arg[o] = partial_index[0];
  }
}

// #include <index_math>

// Also used as the forward of broadcast_to (scale 1).
@compute @workgroup_size(64)
fn reduce_sum_backward(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = linear_index(gid, nwg);
  if (i >= bparams.n) { return; }
  let o = offset_of(i, bparams.rank, bparams.in_shape, bparams.out_strides);
  gx[i] = gy[o] * bparams.scale;
}

@compute @workgroup_size(64)
fn reduce_max_backward(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = linear_index(gid, nwg);
  if (i >= bparams.n) { return; }
  let o = offset_of(i, bparams.rank, bparams.in_shape, bparams.out_strides);
  let r = offset_of(i, bparams.rank, bparams.in_shape, bparams.red_strides);
  gx[i] = select(0.0, gy[o], arg_saved[o] == r);
}
