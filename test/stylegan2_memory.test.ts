// The StyleGAN2 memory planner (nets/stylegan2_memory.ts) against the engine's own bytes-in-use
// counter, and the memory budget: config-f 1024x1024 forward + backward at batch 1 fits a 16 GB GPU.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { readFileBytes } from '../engine/io/files.ts';
import { subgroupTiles } from '../engine/device.ts';
import { engine } from '../engine/engine.ts';
import { StyleGAN2, configF } from '../nets/stylegan2.ts';
import { readGeneratorCheckpoint } from '../nets/stylegan2_checkpoint.ts';
import { randomStateDict } from '../nets/stylegan2_checkpoint.ts';
import { TINY_CONFIG } from '../nets/gradcheck_stylegan2.ts';
import { BUDGET_BYTES, FASHION_CONFIG, measurePeakBytes, memoryPlanCommand, planStyleGAN2Memory, synthesisStep } from '../nets/stylegan2_memory.ts';

const test = suite('stylegan2_memory');

async function measured(gen: StyleGAN2, batch: number, paramGrads: boolean): Promise<number> {
  await synthesisStep(gen, batch, { paramGrads }); // pipelines and the upfirdn2d kernel cache
  const m = await measurePeakBytes(() => synthesisStep(gen, batch, { paramGrads }));
  return m.peakBytes - m.startBytes;
}

test('the plan equals the measured peak of bytesInUse on the Fashion model at batch 1', async () => {
  const ckpt = await readGeneratorCheckpoint(await readFileBytes(new URL('../models/fashion32/fashion32-stylegan2.pt', import.meta.url).pathname));
  assert.equal(ckpt.config, FASHION_CONFIG);
  const gen = StyleGAN2.fromStateDict(ckpt.config, ckpt.stateDict, ckpt.latentAvg);
  try {
    const got = await measured(gen, 1, false);
    assert.is(planStyleGAN2Memory(FASHION_CONFIG, 1, { subgroupTiles: subgroupTiles(engine().gpu) }).passPeakBytes, got);
  } finally {
    gen.dispose();
  }
});

test('the plan equals the measured peak with parameter gradients, batch 2 (tiny config)', async () => {
  const gen = StyleGAN2.fromStateDict(TINY_CONFIG, randomStateDict(TINY_CONFIG));
  try {
    const tiles = subgroupTiles(engine().gpu);
    for (const paramGrads of [false, true]) assert.is(planStyleGAN2Memory(TINY_CONFIG, 2, { paramGrads, subgroupTiles: tiles }).passPeakBytes, await measured(gen, 2, paramGrads), `paramGrads ${paramGrads}`);
  } finally {
    gen.dispose();
  }
});

test('config-f 1024x1024 forward + backward at batch 1 stays within 16 GB', () => {
  for (const paramGrads of [false, true]) {
    const p = planStyleGAN2Memory(configF(1024), 1, { paramGrads });
    assert.ok(p.peakBytes > 1e9, `a 1024x1024 pass holds more than 1 GB of activations (planned ${p.peakBytes})`);
    assert.ok(p.peakBytes <= BUDGET_BYTES, `peak ${p.peakBytes} bytes`);
    assert.ok(p.poolBytes <= BUDGET_BYTES, `pool ${p.poolBytes} bytes`);
    assert.ok(p.largestBufferBytes <= 2 ** 27, 'no buffer over 128 MiB at batch 1');
  }
  const lines: string[] = [];
  assert.is(memoryPlanCommand((l) => lines.push(l)), 0);
  assert.match(lines.join('\n'), /1024x1024, C4=512\s+1\s+W\+, noise\s/);
});

test.run();
