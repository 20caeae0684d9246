// StyleGAN2 modulated convolution (engine/ops/modulated_conv.ts), forward and backward.
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
//
// coef[n,o] = scale * rsqrt(scale^2 * sum_i s[n,i]^2 * sum_t W[o,i,t]^2 + 1e-8) with demodulation,
// coef = scale = 1/sqrt(Ci*k*k) without: the per-sample weight of the definition is coef*s[n,i]*W[o,i].
//
// Two formulations (FUSED is the template slot; see the op file for the measurement that picks one):
//   scaled: K shared by the batch, s applied per input channel inside the loop, coef at the end;
//   fused:  per-sample weights Kn[n,o,i,...] = coef*s*K are built first, the conv reads them as is.
// Both have the same backward kernels, specialized the same way.
//
// Tiling: no workgroup memory (barriers are expensive on CPU adapters, docs/design.md, "Kernel selection"); each
// invocation keeps a block of outputs in registers, like shaders/matmul.wgsl. 1D grids fold past
// 65535 workgroups (grid1d): i = gid.x + gid.y * nwg.x * 64. Per-item kernels work per (o, i) or
// (n, o, i), not per tap: integer division is scalarized on CPU adapters and costs more than a tap.

const FUSED: bool = {{FUSED}};

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
@group(0) @binding(6) var<storage, read> keff: array<f32>;            // [Co, Ci, PH, T, T], fused: [N, Co, Ci, PH, T, T]
@group(0) @binding(7) var<storage, read_write> keff_out: array<f32>;  // same layouts
@group(0) @binding(8) var<storage, read_write> y: array<f32>;         // [N, Co, Ho, Wo]
@group(0) @binding(9) var<storage, read> y_saved: array<f32>;         // [N, Co, Ho, Wo]
@group(0) @binding(10) var<storage, read> gy: array<f32>;             // [N, Co, Ho, Wo]
@group(0) @binding(11) var<storage, read_write> h_out: array<f32>;    // [N, Co]
@group(0) @binding(12) var<storage, read> h: array<f32>;              // [N, Co]
@group(0) @binding(13) var<storage, read_write> gx: array<f32>;       // [N, Ci, H, W]
@group(0) @binding(14) var<storage, read_write> part_out: array<f32>; // [N, Ci, H, ceil(W/8)]
@group(0) @binding(15) var<storage, read> part: array<f32>;           // [N, Ci, H, ceil(W/8)]
@group(0) @binding(16) var<storage, read_write> gs: array<f32>;       // [N, Ci]
@group(0) @binding(17) var<storage, read_write> gk_out: array<f32>;   // [Co, Ci, PH, T, T], fused: [N, Co, Ci, PH, T, T]
@group(0) @binding(18) var<storage, read> gk: array<f32>;             // same layouts
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

// #include <upsample_link>

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

// Fused formulation only: keff_out[n,o,i,...] = coef[n,o] * s[n,i] * keff[o,i,...]. One invocation
// per (n, o, i), looping over its taps.
@compute @workgroup_size(64)
fn modulated_conv_fused_weights(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let noi = linear_index(gid, nwg);     // over [N, Co, Ci]
  if (noi >= p.total) { return; }
  let i = noi % p.Ci;
  let no = noi / p.Ci;
  let n = no / p.Co;
  let per = p.up * p.up * p.T * p.T;    // taps per (o, i)
  let m = coef[no] * st[n * p.Ci + i];
  let src = (noi - n * p.Co * p.Ci) * per;
  for (var t = 0u; t < per; t++) { keff_out[noi * per + t] = m * keff[src + t]; }
}

// x at (row start, column ix), zero outside [0, W): a clamped load, so SIMD lanes never branch.
fn x_at(row: u32, ix: i32) -> f32 {
  return select(0.0, x[row + u32(clamp(ix, 0, i32(p.W) - 1))], ix >= 0 && ix < i32(p.W));
}

