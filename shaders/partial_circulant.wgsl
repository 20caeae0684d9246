// Partial circulant measurement (ILO's compressed sensing for large images) and its adjoint.
//
// Legend: B = rows (images), n = signal length (C*H*W), m = kept measurements.
//   x [B, n]   filt [n] (the Gaussian filter f)   signs [n] (+-1)   idx [m] (distinct, in [0, n))
//   y [B, m]   gy [B, m]   gx [B, n]
//
// The measurement is y[b, j] = conv(x[b] * s, f)[idx[j]], with the circular convolution
//   conv(u, f)[r] = sum_k u[k] f[(r - k) mod n]  (= real(IFFT(FFT(u) FFT(f)))[r]).
// It is computed directly in O(n) per output (O(n m) per image): exact, no FFT length
// restrictions (n = 3*32*32 = 3072 is not a power of two), and its adjoint is the same sum
// transposed:
//   gx[b, k] = s[k] * sum_j f[(idx[j] - k) mod n] gy[b, j].
// Both passes split the k (or j) loop where the index wraps, so no modulo is needed per term.

struct CircParams {
  rows: u32,   // B
  n: u32,
  m: u32,
}

@group(0) @binding(0) var<storage, read> x: array<f32>;          // [B, n]
@group(0) @binding(1) var<storage, read> filt: array<f32>;       // [n]
@group(0) @binding(2) var<storage, read> signs: array<f32>;      // [n]
@group(0) @binding(3) var<storage, read> idx: array<u32>;        // [m]
@group(0) @binding(4) var<storage, read_write> y: array<f32>;    // [B, m]
@group(0) @binding(5) var<uniform> params: CircParams;

@group(0) @binding(0) var<storage, read> gy: array<f32>;         // [B, m]
@group(0) @binding(4) var<storage, read_write> gx: array<f32>;   // [B, n]

// One invocation per output y[b, j].
@compute @workgroup_size(64)
fn circulant_forward(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = gid.x + gid.y * nwg.x * 64u;
  if (i >= params.rows * params.m) { return; }
  let b = i / params.m;
  let r = idx[i % params.m];
  let xb = b * params.n;
  var acc = 0.0;
  // k <= r: (r - k) mod n = r - k.
  for (var k = 0u; k <= r; k++) {
    acc += filt[r - k] * signs[k] * x[xb + k];
  }
  // k > r: (r - k) mod n = r + n - k.
  for (var k = r + 1u; k < params.n; k++) {
    acc += filt[r + params.n - k] * signs[k] * x[xb + k];
  }
  y[i] = acc;
}

// One invocation per input gradient gx[b, k].
@compute @workgroup_size(64)
fn circulant_backward(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = gid.x + gid.y * nwg.x * 64u;
  if (i >= params.rows * params.n) { return; }
  let b = i / params.n;
  let k = i % params.n;
  let gb = b * params.m;
  var acc = 0.0;
  for (var j = 0u; j < params.m; j++) {
    let r = idx[j];
    let t = select(r + params.n - k, r - k, r >= k); // (r - k) mod n
    acc += filt[t] * gy[gb + j];
  }
  gx[i] = signs[k] * acc;
}
