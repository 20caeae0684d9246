// Convolutions as implicit GEMMs for hardware GPUs (engine/ops/conv_tiled.ts picks them;
// docs/design.md, "Kernel selection"). The core is shaders/matmul_tiled.wgsl's: per z (a batch
// item, and a group or an upsampling phase) the output is an M x P matrix (M output channels,
// P output pixels) = A (M x K, the weights) times B (K x P, the im2col'd input), with
// K = input channels x taps. Neither A nor B is stored: engine/ops/conv_tiled.ts fills the slots
// with the gather of one element of each (col_info, k_info, a_at, b_at) and the epilogue (store)
// of each variant:
//   conv        conv2d forward: any stride, dilation, padding and groups (z = n * G + g);
//   transposed  conv_transpose2d forward, which is also conv2d's input gradient: b_at reads the
//               input pixel a tap lands on, zero where the stride skips it;
//   mod         the modulated conv forward, z = n * PH + ph: one GEMM per upsampling phase of the
//               phase convolution (shaders/modulated_conv.wgsl's header), the styles folded into
//               the B tile as it is loaded, the demodulation coefficient into the store;
//   modgrad     its input gradient, z = n, K = Co x phases x taps: the styles and coef as in the
//               forward; the store also writes x * u for the style gradient (conv_tiled_pieces).
//
// Tiling: a workgroup of WG_X x WG_Y invocations computes a BM x BN block of one z's output
// (BM = WG_Y * TM channels, BN = WG_X * TN pixels). The index arithmetic of the gathers (integer
// divisions) is done once per column of the block (col_info) and once per k of a step (k_info)
// into workgroup memory, so a gathered element costs an add, a bounds check and a load. Per step
// of BK along K it gathers the BM x BK block of A and the BK x BN block of B into workgroup
// memory, stored k-major (As[k][m], Bs[k][p])
// with PAD extra elements per k row so that the transposing stores of A spread over the banks;
// neighbouring invocations gather neighbouring pixels of B, so the input reads are along rows.
// Each invocation keeps a TM x TN register tile (rows ly + i * WG_Y, columns lx + j * WG_X), so
// neighbouring invocations store neighbouring output pixels. Elements past M, K or P gather as zero
// and are never stored. The tile shape is a set of pipeline-overridable constants. Grid:
// (ceil(P / BN), ceil(M / BM), Z).

struct Params {
  M: u32,       // GEMM rows: output channels per group (conv, transposed), Co (mod), Ci (modgrad)
  K: u32,       // GEMM depth
  P: u32,       // GEMM columns: output pixels of one z
  zin: u32,     // z = outer * zin + inner: groups (conv, transposed), phases (mod), 1 (modgrad)
  c_in: u32,    // channels of the gathered tensor
  h: u32,       // its plane
  w: u32,
  c_out: u32,   // channels of the stored tensor
  ho: u32,      // its plane
  wo: u32,
  kh: u32,      // taps (T x T for the modulated conv)
  kw: u32,
  sy: u32,      // stride
  sx: u32,
  dy: u32,      // dilation
  dx: u32,
  pt: u32,      // padding (top, left); the modulated conv's pad
  pl: u32,
  cin_g: u32,   // input channels per group (conv, transposed)
  wq: u32,      // width of the column plane: wo (conv, transposed), Wp (mod), W (modgrad)
  hq: u32,      // height of the phase plane Hp (mod, modgrad)
  up: u32,      // 1, or 2 for the upsampling modulated conv
  aux: u32,     // Co (modgrad: channels of gy), Ci (mod: channels of x)
  pieces: u32,  // modgrad: ceil(W / 8), pieces of a row summed by conv_tiled_pieces
}

@group(0) @binding(0) var<storage, read> src: array<f32>;             // the gathered tensor (x, or gy)
@group(0) @binding(1) var<storage, read> wt: array<f32>;              // the weights (W, or the phase kernels)
@group(0) @binding(2) var<storage, read_write> out: array<f32>;       // the stored tensor (y, or gx)
@group(0) @binding(3) var<uniform> params: Params;
@group(0) @binding(4) var<storage, read> bias: array<f32>;            // [c_out]
@group(0) @binding(5) var<storage, read> st: array<f32>;              // [N, Ci] styles
@group(0) @binding(6) var<storage, read> coef: array<f32>;            // [N, Co] demodulation coefficients
@group(0) @binding(7) var<storage, read> x: array<f32>;               // [N, Ci, H, W] (modgrad)
@group(0) @binding(8) var<storage, read_write> xu: array<f32>;        // [N, Ci, H, W] x * u (modgrad)
@group(0) @binding(9) var<storage, read> xu_in: array<f32>;           // [N, Ci, H, W] (pieces)
@group(0) @binding(10) var<storage, read_write> part_out: array<f32>; // [N, Ci, H, ceil(W/8)] (pieces)

