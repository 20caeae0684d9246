// Counter-based random numbers: Philox 4x32-10 (Salmon et al., SC 2011), as in Random123.
//
// Legend: n = elements of the output; b = Philox block = floor(i / 4) for element i; a block is
// philox4x32_10(counter = (b, 0, offset0, offset1), key = (key0, key1)) and yields 4 u32 words,
// word w of block b being stream word 4b + w. The full layout (and the CPU mirror that must agree
// bit for bit) is documented in engine/reference/philox.ts.
//
// One invocation computes one block and writes its (up to) 4 elements, so element i depends only
// on (key, offset, i): never on the workgroup size, the grid, or n.
//
// Row streams (philox_normal_rows): the output is rows of row_len elements (a multiple of 4), and
// row r draws from its own stream, row_ids[r] = (id, key_add): block b of the row is
// philox4x32_10(counter = (b, id, offset0, offset1), key = (key0, key1 + key_add)). A batch item's
// numbers then depend on its own id only, not on its place in the batch or the batch's size; row
// (0, 0) is the plain stream.
// Not differentiable: no backward entry points.

struct PhiloxParams {
  n: u32,        // elements to write
  key0: u32,     // seed, low word
  key1: u32,     // seed, high word
  offset0: u32,  // stream offset (counter words c2, c3), low word
  offset1: u32,  //   high word
  mean: f32,     // normal only (bits and uniform ignore it)
  stddev: f32,   // normal only
  row_len: u32,  // philox_normal_rows only: elements per row (a multiple of 4)
}

@group(0) @binding(0) var<storage, read_write> bits_out: array<u32>;  // [n] (philox_bits)
@group(0) @binding(0) var<storage, read_write> out: array<f32>;       // [n] (philox_uniform, philox_normal)
@group(0) @binding(1) var<uniform> params: PhiloxParams;
@group(0) @binding(2) var<storage, read> row_ids: array<vec2u>;        // [rows] (philox_normal_rows)

const WG: u32 = 64u;
const M0: u32 = 0xD2511F53u;
const M1: u32 = 0xCD9E8D57u;
const W0: u32 = 0x9E3779B9u;
const W1: u32 = 0xBB67AE85u;

// The 64-bit product a * b as (hi, lo). WGSL has no u64: the high word is assembled from 16-bit
// halves (each partial product fits in 32 bits; `mid` < 3 * 2^16 collects the carries).
fn mulhilo(a: u32, b: u32) -> vec2u {
  let a_lo = a & 0xffffu;
  let a_hi = a >> 16u;
  let b_lo = b & 0xffffu;
  let b_hi = b >> 16u;
  let ll = a_lo * b_lo;
  let lh = a_lo * b_hi;
  let hl = a_hi * b_lo;
  let hh = a_hi * b_hi;
  let mid = (ll >> 16u) + (lh & 0xffffu) + (hl & 0xffffu);
  let hi = hh + (lh >> 16u) + (hl >> 16u) + (mid >> 16u);
  return vec2u(hi, a * b); // u32 multiplication wraps: the low word
}

fn philox4x32_10(counter: vec4u, key: vec2u) -> vec4u {
  var c = counter;
  var k = key;
  for (var r = 0u; r < 10u; r++) {
    if (r > 0u) { k += vec2u(W0, W1); } // the key schedule: a Weyl sequence, bumped between rounds
    let p0 = mulhilo(M0, c.x);
    let p1 = mulhilo(M1, c.z);
    c = vec4u(p1.x ^ c.y ^ k.x, p1.y, p0.x ^ c.w ^ k.y, p0.y);
  }
  return c;
}

// Block index of this invocation (the 1D grid may be folded into y past 65535 workgroups).
fn block_index(gid: vec3u, nwg: vec3u) -> u32 {
  return gid.x + gid.y * nwg.x * WG;
}

fn block_of(b: u32) -> vec4u {
  return philox4x32_10(vec4u(b, 0u, params.offset0, params.offset1), vec2u(params.key0, params.key1));
}

// Top 24 bits times 2^-24: exact in f32, in [0, 1 - 2^-24].
fn to_uniform(x: u32) -> f32 {
  return f32(x >> 8u) * (1.0 / 16777216.0);
}

@compute @workgroup_size(64)
fn philox_bits(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let b = block_index(gid, nwg);
  if (b >= (params.n + 3u) / 4u) { return; }
  let words = block_of(b);
  for (var w = 0u; w < 4u; w++) {
    if (4u * b + w < params.n) { bits_out[4u * b + w] = words[w]; }
  }
}

