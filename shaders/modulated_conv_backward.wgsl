// StyleGAN2 modulated convolution, backward kernels (engine/ops/modulated_conv.ts). The dimension
// legend, the phase convolution and the coefficient are defined in shaders/modulated_conv.wgsl's
// header; the uniform and row reads in shaders/modulated_conv_params.wgsl, the bindings and helpers
// in shaders/modulated_conv_common.wgsl.
//
// The reductions here run one invocation per item with a serial loop, not a workgroup tree:
// workgroup barriers cost more than the loop on CPU adapters (docs/design.md, runtime facts).

// #include <modulated_conv_params>

// #include <modulated_conv_common>

// #include <modulated_conv_upsample_link>

// One invocation per (n, o): h_out = coef^2 * sum_p gy*y (the demodulation's share of the
// gradient: d coef / d A = -coef^3/2 with A = sum_i s^2 sum_t W^2, and d L / d coef = sum gy*y/coef);
// 0 without demodulation.
@compute @workgroup_size(64)
fn modulated_conv_coef_backward(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let no = linear_index(gid, nwg);
  if (no >= p.total) { return; }
  if (p.demod == 0u) {
    h_out[no] = 0.0;
    return;
  }
  let plane = p.Ho * p.Wo;
  var acc = 0.0;
  for (var q = 0u; q < plane; q++) { acc += gy[no * plane + q] * y_saved[no * plane + q]; }
  let c = coef[no];
  h_out[no] = c * c * acc;
}

// gx[n,i,py,px] = s[n,i] * u, u = sum_o coef[n,o] * sum_{ph,ty,tx} gy[n,o,(py+pad-ty)*up+ry,(px+pad-tx)*up+rx] * K[o,i,ph,ty,tx]
// (the adjoint of the forward's gather). It also writes part_out = sum over its 8 pixels of x*u, the pieces of the style gradient sum_p x*u
// (style_backward adds them up). Invocation = 4 input channels x 8 pixels of a row, the forward's
// blocking: along a row of taps the gy window slides by one (the other way).

@compute @workgroup_size(64)
fn modulated_conv_input_backward(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_index) lid: u32) {
  // As the forward: lanes over (n, pixel group), the input-channel tile from the workgroup's y
  // index (uniform weight loads). Grid (ceil(N * n_pg / 64), ceil(Ci / 4)).
  let lane = wid.x * WG + lid;
  if (lane >= p.total) { return; }
  let PB = (p.W + 7u) / 8u;
  let n_pg = p.H * PB;
  let pg = lane % n_pg;
  let it = wid.y;
  let n = lane / n_pg;
  let px0 = (pg % PB) * 8u;
  let py = pg / PB;
  let i0 = it * 4u;
  let tt = p.T * p.T;
  let PH = p.up * p.up;
  var ib: vec4u;  // offset of each input channel's kernel inside one output channel's block (clamped)
  for (var j = 0u; j < 4u; j++) { ib[j] = min(i0 + j, p.Ci - 1u) * PH * tt; }
  var acc = Block();  // channels i0 .. i0 + 3, pixels px0 .. px0 + 7
  let b = i32(px0) + i32(p.pad);
  for (var o = 0u; o < p.Co; o++) {
    let c = coef[n * p.Co + o];
    let gbase = (n * p.Co + o) * p.Ho * p.Wo;
    let kbase = o * p.Ci * PH * tt;
    for (var ph = 0u; ph < PH; ph++) {
      for (var ty = 0u; ty < p.T; ty++) {
        let a = i32(py) + i32(p.pad) - i32(ty);
        if (a < 0 || a >= i32(p.Hp)) { continue; }
        let row = gbase + (u32(a) * p.up + (ph >> 1u)) * p.Wo + (ph & 1u);
        var gv0 = c * vec4f(gy_at(row, b), gy_at(row, b + 1), gy_at(row, b + 2), gy_at(row, b + 3));
        var gv1 = c * vec4f(gy_at(row, b + 4), gy_at(row, b + 5), gy_at(row, b + 6), gy_at(row, b + 7));
        for (var tx = 0u; tx < p.T; tx++) {
          let t = kbase + ph * tt + ty * p.T + tx;
          block_tap(&acc, vec4f(keff[t + ib.x], keff[t + ib.y], keff[t + ib.z], keff[t + ib.w]), gv0, gv1);
          let next = c * gy_at(row, b - i32(tx) - 1);
          gv1 = vec4f(gv0.w, gv1.xyz);
          gv0 = vec4f(next, gv0.xyz);
        }
      }
    }
  }
  let accs = block_values(acc);
  for (var j = 0u; j < 4u; j++) {
    let i = i0 + j;
    if (i >= p.Ci) { break; }
    let s = st[n * p.Ci + i];
    let base = ((n * p.Ci + i) * p.H + py) * p.W + px0;
    var xu = 0.0;
    for (var e = 0u; e < 8u; e++) {
      if (px0 + e < p.W) {
        let v = accs[j * 2u + e / 4u][e % 4u];
        gx[base + e] = s * v;
        xu += x[base + e] * v;
      }
    }
    part_out[((n * p.Ci + i) * p.H + py) * PB + pg % PB] = xu;
  }
}

