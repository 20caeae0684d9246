// Gradcheck rows of the partial circulant measurement (engine/ops/partial_circulant.ts). Included
// in the table by allGradCases() (engine/cases/index.ts). The filter, signs and kept indices
// are constants of each case (random, fixed seed, indices distinct and unsorted so that a kernel
// assuming sorted indices would fail); x is the only input. n = 12 is checked coordinate by
// coordinate, n = 60 (not a power of two) along random directions.

import { TOLERANCES, type GradCase } from '../gradcheck.ts';
import { partialCirculant } from '../ops/partial_circulant.ts';
import { partialCirculantForward, partialCirculantVjp, type CirculantParams } from '../reference/partial_circulant.ts';
import { HostRandom } from '../reference/host.ts';
import { tensor } from '../tensor.ts';

function circulantParams(n: number, m: number, seed: number): CirculantParams {
  const rng = new HostRandom(seed);
  const filt = Float64Array.from({ length: n }, () => Math.fround(rng.normal()));
  const signs = Float64Array.from({ length: n }, () => (rng.uniform() < 0.5 ? -1 : 1));
  const pool = Array.from({ length: n }, (_, i) => i);
  for (let i = 0; i < m; i++) {
    const j = i + Math.floor(rng.uniform() * (n - i));
    [pool[i], pool[j]] = [pool[j], pool[i]];
  }
  return { filt, signs, idx: pool.slice(0, m) };
}

function circulantCase(rows: number, n: number, m: number, seed: number): GradCase {
  const p = circulantParams(n, m, seed);
  return {
    name: `partial_circulant[${rows}x${n}, m=${m}]`,
    inputs: [{ shape: [rows, n] }],
    tol: TOLERANCES.matmul, // sums of n products, like a matmul row
    forward: ([x]) => partialCirculantForward(x, p),
    vjp: ([x], gy) => [partialCirculantVjp(x, p, gy)],
    gpu: ([x]) => partialCirculant(x, tensor(p.filt, [n]), tensor(p.signs, [n]), tensor(p.idx, [m], 'u32')),
  };
}

export function partialCirculantGradCases(): GradCase[] {
  return [circulantCase(2, 12, 5, 31), circulantCase(3, 60, 17, 32)];
}
