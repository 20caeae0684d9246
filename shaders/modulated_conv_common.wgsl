// What the general kernels of the modulated conv read (included by shaders/modulated_conv.wgsl and
// modulated_conv_backward.wgsl after shaders/modulated_conv_params.wgsl, the uniform; the dimension
// legend and the maths are in the former's header): one binding per tensor role, the folded 1D
// index, and the demodulation's energy.

@group(0) @binding(0) var<uniform> p: ModParams;
@group(0) @binding(1) var<storage, read> x: array<f32>;               // [N, Ci, H, W]
@group(0) @binding(2) var<storage, read> wt: array<f32>;              // [Co, Ci, k, k] raw weight
@group(0) @binding(3) var<storage, read> st: array<f32>;              // [N, Ci] styles s
@group(0) @binding(4) var<storage, read> coef: array<f32>;            // [N, Co]
@group(0) @binding(5) var<storage, read_write> coef_out: array<f32>;  // [N, Co]
@group(0) @binding(6) var<storage, read> keff: array<f32>;            // [Co, Ci, PH, T, T]
@group(0) @binding(7) var<storage, read_write> keff_out: array<f32>;  // [Co, Ci, PH, T, T]
@group(0) @binding(8) var<storage, read_write> y: array<f32>;         // [N, Co, Ho, Wo]
@group(0) @binding(9) var<storage, read> y_saved: array<f32>;         // [N, Co, Ho, Wo]
@group(0) @binding(10) var<storage, read> gy: array<f32>;             // [N, Co, Ho, Wo]
@group(0) @binding(11) var<storage, read_write> h_out: array<f32>;    // [N, Co]
@group(0) @binding(12) var<storage, read> h: array<f32>;              // [N, Co]
@group(0) @binding(13) var<storage, read_write> gx: array<f32>;       // [N, Ci, H, W]
@group(0) @binding(14) var<storage, read_write> part_out: array<f32>; // [N, Ci, H, ceil(W/8)]
@group(0) @binding(15) var<storage, read> part: array<f32>;           // [N, Ci, H, ceil(W/8)]
@group(0) @binding(16) var<storage, read_write> gs: array<f32>;       // [N, Ci]
@group(0) @binding(17) var<storage, read_write> gk_out: array<f32>;   // [Co, Ci, PH, T, T]
@group(0) @binding(18) var<storage, read> gk: array<f32>;             // [Co, Ci, PH, T, T]
@group(0) @binding(19) var<storage, read_write> gw: array<f32>;       // [Co, Ci, k, k]

const WG: u32 = 64u;

fn linear_index(gid: vec3u, nwg: vec3u) -> u32 {
  return gid.x + gid.y * nwg.x * WG;
}

// sum_t W[o,i,t]^2: the demodulation's per-(o,i) energy.
fn energy(o: u32, i: u32) -> f32 {
  let base = (o * p.Ci + i) * p.k * p.k;
  var e = 0.0;
  for (var t = 0u; t < p.k * p.k; t++) { e += wt[base + t] * wt[base + t]; }
  return e;
}

// The register block of the forward and the input gradient: 4 channels x 8 pixels of a row, a<2j>
// channel j's first 4 pixels and a<2j+1> its last 4. A struct of named vec4s (not an array) so
// that every accumulator stays a register.
struct Block {
  a0: vec4f,
  a1: vec4f,
  a2: vec4f,
  a3: vec4f,
  a4: vec4f,
  a5: vec4f,
  a6: vec4f,
  a7: vec4f,
}

// One tap into the block: channel j's weight w[j] times the 8 window values lo, hi.
fn block_tap(acc: ptr<function, Block>, w: vec4f, lo: vec4f, hi: vec4f) {
  (*acc).a0 += w.x * lo;
  (*acc).a1 += w.x * hi;
  (*acc).a2 += w.y * lo;
  (*acc).a3 += w.y * hi;
  (*acc).a4 += w.z * lo;
  (*acc).a5 += w.z * hi;
  (*acc).a6 += w.w * lo;
  (*acc).a7 += w.w * hi;
}

// The block as an array, for the stores' indexed reads (value e of channel j: [2j + e / 4][e % 4]).
fn block_values(acc: Block) -> array<vec4f, 8> {
  return array<vec4f, 8>(acc.a0, acc.a1, acc.a2, acc.a3, acc.a4, acc.a5, acc.a6, acc.a7);
}
