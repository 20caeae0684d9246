// The upsampling link of the modulated conv (included with `// #include <modulated_conv_upsample_link>`
// by shaders/modulated_conv.wgsl, modulated_conv_backward.wgsl and modulated_conv_subgroup.wgsl);
// no entry points of its own.

// Upsampling (k = 3): the 1-D map from kernel taps ky to the taps t of phase r, L_r[t][ky] =
// upsampleLink(3) in the op (the blur [1,3,3,1]/4 composed with the stride-2 transposed conv), as
// column-major matrices (column = ky). The 2-D phase kernel is K_(ry,rx) = L_ry * W * transpose(L_rx).
const L0 = mat3x3f(vec3f(0.0, 0.75, 0.25), vec3f(0.25, 0.75, 0.0), vec3f(0.75, 0.25, 0.0));
const L1 = mat3x3f(vec3f(0.0, 0.25, 0.75), vec3f(0.0, 0.75, 0.25), vec3f(0.25, 0.75, 0.0));

fn link(r: u32) -> mat3x3f {
  if (r == 1u) { return L1; }
  return L0;
}
