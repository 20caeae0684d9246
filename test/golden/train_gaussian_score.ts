// Development-time training of the committed Gaussian score model
// (test/fixtures/score-gaussian-vector.safetensors), which test/score_gaussian.test.ts loads and
// checks against the analytic score.
//
// Usage (from the repository root; deterministic from the settings below):
//   nice -n 15 node --import ./scripts/register-ts.mjs test/golden/train_gaussian_score.ts
//   options (defaults = the committed model): --steps 3000 --batch 512 --lr 3e-3 --lr-final 3e-4
//     --decay <steps/3> (cosine from lr to lr-final over the last `decay` steps) --warmup 50
//     --ema 0.995 --t-power 3 --seed 5 --init-seed 1 --eval-every 250 --dim 32 --depth 1
//     --time vector|token --out FILE --extra-seeds 44,45 (also sample with these seeds)
// Prints the loss and the EMA model's E_score (and the same relative error at single small times)
// every K steps, then the full check (E_score, E_mean, E_cov with the test's sampler settings), and
// writes the model file (EMA weights, no training state). The last run's output is recorded in the
// header of test/score_gaussian.test.ts.
// Data: the 4,096 seeded draws of test/score_gaussian_problem.ts, normalized as the trainer sees them.

import { init, shutdown } from '../../engine/engine.ts';
import { writeFileBytes } from '../../engine/io/files.ts';
import { ScoreViT, type ScoreViTConfig } from '../../nets/score_vit.ts';
import { initScoreStateDict, scoreModelConfig, stripTraining } from '../../samplers/score/checkpoint.ts';
import { ScoreTrainer, type TrainOptions } from '../../samplers/score/train.ts';
import { D4, GAUSSIAN_MODEL, GAUSSIAN_VIT, N, SAMPLING, check, makeProblem, scoreError, show } from '../score_gaussian_problem.ts';

const args = new Map<string, string>();
for (let i = 2; i < process.argv.length; i += 2) args.set(process.argv[i].replace(/^--/, ''), process.argv[i + 1]);
const num = (k: string, d: number) => (args.has(k) ? Number(args.get(k)) : d);

const vit: ScoreViTConfig = {
  ...GAUSSIAN_VIT,
  dim: num('dim', GAUSSIAN_VIT.dim),
  depth: num('depth', GAUSSIAN_VIT.depth),
  time: (args.get('time') as ScoreViTConfig['time']) ?? 'vector',
};
const steps = num('steps', 3000);
const evalEvery = num('eval-every', 250);
const initSeed = num('init-seed', 1);
const options: Partial<TrainOptions> = { batch: num('batch', 512), lr: num('lr', 3e-3), warmup: num('warmup', 50), emaDecay: num('ema', 0.995), seed: num('seed', 5), gradClip: 1, tPower: num('t-power', 3) };
// Learning rate: constant, then a cosine from lr down to lrFinal over the last `decay` steps.
const lrFinal = num('lr-final', 3e-4);
const decay = num('decay', Math.round(steps / 3));
const out = args.get('out') ?? GAUSSIAN_MODEL;

await init();
const problem = makeProblem();
const config = scoreModelConfig(vit, problem.norm, { source: 'test/golden/train_gaussian_score.ts', samples: String(N), steps: String(steps), init_seed: String(initSeed), options: JSON.stringify(options) });
const net = ScoreViT.fromStateDict(vit, initScoreStateDict(vit, initSeed));
const trainer = new ScoreTrainer(net, config, { data: problem.data, shape: [N, D4, 1, 1] }, options);
console.log(`config ${JSON.stringify(vit)}; options ${JSON.stringify(trainer.options)}; ${steps} steps`);
const started = performance.now();
const avg = (a: number[]) => a.reduce((x, y) => x + y, 0) / a.length;
const lr0 = trainer.options.lr;
// The sampler's last steps: where a relative eps error shrinks or widens the samples (the diagnostic).
const SMALL_T = [0.001, 0.003, 0.01, 0.03];
for (let s = 1; s <= steps; s++) {
  const into = s - 1 - (steps - decay); // steps into the decay
  if (into >= 0) trainer.options.lr = lrFinal + ((lr0 - lrFinal) * (1 + Math.cos((Math.PI * into) / decay))) / 2;
  await trainer.trainStep();
  if (s % evalEvery === 0 || s === steps) {
    const ema = await trainer.emaNet();
    const e = await scoreError(ema, problem);
    const small = await Promise.all(SMALL_T.map((t) => scoreError(ema, problem, [t])));
    ema.dispose();
    const sec = (performance.now() - started) / 1000;
    const smallText = small.map((v, i) => `${SMALL_T[i]}: ${v.toFixed(3)}`).join(', ');
    console.log(`step ${s}: loss (last ${evalEvery}) ${avg(trainer.losses.slice(-evalEvery)).toFixed(4)}, lr ${trainer.options.lr.toPrecision(2)}, EMA E_score ${e.toPrecision(3)} (at t ${smallText}), ${sec.toFixed(0)} s`);
  }
}
const ema = await trainer.emaNet();
const v = await check(ema, problem);
console.log(`final (EMA, ${SAMPLING.chains} chains x ${SAMPLING.steps} steps): ${show(v)}`);
for (const seed of (args.get('extra-seeds') ?? '').split(',').filter(Boolean)) {
  console.log(`  sample seed ${seed}: ${show(await check(ema, problem, { ...SAMPLING, seed: Number(seed) }))}`);
}
await writeFileBytes(out, stripTraining(await trainer.checkpoint()));
console.log(`wrote ${out} (${((performance.now() - started) / 1000).toFixed(0)} s)`);
ema.dispose();
trainer.dispose();
net.dispose();
shutdown();
