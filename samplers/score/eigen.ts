// Symmetric eigendecomposition in float64 on the host, for the closed-form Gaussian prior
// (samplers/score/gaussian.ts): Householder reduction to tridiagonal form, then the implicit QL
// algorithm with Wilkinson-style shifts on the tridiagonal matrix, accumulating the rotations
// (EISPACK's tred2 / tql2 in the form of the public-domain JAMA library).
//
// Storage: the algorithm is written on V[a][b] but every element lives at b * n + a (column-major).
// The input is symmetric, so this changes nothing on entry; it makes every O(n^3) inner loop run
// over contiguous memory (a 2048 x 2048 matrix would otherwise stride 16 KiB per element), and it
// leaves eigenvector j contiguous in `vectors[j * n .. j * n + n)`.
//
// Also: orthonormalizeColumns (modified Gram-Schmidt, applied twice) for the subspace iteration of
// low-rank fits.

export interface SymmetricEigen {
  /** Eigenvalues in descending order, [n]. */
  values: Float64Array;
  /** Row j (length n) is the unit eigenvector of values[j], [n, n] row-major. */
  vectors: Float64Array;
}

/** Eigenvalues (descending) and orthonormal eigenvectors of the symmetric n x n matrix `a` (row-major; not modified). */
export function symmetricEigen(a: ArrayLike<number>, n: number): SymmetricEigen {
  if (!(Number.isInteger(n) && n >= 1)) throw new RangeError(`symmetricEigen: n must be a positive integer, got ${n}`);
  if (a.length !== n * n) throw new RangeError(`symmetricEigen: ${a.length} values for a ${n} x ${n} matrix`);
  for (let i = 0; i < n; i++) {
    for (let j = 0; j < i; j++) {
      const x = a[i * n + j];
      const y = a[j * n + i];
      if (!Number.isFinite(x) || !Number.isFinite(y)) throw new RangeError(`symmetricEigen: non-finite entry at (${i}, ${j})`);
      if (Math.abs(x - y) > 1e-9 * (Math.abs(x) + Math.abs(y)) + 1e-300) throw new RangeError(`symmetricEigen: not symmetric at (${i}, ${j}): ${x} vs ${y}`);
    }
  }
  const V = Float64Array.from(a);
  const d = new Float64Array(n);
  const e = new Float64Array(n);
  tred2(V, d, e, n);
  tql2(V, d, e, n);
  // Descending order; tql2 leaves them ascending.
  const order = Array.from({ length: n }, (_, i) => i).sort((i, j) => d[j] - d[i]);
  const values = new Float64Array(n);
  const vectors = new Float64Array(n * n);
  order.forEach((src, dst) => {
    values[dst] = d[src];
    vectors.set(V.subarray(src * n, src * n + n), dst * n);
  });
  return { values, vectors };
}

/** Householder tridiagonalization; V (column-major, see the header) becomes the accumulated transform. */
function tred2(V: Float64Array, d: Float64Array, e: Float64Array, n: number): void {
  const at = (r: number, c: number) => c * n + r;
  for (let j = 0; j < n; j++) d[j] = V[at(n - 1, j)];
  for (let i = n - 1; i > 0; i--) {
    let scale = 0;
    let h = 0;
    for (let k = 0; k < i; k++) scale += Math.abs(d[k]);
    if (scale === 0) {
      e[i] = d[i - 1];
      for (let j = 0; j < i; j++) {
        d[j] = V[at(i - 1, j)];
        V[at(i, j)] = 0;
        V[at(j, i)] = 0;
      }
    } else {
      for (let k = 0; k < i; k++) {
        d[k] /= scale;
        h += d[k] * d[k];
      }
      let f = d[i - 1];
      let g = Math.sqrt(h);
      if (f > 0) g = -g;
      e[i] = scale * g;
      h -= f * g;
      d[i - 1] = f - g;
      for (let j = 0; j < i; j++) e[j] = 0;
      for (let j = 0; j < i; j++) {
        f = d[j];
        V[at(j, i)] = f;
        const col = j * n; // V[k][j] = V[col + k]
        g = e[j] + V[col + j] * f;
        for (let k = j + 1; k <= i - 1; k++) {
          g += V[col + k] * d[k];
          e[k] += V[col + k] * f;
        }
        e[j] = g;
      }
      f = 0;
      for (let j = 0; j < i; j++) {
        e[j] /= h;
        f += e[j] * d[j];
      }
      const hh = f / (h + h);
      for (let j = 0; j < i; j++) e[j] -= hh * d[j];
      for (let j = 0; j < i; j++) {
        f = d[j];
        g = e[j];
        const col = j * n;
        for (let k = j; k <= i - 1; k++) V[col + k] -= f * e[k] + g * d[k];
        d[j] = V[at(i - 1, j)];
        V[at(i, j)] = 0;
      }
    }
    d[i] = h;
  }
  // Accumulate the transformations.
  for (let i = 0; i < n - 1; i++) {
    V[at(n - 1, i)] = V[at(i, i)];
    V[at(i, i)] = 1;
    const h = d[i + 1];
    const next = (i + 1) * n; // V[k][i + 1]
    if (h !== 0) {
      for (let k = 0; k <= i; k++) d[k] = V[next + k] / h;
      for (let j = 0; j <= i; j++) {
        const col = j * n;
        let g = 0;
        for (let k = 0; k <= i; k++) g += V[next + k] * V[col + k];
        for (let k = 0; k <= i; k++) V[col + k] -= g * d[k];
      }
    }
    for (let k = 0; k <= i; k++) V[next + k] = 0;
  }
  for (let j = 0; j < n; j++) {
    d[j] = V[at(n - 1, j)];
    V[at(n - 1, j)] = 0;
  }
  V[at(n - 1, n - 1)] = 1;
  e[0] = 0;
}

