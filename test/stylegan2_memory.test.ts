// The StyleGAN2 memory planner (nets/stylegan2_plan.ts: the real code on the counting backend)
// against the WebGPU pool's measured peak of bytes in use, that planning touches no device, and the
// budget: config-f 1024x1024 forward + backward at batch 1 fits a 16 GB GPU.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { readFileBytes } from '../engine/io/files.ts';
import { engine } from '../engine/engine.ts';
import { tensor } from '../engine/tensor.ts';
import { StyleGAN2, configF } from '../nets/stylegan2.ts';
import { readGeneratorCheckpoint } from '../nets/stylegan2_checkpoint.ts';
import { randomStateDict } from '../nets/stylegan2_checkpoint.ts';
import { TINY_CONFIG } from '../nets/gradcheck_stylegan2.ts';
import { BUDGET_BYTES, FASHION_CONFIG, measurePeakBytes, memoryPlanCommand, planStyleGAN2Memory, synthesisStep } from '../nets/stylegan2_plan.ts';

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
    assert.ok(got > 1e6, `the pass holds megabytes of activations (measured ${got})`);
    assert.is((await planStyleGAN2Memory(FASHION_CONFIG, 1, { device: engine().gpu })).passPeakBytes, got);
  } finally {
    gen.dispose();
  }
});

test('the plan equals the measured peak with parameter gradients, batch 2 (tiny config)', async () => {
  const gen = StyleGAN2.fromStateDict(TINY_CONFIG, randomStateDict(TINY_CONFIG));
  try {
    for (const paramGrads of [false, true]) {
      const plan = await planStyleGAN2Memory(TINY_CONFIG, 2, { paramGrads, device: engine().gpu });
      assert.is(plan.passPeakBytes, await measured(gen, 2, paramGrads), `paramGrads ${paramGrads}`);
    }
  } finally {
    gen.dispose();
  }
});

/** Counts calls of the device's allocating and recording entry points while `fn` runs. */
async function deviceCalls(fn: () => Promise<unknown>): Promise<Record<string, number>> {
  const eng = engine();
  const counts: Record<string, number> = {};
  const targets: [object, string][] = [
    [eng.device, 'createBuffer'],
    [eng.device, 'createBindGroup'],
    [eng.device, 'createComputePipeline'],
    [eng.device, 'createCommandEncoder'],
    [eng.device.queue, 'writeBuffer'],
    [eng.device.queue, 'submit'],
  ];
  const originals = targets.map(([o, name]) => (o as Record<string, (...a: unknown[]) => unknown>)[name]);
  targets.forEach(([o, name], i) => {
    counts[name] = 0;
    (o as Record<string, unknown>)[name] = (...args: unknown[]) => {
      counts[name]++;
      return originals[i].apply(o, args);
    };
  });
  try {
    await fn();
  } finally {
    targets.forEach(([o, name]) => delete (o as Record<string, unknown>)[name]); // back to the prototype's method
  }
  return counts;
}

test('planning allocates, writes and records nothing on the device', async () => {
  const eng = engine();
  const before = eng.memory();
  const submits = eng.submits;
  const calls = await deviceCalls(() => planStyleGAN2Memory(TINY_CONFIG, 2, { paramGrads: true, device: eng.gpu }));
  for (const [name, n] of Object.entries(calls)) assert.is(n, 0, `${name} was called ${n} time(s)`);
  assert.equal(eng.memory(), before, 'the engine pool is untouched');
  assert.is(eng.submits, submits);
  // The same counter sees a real run: a tensor in a new size class creates a buffer and writes it.
  const real = await deviceCalls(async () => {
    const t = tensor(new Float32Array(1_234_567), [1_234_567]);
    await t.read();
    t.dispose();
  });
  assert.ok(real.createBuffer >= 1 && real.writeBuffer >= 1 && real.submit >= 1, JSON.stringify(real));
});

test('config-f 1024x1024 forward + backward at batch 1 stays within 16 GB', async () => {
  for (const paramGrads of [false, true]) {
    const p = await planStyleGAN2Memory(configF(1024), 1, { paramGrads });
    assert.ok(p.peakBytes > 1e9, `a 1024x1024 pass holds more than 1 GB of activations (planned ${p.peakBytes})`);
    assert.ok(p.peakBytes <= BUDGET_BYTES, `peak ${p.peakBytes} bytes`);
    assert.ok(p.poolBytes <= BUDGET_BYTES, `pool ${p.poolBytes} bytes`);
    assert.ok(p.largestBufferBytes <= 2 ** 27, 'no buffer over 128 MiB at batch 1');
  }
  const lines: string[] = [];
  assert.is(await memoryPlanCommand((l: string) => lines.push(l)), 0);
  assert.match(lines.join('\n'), /1024x1024, C4=512\s+1\s+W\+, noise\s/);
});

test.run();