override TM: u32 = 4u;
override TN: u32 = 4u;
override WG_X: u32 = 16u;
override WG_Y: u32 = 16u;
override BK: u32 = 16u;
override PAD: u32 = 4u;
override BM: u32 = WG_Y * TM;
override BN: u32 = WG_X * TN;
override BMP: u32 = BM + PAD;
override BNP: u32 = BN + PAD;
override A_TILE: u32 = BK * BMP;
override B_TILE: u32 = BK * BNP;
override THREADS: u32 = WG_X * WG_Y;

var<workgroup> As: array<f32, A_TILE>;
var<workgroup> Bs: array<f32, B_TILE>;

// What a tile column reads, computed once per workgroup (the columns stay fixed along K): the
// top-left input position of the output pixel col of z and its channel base.
{{COL_FN}}

// What a k reads, computed once per k step for the BK k of the step: (channel, tap row offset,
// tap column offset, phase).
{{K_FN}}

// The weight element A(m, k) of z, for m < M and k < K, ki = k_info(z, k).
{{A_FN}}

// The im2col element B(k, col) of z, for k < K and col < P, from k_info and col_info: zero where
// the tap falls outside the input.
{{B_FN}}

// The epilogue: output element (m, col) of z, m < M and col < P, from its sum v.
{{STORE_FN}}

var<workgroup> Kinfo: array<vec4i, BK>;
var<workgroup> Cinfo: array<vec4i, BN>;

@compute @workgroup_size(WG_X, WG_Y)
fn conv_tiled(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_id) lid3: vec3u, @builtin(local_invocation_index) lid: u32) {
  let z = wid.z;
  let m0 = wid.y * BM;
  let p0 = wid.x * BN;
  for (var c = lid; c < BN; c += THREADS) { Cinfo[c] = col_info(z, min(p0 + c, params.P - 1u)); }
  var acc: array<f32, 64>;
  var ar: array<f32, 8>;
  var br: array<f32, 8>;
  for (var k0 = 0u; k0 < params.K; k0 += BK) {
    for (var k = lid; k < BK; k += THREADS) { Kinfo[k] = k_info(z, min(k0 + k, params.K - 1u)); }
    workgroupBarrier();
    // A by rows of k: consecutive invocations gather consecutive k of one channel.
    for (var idx = lid; idx < BM * BK; idx += THREADS) {
      let r = idx / BK;
      let k = idx % BK;
      var v = 0.0;
      if (m0 + r < params.M && k0 + k < params.K) { v = a_at(z, m0 + r, k0 + k, Kinfo[k]); }
      As[k * BMP + r] = v;
    }
    // B by columns: consecutive invocations gather consecutive output pixels of one k.
    for (var idx = lid; idx < BK * BN; idx += THREADS) {
      let k = idx / BN;
      let c = idx % BN;
      var v = 0.0;
      if (p0 + c < params.P && k0 + k < params.K) { v = b_at(z, Kinfo[k], Cinfo[c]); }
      Bs[k * BNP + c] = v;
    }
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
  for (var i = 0u; i < TM; i++) {
    let m = m0 + lid3.y + i * WG_Y;
    for (var j = 0u; j < TN; j++) {
      let col = p0 + lid3.x + j * WG_X;
      if (m < params.M && col < params.P) { store(z, m, col, acc[i * TN + j]); }
    }
  }
}

// modgrad only, one invocation per piece: part_out[n,i,py,pb] = sum of x * u over the pixels
// 8 pb .. 8 pb + 7 of row py, the pieces shaders/modulated_conv_backward.wgsl's style gradient
// adds up (the general input-gradient kernel writes the same pieces directly). Here P is the
// number of rows N * Ci * H and w their length. 1D grid folded past 65535 workgroups (grid1d).
@compute @workgroup_size(64)
fn conv_tiled_pieces(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let q = gid.x + gid.y * nwg.x * 64u;
  if (q >= params.P * params.pieces) { return; }
  let row = q / params.pieces;
  let px0 = (q % params.pieces) * 8u;
  var s = 0.0;
  for (var e = 0u; e < 8u; e++) {
    if (px0 + e < params.w) { s += xu_in[row * params.w + px0 + e]; }
  }
  part_out[q] = s;
}
