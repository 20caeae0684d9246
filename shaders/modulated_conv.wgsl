// StyleGAN2 modulated convolution (engine/ops/modulated_conv.ts): the forward kernels here, the
// backward ones in shaders/modulated_conv_backward.wgsl, their parameters and row reads in
// shaders/modulated_conv_params.wgsl, bindings and helpers in shaders/modulated_conv_common.wgsl
// (both included by both).
//
// Dimension legend:
//   N batch, Ci input channels, Co output channels, H x W input plane, k kernel side (odd),
//   up 1 (plain conv) or 2 (transposed conv stride 2 + [1,3,3,1] blur, fused), PH = up*up phases,
//   T taps per side of one phase's kernel (k plain; 3 upsampled, where k = 3),
//   Hp x Wp one phase plane of the output, Ho x Wo = (Hp*up) x (Wp*up) the output.
//
// The op is written as one "phase convolution" for both paths:
//   y[n,o, a*up+ry, b*up+rx] = coef[n,o] * sum_i s[n,i] * sum_{ty,tx} x[n,i, a-pad+ty, b-pad+tx] * K[o,i,ph,ty,tx]
// with ph = 2*ry + rx (0 when up = 1) and x = 0 outside the plane. Plain: K = W, T = k, pad = the
// padding. Upsampled: K = the transposed conv composed with the blur, split into its 4 stride-2
// phases (derived in engine/ops/modulated_conv.ts, upsampleLink): T = 3 and pad = 1, so each output
// pixel gathers 3x3 taps per channel, like the plain conv, and nothing of size 2H+1 is ever stored.
// Large upsampling convs take the split path instead (the op file says when): K = the transposed
// conv alone, T = 2 and pad = 1 (up_weights_transposed), output (2H+2) x 2Wp, blurred afterwards.
//
// coef[n,o] = scale * rsqrt(scale^2 * sum_i s[n,i]^2 * sum_t W[o,i,t]^2 + 1e-8) with demodulation,
// coef = scale = 1/sqrt(Ci*k*k) without: the per-sample weight of the definition is coef*s[n,i]*W[o,i].
//
// Formulation (the op file says why): K shared by the batch, s applied per input channel inside
// the loop, coef at the end.
//
// Tiling: no workgroup memory (barriers are expensive on CPU adapters, docs/design.md, "Kernel selection"); each
// invocation keeps a block of outputs in registers, like shaders/matmul.wgsl. 1D grids fold past
// 65535 workgroups (grid1d): i = gid.x + gid.y * nwg.x * 64. Per-item kernels work per (o, i) or
// (n, o, i), not per tap: integer division is scalarized on CPU adapters and costs more than a tap.

// #include <modulated_conv_params>

// #include <modulated_conv_common>

// One invocation per (o, 4 batch items): coef_out[n,o] for n = 4 nb .. 4 nb + 3 (total = ceil(N/4) * Co).
// Each (o, i) energy is loaded once for the 4 items: on CPU adapters every storage load costs
// about as much as 10 multiply-adds, and per (n, o) this kernel is a visible share of a batch-8
// forward (bench/results/2026-11-notes-from-code.md, "Modulated convolution: tiles and helper
// kernels").
@compute @workgroup_size(64)
fn modulated_conv_coef(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let idx = linear_index(gid, nwg);
  if (idx >= p.total) { return; }
  let n0 = (idx / p.Co) * 4u;
  let o = idx % p.Co;
  let last = p.N - 1u;
  var c = vec4f(p.scale);
  if (p.demod == 1u) {
    var a = vec4f(0.0);
    for (var i = 0u; i < p.Ci; i++) {
      let s = vec4f(st[min(n0, last) * p.Ci + i], st[min(n0 + 1u, last) * p.Ci + i], st[min(n0 + 2u, last) * p.Ci + i], st[min(n0 + 3u, last) * p.Ci + i]);
      a += s * s * energy(o, i);
    }
    c = p.scale * inverseSqrt(p.scale * p.scale * a + 1e-8);
  }
  for (var j = 0u; j < 4u; j++) {
    if (n0 + j < p.N) { coef_out[(n0 + j) * p.Co + o] = c[j]; }
  }
}

// #include <modulated_conv_upsample_link>

// Upsampling only, one invocation per (o, i): keff_out[o,i,ph,ty,tx] = (L_ry W L_rx^T)[ty][tx].
@compute @workgroup_size(64)
fn modulated_conv_up_weights(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let oi = linear_index(gid, nwg);
  if (oi >= p.total) { return; }
  let w = oi * 9u;
  // Column kx holds W[0..2][kx].
  let wm = mat3x3f(vec3f(wt[w], wt[w + 3u], wt[w + 6u]), vec3f(wt[w + 1u], wt[w + 4u], wt[w + 7u]),
                   vec3f(wt[w + 2u], wt[w + 5u], wt[w + 8u]));
  for (var ph = 0u; ph < 4u; ph++) {
    let kp = link(ph >> 1u) * wm * transpose(link(ph & 1u));  // column tx, row ty
    let at = oi * 36u + ph * 9u;
    for (var ty = 0u; ty < 3u; ty++) {
      for (var tx = 0u; tx < 3u; tx++) { keff_out[at + ty * 3u + tx] = kp[tx][ty]; }
    }
  }
}

