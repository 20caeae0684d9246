// The ViT score model against the PyTorch reference fixture (SGILO's layout, random weights):
// out.eps to <= 1e-4, grad.x and every grad.param.* to <= 1e-3 (max|a-b| / max|b|), from in.* only.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { readFileBytes } from '../engine/io/files.ts';
import { flattenTensors, loadCheckpoint, readSafetensors } from '../engine/io/index.ts';
import { scope, tensor } from '../engine/tensor.ts';
import { grad, clearTape, noGrad } from '../engine/tape.ts';
import { ScoreViT, inferScoreConfig, parameterShapes } from '../nets/score_vit.ts';
import { compare, describeMismatch } from '../engine/gradcheck.ts';
import { relativeToMax, relToMax } from './helpers.ts';
import type { HostTensor } from '../engine/host_tensor.ts';

const FIXTURE = new URL('./fixtures/reference-tiny/', import.meta.url);
const path = (f: string) => new URL(f, FIXTURE).pathname;
const test = suite('score_vit');

async function loadScore(): Promise<Map<string, HostTensor<Float32Array>>> {
  const sd = new Map<string, HostTensor<Float32Array>>();
  for (const [k, t] of flattenTensors(await loadCheckpoint(await readFileBytes(path('score.pt'))))) sd.set(k, { dtype: 'float32', shape: t.shape, data: t.data as Float32Array });
  return sd;
}

test('score.pt: eps, grad x and every parameter gradient match the fixture', async () => {
  const sd = await loadScore();
  const config = inferScoreConfig(sd, 1);
  assert.equal(config, { channels: 16, height: 4, width: 4, dim: 32, depth: 2, heads: 1, dimHead: 16, mlp: 64 });
  const net = ScoreViT.fromStateDict(config, sd);
  const exp = readSafetensors(await readFileBytes(path('score_expected.safetensors'))).tensors;
  const T = (n: string) => {
    const t = exp.get(n)!;
    return tensor(t.data as Float32Array, t.shape);
  };
  const host = (n: string) => exp.get(n)!;
  try {
    const failures: string[] = [];
    const worst: string[] = [];
    const top = { out: 0, grad: 0 };
    await scope(async () => {
      const x = T('in.x').requireGrad();
      const params = net.trainable();
      for (const [, p] of params) p.requireGrad();
      const eps = net.forward(x, T('in.t'));
      // max|a - b| / max|b| <= t per tensor (relativeToMax).
      const check = (name: string, got: Float32Array, shape: readonly number[], t: number) => {
        const want = host(name);
        if (want.shape.join() !== shape.join()) return void failures.push(`${name}: shape [${shape}], expected [${want.shape}]`);
        const tol = relativeToMax(want.data as Float32Array, t);
        const c = compare(got, want.data as Float32Array, tol);
        const err = relToMax(c);
        worst.push(`${name} ${err.toExponential(1)}`);
        const kind = name.startsWith('out.') ? 'out' : 'grad';
        top[kind] = Math.max(top[kind], err);
        if (!c.pass) failures.push(describeMismatch(name, got, want.data as Float32Array, c, tol, want.shape));
      };
      check('out.eps', await eps.readF32(), eps.shape, 1e-4);
      const gs = grad(eps, [x, ...params.map(([, p]) => p)], { upstream: T('in.upstream') });
      check('grad.x', await gs[0].readF32(), gs[0].shape, 1e-3);
      for (const [i, [name]] of params.entries()) {
        const want = `grad.param.${name}`;
        if (!exp.has(want)) failures.push(`fixture lacks ${want}`);
        else check(want, await gs[i + 1].readF32(), gs[i + 1].shape, 1e-3);
      }
      for (const [, p] of params) p.requireGrad(false);
    }).finally(clearTape);
    const gradParams = [...exp.keys()].filter((k) => k.startsWith('grad.param.'));
    assert.is(gradParams.length, net.trainable().length, 'one fixture gradient per trainable parameter');
    assert.equal(failures, [], worst.join(', '));
    console.log(`  score fixture: max|a-b|/max|b| ${top.out.toExponential(2)} (out.eps, bound 1e-4), ${top.grad.toExponential(2)} (gradients, bound 1e-3)`);
  } finally {
    net.dispose();
  }
});

test('bad input shapes are named', async () => {
  const sd = await loadScore();
  const net = ScoreViT.fromStateDict(inferScoreConfig(sd), sd);
  try {
    const x = tensor(new Float32Array(2 * 16 * 16), [2, 16, 4, 4]);
    assert.throws(() => net.forward(tensor(new Float32Array(16 * 9), [1, 16, 3, 3]), tensor([0.5], [1])), /input must be \[B, 16, 4, 4\]/);
    assert.throws(() => net.forward(x, tensor([0.5], [1])), /t must be \[2\]/);
    x.dispose();
  } finally {
    net.dispose();
  }
});

test("the paper's size (D 1024, depth 8, 1 head of 64, MLP 4096) builds, infers its config and runs", async () => {
  // The model the paper trains on FFHQ features (here on the Fashion model's [128, 8, 8] features):
  // about 102M parameters; one forward at batch 1 must give a finite eps of the input's shape.
  const config = { channels: 128, height: 8, width: 8, dim: 1024, depth: 8, heads: 1, dimHead: 64, mlp: 4096 };
  // Cheap deterministic weights (a seeded normal init of 102M values takes most of a minute on the
  // host); scaled so activations stay O(1).
  const sd = new Map<string, HostTensor<Float32Array>>();
  for (const [name, shape] of parameterShapes(config)) {
    const n = shape.reduce((a, b) => a * b, 1);
    const fanIn = shape.length > 1 ? shape[shape.length - 1] : 1;
    const data = new Float32Array(n);
    for (let i = 0; i < n; i++) data[i] = Math.sin(i * 0.7 + name.length) / Math.sqrt(fanIn);
    sd.set(name, { dtype: 'float32', shape, data });
  }
  assert.equal(inferScoreConfig(sd, 1), config);
  const net = ScoreViT.fromStateDict(config, sd);
  sd.clear();
  try {
    const eps = await scope(async () => {
      const x = tensor(Float32Array.from({ length: 128 * 64 }, (_, i) => Math.sin(i)), [1, 128, 8, 8]);
      return noGrad(() => net.forward(x, tensor([0.3], [1]))).readF32();
    });
    assert.is(eps.length, 128 * 64);
    assert.ok(eps.every(Number.isFinite), 'eps is finite');
    assert.ok(eps.some((v) => v !== 0), 'eps is not all zero');
  } finally {
    net.dispose();
  }
});

test.run();
