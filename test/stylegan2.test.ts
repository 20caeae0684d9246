// StyleGAN2 against the PyTorch reference fixture (rosinality code, random weights): every out.*
// and grad.* tensor of generator_expected.safetensors, replayed from the in.* tensors alone, from
// the zip-format and the legacy-format checkpoint; the per-block quantities the replay reads off
// one traced pass equal a split run at each block; a perturbed weight must break the match.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { readFileBytes } from '../engine/io/files.ts';
import { readSafetensors } from '../engine/io/index.ts';
import { tensor, scope } from '../engine/tensor.ts';
import { grad, clearTape } from '../engine/tape.ts';
import { StyleGAN2, numBlocks, numLatents, numNoises } from '../nets/stylegan2.ts';
import { readGeneratorCheckpoint } from '../nets/stylegan2_checkpoint.ts';
import { replayGenerator, type TensorMap } from '../nets/replay_generator.ts';
import { compare, describeMismatch } from '../engine/gradcheck.ts';
import { relativeToMax, relToMax } from './helpers.ts';

const FIXTURE = new URL('./fixtures/reference-tiny/', import.meta.url);
const path = (f: string) => new URL(f, FIXTURE).pathname;
const test = suite('stylegan2');

const expected = readSafetensors(await readFileBytes(path('generator_expected.safetensors'))).tensors as unknown as TensorMap;
const inputsOnly: TensorMap = new Map([...expected].filter(([k]) => k.startsWith('in.')));
const targets = [...expected.keys()].filter((k) => k.startsWith('out.') || k.startsWith('grad.'));

/** The fixture's bounds on max|a - b| / max|b| per tensor (relativeToMax): outputs, gradients. */
const OUT_TOL = 1e-4;
const GRAD_TOL = 1e-3;

function compareAll(got: TensorMap): { worst: Record<string, number>; failures: string[] } {
  const worst: Record<string, number> = {};
  const failures: string[] = [];
  for (const name of targets) {
    const g = got.get(name);
    const want = expected.get(name)!;
    if (!g) {
      failures.push(`${name}: not produced`);
      continue;
    }
    if (g.shape.join() !== want.shape.join()) {
      failures.push(`${name}: shape [${g.shape}], expected [${want.shape}]`);
      continue;
    }
    const tol = relativeToMax(want.data, name.startsWith('out.') ? OUT_TOL : GRAD_TOL);
    const c = compare(g.data, want.data, tol);
    worst[name] = relToMax(c);
    if (!c.pass) failures.push(describeMismatch(name, g.data, want.data, c, tol, want.shape));
  }
  return { worst, failures };
}

/** The largest max|a - b| / max|b| over the out.* and over the grad.* tensors, for the log. */
function summary(worst: Record<string, number>): string {
  const top = (prefix: string) => Math.max(...Object.entries(worst).filter(([k]) => k.startsWith(prefix)).map(([, e]) => e));
  return `max|a-b|/max|b| ${top('out.').toExponential(2)} (outputs, bound ${OUT_TOL}), ${top('grad.').toExponential(2)} (gradients, bound ${GRAD_TOL})`;
}

for (const file of ['generator.pt', 'generator_legacy.pt']) {
  test(`${file}: replay reproduces every out.* (<= 1e-4) and grad.* (<= 1e-3) tensor`, async () => {
    const ckpt = await readGeneratorCheckpoint(await readFileBytes(path(file)));
    assert.equal(ckpt.config, { size: 32, styleDim: 64, nMlp: 2, lrMlp: 0.01, channels: { 4: 32, 8: 32, 16: 24, 32: 16 } });
    const g = StyleGAN2.fromStateDict(ckpt.config, ckpt.stateDict, ckpt.latentAvg);
    try {
      const got = await replayGenerator(g, inputsOnly);
      const { worst, failures } = compareAll(got);
      assert.equal(failures, []);
      console.log(`  generator fixture, ${file}: ${summary(worst)}`);
      assert.is(targets.length, 28, "out.* and grad.* tensors in the fixture");
    } finally {
      g.dispose();
    }
  });
}