// Invocation = 4 output channels x 8 consecutive pixels of one row of one phase plane, the fastest
// block on lavapipe (bench/results/2026-11-notes-from-code.md, "Modulated convolution: tiles and
// helper kernels"). Along a row of taps the 8 input values slide by one, so each tap
// loads 1 new x and 4 weights for 32 FMAs. Scaled: x is multiplied by s[n,i] as it is loaded.
@compute @workgroup_size(64)
fn modulated_conv_forward(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_index) lid: u32) {
  // Lanes run over (n, pixel group); the channel tile is the workgroup's y index, so in the scaled
  // formulation every weight load has one address per workgroup (lavapipe: a scalar load and a
  // broadcast instead of a gather; GPUs: a broadcast read). Grid (ceil(N * n_pg / 64), ceil(Co / 4)).
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
  let wn = select(0u, n, FUSED);
  // Weight base of the 4 channels (clamped: extra channels are computed, not stored).
  var kb: vec4u;
  for (var j = 0u; j < 4u; j++) { kb[j] = ((wn * p.Co + min(o0 + j, p.Co - 1u)) * p.Ci * PH + ph) * tt; }
  var acc0 = vec4f(0.0);  // channel o0, pixels b0..b0+3
  var acc1 = vec4f(0.0);  // channel o0, pixels b0+4..b0+7
  var acc2 = vec4f(0.0);
  var acc3 = vec4f(0.0);
  var acc4 = vec4f(0.0);
  var acc5 = vec4f(0.0);
  var acc6 = vec4f(0.0);
  var acc7 = vec4f(0.0);
  let ix = i32(b0) - i32(p.pad);
  for (var i = 0u; i < p.Ci; i++) {
    let s = select(st[n * p.Ci + i], 1.0, FUSED);
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
        let w0 = keff[kb.x + t];
        let w1 = keff[kb.y + t];
        let w2 = keff[kb.z + t];
        let w3 = keff[kb.w + t];
        acc0 += w0 * xv0;
        acc1 += w0 * xv1;
        acc2 += w1 * xv0;
        acc3 += w1 * xv1;
        acc4 += w2 * xv0;
        acc5 += w2 * xv1;
        acc6 += w3 * xv0;
        acc7 += w3 * xv1;
        let next = s * x_at(row, ix + i32(tx) + 8);
        xv0 = vec4f(xv0.yzw, xv1.x);
        xv1 = vec4f(xv1.yzw, next);
      }
    }
  }
  let accs = array<vec4f, 8>(acc0, acc1, acc2, acc3, acc4, acc5, acc6, acc7);
  let oy = a * p.up + (ph >> 1u);  // phase ph = 2*ry + rx (0 when up = 1)
  let ox0 = b0 * p.up + (ph & 1u);
  for (var j = 0u; j < 4u; j++) {
    let o = o0 + j;
    if (o >= p.Co) { break; }
    let c = select(coef[n * p.Co + o], 1.0, FUSED);
    let base = ((n * p.Co + o) * p.Ho + oy) * p.Wo + ox0;
    for (var e = 0u; e < 8u; e++) {
      if (b0 + e < p.Wp) { y[base + e * p.up] = c * accs[j * 2u + e / 4u][e % 4u]; }
    }
  }
}

// ---- backward ------------------------------------------------------------------------------

// The reductions below run one invocation per item with a serial loop, not a workgroup tree:
// workgroup barriers cost more than the loop on CPU adapters (docs/design.md, "Kernel selection").

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
// (the adjoint of the forward's gather); fused (per-sample K, no coef, no s): gx = u. Scaled also
// writes part_out = sum over its 8 pixels of x*u, the pieces of the style gradient sum_p x*u
// (style_backward adds them up). Invocation = 4 input channels x 8 pixels of a row, the forward's
// blocking: along a row of taps the gy window slides by one (the other way).