// One invocation per (n, i):
// gs[n,i] = sum_p x*u - s * sum_o h[n,o] * sum_t W[o,i,t]^2 (modulation, then demodulation), the
// first sum from input_backward's per-block pieces.
@compute @workgroup_size(64)
fn modulated_conv_style_backward(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let ni = linear_index(gid, nwg);
  if (ni >= p.total) { return; }
  let pieces = p.H * ((p.W + 7u) / 8u);
  var acc = 0.0;
  for (var q = 0u; q < pieces; q++) { acc += part[ni * pieces + q]; }
  let n = ni / p.Ci;
  let i = ni - n * p.Ci;
  var dem = 0.0;
  for (var o = 0u; o < p.Co; o++) { dem += h[n * p.Co + o] * energy(o, i); }
  gs[ni] = acc - st[ni] * dem;
}

// Phase-kernel gradient. Invocation = 4 output x 4 input channels at one (ph, ty, tx):
// gk_out[o,i,ph,ty,tx] = sum_n coef[n,o] s[n,i] sum_{a,b} gy[n,o,a*up+ry,b*up+rx] x[n,i,a-pad+ty,b-pad+tx].
@compute @workgroup_size(64)
fn modulated_conv_weight_backward(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let idx = linear_index(gid, nwg);
  if (idx >= p.total) { return; }
  let tt = p.T * p.T;
  let PH = p.up * p.up;
  let n_ot = (p.Co + 3u) / 4u;
  let n_it = (p.Ci + 3u) / 4u;
  let tap = idx % (PH * tt);
  let it = (idx / (PH * tt)) % n_it;
  let ot = (idx / (PH * tt * n_it)) % n_ot;
  let ph = tap / tt;
  let ty = (tap % tt) / p.T;
  let tx = tap % p.T;
  let ry = ph >> 1u;
  let rx = ph & 1u;
  let o0 = ot * 4u;
  let i0 = it * 4u;
  // Rows a and columns b whose input tap lies inside the plane.
  let a_lo = u32(max(0, i32(p.pad) - i32(ty)));
  let a_hi = u32(clamp(i32(p.H) + i32(p.pad) - i32(ty), 0, i32(p.Hp)));
  let b_lo = u32(max(0, i32(p.pad) - i32(tx)));
  let b_hi = u32(clamp(i32(p.W) + i32(p.pad) - i32(tx), 0, i32(p.Wp)));
  var acc0 = vec4f(0.0);  // per output channel, lanes = the 4 input channels
  var acc1 = vec4f(0.0);
  var acc2 = vec4f(0.0);
  var acc3 = vec4f(0.0);
  for (var n = 0u; n < p.N; n++) {
    var gb: vec4u;
    var xb: vec4u;
    for (var j = 0u; j < 4u; j++) {
      gb[j] = (n * p.Co + min(o0 + j, p.Co - 1u)) * p.Ho * p.Wo + ry * p.Wo + rx;
      xb[j] = (n * p.Ci + min(i0 + j, p.Ci - 1u)) * p.H * p.W;
    }
    var q0 = vec4f(0.0);
    var q1 = vec4f(0.0);
    var q2 = vec4f(0.0);
    var q3 = vec4f(0.0);
    for (var a = a_lo; a < a_hi; a++) {
      let gr = a * p.up * p.Wo;
      let xr = (a + ty - p.pad) * p.W + tx - p.pad;  // unsigned wrap-around cancels with b >= b_lo
      for (var b = b_lo; b < b_hi; b++) {
        let g = gr + b * p.up;
        let xo = xr + b;
        let xv = vec4f(x[xb.x + xo], x[xb.y + xo], x[xb.z + xo], x[xb.w + xo]);
        q0 += gy[gb.x + g] * xv;
        q1 += gy[gb.y + g] * xv;
        q2 += gy[gb.z + g] * xv;
        q3 += gy[gb.w + g] * xv;
      }
    }
    let sv = vec4f(st[n * p.Ci + min(i0, p.Ci - 1u)], st[n * p.Ci + min(i0 + 1u, p.Ci - 1u)],
                   st[n * p.Ci + min(i0 + 2u, p.Ci - 1u)], st[n * p.Ci + min(i0 + 3u, p.Ci - 1u)]);
    acc0 += coef[n * p.Co + min(o0, p.Co - 1u)] * sv * q0;
    acc1 += coef[n * p.Co + min(o0 + 1u, p.Co - 1u)] * sv * q1;
    acc2 += coef[n * p.Co + min(o0 + 2u, p.Co - 1u)] * sv * q2;
    acc3 += coef[n * p.Co + min(o0 + 3u, p.Co - 1u)] * sv * q3;
  }
  let accs = array<vec4f, 4>(acc0, acc1, acc2, acc3);
  for (var j = 0u; j < 4u; j++) {
    let o = o0 + j;
    if (o >= p.Co) { break; }
    for (var e = 0u; e < 4u; e++) {
      let i = i0 + e;
      if (i < p.Ci) { gk_out[(o * p.Ci + i) * PH * tt + tap] = accs[j][e]; }
    }
  }
}

