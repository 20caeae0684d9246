// Training data for the score models: activations of the generator split after block k, held on the
// host, with the global scalar min/max normalization SGILO uses (x = (v - min) / (max - min)).
//
// Sources:
//   (a) codes      real-image codes z [N, S] (models/fashion32/fashion32-codes.safetensors, tensor `z`)
//                  -> mapping -> the same w in every W+ row -> features after block k, with the
//                  checkpoint's constant noise buffers;
//   (b) file       activations saved elsewhere (inversions), in the format below;
//   (c) gaussian   Philox Gaussian z -> mapping -> features after block k (plain mapping; MappingProxy
//                  belongs to the inverse-problems code).
//
// Activations file (safetensors, written by writeActivationsFile):
//   tensor  `activations`  F32 [N, C, H, W]   the raw (unnormalized) activations, one row per sample
//   metadata `kind` = "sgilo-activations", `generator` = the generator checkpoint it came from (free
//            text, e.g. a path), `block` = k (features after block k; "latent" for W+ rows as
//            [S, 2L, 1]), `source` = how it was made (e.g. "ilo-inversion"), any other string keys.
//
// Dimensions: N samples, C channels, H x W spatial grid of the activation (see nets/stylegan2.ts).

import { readSafetensors, writeSafetensors } from '../../engine/io/index.ts';
import { scope, tensor } from '../../engine/tensor.ts';
import { noGrad } from '../../engine/tape.ts';
import { randomNormal } from '../../engine/random.ts';
import type { StyleGAN2 } from '../../nets/stylegan2.ts';

export interface ActivationSet {
  /** [N, C, H, W] row-major. */
  data: Float32Array;
  shape: [number, number, number, number];
  /** Free-form provenance (generator, block, source, ...). */
  meta: Record<string, string>;
}

export interface Normalization {
  min: number;
  max: number;
}

/** Features after block k for the codes z [N, S] (in chunks, no gradients). */
export async function activationsFromCodes(g: StyleGAN2, z: Float32Array, k: number, chunk = 64): Promise<ActivationSet> {
  const S = g.config.styleDim;
  if (z.length % S !== 0) throw new RangeError(`codes: ${z.length} values are not rows of the style dimension ${S}`);
  const N = z.length / S;
  return collect(g, N, k, chunk, (start, count) => tensor(z.subarray(start * S, (start + count) * S), [count, S]), { source: 'codes' });
}

/** Features after block k for `n` Gaussian z from Philox: chunk c of `chunk` rows uses stream (seed, c * chunk * S). */
export async function activationsFromGaussian(g: StyleGAN2, n: number, k: number, seed: number, chunk = 64): Promise<ActivationSet> {
  const S = g.config.styleDim;
  return collect(g, n, k, chunk, (start, count) => randomNormal([count, S], { seed, offset: start * S }), { source: 'gaussian', seed: String(seed) });
}

async function collect(g: StyleGAN2, N: number, k: number, chunk: number, zOf: (start: number, count: number) => ReturnType<typeof tensor>, meta: Record<string, string>): Promise<ActivationSet> {
  if (!(Number.isInteger(N) && N > 0)) throw new RangeError(`activations: need at least one sample, got ${N}`);
  let data: Float32Array | null = null;
  let shape: [number, number, number, number] = [N, 0, 0, 0];
  for (let start = 0; start < N; start += chunk) {
    const count = Math.min(chunk, N - start);
    const { values, dims } = await scope(() =>
      noGrad(async () => {
        const w = g.mapping(zOf(start, count));
        const f = g.featuresAfter({ wplus: g.broadcastWplus(w) }, k);
        return { values: await f.readF32(), dims: f.shape };
      }),
    );
    if (!data) {
      shape = [N, dims[1], dims[2], dims[3]];
      data = new Float32Array(N * dims[1] * dims[2] * dims[3]);
    }
    data.set(values, start * shape[1] * shape[2] * shape[3]);
  }
  return { data: data!, shape, meta: { ...meta, block: String(k) } };
}

/** The activations file (see the header); metadata values must be strings. */
export function writeActivationsFile(set: ActivationSet): Uint8Array {
  const [N, C, H, W] = set.shape;
  if (set.data.length !== N * C * H * W) throw new RangeError(`activations: ${set.data.length} values for shape [${set.shape.join(', ')}]`);
  return writeSafetensors({ activations: { dtype: 'float32', shape: [...set.shape], data: set.data } }, { ...set.meta, kind: 'sgilo-activations' });
}

export function readActivationsFile(bytes: Uint8Array, what = 'activations file'): ActivationSet {
  const { tensors, metadata } = readSafetensors(bytes);
  const t = tensors.get('activations');
  if (!t) throw new Error(`${what}: no tensor "activations" (expected [N, C, H, W] float32; found ${[...tensors.keys()].join(', ') || 'none'})`);
  if (t.dtype !== 'float32') throw new Error(`${what}: "activations" is ${t.dtype}, expected float32`);
  if (t.shape.length !== 4) throw new Error(`${what}: "activations" has shape [${t.shape.join(', ')}], expected [N, C, H, W]`);
  if (t.shape[0] < 1) throw new Error(`${what}: "activations" holds no samples`);
  return { data: t.data as Float32Array, shape: t.shape as [number, number, number, number], meta: { ...metadata } };
}

/** Reads the codes tensor `z` [N, S] of a codes file. */
export function readCodesFile(bytes: Uint8Array, what = 'codes file'): { z: Float32Array; n: number; dim: number } {
  const { tensors } = readSafetensors(bytes);
  const t = tensors.get('z');
  if (!t || t.dtype !== 'float32' || t.shape.length !== 2) throw new Error(`${what}: expected a float32 tensor "z" [N, S]`);
  return { z: t.data as Float32Array, n: t.shape[0], dim: t.shape[1] };
}

/** Global scalar min/max of the raw activations. */
export function computeNormalization(data: Float32Array): Normalization {
  let min = Infinity;
  let max = -Infinity;
  for (const v of data) {
    if (v < min) min = v;
    if (v > max) max = v;
  }
  if (!(max > min)) throw new RangeError(`activations are constant (min = max = ${min}); cannot normalize`);
  return { min, max };
}

/** Maps raw values to [0, 1] in place: x = (v - min) / (max - min). */
export function normalizeInPlace(data: Float32Array, n: Normalization): void {
  const scale = 1 / (n.max - n.min);
  for (let i = 0; i < data.length; i++) data[i] = (data[i] - n.min) * scale;
}
