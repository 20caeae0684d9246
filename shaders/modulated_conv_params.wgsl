// The modulated conv's uniform and its zero-padded row reads, shared by every kernel of the op
// (included with `// #include <modulated_conv_params>` by shaders/modulated_conv.wgsl,
// modulated_conv_backward.wgsl and modulated_conv_subgroup.wgsl, which bind it as `p` and declare
// the x and gy the readers use). The dimension legend is in shaders/modulated_conv.wgsl's header.

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

// x at (row start, column ix), zero outside [0, W): a clamped load, so SIMD lanes never branch.
fn x_at(row: u32, ix: i32) -> f32 {
  return select(0.0, x[row + u32(clamp(ix, 0, i32(p.W) - 1))], ix >= 0 && ix < i32(p.W));
}

// gy at (row start + phase column, phase-plane column b), zero outside [0, Wp).
fn gy_at(row: u32, b: i32) -> f32 {
  return select(0.0, gy[row + u32(clamp(b, 0, i32(p.Wp) - 1)) * p.up], b >= 0 && b < i32(p.Wp));
}
