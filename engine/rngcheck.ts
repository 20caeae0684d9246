// The RNG's cross-runtime check (`sgilo rngcheck`, run on Node and on Deno by the tests): the GPU
// Philox stream and uniforms must equal the CPU mirror bit for bit; normals must agree within 1e-6
// relative (WGSL's transcendental functions are not correctly rounded). Rows use the gradcheck
// table format so the same parser and the same CI summary cover both.

import type { CheckResult } from './gradcheck.ts';
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

function compare(name: string, got: ArrayLike<number>, want: ArrayLike<number>, rtol: number): CheckResult {
  let maxAbs = 0;
  let maxRel = 0;
  let worst = -1;
  for (let i = 0; i < want.length; i++) {
    const abs = Math.abs(got[i] - want[i]);
    const rel = abs / Math.max(Math.abs(want[i]), 1e-30);
    if (!(abs <= rtol * Math.abs(want[i])) && worst < 0) worst = i; // NaN fails too
    maxAbs = Math.max(maxAbs, Number.isNaN(abs) ? Infinity : abs);
    maxRel = Math.max(maxRel, Number.isNaN(rel) ? Infinity : rel);
  }
  const failures = worst < 0 ? [] : [`element ${worst}: GPU ${got[worst]}, CPU mirror ${want[worst]}${rtol === 0 ? ' (must be bit-identical)' : ''}`];
  if (got.length !== want.length) failures.push(`GPU gave ${got.length} values, CPU ${want.length}`);
  return { name, maxAbsErr: maxAbs, maxRelErr: maxRel, pass: failures.length === 0, failures };
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
    results.push(compare(`philox bits[${label}]`, bits, philoxBitsRef(s.n, s.seed, s.offset), 0));
    results.push(compare(`philox uniform[${label}]`, uniform, philoxUniformRef(s.n, s.seed, s.offset), 0));
    results.push(compare(`philox normal[${label}]`, normal, philoxNormalRef(s.n, s.seed, s.offset), 1e-6));
  }
  return results;
}
