// Whole-network gradient check of StyleGAN2 (nets/gradcheck_stylegan2.ts): on a tiny config with
// seeded random weights, the float64 reference's backward and the GPU tape's gradients against
// central finite differences of the float64 reference along random directions (W+, noise maps,
// layer_in, z, every parameter a pass uses), and the GPU forward and gradients against the
// reference element by element. Negative controls: a 1% error in one GPU gradient and a 0.1% error
// in one reference gradient must fail. The float64 reference itself reproduces the PyTorch fixture.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { formatTable } from '../engine/gradcheck.ts';
import { host, type HostArray } from '../engine/reference/host.ts';
import { readFileBytes } from '../engine/io/files.ts';
import { readSafetensors } from '../engine/io/index.ts';
import { TINY_CONFIG, runNetworkCheck, stylegan2NetworkChecks } from '../nets/gradcheck_stylegan2.ts';
import { RefGraph, StyleGAN2Ref, randomHost, randomNoise, randomRefParams } from '../nets/reference/stylegan2_ref.ts';
import { HostRandom } from '../engine/reference/host.ts';
import { readGeneratorCheckpoint } from '../nets/stylegan2_checkpoint.ts';
import { numLatents, numNoises } from '../nets/stylegan2.ts';
import { assertClose, relativeToMax, relToMax } from './helpers.ts';

const test = suite('stylegan2_gradcheck');

const worst = { abs: 0, rel: 0, rows: 0 };
for (const chk of stylegan2NetworkChecks()) {
  test(chk.name, async () => {
    const r = await runNetworkCheck(chk);
    assert.ok(r.pass, `${chk.name}:\n${r.failures.join('\n')}`);
    [worst.abs, worst.rel, worst.rows] = [Math.max(worst.abs, r.maxAbsErr), Math.max(worst.rel, r.maxRelErr), worst.rows + 1];
  });
}

test('the measured errors of the network rows', () => {
  console.log(`  StyleGAN2 network rows: ${worst.rows} rows, max abs err ${worst.abs.toExponential(2)}, max rel err ${worst.rel.toExponential(2)}`);
});

test('negative controls: a 1% error in one GPU gradient, a 0.1% error in the reference backward', async () => {
  const gpu = await runNetworkCheck({ name: 'stylegan2[corrupted GPU gradient]', pass: 'synthesis', corrupt: { leaf: 'param:convs.2.noise.weight', scale: 1.01, where: 'gpu' } });
  assert.is(gpu.pass, false);
  assert.ok(gpu.failures.some((f) => f.startsWith('GPU tape gradient vs finite differences along a random direction of param:convs.2.noise.weight')), gpu.failures.join('\n'));
  const ref = await runNetworkCheck({ name: 'stylegan2[corrupted reference]', pass: 'from_layer', k: 2, corrupt: { leaf: 'layer_in', scale: 1.001, where: 'reference' } });
  assert.is(ref.pass, false);
  assert.ok(ref.failures.some((f) => f.startsWith('reference backward vs finite differences along a random direction of layer_in')), ref.failures.join('\n'));
  assert.match(formatTable([gpu, ref]), /stylegan2\[corrupted GPU gradient\]\s+\S+\s+\S+\s+FAIL/);
});

test('conv_clamp 0.5 bites in the clamped checks: a share of the activations is clamped, so the image changes', () => {
  const clamped = { ...TINY_CONFIG, convClamp: 0.5 };
  const params = randomRefParams(TINY_CONFIG, 1000); // the seed of runNetworkCheck's parameters
  const rng = new HostRandom(4321);
  const wplus = randomHost(rng, [2, numLatents(TINY_CONFIG), TINY_CONFIG.styleDim]);
  const noise = randomNoise(rng, TINY_CONFIG, 2);
  const a = new StyleGAN2Ref(clamped, params).synthesis(new RefGraph(), wplus, noise);
  const b = new StyleGAN2Ref(TINY_CONFIG, params).synthesis(new RefGraph(), wplus, noise);
  const diff = Math.max(...a.data.map((v, i) => Math.abs(v - b.data[i])));
  assert.ok(diff > 0.05, `the clamp changes the image by only ${diff}`);
});

test('the float64 reference reproduces the PyTorch fixture (image and gradients from W+, from layer 3)', async () => {
  const dir = new URL('./fixtures/reference-tiny/', import.meta.url);
  const expected = readSafetensors(await readFileBytes(new URL('generator_expected.safetensors', dir).pathname)).tensors;
  const ckpt = await readGeneratorCheckpoint(await readFileBytes(new URL('generator.pt', dir).pathname));
  const ref = new StyleGAN2Ref(ckpt.config, new Map([...ckpt.stateDict].map(([k, t]) => [k, host(t.shape, t.data)])));
  const get = (n: string): HostArray => host(expected.get(n)!.shape, expected.get(n)!.data as Float32Array);
  // The fixture ran in float32: agreement to ~1e-6 of the scale, far inside the 1e-4 / 1e-3 bars;
  // max|a - b| / max|b| <= 1e-5 per tensor (relativeToMax).
  const err = (a: HostArray | Float64Array, n: string) => {
    const want = expected.get(n)!;
    if (!(a instanceof Float64Array)) assert.equal(a.shape, want.shape, `${n}: shape`);
    const b = want.data as Float32Array;
    return relToMax(assertClose(a instanceof Float64Array ? a : a.data, b, relativeToMax(b, 1e-5), n));
  };
  const wplus = get('in.wplus');
  const noise = Array.from({ length: numNoises(ckpt.config) }, (_, i) => get(`in.noise.${i}`));
  const g = new RefGraph();
  const image = ref.synthesis(g, wplus, noise);
  g.backward(image, get('in.upstream'));
  const errors: Record<string, number> = { 'out.image_from_wplus': err(image, 'out.image_from_wplus'), 'grad.wplus': err(g.grad(wplus), 'grad.wplus') };
  noise.forEach((n, i) => (errors[`grad.noise.${i}`] = err(g.grad(n), `grad.noise.${i}`)));
  const g3 = new RefGraph();
  const layerIn = get('out.features.2');
  const fromLayer = ref.fromLayer(g3, wplus, noise, 3, layerIn);
  g3.backward(fromLayer, get('in.upstream'));
  errors['out.image_from_layer.3'] = err(fromLayer, 'out.image_from_layer.3');
  errors['grad.layer_in.3'] = err(g3.grad(layerIn), 'grad.layer_in.3');
  console.log(`  float64 StyleGAN2 reference vs generator fixture: max|a-b|/max|b| ${Math.max(...Object.values(errors)).toExponential(2)} (bound 1e-5)`);
});

test.run();
