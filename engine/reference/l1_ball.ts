// Float64 reference of the l1-ball projection (engine/ops/l1_ball.ts): the exact sort-based
// algorithm of Duchi, Shalev-Shwartz, Singer and Chandra (2008), "Efficient projections onto the
// l1-ball for learning in high dimensions", figure 1, one ball per row.
//
// Legend: B = rows, n = elements per row.  x [B, ...], center [B, ...] (optional)  ->  y, theta [B]
//
// For d = x - center, a = |d| sorted descending into u with prefix sums c:
//   rho = max { j : u_j - (c_j - r) / j > 0 },  theta = (c_rho - r) / rho,
//   y = center + sign(d) * max(a - theta, 0).
// Rows with ||d||_1 <= r are returned unchanged (theta 0); r = 0 gives the center (theta = max a).

import { host, type HostArray } from './host.ts';

export interface L1BallReference {
  y: HostArray;
  theta: Float64Array;
}

/** The threshold theta for one row of absolute values a (already known to have sum > r > 0). */
export function l1Threshold(a: ArrayLike<number>, r: number): number {
  const u = Float64Array.from(a).sort().reverse();
  let cum = 0;
  let rho = 0;
  let cumAtRho = 0;
  for (let j = 0; j < u.length; j++) {
    cum += u[j];
    if (u[j] - (cum - r) / (j + 1) > 0) {
      rho = j + 1;
      cumAtRho = cum;
    }
  }
  return (cumAtRho - r) / rho;
}

export function projectL1BallForward(x: HostArray, radius: number, center?: HostArray): L1BallReference {
  if (x.shape.length < 2) throw new RangeError(`projectL1BallForward: x must be [rows, ...], got [${x.shape.join(', ')}]`);
  if (!(radius >= 0)) throw new RangeError(`projectL1BallForward: the radius must be >= 0, got ${radius}`);
  if (center && center.data.length !== x.data.length) throw new RangeError('projectL1BallForward: center and x differ in size');
  const rows = x.shape[0];
  const n = x.data.length / rows;
  const y = host(x.shape);
  const theta = new Float64Array(rows);
  for (let b = 0; b < rows; b++) {
    const c = (i: number) => (center ? center.data[b * n + i] : 0);
    const d = Float64Array.from({ length: n }, (_, i) => x.data[b * n + i] - c(i));
    const a = d.map(Math.abs);
    const l1 = a.reduce((s, v) => s + v, 0);
    let th: number;
    if (l1 <= radius) th = 0;
    else if (radius === 0) th = a.reduce((m, v) => Math.max(m, v), 0);
    else th = l1Threshold(a, radius);
    theta[b] = th;
    for (let i = 0; i < n; i++) {
      y.data[b * n + i] = l1 <= radius ? x.data[b * n + i] : c(i) + Math.sign(d[i]) * Math.max(a[i] - th, 0);
    }
  }
  return { y, theta };
}
