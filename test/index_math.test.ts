// The kernels' division-free index arithmetic (divmod in shaders/binary.wgsl and
// shaders/layout.wgsl: a float quotient corrected by its remainder) past 2^24, where a float can
// no longer hold every index: broadcasting adds on the scalar and vec4 paths, and a transpose,
// each with over 2^24 outputs, checked at the ends, around multiples of 2^24 and at random points.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { add } from '../engine/ops/elementwise.ts';
import { permute } from '../engine/ops/layout.ts';
import { scope, tensor } from '../engine/tensor.ts';
import { HostRandom } from '../engine/reference/host.ts';

const test = suite('index math');

/** Indices to check in [0, n): both ends, both sides of each multiple of 2^24, and 200 random ones. */
function probes(n: number, seed: number): number[] {
  const out = [0, 1, n - 2, n - 1];
  for (let m = 1 << 24; m < n; m += 1 << 24) out.push(m - 1, m, m + 1);
  const r = new HostRandom(seed);
  for (let i = 0; i < 200; i++) out.push(Math.floor(r.uniform() * n));
  return out;
}

for (const inner of [5_000_001, 5_000_000]) {
  const path = inner % 4 === 0 ? 'vec4' : 'scalar';
  test(`broadcast add [4, ${inner}] + [4, 1] (${path} kernel, ${(4 * inner) / 2 ** 24} x 2^24 outputs)`, async () => {
    await scope(async () => {
      const rows = 4;
      const a = new Float32Array(rows * inner);
      for (let i = 0; i < a.length; i++) a[i] = i % 1009; // exact in float32, varies along both axes
      const y = await add(tensor(a, [rows, inner]), tensor([1000, 2000, 3000, 4000], [rows, 1])).readF32();
      for (const i of probes(rows * inner, 1)) {
        const expected = (i % 1009) + 1000 * (Math.floor(i / inner) + 1);
        if (y[i] !== expected) assert.unreachable(`output ${i} (row ${Math.floor(i / inner)}, column ${i % inner}) is ${y[i]}, expected ${expected}`);
      }
    });
  });
}

test('transpose [4100, 4099] -> [4099, 4100] (1.0017 x 2^24 outputs)', async () => {
  await scope(async () => {
    const [R, C] = [4100, 4099];
    const x = new Float32Array(R * C);
    for (let i = 0; i < x.length; i++) x[i] = i % 8191;
    const y = await permute(tensor(x, [R, C]), [1, 0]).readF32();
    for (const i of probes(R * C, 2)) {
      const [c, r] = [Math.floor(i / R), i % R]; // y[c, r] = x[r, c]
      const expected = (r * C + c) % 8191;
      if (y[i] !== expected) assert.unreachable(`output ${i} (row ${c}, column ${r}) is ${y[i]}, expected ${expected}`);
    }
  });
});

test.run();