/** Implicit QL on the tridiagonal (d, e); rotations accumulate into V's columns (contiguous). */
function tql2(V: Float64Array, d: Float64Array, e: Float64Array, n: number): void {
  for (let i = 1; i < n; i++) e[i - 1] = e[i];
  e[n - 1] = 0;
  let f = 0;
  let tst1 = 0;
  const eps = 2 ** -52;
  for (let l = 0; l < n; l++) {
    tst1 = Math.max(tst1, Math.abs(d[l]) + Math.abs(e[l]));
    let m = l;
    while (m < n - 1 && Math.abs(e[m]) > eps * tst1) m++;
    if (m > l) {
      let iter = 0;
      do {
        if (++iter > 100) throw new Error(`symmetricEigen: QL iteration did not converge for eigenvalue ${l}`);
        let g = d[l];
        let p = (d[l + 1] - g) / (2 * e[l]);
        let r = Math.hypot(p, 1);
        if (p < 0) r = -r;
        d[l] = e[l] / (p + r);
        d[l + 1] = e[l] * (p + r);
        const dl1 = d[l + 1];
        let h = g - d[l];
        for (let i = l + 2; i < n; i++) d[i] -= h;
        f += h;
        p = d[m];
        let c = 1;
        let c2 = c;
        let c3 = c;
        const el1 = e[l + 1];
        let s = 0;
        let s2 = 0;
        for (let i = m - 1; i >= l; i--) {
          c3 = c2;
          c2 = c;
          s2 = s;
          g = c * e[i];
          h = c * p;
          r = Math.hypot(p, e[i]);
          e[i + 1] = s * r;
          s = e[i] / r;
          c = p / r;
          p = c * d[i] - s * g;
          d[i + 1] = h + s * (c * g + s * d[i]);
          const ci = i * n;
          const cj = (i + 1) * n;
          for (let k = 0; k < n; k++) {
            const hk = V[cj + k];
            V[cj + k] = s * V[ci + k] + c * hk;
            V[ci + k] = c * V[ci + k] - s * hk;
          }
        }
        p = (-s * s2 * c3 * el1 * e[l]) / dl1;
        e[l] = s * p;
        d[l] = c * p;
      } while (Math.abs(e[l]) > eps * tst1);
    }
    d[l] += f;
    e[l] = 0;
  }
}

/**
 * Orthonormalizes the k columns of the n x k row-major matrix y in place (modified Gram-Schmidt,
 * two passes: one pass loses orthogonality in proportion to the condition number). A column that
 * vanishes against the previous ones is replaced by a unit vector orthogonal to them.
 */
export function orthonormalizeColumns(y: Float64Array, n: number, k: number): void {
  if (y.length !== n * k || k > n) throw new RangeError(`orthonormalizeColumns: need an n x k matrix with k <= n, got ${y.length} values for ${n} x ${k}`);
  const col = new Float64Array(n);
  for (let j = 0; j < k; j++) {
    for (let i = 0; i < n; i++) col[i] = y[i * k + j];
    const norm0 = Math.sqrt(col.reduce((s, v) => s + v * v, 0)) || 1;
    for (let pass = 0; pass < 2; pass++) {
      for (let q = 0; q < j; q++) {
        let dot = 0;
        for (let i = 0; i < n; i++) dot += y[i * k + q] * col[i];
        for (let i = 0; i < n; i++) col[i] -= dot * y[i * k + q];
      }
    }
    let norm = 0;
    for (let i = 0; i < n; i++) norm += col[i] * col[i];
    norm = Math.sqrt(norm);
    if (!(norm > 1e-12 * norm0)) {
      // Degenerate: start again from a coordinate vector (some coordinate keeps a component).
      for (let u = 0; u < n; u++) {
        col.fill(0);
        col[(j + u) % n] = 1;
        for (let pass = 0; pass < 2; pass++) {
          for (let q = 0; q < j; q++) {
            let dot = 0;
            for (let i = 0; i < n; i++) dot += y[i * k + q] * col[i];
            for (let i = 0; i < n; i++) col[i] -= dot * y[i * k + q];
          }
        }
        norm = Math.sqrt(col.reduce((s, v) => s + v * v, 0));
        if (norm > 1e-6) break;
      }
    }
    for (let i = 0; i < n; i++) y[i * k + j] = col[i] / norm;
  }
}
