// What every kernel of the modulated conv reads (included by shaders/modulated_conv.wgsl and
// modulated_conv_backward.wgsl; the dimension legend and the maths are in the former's header):
// the uniform, one binding per tensor role, the folded 1D index, and the demodulation's energy.

struct ModParams {
  N: u32,
  Ci: u32,
  Co: u32,
  H: u32,
  W: u32,
  k: u32,
  up: u32,
  T: u32,
  pad: u32,
  Hp: u32,
  Wp: u32,
  Ho: u32,
  Wo: u32,
  demod: u32,   // 1: demodulate
  total: u32,   // invocations this dispatch needs (items past it return at once)
  scale: f32,   // 1/sqrt(Ci*k*k)
}

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
