// Benchmark probes: kernels that measure what the adapter can do at best, so the matmul numbers
// have a ceiling to be read against. Not ops (no backward: nothing differentiates through them).
//
//   fma_probe:  arithmetic peak. Each invocation runs `iterations` trips of 8 independent vec4
//               fma chains (acc = acc * a + b), i.e. 8 * 4 * 2 = 64 flops per trip, with no memory
//               traffic inside the loop. Eight independent chains hide the fma latency; distinct
//               start values keep the compiler from merging them; a and b come from a uniform so
//               nothing can be folded at compile time. The sum of the chains is written out, so the
//               work cannot be dropped, and it is checkable: each chain is a known recurrence.
//   copy_probe: memory bandwidth. dst[i] = src[i] over vec4 elements; each element is read once and
//               written once (bytes moved = 2 * 16 * n).
//
// Dimensions: n = invocations (fma) or vec4 elements (copy). 1D grids may be folded into y by
// grid1d() past 65535 workgroups, hence i = gid.x + gid.y * nwg.x * WG.

struct FmaParams {
  n: u32,           // invocations that compute (the rest of the last workgroup return)
  iterations: u32,  // loop trips; 64 flops per trip per invocation
  a: f32,           // multiplier; |a| < 1 keeps the recurrence bounded
  b: f32,           // addend
}

struct CopyParams {
  n: u32,           // vec4 elements to copy
}

@group(0) @binding(0) var<storage, read> seed: array<f32>;          // [n] start value per invocation
@group(0) @binding(1) var<storage, read_write> result: array<vec4f>; // [n] sum of the 8 chains
@group(0) @binding(2) var<uniform> fparams: FmaParams;

@group(0) @binding(0) var<storage, read> src: array<vec4f>;          // [n]
@group(0) @binding(1) var<storage, read_write> dst: array<vec4f>;    // [n]
@group(0) @binding(2) var<uniform> cparams: CopyParams;

// Offset of chain j's lane l from the seed: 0.001 * (4j + l). Chains and lanes all differ.
const LANE = vec4f(0.0, 0.001, 0.002, 0.003);
const CHAIN = 0.004;

@compute @workgroup_size(64)
fn fma_probe(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = gid.x + gid.y * nwg.x * 64u;
  if (i >= fparams.n) { return; }
  let s = vec4f(seed[i]) + LANE;
  var acc0 = s;
  var acc1 = s + vec4f(1.0 * CHAIN);
  var acc2 = s + vec4f(2.0 * CHAIN);
  var acc3 = s + vec4f(3.0 * CHAIN);
  var acc4 = s + vec4f(4.0 * CHAIN);
  var acc5 = s + vec4f(5.0 * CHAIN);
  var acc6 = s + vec4f(6.0 * CHAIN);
  var acc7 = s + vec4f(7.0 * CHAIN);
  let a = vec4f(fparams.a);
  let b = vec4f(fparams.b);
  for (var t = 0u; t < fparams.iterations; t++) {
    acc0 = fma(acc0, a, b);
    acc1 = fma(acc1, a, b);
    acc2 = fma(acc2, a, b);
    acc3 = fma(acc3, a, b);
    acc4 = fma(acc4, a, b);
    acc5 = fma(acc5, a, b);
    acc6 = fma(acc6, a, b);
    acc7 = fma(acc7, a, b);
  }
  result[i] = ((acc0 + acc1) + (acc2 + acc3)) + ((acc4 + acc5) + (acc6 + acc7));
}

@compute @workgroup_size(256)
fn copy_probe(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = gid.x + gid.y * nwg.x * 256u;
  if (i >= cparams.n) { return; }
  dst[i] = src[i];
}
