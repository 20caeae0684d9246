// The shipped encoder on the engine (nets/encoder.ts) and the data it makes (samplers/score/encode.ts):
// encoder -> generator reconstructions of the shipped test images are as good as the training log
// says (models/fashion32/training.txt: MSE 0.072 on 32 test images) while random codes are far
// worse; with Debian's dataset-fashion-mnist installed, the codes of the first training images equal
// the shipped codes file (made by the PyTorch encoder) to float32 rounding; the features of a space
// equal activationsFromCodes' on the same codes.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { existsSync } from 'node:fs';
import { gunzipSync } from 'node:zlib';
import { scope, tensor } from '../engine/tensor.ts';
import { noGrad } from '../engine/tape.ts';
import { readFileBytes } from '../engine/io/files.ts';
import { readSafetensors } from '../engine/io/index.ts';
import { randomNormal } from '../engine/random.ts';
import { FashionEncoder, fashionImages } from '../nets/encoder.ts';
import { loadGenerator } from '../nets/stylegan2_checkpoint.ts';
import { activationsFromCodes, readCodesFile } from '../samplers/score/data.ts';
import { encodeImages, featuresOf } from '../samplers/score/encode.ts';

const test = suite('score_encoder');
const root = (f: string) => new URL(`../${f}`, import.meta.url).pathname;
const TRAIN_IDX = '/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz';

test('encoder: test-image reconstructions match the training log; codes match the shipped file', async () => {
  const ckpt = await readFileBytes(root('models/fashion32/fashion32-stylegan2.pt'));
  const enc = await FashionEncoder.fromCheckpoint(ckpt);
  const g = await loadGenerator(ckpt);
  try {
    const t = readSafetensors(await readFileBytes(root('models/fashion32/test-images.safetensors'))).tensors.get('images')!;
    const n = 32;
    const gray = (t.data as Float32Array).subarray(0, n * 1024);
    const images = new Float32Array(n * 3072);
    for (let i = 0; i < n; i++) for (let c = 0; c < 3; c++) images.set(gray.subarray(i * 1024, (i + 1) * 1024), (i * 3 + c) * 1024);
    const z = await encodeImages(enc, images, 16);
    for (let i = 0; i < n; i++) {
      const norm = Math.hypot(...z.subarray(i * 128, (i + 1) * 128));
      assert.ok(Math.abs(norm - Math.sqrt(128)) < 1e-3, `code ${i} on the sphere: |z| = ${norm}`);
    }
    const mse = async (codes: () => ReturnType<typeof tensor>) =>
      scope(() =>
        noGrad(async () => {
          const img = await g.generate(codes()).readF32();
          return img.reduce((s, v, i) => s + (v - images[i]) ** 2, 0) / img.length;
        }),
      );
    const rec = await mse(() => tensor(z, [n, 128]));
    const rnd = await mse(() => randomNormal([n, 128], { seed: 3 }));
    assert.ok(rec < 0.09, `reconstruction MSE ${rec} (training log: 0.072)`);
    assert.ok(rnd > 2 * rec, `random codes MSE ${rnd} vs reconstructions ${rec}`);

    if (existsSync(TRAIN_IDX)) {
      const idx = new Uint8Array(gunzipSync(await readFileBytes(TRAIN_IDX)));
      const mine = await encodeImages(enc, fashionImages(idx, 0, 64), 32);
      const shipped = readCodesFile(await readFileBytes(root('models/fashion32/fashion32-codes.safetensors'))).z;
      let worst = 0;
      for (let i = 0; i < mine.length; i++) worst = Math.max(worst, Math.abs(mine[i] - shipped[i]));
      assert.ok(worst < 1e-4, `codes of training images 0-63 vs the shipped file: max |diff| ${worst}`);
    } else console.log(`  (${TRAIN_IDX} absent: apt-get install dataset-fashion-mnist to compare with the shipped codes)`);

    // featuresOf agrees with activationsFromCodes (block 1) and gives w as [N, 128, 1, 1] (latent).
    const few = z.subarray(0, 4 * 128);
    const a = await featuresOf(g, few, 'block1', 3);
    const b = await activationsFromCodes(g, few, 1);
    assert.equal(a.shape, b.shape);
    a.data.forEach((v, i) => assert.ok(Math.abs(v - b.data[i]) < 1e-5));
    const lat = await featuresOf(g, few, 'latent');
    assert.equal(lat.shape, [4, 128, 1, 1]);
    assert.is(lat.meta.block, 'latent');
  } finally {
    enc.dispose();
    g.dispose();
  }
});

test.run();
