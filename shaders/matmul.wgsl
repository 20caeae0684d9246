// Batched matrix product out[b] = A[b] x B[b] with either operand transposed or broadcast over
// the batch, all expressed through strides:
//   A(m, k) = a[b * a_batch + m * a_m + k * a_k],  B(k, n) = b[b * b_batch + k * b_k + n * b_n].
// Transposing an operand swaps its two strides; broadcasting sets its batch stride to 0. The
// backward passes are this same kernel: dA = dOut x B^T, dB = A^T x dOut.
//
// Tiling (on lavapipe gathers and barriers are what cost; docs/design.md, "Kernel selection"): an
// invocation computes ROWS x COLS outputs in scalar registers, no workgroup memory.
// All WG invocations of a workgroup share the same ROWS rows, so each A load has one address per
// workgroup (lavapipe's divergence analysis makes it one scalar load and a broadcast; a GPU serves
// it as a broadcast read). Invocation `lid` takes columns n_first + j * WG, so B loads and output stores
// are contiguous across invocations (bench/results/2026-11-notes-from-code.md, "Matmul: general
// kernel tiles").
//
// The unrolled body comes from engine/ops/matmul.ts through the SETUP, STEP and STORE template
// slots (WGSL has no unroll; per-invocation arrays indexed in loops are kept in memory, which is
// slower). Grid: (ceil(N / (WG * COLS)), ceil(M / ROWS), batch).

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

const WG: u32 = {{WG}}u;     // invocations per workgroup, all on the same rows
const ROWS: u32 = {{ROWS}}u; // output rows per invocation (and per workgroup)
const COLS: u32 = {{COLS}}u; // output columns per invocation, WG apart

@compute @workgroup_size({{WG}})
fn matmul(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_index) lid: u32) {
  let batch = wid.z;
  let r0 = wid.y * ROWS;
  let n_first = wid.x * (WG * COLS) + lid;
  let a_base = batch * params.a_batch;
  let b_base = batch * params.b_batch;
  // Rows and columns past the edge are clamped (computed, never stored) instead of branching per load.
  let last_m = params.M - 1u;
  let last_n = params.N - 1u;
  // ar<i>: start of A's row r0 + i; n<j> = n_first + j * WG and bc<j>, the start of B's column
  // n<j>; s<i>_<j>: the accumulators.
  {{SETUP}}
  for (var k = 0u; k < params.K; k++) {
    let ak = k * params.a_k;
    let bk = k * params.b_k;
    {{STEP}}
  }
  let out_base = batch * params.M * params.N;
  {{STORE}}
}
