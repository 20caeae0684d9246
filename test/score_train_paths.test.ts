// The score model's training step through its fused paths (what training runs: attention in place
// on the fused qkv projection, the time modulation inside the LayerNorm kernels) against the
// compositions they replaced (ScoreViT.compose: permute and slice around attention; slice,
// multiply and add after the LayerNorm): the same losses and weights after 3 steps to float32
// tolerance, at the shipped block-0 shape (vector time) and a small token-mode model, with fewer
// pad and gather dispatches. And the bench's FLOP count by hand.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { dispatchCountsByKernel } from '../engine/kernel.ts';
import { HostRandom } from '../engine/reference/host.ts';
import { ScoreViT, type ScoreViTConfig } from '../nets/score_vit.ts';
import { initScoreStateDict, scoreModelConfig } from '../samplers/score/checkpoint.ts';
import { ScoreTrainer } from '../samplers/score/train.ts';
import { BLOCK0_VIT, stepFlops } from '../bench/score_train.ts';
import { assertClose, relativeToMax } from './helpers.ts';

const test = suite('score_train_paths');

const layoutDispatches = () => [...dispatchCountsByKernel()].filter(([k]) => k.startsWith('layout.layout_pad') || k.startsWith('layout.layout_gather')).reduce((s, [, n]) => s + n, 0);

/** Losses of 3 steps, the raw weights after them, and the pad/gather dispatches of the run. */
async function run(vit: ScoreViTConfig, batch: number, compose: boolean): Promise<{ losses: number[]; weights: Map<string, Float32Array>; layout: number }> {
  const N = 4 * batch;
  const item = vit.channels * vit.height * vit.width;
  const rng = new HostRandom(11);
  const data = Float32Array.from({ length: N * item }, () => rng.uniform());
  const net = ScoreViT.fromStateDict(vit, initScoreStateDict(vit, 3));
  net.compose = compose;
  const trainer = new ScoreTrainer(net, scoreModelConfig(vit, { min: 0, max: 1 }), { data, shape: [N, vit.channels, vit.height, vit.width] }, { seed: 5, batch });
  const before = layoutDispatches();
  try {
    const losses: number[] = [];
    for (let i = 0; i < 3; i++) losses.push(await trainer.trainStep());
    const layout = layoutDispatches() - before;
    const weights = new Map<string, Float32Array>();
    for (const [name, p] of net.trainable()) weights.set(name, await p.readF32());
    return { losses, weights, layout };
  } finally {
    trainer.dispose();
    net.dispose();
  }
}

const SMALL_TOKEN: ScoreViTConfig = { channels: 3, height: 3, width: 2, dim: 16, depth: 2, heads: 2, dimHead: 8, mlp: 24 };

test('3 training steps: the fused paths give the compositions\' losses and weights (block-0 shape, and a token-mode model)', async () => {
  for (const [vit, batch] of [[BLOCK0_VIT, 8], [SMALL_TOKEN, 5]] as const) {
    const old = await run(vit, batch, true);
    const now = await run(vit, batch, false);
    const label = `${JSON.stringify(vit)}`;
    assertClose(now.losses, old.losses, { atol: 0, rtol: 1e-5 }, `losses ${label}`);
    // Adam divides by sqrt(v): weights move by about lr per step whatever the gradient's size, so
    // they are compared against the size of the weights, to float32 accumulation order.
    for (const [name, w] of old.weights) assertClose(now.weights.get(name)!, w, relativeToMax(w, 1e-5), `${name} ${label}`);
    // The compositions pad and gather the projection (and the modulation) in every block; fused,
    // the only ones left are the token permutes and the time features' slice.
    assert.ok(now.layout < old.layout, `${label}: ${now.layout} pad/gather dispatches in place, ${old.layout} composed`);
  }
});

test('the bench\'s FLOP count of the block-0 step, by hand', () => {
  // Rows R = 32 * 16 = 512. Linears (I -> O): per block time_mod 2x (128 -> 256, 32 rows),
  // to_qkv 128 -> 384, to_out 128 -> 128, mlp 128 -> 256 -> 128; patch 128 -> 128 (no input
  // gradient), projector 128 -> 128; time MLP 128 -> 128 (no input gradient), 128 -> 128 (32 rows).
  const lin = (R: number, I: number, O: number, inputGrad = true) => 2 * R * I * O * (inputGrad ? 3 : 2);
  let want = lin(32, 128, 128, false) + lin(32, 128, 128) + lin(512, 128, 128, false) + lin(512, 128, 128);
  want += 4 * (2 * lin(32, 128, 256) + lin(512, 128, 384) + lin(512, 128, 128) + lin(512, 128, 256) + lin(512, 256, 128));
  want += 4 * 12 * 32 * 8 * 16 * 16 * 16; // attention: 4 B h T^2 dh forward, twice that backward
  assert.is(stepFlops(BLOCK0_VIT, 32), want);
});

test.run();
