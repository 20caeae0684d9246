// Index arithmetic shared by kernel files (included with `// #include <index_math>`, see
// engine/shader_source.ts withIncludes); no entry points of its own.

// The flat index of an invocation in a 1-D grid of 64-wide workgroups, folded into y past 65535
// workgroups (engine/kernel.ts grid1d). Every includer's workgroup size is 64.
fn linear_index(gid: vec3u, nwg: vec3u) -> u32 {
  return gid.x + gid.y * nwg.x * 64u;
}

// (i / n, i % n) without integer division, which CPU adapters run lane by lane (lavapipe: one
// scalar divl per lane): a float quotient corrected twice by its remainder. Exact for i < 2^31
// (test/index_math.test.ts checks past 2^24, where a float no longer holds every index).
fn divmod(i: u32, n: u32) -> vec2u {
  let nf = f32(n);
  var q = u32(f32(i) / nf);
  var r = i32(i - q * n);
  q = u32(i32(q) + i32(floor(f32(r) / nf)));
  r = i32(i - q * n);
  q = select(q, q - 1u, r < 0);
  r = select(r, r + i32(n), r < 0);
  q = select(q, q + 1u, r >= i32(n));
  r = select(r, r - i32(n), r >= i32(n));
  return vec2u(q, u32(r));
}
