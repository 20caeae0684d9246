// Batched matrix product out[b] = A[b] x B[b] for adapters with 8-lane subgroups (engine/ops/matmul.ts
// picks it; shaders/matmul.wgsl is the general kernel). Same strided operands, but read as vec4:
//   A by rows, 'k' layout: A(m, k..k+3) contiguous, row m at a_base + m * a_stride (in vec4s);
//   A by columns, 'm' layout: A(m..m+3, k) contiguous, column k at a_base + k * a_stride;
//   B by rows, 'n' layout: B(k, n..n+3) contiguous, row k at b_base + k * b_stride;
//   B by columns, 'k' layout: B(k..k+3, n) contiguous, column n at b_base + n * b_stride.
// A transposed operand is just the other layout, so forward and both backward products use this file.
//
// Why subgroups (lavapipe, Mesa 25.0; README, Performance; docs/design.md, "Kernel selection"): lavapipe
// turns each storage load whose address is not a compile-time constant into eight scalar loads,
// each with a bounds check and a branch, even when every lane reads the same address. So the
// general kernel's "uniform" A loads cost as much as its B loads. Here one workgroup is one 8-lane
// subgroup: per k4 step (four k), lane l loads one vec4 of A for 8 rows at once (row r0 + l in the
// 'k' layout; rows r0 + 4 (l & 1) .. +3 at k = 4 k4 + (l >> 1) in the 'm' layout), and
// subgroupBroadcast hands each row's four values to all lanes, an element extract on a CPU.
// B is read as vec4s too. On lavapipe this is about 3x the best general kernel
// (bench/results/2026-11-notes-from-code.md, "Matmul: subgroup tiles").
//
// Tile: ROWS = 8 * row blocks per workgroup; COLS output columns per lane ('n' layout: vec4
// accumulators, COLS = 4 * column groups, groups 8 lanes apart; 'k' layout: scalar accumulators,
// columns 8 apart). The unrolled body comes from engine/ops/matmul_subgroup.ts through SETUP, STEP
// and STORE. Rows and columns past the edge are clamped on load and skipped on store.
// Grid: (ceil(N / (8 * COLS)), ceil(M / ROWS), batch). Needs K % 4 == 0 and 4-aligned strides.

enable subgroups;

struct Params {
  M: u32,
  N: u32,
  K4: u32,       // K / 4
  a_batch: u32,  // vec4s between batch items of A (0: broadcast)
  a_stride: u32, // vec4s between rows ('k' layout) or columns ('m' layout) of A
  b_batch: u32,
  b_stride: u32, // vec4s between rows ('n' layout) or columns ('k' layout) of B
}

@group(0) @binding(0) var<storage, read> a: array<vec4f>;        // A operand, layout per params
@group(0) @binding(1) var<storage, read> b: array<vec4f>;        // B operand, layout per params
@group(0) @binding(2) var<storage, read_write> out: array<f32>;  // [batch, M, N]
@group(0) @binding(2) var<storage, read_write> out4: array<vec4f>; // the same as vec4s ('n' layout: N % 4 == 0)
@group(0) @binding(3) var<uniform> params: Params;

const ROWS: u32 = {{ROWS}}u;

@compute @workgroup_size(8)
fn matmul_subgroup(@builtin(workgroup_id) wid: vec3u, @builtin(subgroup_invocation_id) lane: u32) {
  let batch = wid.z;
  let r0 = wid.y * ROWS;
  let a_base = batch * params.a_batch;
  let b_base = batch * params.b_batch;
  let last_m = params.M - 1u;
  let last_n = params.N - 1u;
  // al<r>: this lane's vec4 of A for row block r; b<kk>_<j> / b<j>: B's vec4s; a<i>_<kk>: A(r0 + i,
  // 4 k4 + kk) broadcast from the lane that loaded it; s<i>_<j>: the accumulators.
  {{SETUP}}
  for (var k4 = 0u; k4 < params.K4; k4++) {
    {{STEP}}
  }
  let out_base = batch * params.M * params.N;
  {{STORE}}
}
