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

// ConvParams, the forward bindings (x, wp, bias, y, params), CO and the forward's channel loop
// (the same as conv2d_forward's):
// #include <conv_common>

// #include <index_math>

@compute @workgroup_size(64)
fn conv_transpose2d_forward(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let ig = linear_index(gid, nwg);
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
  let w0 = block_weights(g, o_in_g);
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
      let xo = vec4u(row + c_begin * plane) + vec4u(clamp(ix, vec4i(0), w_max)); // [4] x offsets, channel c_begin
      accumulate_tap(&acc, xo, mask, w0 + c_begin * kk + ky * params.kw + kx, c_begin, c_end, plane);
    }
  }

  let o0 = g * params.cout_g + o_in_g;
  for (var a = 0u; a < CO; a++) {
    if (o_in_g + a >= params.cout_g) { break; }
    let b = split_bias(o0 + a, split);
    let base = (((split * params.n + n) * params.c_out + o0 + a) * params.ho + oy) * params.wo;
    for (var j = 0u; j < 4u; j++) {
      let ox = rx + params.sx * (q0 + j);
      if (ox < params.wo) { y[base + ox] = acc[a][j] + b; }
    }
  }
}