// One invocation per (o, i): gw = (phase-kernel gradient mapped back to W) - W * sum_n h s^2.
// Plain: the phase kernel is W itself; upsampled: the adjoint of up_weights.
@compute @workgroup_size(64)
fn modulated_conv_weight_finish(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let oi = linear_index(gid, nwg);
  if (oi >= p.total) { return; }
  let o = oi / p.Ci;
  let i = oi - o * p.Ci;
  var d = 0.0;
  for (var n = 0u; n < p.N; n++) {
    let s = st[n * p.Ci + i];
    d += h[n * p.Co + o] * s * s;
  }
  let kk = p.k * p.k;
  if (p.up == 1u) {
    for (var t = 0u; t < kk; t++) { gw[oi * kk + t] = gk[oi * kk + t] - wt[oi * kk + t] * d; }
    return;
  }
  if (p.T == 2u) {
    // The split upsampling path: the adjoint of up_weights_transposed, each phase tap back to its kernel tap.
    var acc = array<f32, 9>();
    for (var ph = 0u; ph < 4u; ph++) {
      for (var ty = 0u; ty < 2u; ty++) {
        for (var tx = 0u; tx < 2u; tx++) {
          let ky = (ph >> 1u) + 2u - 2u * ty;
          let kx = (ph & 1u) + 2u - 2u * tx;
          if (ky < 3u && kx < 3u) { acc[ky * 3u + kx] += gk[oi * 16u + ph * 4u + ty * 2u + tx]; }
        }
      }
    }
    for (var t = 0u; t < 9u; t++) { gw[oi * 9u + t] = acc[t] - wt[oi * 9u + t] * d; }
    return;
  }
  // Upsampled: the adjoint of up_weights, sum over phases of L_ry^T G L_rx.
  var g = mat3x3f();
  for (var ph = 0u; ph < 4u; ph++) {
    let at = oi * 36u + ph * 9u;
    let gm = mat3x3f(vec3f(gk[at], gk[at + 3u], gk[at + 6u]), vec3f(gk[at + 1u], gk[at + 4u], gk[at + 7u]),
                     vec3f(gk[at + 2u], gk[at + 5u], gk[at + 8u]));
    g += transpose(link(ph >> 1u)) * gm * link(ph & 1u);
  }
  for (var ky = 0u; ky < 3u; ky++) {
    for (var kx = 0u; kx < 3u; kx++) {
      let at = oi * 9u + ky * 3u + kx;
      gw[at] = g[kx][ky] - wt[at] * d;
    }
  }
}
