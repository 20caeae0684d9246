// Modulated conv forward and input gradient, and plain conv2d's forward (see the end of this
// header), for adapters with 8-lane subgroups (engine/ops/modulated_conv_subgroup.ts picks them;
// shaders/modulated_conv.wgsl and modulated_conv_backward.wgsl have the general kernels, the
// definitions and the other passes). Same math as there:
//   y[n,o, a*up+ry, b*up+rx] = coef[n,o] * sum_i s[n,i] * sum_{ty,tx} x[n,i, a-pad+ty, b-pad+tx] * K[o,i,ph,ty,tx]
//   gx[n,i,py,px] = s[n,i] * u, u = sum_o coef[n,o] * sum_{ph,ty,tx} gy[n,o,(py+pad-ty)*up+ry,(px+pad-tx)*up+rx] * K[o,i,ph,ty,tx]
// and part_out = sum over a lane's 8 pixels of x*u (the style gradient's pieces).
//
// Why a subgroup variant (lavapipe, Mesa 25.0; README, Performance): every storage load whose
// address is not a compile-time constant becomes eight scalar loads with a bounds check and a
// branch each, even when all lanes read one address, so the general kernel's 4 weight loads per tap
// cost as much as 4 gathers. Here a workgroup is one 8-lane subgroup and lane l loads the weight of
// channel c0 + l; subgroupBroadcast gives each lane all 8 (an element extract on a CPU), so one
// load serves 8 channels. An invocation keeps CH channels x 8 pixels of a row (2 vec4 per channel);
// along a row of taps the 8 input values slide by one, so each tap loads 1 new value and CH / 8
// weights for CH * 8 multiply-adds. The phase of an upsampling conv is the grid's z, so a
// workgroup's weight rows are one phase's. Rows outside the plane are read clamped and scaled by
// zero instead of skipped: subgroupBroadcast needs every lane in the same control flow.
//
// Lanes run over (n, pixel group of 8); lanes past `total` compute a clamped copy and store nothing.
// Grids: forward (ceil(lanes / 8), ceil(Co / CH), up*up); input_backward (ceil(lanes / 8), ceil(Ci / CH)).
// The per-channel code is unrolled by the op file through the FWD_* and IB_* slots (SETUP, STORE, and
// ROW, one row of taps). Where the row is a multiple of 4 long (W for the forward, Wo = Wp with
// up = 1 for the input gradient) and the kernel size and padding are known, the row is unrolled
// and its window read as 3-4 aligned vec4s instead of 8 + T single values.
// The split upsampling path's transposed conv (T = 2, up = 2: engine/ops/modulated_conv.ts) leaves
// out the taps that are zero in every phase kernel: phase row 1 has only tap row 1, phase column 1
// only tap column 1 (FWD_TY0, IB_TY0, and the rows' first tap), so its phases cost 4, 2, 2 and 1
// taps instead of 4 each. Its input gradient reads each interleaved row of gy as aligned vec4s that
// hold both phases (the op file's transposedInputRow).
// The forward also serves a plain conv2d (stride 1, one group; engine/ops/conv2d_kernels.ts): its
// FWD_STYLE and FWD_OUT slots then read no styles and no coef, and add the bias if there is one.

enable subgroups;

// #include <modulated_conv_params>

@group(0) @binding(0) var<uniform> p: ModParams;
@group(0) @binding(1) var<storage, read> x: array<f32>;               // [N, Ci, H, W]
@group(0) @binding(1) var<storage, read> x4: array<vec4f>;            // the same, as vec4s (W % 4 == 0)
@group(0) @binding(2) var<storage, read> keff: array<f32>;            // [Co, Ci, PH, T, T]
@group(0) @binding(3) var<storage, read> st: array<f32>;              // [N, Ci]
@group(0) @binding(4) var<storage, read> coef: array<f32>;            // [N, Co]
@group(0) @binding(5) var<storage, read_write> y: array<f32>;         // [N, Co, Ho, Wo]
@group(0) @binding(5) var<storage, read_write> y4: array<vec4f>;      // the same, as vec4s (up = 1, Wo % 4 == 0)
@group(0) @binding(6) var<storage, read> gy: array<f32>;              // [N, Co, Ho, Wo]
@group(0) @binding(6) var<storage, read> gy4: array<vec4f>;           // the same, as vec4s (up = 1, Wo % 4 == 0)
@group(0) @binding(7) var<storage, read_write> gx: array<f32>;        // [N, Ci, H, W]
@group(0) @binding(7) var<storage, read_write> gx4: array<vec4f>;     // the same, as vec4s (W % 4 == 0)
@group(0) @binding(8) var<storage, read_write> part_out: array<f32>;  // [N, Ci, H, ceil(W/8)]
@group(0) @binding(9) var<storage, read> bias: array<f32>;            // [Co] (plain conv2d with a bias)
@group(0) @binding(10) var<storage, read> wt: array<f32>;             // [Co, Ci, 3, 3] raw weights (upsampling forward)

// #include <modulated_conv_upsample_link>

const CH: u32 = {{CH}}u; // channels per workgroup, 8 per block

// Element e of the 8 values held as two vec4s.
fn pick(lo: vec4f, hi: vec4f, e: u32) -> f32 {
  return select(hi, lo, e < 4u)[e % 4u];
}

// The lane's 8 pixels: (batch item, row, first column) in a rows x width plane. Lanes past
// p.total get the last group (computed like the others, not stored).
fn pixel_group(wid_x: u32, lane: u32, rows: u32, width: u32) -> vec3u {
  let g = min(wid_x * 8u + lane, p.total - 1u);
  let groups_per_row = (width + 7u) / 8u;
  let in_plane = g % (rows * groups_per_row);
  return vec3u(g / (rows * groups_per_row), in_plane / groups_per_row, (in_plane % groups_per_row) * 8u);
}

