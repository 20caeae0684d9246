// Score-model training data from real images: the generator checkpoint's encoder (nets/encoder.ts)
// maps Fashion-MNIST images to codes z [N, 128]; the mapping network and the generator split after a
// block give the features of every space the priors model:
//   latent   w = mapping(z) [N, 128, 1, 1]  (one W+ row; the codes give the same w in every row, and
//            the latent prior applies to each row)
//   blockK   features after block K with w in every row and the checkpoint's constant noise [N, C, H, W]
// Work runs in chunks with no gradients; the caller owns the host arrays.

import { scope, tensor } from '../../engine/tensor.ts';
import { noGrad } from '../../engine/tape.ts';
import { engine } from '../../engine/engine.ts';
import type { FashionEncoder } from '../../nets/encoder.ts';
import type { StyleGAN2 } from '../../nets/stylegan2.ts';
import type { ActivationSet } from './data.ts';

export type FeatureSpace = 'latent' | `block${number}`;

export function parseSpace(s: string): FeatureSpace {
  if (s === 'latent' || /^block\d+$/.test(s)) return s as FeatureSpace;
  throw new RangeError(`unknown feature space "${s}" (latent, block0, block1, ...)`);
}

/** Codes of images [N, 3, 32, 32] in [-1, 1]. */
export async function encodeImages(enc: FashionEncoder, images: Float32Array, chunk = 500, onChunk?: (done: number, total: number) => void): Promise<Float32Array> {
  const N = images.length / (3 * 1024);
  if (!Number.isInteger(N) || N < 1) throw new RangeError(`encodeImages: ${images.length} values are not [N, 3, 32, 32] images`);
  const out = new Float32Array(N * 128);
  for (let start = 0; start < N; start += chunk) {
    const count = Math.min(chunk, N - start);
    const z = await scope(() => noGrad(() => enc.forward(tensor(images.subarray(start * 3072, (start + count) * 3072), [count, 3, 32, 32])).readF32()));
    out.set(z, start * 128);
    await engine().sync();
    onChunk?.(start + count, N);
  }
  return out;
}

/** Features of one space for codes z [N, S]. */
export async function featuresOf(g: StyleGAN2, z: Float32Array, space: FeatureSpace, chunk = 256, onChunk?: (done: number, total: number) => void): Promise<ActivationSet> {
  const S = g.config.styleDim;
  const N = z.length / S;
  let data: Float32Array | null = null;
  let shape: [number, number, number, number] = [N, 0, 0, 0];
  const block = space === 'latent' ? -1 : Number(space.slice(5));
  for (let start = 0; start < N; start += chunk) {
    const count = Math.min(chunk, N - start);
    const { values, dims } = await scope(() =>
      noGrad(async () => {
        const w = g.mapping(tensor(z.subarray(start * S, (start + count) * S), [count, S]));
        const f = block < 0 ? w : g.featuresAfter({ wplus: g.broadcastWplus(w) }, block);
        return { values: await f.readF32(), dims: block < 0 ? [count, S, 1, 1] : f.shape };
      }),
    );
    if (!data) {
      shape = [N, dims[1], dims[2], dims[3]];
      data = new Float32Array(N * dims[1] * dims[2] * dims[3]);
    }
    data.set(values, start * shape[1] * shape[2] * shape[3]);
    onChunk?.(start + count, N);
  }
  return { data: data!, shape, meta: { block: block < 0 ? 'latent' : String(block), source: 'encoder' } };
}
