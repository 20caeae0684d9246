// What the convolution kernels share (included with `// #include <conv_common>` by
// shaders/conv2d.wgsl and shaders/conv_transpose2d.wgsl; no entry points of its own): the
// parameter block, the forward bindings, the forward block size, and the forward's inner loop over
// input channels, which both forward kernels run once per tap on the same vec4-packed weights.

struct ConvParams {
  n: u32,
  c_in: u32,
  h: u32,
  w: u32,
  c_out: u32,
  ho: u32,
  wo: u32,
  groups: u32,
  cin_g: u32,          // Cg = C_in / G
  cout_g: u32,         // Og = C_out / G
  kh: u32,
  kw: u32,
  sy: u32,
  sx: u32,
  dy: u32,
  dx: u32,
  pt: i32,             // conv2d: padding before the first row / column (after-padding is implied by
  pl: i32,             // Ho, Wo); conv_transpose2d: rows / columns cropped from the full output
  co_blocks: u32,      // forward: ceil(Og / CO); weight gradient: ceil(Og / 4)
  ci_blocks: u32,      // weight gradient: ceil(Cg / 4)
  pix_blocks: u32,     // conv2d forward: ceil(Ho*Wo / 4)
  rows_per_split: u32, // weight gradient: (n, oy) rows summed by one invocation
  c_split: u32,        // forward: input channels per split (Cg when not split)
  per_split: u32,      // forward: invocations per split
  has_bias: u32,
  total: u32,          // invocations that do work
  q_rows: u32,         // conv_transpose2d: ceil(Ho / sy), rows per residue class
  q_blocks: u32,       // conv_transpose2d: ceil(ceil(Wo / sx) / 4), column blocks per row of a class
}

@group(0) @binding(0) var<storage, read> x: array<f32>;          // [N, C_in, H, W]
@group(0) @binding(1) var<storage, read> wp: array<vec4f>;       // [G, OB, Cg, kH, kW] packed weights
@group(0) @binding(2) var<storage, read> bias: array<f32>;       // [C_out] (any buffer when has_bias = 0)
@group(0) @binding(3) var<storage, read_write> y: array<f32>;    // [S, N, C_out, Ho, Wo] (S = 1: the output)
@group(0) @binding(4) var<uniform> params: ConvParams;

const CO: u32 = 8u;          // output channels per forward invocation (a multiple of 4)
const CB: u32 = CO / 4u;     // vec4 weight blocks per forward invocation

// The first packed weight (vec4) of the forward block of output channels o_in_g .. o_in_g + CO - 1
// of group g: CB blocks of Cg * kk vec4s each.
fn block_weights(g: u32, o_in_g: u32) -> u32 {
  return (g * params.co_blocks * CB + o_in_g / 4u) * (params.cin_g * (params.kh * params.kw));
}

// One tap of a forward block: acc[a] (output channel o_in_g + a, 4 pixels) += the tap's weight
// times x, over input channels [c_begin, c_end). xo: the 4 pixels' (clamped) x offsets in channel
// c_begin; mask: 0 for the pixels whose sample is outside the image; wi: the packed weight of
// channel c_begin at this tap.
fn accumulate_tap(acc: ptr<function, array<vec4f, CO>>, xo_begin: vec4u, mask: vec4f, wi_begin: u32,
                  c_begin: u32, c_end: u32, plane: u32) {
  let kk = params.kh * params.kw;
  let w_block = params.cin_g * kk; // vec4s per packed block
  var xo = xo_begin;
  var wi = wi_begin;
  for (var c = c_begin; c < c_end; c++) {
    let xv = vec4f(x[xo.x], x[xo.y], x[xo.z], x[xo.w]) * mask;
    for (var q = 0u; q < CB; q++) {
      let wv = wp[wi + q * w_block]; // output channels o_in_g + 4q .. 4q + 3
      (*acc)[4u * q] += wv.x * xv;
      (*acc)[4u * q + 1u] += wv.y * xv;
      (*acc)[4u * q + 2u] += wv.z * xv;
      (*acc)[4u * q + 3u] += wv.w * xv;
    }
    xo += vec4u(plane);
    wi += kk;
  }
}

// The bias a forward split adds to output channel o: only the first split adds it.
fn split_bias(o: u32, split: u32) -> f32 {
  var b = 0.0;
  if (params.has_bias != 0u && split == 0u) { b = bias[o]; }
  return b;
}
