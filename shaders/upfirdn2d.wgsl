// upfirdn2d: upsample (zero insertion), pad (negative pads crop), FIR filter (true convolution),
// downsample, in one pass, and its backward (engine/ops/upfirdn2d.ts; reference and the step-by-
// step definition in engine/reference/upfirdn2d.ts).
//
// Dimensions: P = N*C planes, each filtered independently.
//   upfirdn2d_forward:  src = x [P, in_h, in_w], dst = y [P, out_h, out_w], fir = f [k_h, k_w]
//   upfirdn2d_backward: src = gy [P, in_h, in_w] (the forward's output size),
//                       dst = gx [P, out_h, out_w] (the forward's input size)
//
// Each invocation computes R = 4 outputs of one row, blocks_x apart (see `filter4` and `run`); no zero of the
// upsampled image is ever read. Per axis, the window of output o starts at upsampled position s = o*down - pad0 and covers taps t in [0, k):
// input sample i sits at position i*up, so it meets tap t = i*up - s, and the samples in the
// window are i in [ceil(s/up), floor((s+k-1)/up)]; those outside the input contribute 0. Cropping
// (negative pads) needs no special case: a cropped sample is simply never inside any window.
//
// The forward weights tap t by f[k-1-t] (true convolution). The backward is the adjoint, which is
// again an upfirdn2d: of gy with the flipped kernel (so tap t weighs f[t]), up and down swapped,
// and pad0' = k - 1 - pad0 per axis (derivation in engine/ops/upfirdn2d.ts). Both entries share
// `filter4`; only the tap-to-weight map differs (fir_flip true forward, false backward).
//
// No workgroup memory: kernels are small (4x4), and on the CPU adapter barriers cost more than the
// re-reads they would save. 4 outputs per invocation load each weight once for all four, and the
// grid is flat because tiny planes would leave most lanes of a per-plane workgroup idle
// (bench/results/2026-11-notes-from-code.md, "upfirdn2d").

struct UpfirdnParams {
  in_w: i32,
  in_h: i32,
  out_w: i32,
  out_h: i32,
  up_x: i32,
  up_y: i32,
  down_x: i32,
  down_y: i32,
  k_w: i32,
  k_h: i32,
  pad_x0: i32,   // may be negative (crop)
  pad_y0: i32,
  taps_x: i32,   // ceil(k_w / up_x): input samples per window along x
  taps_y: i32,
  out_step: i32, // outputs between an invocation's 4: blocks_x, a multiple of S = up_x / gcd(up_x,
                 // down_x) (outputs S apart share their tap phase)
  blocks_x: u32, // invocations per output row: ceil(out_w / (R * S)) * S
  n: u32,        // invocations: P * out_h * blocks_x
}

@group(0) @binding(0) var<storage, read> src: array<f32>;         // [P, in_h, in_w]
@group(0) @binding(1) var<storage, read> fir: array<f32>;         // [k_h, k_w]
@group(0) @binding(2) var<storage, read_write> dst: array<f32>;   // [P, out_h, out_w]
@group(0) @binding(3) var<uniform> params: UpfirdnParams;

const WG: u32 = 64u;

// ceil(a / b) for b > 0, without integer division (scalarized per lane on CPU adapters, and the
// indices here are far below 2^24): the f32 quotient, corrected in case it is an ulp off.
fn ceil_div(a: i32, b: i32) -> i32 {
  var q = i32(ceil(f32(a) / f32(b)));
  q = select(q, q + 1, q * b < a);
  q = select(q, q - 1, (q - 1) * b >= a);
  return q;
}

// The 4 outputs ox0 + r*out_step (r = 0..3) of row oy of `plane`. out_step is a multiple of S, and
// outputs a multiple of S apart have windows that start out_step*down/up input samples apart at
// the same tap phase, so each weight is loaded once for all four.
fn filter4(ox0: i32, oy: i32, plane: u32, fir_flip: bool) -> vec4f {
  let p = params;
  // Window start in upsampled coordinates; the first input sample at or after it, and its tap.
  let sx = ox0 * p.down_x - p.pad_x0;
  let sy = oy * p.down_y - p.pad_y0;
  let ix0 = ceil_div(sx, p.up_x);
  let iy0 = ceil_div(sy, p.up_y);
  let tx0 = ix0 * p.up_x - sx;                             // in [0, up_x)
  let ty0 = iy0 * p.up_y - sy;
  let step = p.out_step * p.down_x / p.up_x;               // input samples between the 4 windows
  let ixs = vec4i(ix0, ix0 + step, ix0 + 2 * step, ix0 + 3 * step);
  // Every invocation runs the same loop trips, ceil(k / up) samples per axis (uniform control
  // flow: the CPU adapter runs invocations as SIMD lanes). Samples outside the input or taps past
  // the kernel get weight 0, read from a clamped address.
  // Tap t -> weight index: k-1-t (flip) or t, i.e. f0 + t * fs.
  let fx0 = select(0, p.k_w - 1, fir_flip);
  let fy0 = select(0, p.k_h - 1, fir_flip);
  let fs = select(1, -1, fir_flip);
  let base = i32(plane) * p.in_h * p.in_w;
  let last = vec4i(p.in_w - 1);
  var acc = vec4f(0.0);
  for (var jy = 0; jy < p.taps_y; jy++) {
    let iy = iy0 + jy;
    let ty = ty0 + jy * p.up_y;
    let row_ok = iy >= 0 && iy < p.in_h && ty < p.k_h;
    let src_row = base + clamp(iy, 0, p.in_h - 1) * p.in_w;
    let fir_row = (fy0 + min(ty, p.k_h - 1) * fs) * p.k_w;
    for (var jx = 0; jx < p.taps_x; jx++) {
      let tx = tx0 + jx * p.up_x;
      let w = select(0.0, fir[fir_row + fx0 + min(tx, p.k_w - 1) * fs], row_ok && tx < p.k_w);
      let ix = ixs + vec4i(jx);
      let at = src_row + clamp(ix, vec4i(0), last);
      let v = vec4f(src[at.x], src[at.y], src[at.z], src[at.w]);
      acc += select(vec4f(0.0), v, (ix >= vec4i(0)) & (ix <= last)) * w;
    }
  }
  return acc;
}

// 1D grid over n = P * out_h * blocks_x invocations (64 per workgroup, folded into y past 65535
// workgroups): small planes (4x4 .. 32x32) would leave most lanes of a per-plane workgroup idle.
// Invocation i = (plane, oy, block b = q*S + phase) writes outputs ox0 + r*out_step, r = 0..3,
// ox0 = q*S + phase, out_step = S * blocks_x / S: neighbouring invocations write (and read)
// neighbouring addresses for each r, which keeps GPU loads coalesced and CPU lanes contiguous.
fn run(gid: vec3u, nwg: vec3u, fir_flip: bool) {
  let i = gid.x + gid.y * nwg.x * WG;
  if (i >= params.n) { return; }
  let b = i % params.blocks_x;
  let rest = i / params.blocks_x;
  let oy = rest % u32(params.out_h);
  let plane = rest / u32(params.out_h);
  let y = filter4(i32(b), i32(oy), plane, fir_flip);
  let row = rest * u32(params.out_w);
  for (var r = 0u; r < 4u; r++) {
    let ox = b + r * u32(params.out_step);
    if (ox < u32(params.out_w)) { dst[row + ox] = y[r]; }
  }
}

@compute @workgroup_size(64)
fn upfirdn2d_forward(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  run(gid, nwg, true);
}

@compute @workgroup_size(64)
fn upfirdn2d_backward(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  run(gid, nwg, false);
}
