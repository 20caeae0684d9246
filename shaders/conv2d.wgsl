// 2-D convolution (cross-correlation, NCHW), its weight gradient, and the weight packing that
// both forward kernels (this file's and shaders/conv_transpose2d.wgsl's) read.
//
// Dimensions (as the kernels see them; the ops in engine/ops/conv2d.ts and conv_transpose2d.ts map
// their tensors onto them):
//   N batch, G groups, C_in = G*Cg input channels, C_out = G*Og output channels, kk = kH*kW
//   x  [N, C_in, H, W]             input (zero outside the image: that is the padding)
//   w  [C_out, Cg, kH, kW]         weights as the user holds them
//   wp [G, OB, Cg, kH, kW] vec4f   packed weights: lane l of block ob is output channel 4*ob + l of
//                                  the group (zero past Og); OB = ceil(Og / CO) * CO / 4
//   y  [N, C_out, Ho, Wo]          output (Ho, Wo given: the op computes them, or asks for an input's size)
//   y[n, o, oy, ox] = bias[o] + sum_{c, ky, kx} w[o, c, ky, kx] * x[n, g*Cg + c, oy*sy - pt + ky*dy, ox*sx - pl + kx*dx]
//
// Entry points and who uses them (a convolution and a transposed convolution are each other's
// input gradient, and share one weight-gradient correlation):
//   conv2d_pack_weights     before every forward kernel of either op (weights are small)
//   conv2d_forward          conv2d's forward; conv_transpose2d's input gradient
//   conv2d_backward_weight  conv2d's weight gradient; conv_transpose2d's weight gradient
//   conv2d_sum_splits       sums S partial results when a sum was split over invocations
//   (conv2d's input gradient is conv_transpose2d_forward in shaders/conv_transpose2d.wgsl; the bias
//    gradient is a sum over N, Ho, Wo done by the reduce kernels.)
//
// Tiling (on CPU adapters register blocks beat workgroup memory; docs/design.md, "Kernel selection"): every
// invocation accumulates a block in registers and uses no workgroup memory or barriers. The
// forward block is CO = 8 output channels x 4 pixels: per input channel and tap, 4 x loads, 2 vec4
// weight loads, 32 FMAs; fewer loads per FMA than a 4 x 4 block with scalar weight loads
// (bench/results/2026-11-notes-from-code.md, "Convolution tiles").
// Out-of-image samples are read at a clamped (valid) address and multiplied by a 0/1 mask, so the
// inner loops have no branches; block lanes past the end of a dimension compute on repeated
// (clamped) indices and are simply not stored. 1-D grids of 64-wide workgroups, folded into y past
// 65535 workgroups (engine/kernel.ts grid1d).
//
// Splits: small images with many channels give too few blocks to fill a GPU (StyleGAN2's 8x8 at
// 128 channels is 32 workgroups). The op then splits the forward's input channels (and the weight
// gradient's pixel rows) into S ranges whose partial sums go to [S, ...] and are added by
// conv2d_sum_splits; the first split adds the bias.

// ConvParams, the forward bindings (x, wp, bias, y, params), CO and the forward's channel loop:
// #include <conv_common>

// Packing: wp[g, ob, c, t][l] = w[g*s_group + (4*ob + l)*s_o + c*s_c + t], zero where 4*ob + l >= Og.
// (conv2d weights: s_o = Cg*kk, s_c = kk; transposed-conv weights [C_in, Og, kH, kW]: s_o = kk, s_c = Og*kk.)
struct PackParams {
  n: u32,              // elements of wp (scalars): G * OB * Cg * kk * 4
  og: u32,
  ob: u32,             // OB
  cg: u32,
  kk: u32,
  s_group: u32,
  s_o: u32,
  s_c: u32,
}

struct SumParams {
  m: u32,              // elements of one result
  splits: u32,         // S
}

@group(0) @binding(1) var<storage, read> gy: array<f32>;         // [N, C_out, Ho, Wo]
@group(0) @binding(2) var<storage, read_write> gw: array<f32>;   // [S, C_out, Cg, kH, kW], S splits

@group(0) @binding(0) var<storage, read> partials: array<f32>;   // [S, M]: S partial results
@group(0) @binding(1) var<storage, read_write> total: array<f32>; // [M]
@group(0) @binding(2) var<uniform> sparams: SumParams;

@group(0) @binding(0) var<storage, read> w_in: array<f32>;       // weights in the op's layout
@group(0) @binding(1) var<storage, read_write> w_packed: array<f32>; // [G, OB, Cg, kH, kW, 4]
@group(0) @binding(2) var<uniform> pparams: PackParams;

// #include <index_math>