@compute @workgroup_size(8)
fn forward(@builtin(workgroup_id) wid: vec3u, @builtin(subgroup_invocation_id) lane: u32) {
  let live = wid.x * 8u + lane < p.total;
  let group = pixel_group(wid.x, lane, p.Hp, p.Wp);
  let n = group.x;
  let a = group.y;
  let b0 = group.z;
  let ph = wid.z;
  let c0 = wid.y * CH;
  let tt = p.T * p.T;
  let PH = p.up * p.up;
  // kw<blk>: kernel start of channel c0 + 8 blk + lane at this phase; acc<c>_<h>: channel c0 + c,
  // pixels b0 + 4h .. b0 + 4h + 3.
  {{FWD_SETUP}}
  let ix = i32(b0) - i32(p.pad);
  for (var i = 0u; i < p.Ci; i++) {
    let s = {{FWD_STYLE}};
    let xbase = (n * p.Ci + i) * p.H * p.W;
    let kofs = i * PH * tt;
    {{FWD_PER_INPUT}}
    for (var ty = {{FWD_TY0}}; ty < p.T; ty++) {
      let iy = i32(a) - i32(p.pad) + i32(ty);
      let sr = select(0.0, s, iy >= 0 && iy < i32(p.H));
      let row = xbase + u32(clamp(iy, 0, i32(p.H) - 1)) * p.W;
      {{FWD_ROW}}
    }
  }
  let oy = a * p.up + (ph >> 1u);
  let ox0 = b0 * p.up + (ph & 1u);
  {{FWD_STORE}}
}

fn store_y(live: bool, n: u32, o: u32, oy: u32, ox0: u32, b0: u32, lo: vec4f, hi: vec4f) {
  if (!live || o >= p.Co) { return; }
  let base = ((n * p.Co + o) * p.Ho + oy) * p.Wo + ox0;
  for (var e = 0u; e < 8u; e++) {
    let v = pick(lo, hi, e);
    if (b0 + e < p.Wp) { y[base + e * p.up] = {{FWD_OUT}}; }
  }
}

// store_y with vec4 stores, where up = 1 and Wo % 4 == 0 (each vec4 of a row all inside or all
// outside it; on lavapipe a store costs per lane whatever its width).
fn store_y4(live: bool, n: u32, o: u32, oy: u32, ox0: u32, b0: u32, lo: vec4f, hi: vec4f) {
  if (!live || o >= p.Co) { return; }
  let base4 = (((n * p.Co + o) * p.Ho + oy) * p.Wo + ox0) / 4u;
  { let v = lo; y4[base4] = {{FWD_OUT}}; }
  if (b0 + 4u < p.Wp) { let v = hi; y4[base4 + 1u] = {{FWD_OUT}}; }
}

@compute @workgroup_size(8)
fn input_backward(@builtin(workgroup_id) wid: vec3u, @builtin(subgroup_invocation_id) lane: u32) {
  let live = wid.x * 8u + lane < p.total;
  let group = pixel_group(wid.x, lane, p.H, p.W);
  let n = group.x;
  let py = group.y;
  let px0 = group.z;
  let c0 = wid.y * CH;
  let tt = p.T * p.T;
  let PH = p.up * p.up;
  // kw<blk>: offset of input channel c0 + 8 blk + lane inside one output channel's kernels;
  // acc<c>_<h>: channel c0 + c, pixels px0 + 4h .. px0 + 4h + 3.
  {{IB_SETUP}}
  let bx = i32(px0) + i32(p.pad);
  for (var o = 0u; o < p.Co; o++) {
    let c = coef[n * p.Co + o];
    let gbase = (n * p.Co + o) * p.Ho * p.Wo;
    let kbase = o * p.Ci * PH * tt;
    for (var ph = 0u; ph < PH; ph++) {
      for (var ty = {{IB_TY0}}; ty < p.T; ty++) {
        let ay = i32(py) + i32(p.pad) - i32(ty);
        let cr = select(0.0, c, ay >= 0 && ay < i32(p.Hp));
        let row = gbase + (u32(clamp(ay, 0, i32(p.Hp) - 1)) * p.up + (ph >> 1u)) * p.Wo + (ph & 1u);
        {{IB_ROW}}
      }
    }
  }
  {{IB_STORE}}
}

fn store_gx(live: bool, n: u32, i: u32, py: u32, px0: u32, pb: u32, lo: vec4f, hi: vec4f) {
  if (!live || i >= p.Ci) { return; }
  let s = st[n * p.Ci + i];
  let base = ((n * p.Ci + i) * p.H + py) * p.W + px0;
  var xu = 0.0;
  for (var e = 0u; e < 8u; e++) {
    if (px0 + e < p.W) {
      let v = pick(lo, hi, e);
      gx[base + e] = s * v;
      xu += x[base + e] * v;
    }
  }
  part_out[((n * p.Ci + i) * p.H + py) * ((p.W + 7u) / 8u) + pb] = xu;
}

// store_gx with vec4 stores and loads, where W % 4 == 0.
fn store_gx4(live: bool, n: u32, i: u32, py: u32, px0: u32, pb: u32, lo: vec4f, hi: vec4f) {
  if (!live || i >= p.Ci) { return; }
  let s = st[n * p.Ci + i];
  let base4 = (((n * p.Ci + i) * p.H + py) * p.W + px0) / 4u;
  gx4[base4] = s * lo;
  var xu = dot(x4[base4], lo);
  if (px0 + 4u < p.W) {
    gx4[base4 + 1u] = s * hi;
    xu += dot(x4[base4 + 1u], hi);
  }
  part_out[((n * p.Ci + i) * p.H + py) * ((p.W + 7u) / 8u) + pb] = xu;
}
