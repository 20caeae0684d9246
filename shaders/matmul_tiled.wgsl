// Batched matrix product out[b] = A[b] x B[b] for hardware GPUs (engine/ops/matmul_tiled.ts picks
// it; docs/design.md, "Kernel selection"). The same strided operands as shaders/matmul.wgsl, named
// by which axis is contiguous:
//   A by rows, 'k' layout: A(m, k) at a_base + m * a_stride + k;
//   A by columns, 'm' layout: A(m, k) at a_base + k * a_stride + m;
//   B by rows, 'n' layout: B(k, n) at b_base + k * b_stride + n;
//   B by columns, 'k' layout: B(k, n) at b_base + n * b_stride + k.
// A transposed operand is just the other layout, so the forward and both gradients use this file.
//
// Tiling: a workgroup of WG_X x WG_Y invocations computes a BM x BN block of the output
// (BM = WG_Y * TM, BN = WG_X * TN). Per step of BK along k it copies the BM x BK block of A and the
// BK x BN block of B into workgroup memory, stored k-major (As[k][m], Bs[k][n]) with PAD extra
// elements per k row so that the transposing stores of a by-rows operand spread over the banks.
// Each invocation then keeps a TM x TN register tile: rows ly + i * WG_Y, columns lx + j * WG_X,
// so neighbouring invocations read neighbouring workgroup-memory words and store neighbouring
// output columns. Elements past the edges load as zero and are never stored, so any M, N, K work.
//
// The tile shape is a set of pipeline-overridable constants (a GPU run sweeps them without a new
// shader text); the loads come from engine/ops/matmul_tiled.ts through LOAD_A / LOAD_B: vec4
// loads along the contiguous axis where it and the strides are multiples of 4 (A_TYPE / B_TYPE
// vec4f), else scalar loads. Grid: (ceil(N / BN), ceil(M / BM), batch).

struct Params {
  M: u32,
  N: u32,
  K: u32,
  a_batch: u32,  // elements between batch items of A (0: broadcast)
  a_stride: u32, // elements between rows ('k' layout) or columns ('m' layout) of A
  b_batch: u32,
  b_stride: u32, // elements between rows ('n' layout) or columns ('k' layout) of B
}

@group(0) @binding(0) var<storage, read> a: array<{{A_TYPE}}>;
@group(0) @binding(1) var<storage, read> b: array<{{B_TYPE}}>;
@group(0) @binding(2) var<storage, read_write> out: array<f32>; // [batch, M, N]
@group(0) @binding(3) var<uniform> params: Params;

override TM: u32 = 4u;   // output rows per invocation (TM * TN <= 64)
override TN: u32 = 4u;   // output columns per invocation
override WG_X: u32 = 16u;
override WG_Y: u32 = 16u;
override BK: u32 = 16u;  // k per workgroup-memory step, a multiple of 4
override PAD: u32 = 4u;  // extra elements per k row of the tiles
override BM: u32 = WG_Y * TM;
override BN: u32 = WG_X * TN;
override BMP: u32 = BM + PAD;
override BNP: u32 = BN + PAD;
override A_TILE: u32 = BK * BMP;
override B_TILE: u32 = BK * BNP;
override THREADS: u32 = WG_X * WG_Y;

var<workgroup> As: array<f32, A_TILE>;
var<workgroup> Bs: array<f32, B_TILE>;

@compute @workgroup_size(WG_X, WG_Y)
fn matmul_tiled(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_id) lid3: vec3u, @builtin(local_invocation_index) lid: u32) {
  let batch = wid.z;
  let m0 = wid.y * BM;
  let n0 = wid.x * BN;
  let a_base = batch * params.a_batch;
  let b_base = batch * params.b_batch;
  var acc: array<f32, 64>;
  var ar: array<f32, 8>;
  var br: array<f32, 8>;
  for (var k0 = 0u; k0 < params.K; k0 += BK) {
    {{LOAD_A}}
    {{LOAD_B}}
    workgroupBarrier();
    for (var kk = 0u; kk < BK; kk++) {
      for (var i = 0u; i < TM; i++) { ar[i] = As[kk * BMP + lid3.y + i * WG_Y]; }
      for (var j = 0u; j < TN; j++) { br[j] = Bs[kk * BNP + lid3.x + j * WG_X]; }
      for (var i = 0u; i < TM; i++) {
        for (var j = 0u; j < TN; j++) { acc[i * TN + j] = fma(ar[i], br[j], acc[i * TN + j]); }
      }
    }
    workgroupBarrier();
  }
  let out_base = batch * params.M * params.N;
  for (var i = 0u; i < TM; i++) {
    let m = m0 + lid3.y + i * WG_Y;
    for (var j = 0u; j < TN; j++) {
      let n = n0 + lid3.x + j * WG_X;
      if (m < params.M && n < params.N) { out[out_base + m * params.N + n] = acc[i * TN + j]; }
    }
  }
}