// The 4 lanes base, base+1, .. with lanes past `last` repeating it (clamped block lanes).
fn lanes(base: u32, last: u32) -> vec4u {
  return vec4u(base) + min(vec4u(0u, 1u, 2u, 3u), vec4u(last));
}

// floor(a / b) and ceil(a / b) for b > 0 (WGSL's integer division truncates toward zero).
fn floor_div(a: i32, b: i32) -> i32 {
  return select(-((-a + b - 1) / b), a / b, a >= 0);
}

fn ceil_div(a: i32, b: i32) -> i32 {
  return select(-((-a) / b), (a + b - 1) / b, a >= 0);
}

@compute @workgroup_size(64)
fn conv2d_pack_weights(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let e = linear_index(gid, nwg);
  if (e >= pparams.n) { return; }
  let l = e % 4u;
  var rest = e / 4u;
  let t = rest % pparams.kk;
  rest = rest / pparams.kk;
  let c = rest % pparams.cg;
  rest = rest / pparams.cg;
  let o = (rest % pparams.ob) * 4u + l;
  let g = rest / pparams.ob;
  var v = 0.0;
  if (o < pparams.og) { v = w_in[g * pparams.s_group + o * pparams.s_o + c * pparams.s_c + t]; }
  w_packed[e] = v;
}

// One invocation: CO output channels (of one group) x 4 consecutive output pixels (flattened
// oy*Wo + ox, so narrow images do not waste lanes). The tap loops are outermost so that the
// addresses and in-image masks of the 4 pixels are computed once per tap, not once per channel.
// Invocation order: pixel block fastest, then channel block, then sample, so neighbouring
// invocations read the same weights.
@compute @workgroup_size(64)
fn conv2d_forward(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let ig = linear_index(gid, nwg);
  if (ig >= params.total) { return; }
  let split = ig / params.per_split;
  let i = ig % params.per_split;
  let c_begin = split * params.c_split;
  let c_end = min(c_begin + params.c_split, params.cin_g);
  let pb = i % params.pix_blocks;
  let rest = i / params.pix_blocks;
  let blocks = params.groups * params.co_blocks;
  let cb = rest % blocks;
  let n = rest / blocks;
  let g = cb / params.co_blocks;
  let o_in_g = (cb % params.co_blocks) * CO;
  let kk = params.kh * params.kw;
  let w0 = block_weights(g, o_in_g);

  let hw = params.ho * params.wo;
  let p0 = pb * 4u;
  let p = min(vec4u(p0) + vec4u(0u, 1u, 2u, 3u), vec4u(hw - 1u));
  let iy0 = vec4i((p / vec4u(params.wo)) * params.sy) - vec4i(params.pt); // [4] input row of tap (0, 0)
  let ix0 = vec4i((p % vec4u(params.wo)) * params.sx) - vec4i(params.pl);
  let plane = params.h * params.w;
  let x_n = (n * params.c_in + g * params.cin_g) * plane;
  let h_max = vec4i(i32(params.h) - 1);
  let w_max = vec4i(i32(params.w) - 1);

  var acc: array<vec4f, CO>; // acc[a]: output channel o_in_g + a, pixels p0 .. p0 + 3
  for (var ky = 0u; ky < params.kh; ky++) {
    let iy = iy0 + vec4i(i32(ky * params.dy));
    let row_ok = (iy >= vec4i(0)) & (iy <= h_max);
    let row = vec4u(clamp(iy, vec4i(0), h_max)) * params.w + vec4u(x_n);
    for (var kx = 0u; kx < params.kw; kx++) {
      let ix = ix0 + vec4i(i32(kx * params.dx));
      let mask = select(vec4f(0.0), vec4f(1.0), row_ok & (ix >= vec4i(0)) & (ix <= w_max));
      let xo = row + vec4u(clamp(ix, vec4i(0), w_max)) + vec4u(c_begin * plane); // [4] x offsets, channel c_begin
      accumulate_tap(&acc, xo, mask, w0 + c_begin * kk + ky * params.kw + kx, c_begin, c_end, plane);
    }
  }

  let o0 = g * params.cout_g + o_in_g;
  for (var a = 0u; a < CO; a++) {
    if (o_in_g + a >= params.cout_g) { break; }
    let b = split_bias(o0 + a, split);
    let base = ((split * params.n + n) * params.c_out + o0 + a) * hw;
    for (var j = 0u; j < 4u; j++) {
      if (p0 + j < hw) { y[base + p0 + j] = acc[a][j] + b; }
    }
  }
}

