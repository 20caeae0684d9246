// The shipped learned priors (models/fashion32/mixture-<space>.safetensors) against the Gaussian
// each is built on, on features that no shipped prior was fitted on: the first 256 codes of the
// validation split (training images 55000..55255, test/fixtures/fashion_val_codes.safetensors)
// through the shipped generator. At SGILO's hot-step times the mixture's DSM loss must be at least
// 10% below the Gaussian's on the same noise draws, and the gap must be many standard errors wide:
// the claim of models/fashion32/README.md, rechecked on a small held-out slice.
import { existsSync } from 'node:fs';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { readFileBytes } from '../engine/io/files.ts';
import { loadGenerator } from '../nets/stylegan2_checkpoint.ts';
import { loadPrior } from '../samplers/score/prior_model.ts';
import { normalizeInPlace, readCodesFile } from '../samplers/score/data.ts';
import { featuresOf, parseSpace } from '../samplers/score/encode.ts';
import { dsmBins } from '../samplers/score/evaluate.ts';
import { modelPath } from '../samplers/inverse/fashion.ts';

const test = suite('shipped priors');
const codes = readCodesFile(await readFileBytes(new URL('./fixtures/fashion_val_codes.safetensors', import.meta.url).pathname), 'held-out codes');
const generator = await loadGenerator(await readFileBytes(modelPath('fashion32-stylegan2.pt')));

for (const space of ['latent', 'block0', 'block1']) {
  const file = modelPath(`mixture-${space}.safetensors`);
  test(`mixture-${space}: DSM loss at t = 0.01 and 0.03 at least 10% below its Gaussian's on held-out features`, async () => {
    if (!existsSync(file)) return assert.unreachable(`${file} is missing`);
    const prior = await loadPrior(await readFileBytes(file), file);
    try {
      assert.is(prior.kind, 'mixture');
      assert.is(prior.data.block, space === 'latent' ? 'latent' : space.slice(5));
      const set = await featuresOf(generator, codes.z, parseSpace(space));
      normalizeInPlace(set.data, prior.normalization!);
      const bins = await dsmBins(prior.model, prior.mixture!.gaussian, set.data, set.shape, { times: [0.01, 0.03], seed: 0 });
      for (const b of bins) {
        assert.ok(b.model <= 0.9 * b.gaussian, `t ${b.t}: mixture ${b.model} vs Gaussian ${b.gaussian}`);
        assert.ok(b.gaussian - b.model > 5 * b.se, `t ${b.t}: gap ${b.gaussian - b.model} vs se ${b.se}`);
      }
    } finally {
      prior.model.dispose();
    }
  });
}

test.after(() => generator.dispose());
test.run();