// gy at (row start + phase column, phase-plane column b), zero outside [0, Wp).
fn gy_at(row: u32, b: i32) -> f32 {
  return select(0.0, gy[row + u32(clamp(b, 0, i32(p.Wp) - 1)) * p.up], b >= 0 && b < i32(p.Wp));
}

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
  let wn = select(0u, n, FUSED);
  var ib: vec4u;  // offset of each input channel's kernel inside one output channel's block (clamped)
  for (var j = 0u; j < 4u; j++) { ib[j] = min(i0 + j, p.Ci - 1u) * PH * tt; }
  var acc0 = vec4f(0.0);  // channel i0, pixels px0..px0+3
  var acc1 = vec4f(0.0);  // channel i0, pixels px0+4..px0+7
  var acc2 = vec4f(0.0);
  var acc3 = vec4f(0.0);
  var acc4 = vec4f(0.0);
  var acc5 = vec4f(0.0);
  var acc6 = vec4f(0.0);
  var acc7 = vec4f(0.0);
  let b = i32(px0) + i32(p.pad);
  for (var o = 0u; o < p.Co; o++) {
    let c = select(coef[n * p.Co + o], 1.0, FUSED);
    let gbase = (n * p.Co + o) * p.Ho * p.Wo;
    let kbase = (wn * p.Co + o) * p.Ci * PH * tt;
    for (var ph = 0u; ph < PH; ph++) {
      for (var ty = 0u; ty < p.T; ty++) {
        let a = i32(py) + i32(p.pad) - i32(ty);
        if (a < 0 || a >= i32(p.Hp)) { continue; }
        let row = gbase + (u32(a) * p.up + (ph >> 1u)) * p.Wo + (ph & 1u);
        var gv0 = c * vec4f(gy_at(row, b), gy_at(row, b + 1), gy_at(row, b + 2), gy_at(row, b + 3));
        var gv1 = c * vec4f(gy_at(row, b + 4), gy_at(row, b + 5), gy_at(row, b + 6), gy_at(row, b + 7));
        for (var tx = 0u; tx < p.T; tx++) {
          let t = kbase + ph * tt + ty * p.T + tx;
          let w0 = keff[t + ib.x];
          let w1 = keff[t + ib.y];
          let w2 = keff[t + ib.z];
          let w3 = keff[t + ib.w];
          acc0 += w0 * gv0;
          acc1 += w0 * gv1;
          acc2 += w1 * gv0;
          acc3 += w1 * gv1;
          acc4 += w2 * gv0;
          acc5 += w2 * gv1;
          acc6 += w3 * gv0;
          acc7 += w3 * gv1;
          let next = c * gy_at(row, b - i32(tx) - 1);
          gv1 = vec4f(gv0.w, gv1.xyz);
          gv0 = vec4f(next, gv0.xyz);
        }
      }
    }
  }
  let accs = array<vec4f, 8>(acc0, acc1, acc2, acc3, acc4, acc5, acc6, acc7);
  for (var j = 0u; j < 4u; j++) {
    let i = i0 + j;
    if (i >= p.Ci) { break; }
    let s = select(st[n * p.Ci + i], 1.0, FUSED);
    let base = ((n * p.Ci + i) * p.H + py) * p.W + px0;
    var xu = 0.0;
    for (var e = 0u; e < 8u; e++) {
      if (px0 + e < p.W) {
        let v = accs[j * 2u + e / 4u][e % 4u];
        gx[base + e] = s * v;
        xu += x[base + e] * v;
      }
    }
    if (!FUSED) { part_out[((n * p.Ci + i) * p.H + py) * PB + pg % PB] = xu; }
  }
}

// Scaled formulation, one invocation per (n, i):
// gs[n,i] = sum_p x*u - s * sum_o h[n,o] * sum_t W[o,i,t]^2 (modulation, then demodulation), the
// first sum from input_backward's per-block pieces.
@compute @workgroup_size(64)
fn modulated_conv_style_backward(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let ni = linear_index(gid, nwg);
  if (ni >= p.total) { return; }
  let n = ni / p.Ci;
  let i = ni - n * p.Ci;
  let pieces = p.H * ((p.W + 7u) / 8u);
  var acc = 0.0;
  for (var q = 0u; q < pieces; q++) { acc += part[ni * pieces + q]; }
  var dem = 0.0;
  for (var o = 0u; o < p.Co; o++) { dem += h[n * p.Co + o] * energy(o, i); }
  gs[ni] = acc - st[ni] * dem;
}