// Weight gradient, a correlation of the output gradient with the input:
//   gw[s, o, c, ky, kx] = sum over rows r in split s of (n, oy) = (r / Ho, r % Ho), and all ox, of
//                         gy[n, o, oy, ox] * x[n, g*Cg + c, oy*sy - pt + ky*dy, ox*sx - pl + kx*dx]
// One invocation: 4 output channels x 4 input channels of one group at one tap. Per tap, the
// output positions whose input sample is inside the image form a box [oy_lo, oy_hi) x [ox_lo,
// ox_hi), so the pixel loop needs no masks: per pixel, 4 gy loads, 4 x loads, 16 FMAs.
// With S > 1 splits of the N*Ho rows (chosen by the op when there are few weights and many
// pixels), the op sums the S partial gradients afterwards.
@compute @workgroup_size(64)
fn conv2d_backward_weight(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = linear_index(gid, nwg);
  if (i >= params.total) { return; }
  let kk = params.kh * params.kw;
  let tap = i % kk;
  var rest = i / kk;
  let c0 = (rest % params.ci_blocks) * 4u;
  rest = rest / params.ci_blocks;
  let blocks = params.groups * params.co_blocks;
  let cb = rest % blocks;
  let split = rest / blocks;
  let g = cb / params.co_blocks;
  let o_in_g = (cb % params.co_blocks) * 4u;
  let o0 = g * params.cout_g + o_in_g;
  let o_last = params.cout_g - o_in_g - 1u;
  let c_last = params.cin_g - c0 - 1u;
  let ky = tap / params.kw;
  let kx = tap % params.kw;

  // 0 <= oy*sy - pt + ky*dy < H  <=>  oy_lo <= oy < oy_hi (and the same for columns).
  let ty = params.pt - i32(ky * params.dy);
  let tx = params.pl - i32(kx * params.dx);
  let oy_lo = u32(max(0, ceil_div(ty, i32(params.sy))));
  let oy_hi = u32(clamp(floor_div(i32(params.h) - 1 + ty, i32(params.sy)) + 1, 0, i32(params.ho)));
  let ox_lo = u32(max(0, ceil_div(tx, i32(params.sx))));
  let ox_hi = u32(clamp(floor_div(i32(params.w) - 1 + tx, i32(params.sx)) + 1, 0, i32(params.wo)));

  let hw_out = params.ho * params.wo;
  let plane = params.h * params.w;
  let gy_lanes = lanes(o0, o_last) * hw_out;                           // [4] channel offsets in gy
  let x_lanes = lanes(g * params.cin_g + c0, c_last) * plane;           // [4] channel offsets in x
  let r0 = split * params.rows_per_split;
  let r1 = min(r0 + params.rows_per_split, params.n * params.ho);

  var acc0 = vec4f(0.0); // output channel o0 + 0, input channels c0 .. c0 + 3
  var acc1 = vec4f(0.0);
  var acc2 = vec4f(0.0);
  var acc3 = vec4f(0.0);
  for (var r = r0; r < r1; r++) {
    let n = r / params.ho;
    let oy = r % params.ho;
    if (oy < oy_lo || oy >= oy_hi) { continue; }
    let iy = u32(i32(oy * params.sy) - ty);
    let gb = gy_lanes + vec4u(n * params.c_out * hw_out + oy * params.wo);
    var xb = x_lanes + vec4u(n * params.c_in * plane + iy * params.w + u32(i32(ox_lo * params.sx) - tx));
    for (var ox = ox_lo; ox < ox_hi; ox++) {
      let xv = vec4f(x[xb.x], x[xb.y], x[xb.z], x[xb.w]);
      acc0 += gy[gb.x + ox] * xv;
      acc1 += gy[gb.y + ox] * xv;
      acc2 += gy[gb.z + ox] * xv;
      acc3 += gy[gb.w + ox] * xv;
      xb += vec4u(params.sx);
    }
  }

  let accs = array<vec4f, 4>(acc0, acc1, acc2, acc3);
  for (var a = 0u; a < 4u; a++) {
    if (a > o_last) { break; }
    let base = ((split * params.c_out + o0 + a) * params.cin_g + c0) * kk + tap;
    for (var j = 0u; j < 4u; j++) {
      if (j <= c_last) { gw[base + j * kk] = accs[a][j]; }
    }
  }
}

// total[e] = sum_s partials[s, e], in split order. One invocation per element: the generic
// reduction (one workgroup per output, barriers) costs far more on a CPU adapter.
@compute @workgroup_size(64)
fn conv2d_sum_splits(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let e = linear_index(gid, nwg);
  if (e >= sparams.m) { return; }
  var acc = 0.0;
  for (var s = 0u; s < sparams.splits; s++) { acc += partials[s * sparams.m + e]; }
  total[e] = acc;
}
