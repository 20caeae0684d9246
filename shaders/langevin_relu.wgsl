// One step of many chains on L(z) = 0.5 ||A G(z) - y||^2 (samplers/theory/langevin_relu.ts): gradient
// descent, gradient descent with sign flips (Hand and Voroninski), and Langevin dynamics, chosen
// per chain through `sigma` (the noise scale) and `flip` (whether the chain may flip).
//
// Legend: I = instances, C = chains per instance, rows = I * C, k = latent dimension.
//   z [rows, k] (updated in place)  grad [rows, k]  noise [rows, k] (standard normal)
//   sigma, flip, loss, loss_neg, hit, dist, speed, flips: [rows]   z_star [I, k]
//
// Per chain (one invocation; k is small, chains are many):
//   if flip and L(-z) < L(z):  z <- -z                                 (this step is the flip)
//   else:                      z <- z - eta grad L(z) + sigma u,  sigma = sqrt(2 eta / beta)
//                              (sigma = 0 for gradient descent)
// then dist = ||z - z*|| / ||z*||, speed = ||z_new - z_old||, and hit = t (the number of steps
// taken, given as a uniform) the first time dist <= radius; hit stays -1 until then.

struct StepParams {
  rows: u32,
  chains: u32,   // C, to find a row's instance
  k: u32,
  t: u32,        // steps completed after this one
  eta: f32,
  radius: f32,   // ball radius as a fraction of ||z*||
}

@group(0) @binding(0) var<storage, read_write> z: array<f32>;       // [rows, k]
@group(0) @binding(1) var<storage, read> grad: array<f32>;          // [rows, k]
@group(0) @binding(2) var<storage, read> noise: array<f32>;         // [rows, k]
@group(0) @binding(3) var<storage, read> sigma: array<f32>;         // [rows]
@group(0) @binding(4) var<storage, read> flip: array<f32>;          // [rows] 1: may flip, 0: never
@group(0) @binding(5) var<storage, read> loss: array<f32>;          // [rows] L(z)
@group(0) @binding(6) var<storage, read> loss_neg: array<f32>;      // [rows] L(-z) (read when flip = 1)
@group(0) @binding(7) var<storage, read> z_star: array<f32>;        // [I, k]
@group(0) @binding(8) var<storage, read_write> hit: array<f32>;     // [rows] first hitting step, -1
@group(0) @binding(9) var<storage, read_write> dist: array<f32>;    // [rows] ||z - z*|| / ||z*||
@group(0) @binding(10) var<storage, read_write> speed: array<f32>;  // [rows] ||z_new - z_old||
@group(0) @binding(11) var<storage, read_write> flips: array<f32>;  // [rows] number of flips so far
@group(0) @binding(12) var<uniform> params: StepParams;

@compute @workgroup_size(64)
fn chain_step(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let row = gid.x + gid.y * nwg.x * 64u;
  if (row >= params.rows) { return; }
  let base = row * params.k;
  let sbase = (row / params.chains) * params.k;
  let do_flip = flip[row] > 0.0 && loss_neg[row] < loss[row];
  let s = sigma[row];
  var d2 = 0.0;
  var n2 = 0.0;
  var moved = 0.0;
  for (var j = 0u; j < params.k; j++) {
    let old = z[base + j];
    var nz: f32;
    if (do_flip) {
      nz = -old;
    } else {
      nz = old - params.eta * grad[base + j] + s * noise[base + j];
    }
    z[base + j] = nz;
    let d = nz - z_star[sbase + j];
    d2 += d * d;
    n2 += z_star[sbase + j] * z_star[sbase + j];
    moved += (nz - old) * (nz - old);
  }
  if (do_flip) { flips[row] += 1.0; }
  let rel = sqrt(d2 / n2);
  dist[row] = rel;
  speed[row] = sqrt(moved);
  if (hit[row] < 0.0 && rel <= params.radius) { hit[row] = f32(params.t); }
}