// Fused formulation, one invocation per (n, i): gs[n,i] = sum_{o,taps} coef[n,o] K[o,i,..] G[n,o,i,..]
// - s * sum_o h[n,o] sum_t W[o,i,t]^2, with G (in gk) the per-sample weight gradient and K = keff.
@compute @workgroup_size(64)
fn modulated_conv_fused_style_backward(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let ni = linear_index(gid, nwg);
  if (ni >= p.total) { return; }
  let n = ni / p.Ci;
  let i = ni - n * p.Ci;
  let s = st[ni];
  let per = p.up * p.up * p.T * p.T;
  var acc = 0.0;
  for (var o = 0u; o < p.Co; o++) {
    let kb = (o * p.Ci + i) * per;
    let gb = ((n * p.Co + o) * p.Ci + i) * per;
    var dotv = 0.0;
    for (var t = 0u; t < per; t++) { dotv += keff[kb + t] * gk[gb + t]; }
    acc += coef[n * p.Co + o] * dotv - s * h[n * p.Co + o] * energy(o, i);
  }
  gs[ni] = acc;
}

// Phase-kernel gradient. Invocation = 4 output x 4 input channels at one (ph, ty, tx):
// scaled: gk_out[o,i,ph,ty,tx] = sum_n coef[n,o] s[n,i] sum_{a,b} gy[n,o,a*up+ry,b*up+rx] x[n,i,a-pad+ty,b-pad+tx];
// fused:  gk_out[n,o,i,ph,ty,tx] = the same inner sum for one sample (the per-sample weight gradient).
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
  var n_lo = 0u;
  var n_hi = p.N;
  if (FUSED) {
    n_lo = idx / (PH * tt * n_it * n_ot);
    n_hi = n_lo + 1u;
  }
  var acc0 = vec4f(0.0);  // per output channel, lanes = the 4 input channels
  var acc1 = vec4f(0.0);
  var acc2 = vec4f(0.0);
  var acc3 = vec4f(0.0);
  for (var n = n_lo; n < n_hi; n++) {
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
    if (FUSED) {
      acc0 = q0; acc1 = q1; acc2 = q2; acc3 = q3;
    } else {
      let sv = vec4f(st[n * p.Ci + min(i0, p.Ci - 1u)], st[n * p.Ci + min(i0 + 1u, p.Ci - 1u)],
                     st[n * p.Ci + min(i0 + 2u, p.Ci - 1u)], st[n * p.Ci + min(i0 + 3u, p.Ci - 1u)]);
      acc0 += coef[n * p.Co + min(o0, p.Co - 1u)] * sv * q0;
      acc1 += coef[n * p.Co + min(o0 + 1u, p.Co - 1u)] * sv * q1;
      acc2 += coef[n * p.Co + min(o0 + 2u, p.Co - 1u)] * sv * q2;
      acc3 += coef[n * p.Co + min(o0 + 3u, p.Co - 1u)] * sv * q3;
    }
  }
  let accs = array<vec4f, 4>(acc0, acc1, acc2, acc3);
  let nn = select(0u, n_lo, FUSED);
  for (var j = 0u; j < 4u; j++) {
    let o = o0 + j;
    if (o >= p.Co) { break; }
    for (var e = 0u; e < 4u; e++) {
      let i = i0 + e;
      if (i < p.Ci) { gk_out[((nn * p.Co + o) * p.Ci + i) * PH * tt + tap] = accs[j][e]; }
    }
  }
}

// Fused formulation: gk_out[o,i,..] = sum_n coef[n,o] s[n,i] G[n,o,i,..] (G in gk). One
// invocation per (o, i).
@compute @workgroup_size(64)
fn modulated_conv_fused_weight_reduce(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let oi = linear_index(gid, nwg);
  if (oi >= p.total) { return; }
  let o = oi / p.Ci;
  let i = oi - o * p.Ci;
  let per = p.up * p.up * p.T * p.T;
  let per_sample = p.Co * p.Ci * per;
  for (var t = 0u; t < per; t++) {
    var acc = 0.0;
    for (var n = 0u; n < p.N; n++) { acc += coef[n * p.Co + o] * st[n * p.Ci + i] * gk[n * per_sample + oi * per + t]; }
    gk_out[oi * per + t] = acc;
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
