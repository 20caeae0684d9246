// Small dense linear algebra in float64 for the prior tests: random orthogonal matrices, matrices
// with a planted spectrum, and Cholesky solves and log-determinants (references that use no
// eigenbasis).
import { orthonormalizeColumns } from '../samplers/score/eigen.ts';
import type { HostRandom } from '../engine/reference/host.ts';

/** A random orthogonal n x n matrix (rows), from Gram-Schmidt of Gaussian columns. */
export function randomOrthogonal(size: number, rng: HostRandom): Float64Array {
  const q = Float64Array.from({ length: size * size }, () => rng.normal());
  orthonormalizeColumns(q, size, size);
  return q; // columns orthonormal, so rows are too
}

/** Q^T diag(values) Q with Q's rows the eigenvectors. */
export function fromSpectrum(q: Float64Array, values: number[], size: number): Float64Array {
  const a = new Float64Array(size * size);
  for (let k = 0; k < size; k++) for (let i = 0; i < size; i++) for (let j = 0; j < size; j++) a[i * size + j] += values[k] * q[k * size + i] * q[k * size + j];
  return a;
}

/** Cholesky factor L (row-major lower) of an SPD matrix, and solves / log-determinants with it. */
export function cholesky(a: Float64Array, size: number) {
  const l = new Float64Array(size * size);
  for (let i = 0; i < size; i++) {
    for (let j = 0; j <= i; j++) {
      let s = a[i * size + j];
      for (let k = 0; k < j; k++) s -= l[i * size + k] * l[j * size + k];
      l[i * size + j] = i === j ? Math.sqrt(s) : s / l[j * size + j];
    }
  }
  return {
    solve(b: ArrayLike<number>): Float64Array {
      const y = Float64Array.from(b);
      for (let i = 0; i < size; i++) {
        for (let k = 0; k < i; k++) y[i] -= l[i * size + k] * y[k];
        y[i] /= l[i * size + i];
      }
      for (let i = size - 1; i >= 0; i--) {
        for (let k = i + 1; k < size; k++) y[i] -= l[k * size + i] * y[k];
        y[i] /= l[i * size + i];
      }
      return y;
    },
    logDet: () => 2 * Array.from({ length: size }, (_, i) => Math.log(l[i * size + i])).reduce((s, v) => s + v, 0),
  };
}