test('the per-block quantities of one traced W+ pass equal a forward and backward split at each block, bit for bit', async () => {
  const ckpt = await readGeneratorCheckpoint(await readFileBytes(path('generator.pt')));
  const g = StyleGAN2.fromStateDict(ckpt.config, ckpt.stateDict, ckpt.latentAvg);
  try {
    const got = await replayGenerator(g, inputsOnly, ['out.features.*', 'out.image_from_layer.*', 'grad.layer_in.*', 'grad.wplus_from_layer.*']);
    const input = (name: string) => tensor(inputsOnly.get(name)!.data, inputsOnly.get(name)!.shape);
    const L = numBlocks(g.config);
    for (let k = 1; k < L; k++) {
      const split = await scope(async () => {
        const f = got.get(`out.features.${k - 1}`)!;
        const layerIn = tensor(f.data, f.shape).requireGrad();
        const wplus = input('in.wplus').requireGrad();
        const noise = Array.from({ length: numNoises(g.config) }, (_, i) => input(`in.noise.${i}`));
        const image = g.fromLayer({ wplus, noise }, k, layerIn);
        const grads = grad(image, [layerIn, wplus], { upstream: input('in.upstream') });
        return Promise.all([image, ...grads].map((t) => t.readF32()));
      }).finally(clearTape);
      ['out.image_from_layer', 'grad.layer_in', 'grad.wplus_from_layer'].forEach((name, i) => {
        const a = got.get(`${name}.${k}`)!.data;
        const diff = a.findIndex((v, j) => !Object.is(v, split[i][j]));
        assert.is(diff, -1, `${name}.${k}[${diff}]: traced ${a[diff]}, split ${split[i][diff]}`);
      });
    }
  } finally {
    g.dispose();
  }
});

test('negative control: one perturbed weight breaks the comparison', async () => {
  const ckpt = await readGeneratorCheckpoint(await readFileBytes(path('generator.pt')));
  const w = ckpt.stateDict.get('convs.2.conv.weight')!;
  const data = Float32Array.from(w.data);
  data[17] += 0.5;
  ckpt.stateDict.set('convs.2.conv.weight', { dtype: 'float32', shape: w.shape, data });
  const g = StyleGAN2.fromStateDict(ckpt.config, ckpt.stateDict, ckpt.latentAvg);
  try {
    const { failures } = compareAll(await replayGenerator(g, inputsOnly));
    assert.ok(failures.length > 0, 'a perturbed weight must be detected');
    assert.ok(failures.some((f) => f.startsWith('out.image_from_z')), failures.join('\n'));
  } finally {
    g.dispose();
  }
});

test('missing or misshapen checkpoint tensors are named', async () => {
  const ckpt = await readGeneratorCheckpoint(await readFileBytes(path('generator.pt')));
  const sd = new Map(ckpt.stateDict);
  sd.delete('to_rgbs.1.bias');
  assert.throws(() => StyleGAN2.fromStateDict(ckpt.config, sd, null), /missing tensor "to_rgbs.1.bias"/);
  const sd2 = new Map(ckpt.stateDict);
  sd2.set('style.1.bias', { dtype: 'float32', shape: [63], data: new Float32Array(63) });
  assert.throws(() => StyleGAN2.fromStateDict(ckpt.config, sd2, null), /"style.1.bias" has shape \[63\], expected \[64\]/);
});

test('the Fashion-MNIST model loads and renders finite images in range', async () => {
  const bytes = await readFileBytes(new URL('../models/fashion32/fashion32-stylegan2.pt', import.meta.url).pathname);
  const ckpt = await readGeneratorCheckpoint(bytes);
  assert.equal(ckpt.config, { size: 32, styleDim: 128, nMlp: 4, lrMlp: 0.01, channels: { 4: 128, 8: 128, 16: 64, 32: 32 } });
  const g = StyleGAN2.fromStateDict(ckpt.config, ckpt.stateDict, ckpt.latentAvg);
  try {
    const codes = readSafetensors(await readFileBytes(new URL('../models/fashion32/fashion32-codes.safetensors', import.meta.url).pathname)).tensors.get('z')!;
    const img = await scope(async () => {
      const z = tensor((codes.data as Float32Array).subarray(0, 4 * 128), [4, 128]);
      const w = g.mapping(z);
      const image = g.synthesis({ wplus: g.broadcastWplus(w) });
      assert.equal(image.shape, [4, 3, 32, 32]);
      assert.is(numLatents(g.config), 8);
      return image.readF32();
    });
    assert.ok(img.every(Number.isFinite), 'finite');
    const lo = Math.min(...img);
    const hi = Math.max(...img);
    assert.ok(lo > -1.5 && hi < 1.5, `values in [${lo}, ${hi}]`);
    assert.ok(hi - lo > 1, 'an image, not a constant');
  } finally {
    g.dispose();
  }
});

test.run();
