// The RNG's cross-runtime check (`sgilo rngcheck`, run on Node and on Deno by the tests): the GPU
// Philox stream and uniforms must equal the CPU mirror bit for bit; normals must agree within 1e-6
// relative (WGSL's transcendental functions are not correctly rounded). Rows use the gradcheck
// table format so the same parser and the same CI summary cover both.

import { compare, describeMismatch, type CheckResult } from './gradcheck.ts';
import { randomBits, randomNormal, randomUniform } from './random.ts';
import { philoxBitsRef, philoxNormalRef, philoxUniformRef, type Word64 } from './reference/philox.ts';
import { scope } from './tensor.ts';

interface Stream {
  n: number;
  seed: Word64;
  offset: Word64;
}

// Odd sizes (a partial last block of 4 words) and 64-bit seeds and offsets.
const STREAMS: Stream[] = [
  { n: 10_007, seed: [0, 0], offset: [0, 0] },
  { n: 65_537, seed: [0xdeadbeef, 0x12345678], offset: [7, 0] },
  { n: 1_001, seed: [42, 0], offset: [0xffffffff, 0xfffffffe] },
];

/** GPU vs CPU mirror at |a - b| <= rtol |b| (rtol 0: bit for bit), as a gradcheck-table row. */
function check(name: string, got: ArrayLike<number>, want: ArrayLike<number>, rtol: number): CheckResult {
  const tol = { atol: 0, rtol };
  const c = compare(got, want, tol);
  const failures = c.pass ? [] : [describeMismatch(`GPU vs CPU mirror${rtol === 0 ? ' (must be bit-identical)' : ''}`, got, want, c, tol)];
  return { name, maxAbsErr: c.maxAbsErr, maxRelErr: c.maxRelErr, pass: c.pass, failures };
}

export async function runRngChecks(): Promise<CheckResult[]> {
  const results: CheckResult[] = [];
  for (const s of STREAMS) {
    const label = `n=${s.n}, seed=${s.seed[1].toString(16)}:${s.seed[0].toString(16)}, offset=${s.offset[1].toString(16)}:${s.offset[0].toString(16)}`;
    const options = { seed: s.seed, offset: s.offset };
    const [bits, uniform, normal] = await scope(async () => [
      await randomBits([s.n], options).read(),
      await randomUniform([s.n], options).read(),
      await randomNormal([s.n], options).read(),
    ]);
    results.push(check(`philox bits[${label}]`, bits, philoxBitsRef(s.n, s.seed, s.offset), 0));
    results.push(check(`philox uniform[${label}]`, uniform, philoxUniformRef(s.n, s.seed, s.offset), 0));
    results.push(check(`philox normal[${label}]`, normal, philoxNormalRef(s.n, s.seed, s.offset), 1e-6));
  }
  return results;
}
