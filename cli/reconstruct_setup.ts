// Shared setup of the reconstruction commands (`reconstruct`, `demo`, `experiment`): the generator,
// its MappingProxy statistics, the score models that act as priors, method presets, and PNG input.

import { PNG } from 'pngjs';
import { readFileBytes } from '../engine/io/files.ts';
import { loadModel } from '../engine/io/index.ts';
import { StyleGAN2, numBlocks } from '../nets/stylegan2.ts';
import { loadGenerator } from '../nets/stylegan2_checkpoint.ts';
import { MappingProxy, computeProxyStats } from '../samplers/mapping_proxy.ts';
import { FeaturePrior } from '../samplers/prior.ts';
import { loadScoreModel } from '../samplers/score_checkpoint.ts';
import type { MethodConfig, MethodName } from '../samplers/intermediate_layer.ts';

export const MODEL_DIR = new URL('../models/fashion32/', import.meta.url);
export const modelPath = (f: string) => new URL(f, MODEL_DIR).pathname;
export const DEFAULT_GENERATOR = modelPath('fashion32-stylegan2.pt');

export interface Setup {
  generator: StyleGAN2;
  proxy: MappingProxy;
  priors: Map<number, FeaturePrior>;
  dispose(): void;
}

async function exists(path: string): Promise<boolean> {
  try {
    await readFileBytes(path);
    return true;
  } catch {
    return false;
  }
}

/**
 * Loads the generator, the proxy statistics (a `mapping-proxy.safetensors` beside the generator, or
 * computed from 20k samples), and score models given as `file` (the block comes from the file's
 * config: a model of the features after block k is the prior of round k+1).
 */
export async function loadSetup(generatorPath: string, scorePaths: string[]): Promise<Setup> {
  const generator = await loadGenerator(await readFileBytes(generatorPath));
  const dir = generatorPath.includes('/') ? generatorPath.slice(0, generatorPath.lastIndexOf('/') + 1) : './';
  const proxyFile = `${dir}mapping-proxy.safetensors`;
  let stats;
  if (generatorPath === DEFAULT_GENERATOR && (await exists(proxyFile))) {
    const f = loadModel(await readFileBytes(proxyFile));
    stats = { mean: f.tensors.get('mean')!.data as Float32Array, std: f.tensors.get('std')!.data as Float32Array, samples: 0 };
  } else {
    stats = await computeProxyStats(generator, 20_000);
  }
  const proxy = new MappingProxy(stats);
  const priors = new Map<number, FeaturePrior>();
  for (const p of scorePaths) {
    const m = await loadScoreModel(await readFileBytes(p));
    const block = Number(m.config.data.block);
    if (!Number.isInteger(block) || block < 0 || block >= numBlocks(generator.config) - 1) {
      throw new Error(`${p}: the score model's config names no usable block (data.block = ${m.config.data.block})`);
    }
    if (!m.config.normalization) throw new Error(`${p}: the score model has no min/max normalization`);
    priors.set(block + 1, new FeaturePrior(m.net, m.config.normalization.min, m.config.normalization.max));
  }
  return {
    generator,
    proxy,
    priors,
    dispose() {
      generator.dispose();
      proxy.dispose();
      for (const p of priors.values()) p.net.dispose();
    },
  };
}

/** Shipped score models (`score-block<k>.safetensors` beside the Fashion generator). */
export async function shippedScoreModels(): Promise<string[]> {
  const found: string[] = [];
  for (let k = 0; k < 3; k++) {
    const p = modelPath(`score-block${k}.safetensors`);
    if (await exists(p)) found.push(p);
  }
  return found;
}

/** Method presets: the ILO/SGILO recipes scaled to `steps` per round. */
export function methodConfig(method: MethodName, steps: number, blocks: number[]): MethodConfig {
  switch (method) {
    case 'csgm':
      return { method, blocks: [], steps, lr: 0.1 };
    case 'ilo':
      return { method, blocks, steps, lr: 0.1 };
    case 'sgilo':
      return { method, blocks, steps, lr: 0.05, temperature: 0.1, noiseScale: 0.025 };
    case 'sgld':
      return { method, blocks, steps, lr: 0, eta: 2e-5, sigma: 0.05, lambda: 1, beta: 1 };
    default:
      throw new Error(`unknown method "${method}" (methods: csgm, ilo, sgilo, sgld)`);
  }
}

/** Reads a PNG as [3, size, size] in [-1, 1]; the size must match the generator's. */
export async function readImagePng(path: string, size: number): Promise<Float32Array> {
  let png: PNG;
  try {
    png = PNG.sync.read(Buffer.from(await readFileBytes(path)));
  } catch (e) {
    throw new Error(`${path}: not a readable PNG (${(e as Error).message})`);
  }
  if (png.width !== size || png.height !== size) throw new RangeError(`${path}: the image is ${png.width}x${png.height}, the generator makes ${size}x${size}`);
  const out = new Float32Array(3 * size * size);
  for (let i = 0; i < size * size; i++) for (let c = 0; c < 3; c++) out[c * size * size + i] = (png.data[i * 4 + c] / 255) * 2 - 1;
  return out;
}
