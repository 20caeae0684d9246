// The runtime-neutral part of `sgilo reconstruct`, shared by the CLI (Node, Deno) and the web page
// (cli/web/): building the generator, proxy and priors from file *bytes* (the CLI reads them from
// disk, the page fetches them over HTTP), the method presets, and the pictures of a measurement and
// of a std map. Nothing here touches a file system or pngjs, so the browser bundle can import it.
//
//   size = the generator's image side (32 for the Fashion model); images [3, size, size] in [-1, 1]

import { loadModel, type HostTensor } from '../../engine/io/index.ts';
import { StyleGAN2, numBlocks } from '../../nets/stylegan2.ts';
import { loadGenerator } from '../../nets/stylegan2_checkpoint.ts';
import { MappingProxy, computeProxyStats } from './mapping_proxy.ts';
import { FeaturePrior } from './prior.ts';
import { loadPrior } from '../score/prior_model.ts';
import type { MeasurementOperator } from './operators/index.ts';
import type { MethodConfig, MethodName } from './intermediate_layer.ts';

export interface Setup {
  generator: StyleGAN2;
  proxy: MappingProxy;
  priors: Map<number, FeaturePrior>;
  dispose(): void;
}

export interface SetupBytes {
  /** The StyleGAN2 checkpoint (.pt or our safetensors). */
  generator: Uint8Array;
  /** `mapping-proxy.safetensors` (`mean`, `std`); null: computed from 20k samples instead. */
  proxy: Uint8Array | null;
  /** Score models (any kind: ViT, Gaussian, residual), each named (a path or URL) for error messages. */
  scores: { name: string; bytes: Uint8Array }[];
}

/**
 * The generator, the proxy statistics and the score models (the block comes from each file's
 * config: a model of the features after block k is the prior of round k+1, a latent model the
 * prior of round 0's W+ rows).
 */
export async function setupFromBytes(files: SetupBytes): Promise<Setup> {
  const generator = await loadGenerator(files.generator);
  let stats;
  if (files.proxy) {
    const f = loadModel(files.proxy);
    stats = { mean: f.tensors.get('mean')!.data as Float32Array, std: f.tensors.get('std')!.data as Float32Array, samples: 0 };
  } else {
    stats = await computeProxyStats(generator, 20_000);
  }
  const proxy = new MappingProxy(stats);
  const priors = await priorsFromBytes(generator, files.scores);
  return {
    generator,
    proxy,
    priors,
    dispose() {
      generator.dispose();
      proxy.dispose();
      disposePriors(priors);
    },
  };
}

/**
 * Score models as the priors of a generator's rounds, keyed by round block: a model of the features
 * after block k is the prior of round k+1, a latent model (data.block "latent") the prior of round 0.
 */
export async function priorsFromBytes(generator: StyleGAN2, scores: { name: string; bytes: Uint8Array }[]): Promise<Map<number, FeaturePrior>> {
  const priors = new Map<number, FeaturePrior>();
  try {
    for (const { name, bytes } of scores) {
      const m = await loadPrior(bytes, name);
      // data.block: "latent" (a W+ row: round 0's prior) or k (the features after block k: round k+1's).
      const block = m.data.block === 'latent' ? -1 : Number(m.data.block);
      const latentShape = [generator.config.styleDim, 1, 1].join(',');
      const usable = Number.isInteger(block) && block >= -1 && block < numBlocks(generator.config) - 1 && (block >= 0 || m.shape.join(',') === latentShape);
      if (!usable || !m.normalization) {
        m.model.dispose();
        if (!m.normalization) throw new Error(`${name}: the score model has no min/max normalization`);
        if (block === -1) throw new Error(`${name}: a latent prior of shape [${m.shape.join(', ')}]; this generator's W+ rows need [${latentShape.split(',').join(', ')}]`);
        throw new Error(`${name}: the score model's config names no usable block (data.block = ${m.data.block})`);
      }
      if (priors.has(block + 1)) {
        m.model.dispose();
        throw new Error(`${name}: a second prior for ${block < 0 ? 'the latent' : `the features after block ${block}`}`);
      }
      priors.set(block + 1, new FeaturePrior(m.model, m.normalization.min, m.normalization.max));
    }
  } catch (e) {
    disposePriors(priors);
    throw e;
  }
  return priors;
}

export function disposePriors(priors: Map<number, FeaturePrior>): void {
  for (const p of priors.values()) p.net.dispose();
}

/** Method presets: the ILO/SGILO recipes scaled to `steps` per round. */
export function methodConfig(method: MethodName, steps: number, blocks: number[]): MethodConfig {
  switch (method) {
    case 'csgm':
      return { method, blocks: [], steps, lr: 0.1 };
    case 'ilo':
      return { method, blocks, steps, lr: 0.1 };
    case 'sgilo':
      return { method, blocks, steps, lr: 0.05, temperature: 0.1, noiseScale: 0.025, noiseSchedule: 'constant', priorSteps: 1 };
    case 'sgld':
      return { method, blocks, steps, lr: 0, eta: 2e-5, sigma: 0.05, lambda: 1, beta: 1 };
    default:
      throw new Error(`unknown method "${method}" (methods: csgm, ilo, sgilo, sgld)`);
  }
}

/** A picture of the measurement in image space [3, size, size] (blank unless it is an image). */
export function measurementPicture(op: MeasurementOperator, y: Float32Array, size: number): Float32Array {
  const [C, H, W] = op.outShape;
  const img = new Float32Array(3 * size * size).fill(-1);
  if (op.outShape.length === 3 && W <= size && H <= size) {
    const fy = size / H;
    const fx = size / W;
    for (let c = 0; c < 3; c++)
      for (let yy = 0; yy < size; yy++)
        for (let xx = 0; xx < size; xx++) img[c * size * size + yy * size + xx] = y[(C === 1 ? 0 : c) * H * W + Math.floor(yy / fy) * W + Math.floor(xx / fx)];
  }
  return img;
}

/** The std map [H, W] scaled to [-1, 1] (0 -> black, the largest std -> white), as 1 channel. */
export function stdPicture(std: Float32Array): Float32Array {
  const max = Math.max(...std, 1e-8);
  return Float32Array.from(std, (v) => (v / max) * 2 - 1);
}

/**
 * The results at full precision (the PNGs are 8-bit), as safetensors tensors per method m:
 * `m.samples` [K, 3, size, size] (final iterate of each chain), `m.mean` [3, size, size],
 * `m.std` [size, size], `m.losses` [steps of all rounds] (the loss after each step).
 */
export function resultTensors(runs: { method: string; images: { samples: Float32Array[]; mean: Float32Array; std: Float32Array }[]; losses: number[][] }[], size: number): Record<string, HostTensor> {
  const out: Record<string, HostTensor> = {};
  for (const r of runs) {
    const { samples, mean, std } = r.images[0];
    const all = new Float32Array(samples.length * mean.length);
    samples.forEach((s, k) => all.set(s, k * mean.length));
    out[`${r.method}.samples`] = { dtype: 'float32', shape: [samples.length, 3, size, size], data: all };
    out[`${r.method}.mean`] = { dtype: 'float32', shape: [3, size, size], data: mean };
    out[`${r.method}.std`] = { dtype: 'float32', shape: [size, size], data: std };
    const losses = Float32Array.from(r.losses.flat());
    out[`${r.method}.losses`] = { dtype: 'float32', shape: [losses.length], data: losses };
  }
  return out;
}