// The split upsampling path (T = 2: the stride-2 transposed conv alone, its blur a separate pass),
// one invocation per (o, i): phase r's tap t reads x[a - 1 + t] for output row 2a + r, which is
// kernel tap ky = r + 2 - 2t of the transposed conv (none where that is 3: phase 1 has one tap).
@compute @workgroup_size(64)
fn modulated_conv_up_weights_transposed(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let oi = linear_index(gid, nwg);
  if (oi >= p.total) { return; }
  for (var ph = 0u; ph < 4u; ph++) {
    for (var ty = 0u; ty < 2u; ty++) {
      for (var tx = 0u; tx < 2u; tx++) {
        let ky = (ph >> 1u) + 2u - 2u * ty;
        let kx = (ph & 1u) + 2u - 2u * tx;
        keff_out[oi * 16u + ph * 4u + ty * 2u + tx] = select(0.0, wt[oi * 9u + min(ky, 2u) * 3u + min(kx, 2u)], ky < 3u && kx < 3u);
      }
    }
  }
}

// Invocation = 4 output channels x 8 consecutive pixels of one row of one phase plane, the fastest
// block on lavapipe (bench/results/2026-11-notes-from-code.md, "Modulated convolution: tiles and
// helper kernels"). Along a row of taps the 8 input values slide by one, so each tap
// loads 1 new x and 4 weights for 32 FMAs. x is multiplied by s[n,i] as it is loaded.
@compute @workgroup_size(64)
fn modulated_conv_forward(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_index) lid: u32) {
  // Lanes run over (n, pixel group); the channel tile is the workgroup's y index, so every weight
  // load has one address per workgroup (lavapipe: a scalar load and a broadcast instead of a
  // gather; GPUs: a broadcast read). Grid (ceil(N * n_pg / 64), ceil(Co / 4)).
  let lane = wid.x * WG + lid;
  if (lane >= p.total) { return; }
  let PB = (p.Wp + 7u) / 8u;
  let n_pg = p.up * p.up * p.Hp * PB;
  let pg = lane % n_pg;
  let ot = wid.y;
  let n = lane / n_pg;
  let b0 = (pg % PB) * 8u;
  let a = (pg / PB) % p.Hp;
  let ph = pg / (PB * p.Hp);
  let tt = p.T * p.T;
  let PH = p.up * p.up;
  let o0 = ot * 4u;
  // Weight base of the 4 channels (clamped: extra channels are computed, not stored).
  var kb: vec4u;
  for (var j = 0u; j < 4u; j++) { kb[j] = (min(o0 + j, p.Co - 1u) * p.Ci * PH + ph) * tt; }
  var acc = Block();  // channels o0 .. o0 + 3, pixels b0 .. b0 + 7
  let ix = i32(b0) - i32(p.pad);
  for (var i = 0u; i < p.Ci; i++) {
    let s = st[n * p.Ci + i];
    let xbase = (n * p.Ci + i) * p.H * p.W;
    let kofs = i * PH * tt;
    for (var ty = 0u; ty < p.T; ty++) {
      let iy = i32(a) - i32(p.pad) + i32(ty);
      if (iy < 0 || iy >= i32(p.H)) { continue; }
      let row = xbase + u32(iy) * p.W;
      var xv0 = s * vec4f(x_at(row, ix), x_at(row, ix + 1), x_at(row, ix + 2), x_at(row, ix + 3));
      var xv1 = s * vec4f(x_at(row, ix + 4), x_at(row, ix + 5), x_at(row, ix + 6), x_at(row, ix + 7));
      for (var tx = 0u; tx < p.T; tx++) {
        let t = kofs + ty * p.T + tx;
        block_tap(&acc, vec4f(keff[kb.x + t], keff[kb.y + t], keff[kb.z + t], keff[kb.w + t]), xv0, xv1);
        let next = s * x_at(row, ix + i32(tx) + 8);
        xv0 = vec4f(xv0.yzw, xv1.x);
        xv1 = vec4f(xv1.yzw, next);
      }
    }
  }
  let accs = block_values(acc);
  let oy = a * p.up + (ph >> 1u);  // phase ph = 2*ry + rx (0 when up = 1)
  let ox0 = b0 * p.up + (ph & 1u);
  for (var j = 0u; j < 4u; j++) {
    let o = o0 + j;
    if (o >= p.Co) { break; }
    let c = coef[n * p.Co + o];
    let base = ((n * p.Co + o) * p.Ho + oy) * p.Wo + ox0;
    for (var e = 0u; e < 8u; e++) {
      if (b0 + e < p.Wp) { y[base + e * p.up] = c * accs[j * 2u + e / 4u][e % 4u]; }
    }
  }
}
