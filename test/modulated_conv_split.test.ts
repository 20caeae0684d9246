// The modulated conv's split upsampling path (engine/ops/modulated_conv.ts, splitUpsample: the
// stride-2 transposed conv as 2x2-tap phases, then the blur as its own upfirdn2d pass), which the
// op takes for upsampling convs on inputs of 32x32 pixels and more: forward and all three
// gradients against the float64 reference (engine/reference/modulated_conv.ts, written as a
// transposed conv then a blur, independently of the phase kernels) on the subgroup and the general
// kernels, each case asserting from the dispatch counts that the split path's kernels ran and the
// fused path's did not; and below the threshold, that the fused path still runs.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { backend } from '../engine/backend.ts';
import { overrideKernelFamily, subgroupTiles, workgroupTiles } from '../engine/device.ts';
import { dispatchCountsByKernel } from '../engine/kernel.ts';
import { scope, tensor } from '../engine/tensor.ts';
import { grad } from '../engine/tape.ts';
import { modulatedConv2d, SPLIT_UPSAMPLE_MIN_PIXELS } from '../engine/ops/modulated_conv.ts';
import { modulatedConvForward, modulatedConvVjp } from '../engine/reference/modulated_conv.ts';
import { HostRandom, host, type HostArray } from '../engine/reference/host.ts';
import { assertClose, relativeToMax } from './helpers.ts';

const test = suite('modulated_conv split upsampling');

function randn(shape: number[], seed: number, mean = 0, std = 1): HostArray {
  const r = new HostRandom(seed);
  const n = shape.reduce((a, b) => a * b, 1);
  return host(shape, Float64Array.from({ length: n }, () => Math.fround(mean + std * r.normal())));
}

interface Case {
  name: string;
  N: number;
  Ci: number;
  Co: number;
  H: number;
  W: number;
  demodulate: boolean;
}

/** Dispatch counts of the kernels whose names start with one of `prefixes`, since `before`. */
function ran(before: Map<string, number>): Map<string, number> {
  const out = new Map<string, number>();
  for (const [key, total] of dispatchCountsByKernel()) {
    const n = total - (before.get(key) ?? 0);
    if (n > 0) out.set(key, n);
  }
  return out;
}

const any = (m: Map<string, number>, prefix: string) => [...m.keys()].some((k) => k.startsWith(prefix));

// float32 sums of up to Ci * 9 products per tap set (forward) and 4H * 4W (weight gradient), as in
// test/modulated_conv.test.ts: per element |a - b| <= tol * max|b|.
const FWD_TOL = 1e-5;
const GRAD_TOL = 2e-5;

/** Runs one case on the GPU (weights requiring grad too) and checks it against the reference; returns the kernels that ran. */
async function check(c: Case, seed: number): Promise<Map<string, number>> {
  const options = { upsample: true, demodulate: c.demodulate };
  const x = randn([c.N, c.Ci, c.H, c.W], seed);
  const w = randn([c.Co, c.Ci, 3, 3], seed + 1);
  const s = randn([c.N, c.Ci], seed + 2, 1, 0.5);
  const want = modulatedConvForward(x, w, s, options);
  const gy = randn(want.shape, seed + 3);
  const wantGrads = modulatedConvVjp(x, w, s, gy, options);
  const before = dispatchCountsByKernel();
  await scope(async () => {
    const inputs = [x, w, s].map((a) => tensor(a.data, a.shape).requireGrad());
    const y = modulatedConv2d(inputs[0], inputs[1], inputs[2], options);
    assert.equal([...y.shape], want.shape, `${c.name}: output shape`);
    assertClose(await y.readF32(), want.data, relativeToMax(want.data, FWD_TOL), `${c.name}: forward`);
    const grads = grad(y, inputs, { upstream: tensor(gy.data, gy.shape) });
    for (const [j, g] of grads.entries()) {
      assertClose(await g.readF32(), wantGrads[j], relativeToMax(wantGrads[j], GRAD_TOL), `${c.name}: gradient of ${['x', 'weight', 'styles'][j]}`);
    }
  });
  return ran(before);
}

const CASES: Case[] = [
  { name: '16 -> 8, 32x32, batch 2', N: 2, Ci: 16, Co: 8, H: 32, W: 32, demodulate: true },
  { name: '16 -> 20, 33x37 (rows not a multiple of 4), no demodulation', N: 1, Ci: 16, Co: 20, H: 33, W: 37, demodulate: false },
  { name: '24 -> 16, 8x128 (a wide, short plane)', N: 1, Ci: 24, Co: 16, H: 8, W: 128, demodulate: true },
];

test('the threshold: every case is at or above it', () => {
  for (const c of CASES) assert.ok(c.H * c.W >= SPLIT_UPSAMPLE_MIN_PIXELS, c.name);
});

for (const family of ['subgroup', 'general'] as const) {
  test(`${family} kernels: the split path runs and equals the reference`, async () => {
    if (workgroupTiles(backend().gpu)) return; // hardware GPUs keep the fused phases (test/conv_tiled.test.ts)
    if (family === 'subgroup' && !subgroupTiles(backend().gpu)) return;
    overrideKernelFamily(family);
    try {
      for (const [j, c] of CASES.entries()) {
        const kernels = await check(c, 500 + 10 * j);
        const names = [...kernels.keys()].join(', ');
        assert.ok(any(kernels, 'modulated_conv.modulated_conv_up_weights_transposed'), `${c.name}: the transposed phase kernels were built (ran: ${names})`);
        assert.ok(any(kernels, 'upfirdn2d.upfirdn2d_forward'), `${c.name}: the blur and its adjoint ran as upfirdn2d (ran: ${names})`);
        assert.not.ok(any(kernels, 'modulated_conv.modulated_conv_up_weights<') || kernels.has('modulated_conv.modulated_conv_up_weights'), `${c.name}: no fused phase kernels (ran: ${names})`);
        assert.not.ok([...kernels.keys()].some((k) => k.includes('linked')), `${c.name}: no fused (linked) forward (ran: ${names})`);
        if (family === 'subgroup') {
          // The variants that leave out the phase kernels' zero taps (" transposed" in the name).
          assert.ok([...kernels.keys()].some((k) => k.startsWith('modulated_conv_subgroup.forward<') && k.includes(' transposed>')), `${c.name}: the subgroup transposed forward ran (ran: ${names})`);
          assert.ok([...kernels.keys()].some((k) => k.startsWith('modulated_conv_subgroup.input_backward<') && k.includes('T2 pad1') && k.includes(' transposed>')), `${c.name}: the subgroup transposed input gradient ran (ran: ${names})`);
        } else {
          assert.ok(kernels.has('modulated_conv.modulated_conv_forward'), `${c.name}: the general forward ran (ran: ${names})`);
          assert.ok(kernels.has('modulated_conv_backward.modulated_conv_input_backward'), `${c.name}: the general input gradient ran (ran: ${names})`);
        }
      }
    } finally {
      overrideKernelFamily(null);
    }
  });
}

test('below the threshold the fused path runs (no blur pass)', async () => {
  if (workgroupTiles(backend().gpu)) return;
  const kernels = await check({ name: '16 -> 8, 16x16', N: 1, Ci: 16, Co: 8, H: 16, W: 16, demodulate: true }, 700);
  assert.not.ok(any(kernels, 'upfirdn2d.'), `ran: ${[...kernels.keys()].join(', ')}`);
  assert.not.ok(any(kernels, 'modulated_conv.modulated_conv_up_weights_transposed'));
});

test.run();