@compute @workgroup_size(64)
fn philox_uniform(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let b = block_index(gid, nwg);
  if (b >= (params.n + 3u) / 4u) { return; }
  let words = block_of(b);
  for (var w = 0u; w < 4u; w++) {
    if (4u * b + w < params.n) { out[4u * b + w] = to_uniform(words[w]); }
  }
}

// ---- Box-Muller ------------------------------------------------------------------------------
// The built-in log/cos/sin are allowed large absolute errors by the WGSL spec (cos: 2^-11 on
// [-pi, pi]; log: 2^-21 near 1, which can even make log(u) > 0 for u just below 1). Both inputs
// are exact multiples of 2^-24, so we reduce them exactly with integer arithmetic and evaluate
// short polynomials with +, -, * only: the results are within a few ulp on every GPU.

// ln(k * 2^-24) for an integer k in [1, 2^24].
fn ln_k24(k: u32) -> f32 {
  let u = f32(k) * (1.0 / 16777216.0);       // exact, a normal float in [2^-24, 1]
  let ubits = bitcast<u32>(u);
  var e = i32(ubits >> 23u) - 127;
  var m = bitcast<f32>((ubits & 0x7fffffu) | 0x3f800000u); // u = m * 2^e, m in [1, 2)
  if (m > 1.41421356) { m = m * 0.5; e += 1; }              // m in [0.707, 1.414]: |t| <= 0.172
  // ln m = 2 atanh(t), t = (m - 1) / (m + 1); the series to t^9 is accurate to ~1e-9 relative.
  let t = (m - 1.0) / (m + 1.0);
  let s = t * t;
  let ln_m = 2.0 * t * (1.0 + s * (1.0 / 3.0 + s * (1.0 / 5.0 + s * (1.0 / 7.0 + s * (1.0 / 9.0)))));
  return f32(e) * 0.693147180559945 + ln_m;
}

// (cos, sin) of 2 pi j 2^-24 for an integer j in [0, 2^24): quadrant q = round(j / 2^22), the
// exact remainder f in [-2^21, 2^21) gives x = f * 2 pi 2^-24 in [-pi/4, pi/4].
fn cos_sin_turns24(j: u32) -> vec2f {
  let q = ((j + 0x200000u) >> 22u) & 3u;
  let f = i32(j) - i32(((j + 0x200000u) >> 22u) << 22u);
  let x = f32(f) * 3.7450703e-7; // 2 pi / 2^24
  let x2 = x * x;
  let sx = x * (1.0 + x2 * (-1.0 / 6.0 + x2 * (1.0 / 120.0 + x2 * (-1.0 / 5040.0 + x2 * (1.0 / 362880.0)))));
  let cx = 1.0 + x2 * (-0.5 + x2 * (1.0 / 24.0 + x2 * (-1.0 / 720.0 + x2 * (1.0 / 40320.0 + x2 * (-1.0 / 3628800.0)))));
  // cos(q pi/2 + x), sin(q pi/2 + x)
  switch (q) {
    case 0u: { return vec2f(cx, sx); }
    case 1u: { return vec2f(-sx, cx); }
    case 2u: { return vec2f(-cx, -sx); }
    default: { return vec2f(sx, -cx); }
  }
}

// Words (2j, 2j+1) of the block feed elements 4b + 2j (cos) and 4b + 2j + 1 (sin):
// u1 = 1 - uniform(word 2j) in (0, 1], so the log is finite; u2 = uniform(word 2j + 1).
fn write_normals(b: u32, words: vec4u) {
  for (var j = 0u; j < 2u; j++) {
    let k = 16777216u - (words[2u * j] >> 8u);       // u1 = k * 2^-24
    let r = sqrt(max(-2.0 * ln_k24(k), 0.0));
    let cs = cos_sin_turns24(words[2u * j + 1u] >> 8u);
    let i = 4u * b + 2u * j;
    if (i < params.n) { out[i] = params.mean + params.stddev * (r * cs.x); }
    if (i + 1u < params.n) { out[i + 1u] = params.mean + params.stddev * (r * cs.y); }
  }
}

@compute @workgroup_size(64)
fn philox_normal(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let b = block_index(gid, nwg);
  if (b >= (params.n + 3u) / 4u) { return; }
  write_normals(b, block_of(b));
}

@compute @workgroup_size(64)
fn philox_normal_rows(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let b = block_index(gid, nwg);
  if (b >= params.n / 4u) { return; }
  let row_blocks = params.row_len / 4u;
  let r = b / row_blocks;
  let id = row_ids[r];
  let words = philox4x32_10(vec4u(b - r * row_blocks, id.x, params.offset0, params.offset1), vec2u(params.key0, params.key1 + id.y));
  write_normals(b, words);
}
