// Batch invariance of the reconstruction methods: an image run inside a batch gives bit for bit
// what it gives alone, whatever else shares the batch. This is what lets a queue worker batch jobs
// of one setting and still report each job's own numbers (the in-process experiment runs the same
// jobs, maybe batched differently). On the shipped Fashion generator, proxy and priors, a few steps
// per round with the tuned values: CSGM, ILO with balls, SGILO with the mixture priors and Langevin noise, and chains.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { loadProtocolModels, readTunedFile } from '../samplers/inverse/fashion.ts';
import { runVariant } from '../samplers/inverse/protocol.ts';
import { testImages } from '../samplers/inverse/demo.ts';
import { lookupTuned, type Candidate, type Variant } from '../samplers/inverse/tuning.ts';

const test = suite('batch_invariance');
const models = await loadProtocolModels();
const tuned = await readTunedFile(undefined, true);
const valuesOf = (v: Variant, spec: string): Candidate => lookupTuned(tuned, v, spec).values;
const size = models.generator.config.size;
const per = 3 * size * size;
const all = await testImages(8, 0);
const pick = (ids: number[]) => {
  const out = new Float32Array(ids.length * per);
  ids.forEach((id, k) => out.set(all.subarray(id * per, (id + 1) * per), k * per));
  return out;
};

/** The final samples of image `id` run in the batch `ids`. */
async function samplesOf(variant: Variant, spec: string, ids: number[], id: number, chains = 1): Promise<Float32Array[]> {
  const r = await runVariant(models, variant, spec, valuesOf(variant, spec), { steps: 3, blocks: [1, 2], images: pick(ids), count: ids.length, seed: 11, chains, imageIds: ids });
  return r.run.images[ids.indexOf(id)].samples;
}

function firstDifference(a: Float32Array, b: Float32Array): string | null {
  const ua = new Uint32Array(a.buffer, a.byteOffset, a.length);
  const ub = new Uint32Array(b.buffer, b.byteOffset, b.length);
  for (let i = 0; i < ua.length; i++) if (ua[i] !== ub[i]) return `element ${i}: ${a[i]} vs ${b[i]}`;
  return null;
}

// Batches of 3 and 8: kernels that pick a variant by the number of rows or outputs (a batch of 4
// or 8 crosses such limits) would show here.
for (const [variant, spec] of [['csgm', 'cs-gaussian:0.05'], ['ilo', 'inpaint-random:0.05'], ['sgilo', 'cs-gaussian:0.02'], ['sgilo-gaussian', 'inpaint-random:0.02']] as [Variant, string][]) {
  test(`${variant} on ${spec}: image 4 alone equals image 4 in the batches [1, 4, 5] and [0..7]`, async () => {
    const [alone] = await samplesOf(variant, spec, [4], 4);
    for (const batch of [[1, 4, 5], [0, 1, 2, 3, 4, 5, 6, 7]]) {
      const [inBatch] = await samplesOf(variant, spec, batch, 4);
      assert.is(firstDifference(alone, inBatch), null, `batch [${batch}]`);
    }
  });
}

test('sgilo with 2 chains: image 2 alone equals image 2 in the batch [2, 3]; its chains differ', async () => {
  const alone = await samplesOf('sgilo', 'inpaint-random:0.02', [2], 2, 2);
  const inBatch = await samplesOf('sgilo', 'inpaint-random:0.02', [2, 3], 2, 2);
  alone.forEach((s, k) => assert.is(firstDifference(s, inBatch[k]), null, `chain ${k}`));
  assert.ok(firstDifference(alone[0], alone[1]) !== null, 'the two chains are different samples');
});

test('the image id, not the batch position, picks the random streams', async () => {
  const [asFour] = await samplesOf('sgilo', 'inpaint-random:0.02', [4], 4);
  // The same picture given id 5: other streams, another sample.
  const r = await runVariant(models, 'sgilo', 'inpaint-random:0.02', valuesOf('sgilo', 'inpaint-random:0.02'), { steps: 3, blocks: [1, 2], images: pick([4]), count: 1, seed: 11, imageIds: [5] });
  assert.ok(firstDifference(asFour, r.run.images[0].samples[0]) !== null);
});

test.after(() => models.dispose());
test.run();
