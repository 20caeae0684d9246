// Batched matrix product out[b] = A[b] x B[b] with either operand transposed or broadcast over
// the batch, all expressed through strides:
//   A(m, k) = a[b * a_batch + m * a_m + k * a_k],  B(k, n) = b[b * b_batch + k * b_k + n * b_n].
// Transposing an operand swaps its two strides; broadcasting sets its batch stride to 0. The
// backward passes are this same kernel: dA = dOut x B^T, dB = A^T x dOut.
//
// Tiling: each invocation computes a 4x4 block of the output in registers (no workgroup memory:
// on CPU adapters barriers cost more than they save; DESIGN.md section 2). Workgroup 8x8 covers
// a 32x32 output tile; grid = (ceil(N/32), ceil(M/32), batch).

struct Params {
  M: u32,
  N: u32,
  K: u32,
  a_batch: u32,
  a_m: u32,
  a_k: u32,
  b_batch: u32,
  b_k: u32,
  b_n: u32,
}

@group(0) @binding(0) var<storage, read> a: array<f32>;          // A operand, layout per strides
@group(0) @binding(1) var<storage, read> b: array<f32>;          // B operand, layout per strides
@group(0) @binding(2) var<storage, read_write> out: array<f32>;  // [batch, M, N]
@group(0) @binding(3) var<uniform> params: Params;

@compute @workgroup_size(8, 8, 1)
fn matmul(@builtin(global_invocation_id) gid: vec3u) {
  let row0 = gid.y * 4u;
  let col0 = gid.x * 4u;
  if (row0 >= params.M || col0 >= params.N) { return; }
  let batch = gid.z;
  // Clamp indices instead of branching per load; clamped rows/cols are computed but not stored.
  let last_row = params.M - 1u;
  let last_col = params.N - 1u;
  var a_row: vec4u;
  var b_col: vec4u;
  for (var i = 0u; i < 4u; i++) {
    a_row[i] = batch * params.a_batch + min(row0 + i, last_row) * params.a_m;
    b_col[i] = batch * params.b_batch + min(col0 + i, last_col) * params.b_n;
  }
  var acc0 = vec4f(0.0);
  var acc1 = vec4f(0.0);
  var acc2 = vec4f(0.0);
  var acc3 = vec4f(0.0);
  for (var k = 0u; k < params.K; k++) {
    let ak = k * params.a_k;
    let bk = k * params.b_k;
    let bv = vec4f(b[b_col.x + bk], b[b_col.y + bk], b[b_col.z + bk], b[b_col.w + bk]);
    acc0 += a[a_row.x + ak] * bv;
    acc1 += a[a_row.y + ak] * bv;
    acc2 += a[a_row.z + ak] * bv;
    acc3 += a[a_row.w + ak] * bv;
  }
  let rows = array<vec4f, 4>(acc0, acc1, acc2, acc3);
  for (var i = 0u; i < 4u; i++) {
    let r = row0 + i;
    if (r >= params.M) { break; }
    let base = (batch * params.M + r) * params.N;
    for (var j = 0u; j < 4u; j++) {
      if (col0 + j < params.N) { out[base + col0 + j] = rows[i][j]; }
    }
  }
}
