// Adam.loadState (checkpoint resume): an optimizer whose state is restored from another's moments and
// step count continues bit-identically; ownership of the loaded tensors; bad input is refused.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { scope, tensor, type Tensor } from '../engine/tensor.ts';
import { Adam, AdamW } from '../engine/optim.ts';
import { HostRandom } from '../engine/reference/host.ts';

const test = suite('optim_state');
const SHAPES = [[3, 4], [5]];

/** Host copies of a tensor list. */
const readAll = (ts: Tensor[]) => Promise.all(ts.map(async (t) => Array.from(await t.readF32())));

for (const W of [Adam, AdamW]) {
  test(`${W.name}: a restored state continues exactly like the original run`, async () => {
    const rng = new HostRandom(3);
    const init = SHAPES.map((s) => Float32Array.from({ length: s.reduce((a, b) => a * b, 1) }, () => rng.normal()));
    const grads = Array.from({ length: 6 }, () => init.map((d) => Float32Array.from(d, () => rng.normal())));
    const a = init.map((d, i) => tensor(d, SHAPES[i]).keep());
    const optA = new W(a, { lr: 0.05, betas: [0.8, 0.95] });
    for (let k = 0; k < 3; k++) scope(() => optA.step(grads[k].map((g, i) => tensor(g, SHAPES[i]))));
    // A fresh optimizer on copies of the parameters, given copies of A's moments and step count.
    const b = await Promise.all(a.map(async (p) => tensor(await p.readF32(), p.shape).keep()));
    const optB = new W(b, { lr: 0.05, betas: [0.8, 0.95] });
    for (const [i, p] of a.entries()) {
      const s = optA.stateOf(p)!;
      optB.loadState(b[i], { step: s.step, m: tensor(await s.m.readF32(), p.shape), v: tensor(await s.v.readF32(), p.shape) });
      assert.is(optB.stateOf(b[i])!.step, 3);
    }
    for (let k = 3; k < 6; k++) {
      for (const [opt, ps] of [[optA, a], [optB, b]] as const) scope(() => opt.step(grads[k].map((g, i) => tensor(g, ps[i].shape))));
    }
    assert.equal(await readAll(b), await readAll(a), 'parameters after 3 more steps');
    assert.equal(await readAll(b.map((p) => optB.stateOf(p)!.v)), await readAll(a.map((p) => optA.stateOf(p)!.v)), 'second moments');
    // Loading again frees the replaced moments; dispose frees the loaded ones.
    const old = optB.stateOf(b[1])!;
    optB.loadState(b[1], { step: 7, m: tensor(new Float32Array(5), [5]), v: tensor(new Float32Array(5), [5]) });
    assert.ok(old.m.disposed && old.v.disposed, 'the replaced state is freed');
    const loaded = optB.stateOf(b[1])!;
    optA.dispose();
    optB.dispose();
    assert.ok(loaded.m.disposed && loaded.v.disposed, 'dispose() frees loaded moments');
    for (const p of [...a, ...b]) p.dispose();
  });
}

test('Adam.loadState refuses bad input with a message naming the problem', () => {
  scope(() => {
    const p = tensor(new Float32Array(4), [2, 2]);
    const opt = new Adam([p]);
    const z = (shape: number[]) => tensor(new Float32Array(shape.reduce((a, b) => a * b, 1)), shape);
    const m = z([2, 2]);
    assert.throws(() => opt.loadState(z([2, 2]), { step: 1, m, v: z([2, 2]) }), /not one of this optimizer's parameters/);
    assert.throws(() => opt.loadState(p, { step: 0, m, v: z([2, 2]) }), /step must be an integer >= 1/);
    assert.throws(() => opt.loadState(p, { step: 1.5, m, v: z([2, 2]) }), /step must be an integer >= 1/);
    assert.throws(() => opt.loadState(p, { step: 1, m, v: z([4]) }), /v has shape \[4\] but its parameter has shape \[2, 2\]/);
    assert.throws(() => opt.loadState(p, { step: 1, m, v: m }), /different tensors/);
    assert.throws(() => opt.loadState(p, { step: 1, m: p, v: z([2, 2]) }), /parameter tensor itself/);
    const gone = z([2, 2]);
    gone.dispose();
    assert.throws(() => opt.loadState(p, { step: 1, m, v: gone }), /was disposed/);
    assert.is(opt.stateOf(p), undefined, 'a refused load leaves no state');
    opt.dispose();
  });
});

test.run();
