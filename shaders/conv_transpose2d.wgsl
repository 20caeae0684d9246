// 2-D transposed convolution (PyTorch's conv_transpose2d, NCHW), written as a gather.
//
// Dimensions (as the kernel sees them; engine/ops/conv_transpose2d.ts and conv2d.ts map onto them):
//   N batch, G groups, C_in = G*Cg input channels, C_out = G*Og output channels
//   x  [N, C_in, H, W]             input
//   w  [C_in, Og, kH, kW]          weights (PyTorch's transposed-conv layout), packed for the kernel as
//   wp [G, OB, Cg, kH, kW] vec4f   lane l of block ob = output channel 4*ob + l of the group (shaders/conv2d.wgsl)
//   y  [N, C_out, Ho, Wo]          output (Ho, Wo given by the op)
// The definition scatters: y[n, g*Og + o, iy*sy - pt + ky*dy, ix*sx - pl + kx*dx] += x[n, i, iy, ix] * w[i, o, ky, kx].
// Gathered, output (oy, ox) receives tap (ky, kx) from input iy = (oy + pt - ky*dy) / sy when
// that division is exact and 0 <= iy < H (the same for columns).
//
// Entry point and who uses it:
//   conv_transpose2d_forward   conv_transpose2d's forward; conv2d's input gradient
// conv_transpose2d's gradients are conv2d_forward (input) and conv2d_backward_weight (weights),
// in shaders/conv2d.wgsl: a transposed convolution is the adjoint of a convolution.
//
// Tiling: one invocation accumulates CO = 8 output channels x 4 output columns of one row in
// registers (no workgroup memory: docs/design.md, "Kernel selection"), reading the vec4-packed weights that
// conv2d_pack_weights (shaders/conv2d.wgsl) makes. The 4 columns are sx apart, ox = rx + sx*(q0 + j),
// so they share the residue rx = ox mod sx, and the rows of an invocation share ry = oy mod sy:
// the same taps are exact for all 4, and the 4 input columns they read,
// ix = (rx + pl - kx*dx)/sx + q0 + j, are consecutive. Invocations are ordered by residue class
// (ry, rx) outermost, so a whole workgroup (a SIMD group on a CPU adapter, a warp on a GPU) skips
// the same taps: at stride 2 a 3x3 kernel costs 2.25 taps per output on average, not 9.

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
  pt: i32,             // rows cropped from the top of the full output / columns from the left
  pl: i32,
  co_blocks: u32,      // ceil(Og / CO)
  q_rows: u32,         // ceil(Ho / sy): rows per residue class
  q_blocks: u32,       // ceil(ceil(Wo / sx) / 4): column blocks per row of a residue class
  c_split: u32,        // input channels per split (Cg when not split; see shaders/conv2d.wgsl)
  per_split: u32,      // invocations per split: sy * sx * N * G * co_blocks * q_rows * q_blocks
  has_bias: u32,
  total: u32,          // invocations: S * per_split
}

@group(0) @binding(0) var<storage, read> x: array<f32>;          // [N, C_in, H, W]
@group(0) @binding(1) var<storage, read> wp: array<vec4f>;       // [G, OB, Cg, kH, kW] packed from [C_in, Og, kH, kW]
@group(0) @binding(2) var<storage, read> bias: array<f32>;       // [C_out] (any buffer when has_bias = 0)
@group(0) @binding(3) var<storage, read_write> y: array<f32>;    // [S, N, C_out, Ho, Wo] (S = 1: the output)
@group(0) @binding(4) var<uniform> params: ConvParams;

const WG: u32 = 64u;
const CO: u32 = 8u;          // output channels per invocation (a multiple of 4)
const CB: u32 = CO / 4u;     // vec4 weight blocks per invocation

@compute @workgroup_size(64)
fn conv_transpose2d_forward(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let ig = gid.x + gid.y * nwg.x * WG;
  if (ig >= params.total) { return; }
  let split = ig / params.per_split; // input channels [c_begin, c_end) of the group
  let i = ig % params.per_split;
  let c_begin = split * params.c_split;
  let c_end = min(c_begin + params.c_split, params.cin_g);
  // Invocation order, fastest first: column block, row, channel block, sample, residue class.
  let q0 = (i % params.q_blocks) * 4u;
  var rest = i / params.q_blocks;
  let qy = rest % params.q_rows;
  rest = rest / params.q_rows;
  let blocks = params.groups * params.co_blocks;
  let cb = rest % blocks;
  rest = rest / blocks;
  let n = rest % params.n;
  let cls = rest / params.n;
  let rx = cls % params.sx;
  let oy = cls / params.sx + params.sy * qy;
  if (oy >= params.ho) { return; } // the last row of a residue class may not exist
  let g = cb / params.co_blocks;
  let o_in_g = (cb % params.co_blocks) * CO;
  let kk = params.kh * params.kw;
  let w_block = params.cin_g * kk;                                 // vec4s per packed block
  let w0 = (g * params.co_blocks * CB + o_in_g / 4u) * w_block;   // this invocation's first block
  let plane = params.h * params.w;
  let x_n = (n * params.c_in + g * params.cin_g) * plane;
  let sy = i32(params.sy);
  let sx = i32(params.sx);
  let w_max = vec4i(i32(params.w) - 1);

  var acc: array<vec4f, CO>; // acc[a]: output channel o_in_g + a, columns ox_0 .. ox_3
  for (var ky = 0u; ky < params.kh; ky++) {
    let ty = i32(oy) + params.pt - i32(ky * params.dy);
    if (ty < 0 || ty % sy != 0 || ty / sy >= i32(params.h)) { continue; }
    let row = x_n + u32(ty / sy) * params.w;
    for (var kx = 0u; kx < params.kw; kx++) {
      let tx = i32(rx) + params.pl - i32(kx * params.dx);
      if (((tx % sx) + sx) % sx != 0) { continue; }
      let ix = vec4i(tx / sx + i32(q0)) + vec4i(0, 1, 2, 3); // tx / sx is exact here
      let mask = select(vec4f(0.0), vec4f(1.0), (ix >= vec4i(0)) & (ix <= w_max));
      var xo = vec4u(row + c_begin * plane) + vec4u(clamp(ix, vec4i(0), w_max)); // [4] x offsets, channel c
      var wi = w0 + c_begin * kk + ky * params.kw + kx;                          // packed weight of channel c, this tap
      for (var c = c_begin; c < c_end; c++) {
        let xv = vec4f(x[xo.x], x[xo.y], x[xo.z], x[xo.w]) * mask;
        for (var q = 0u; q < CB; q++) {
          let wv = wp[wi + q * w_block]; // output channels o_in_g + 4q .. 4q + 3
          acc[4u * q] += wv.x * xv;
          acc[4u * q + 1u] += wv.y * xv;
          acc[4u * q + 2u] += wv.z * xv;
          acc[4u * q + 3u] += wv.w * xv;
        }
        xo += vec4u(plane);
        wi += kk;
      }
    }
  }

  let o0 = g * params.cout_g + o_in_g;
  for (var a = 0u; a < CO; a++) {
    if (o_in_g + a >= params.cout_g) { break; }
    var b = 0.0;
    if (params.has_bias != 0u && split == 0u) { b = bias[o0 + a]; }
    let base = (((split * params.n + n) * params.c_out + o0 + a) * params.ho + oy) * params.wo;
    for (var j = 0u; j < 4u; j++) {
      let ox = rx + params.sx * (q0 + j);
      if (ox < params.wo) { y[base + ox] = acc[a][j] + b; }
    }
  }
}
