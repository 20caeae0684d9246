// Shared setup of the reconstruction commands (`reconstruct`, `demo`, `experiment`): the generator,
// its MappingProxy statistics, the score models that act as priors, method presets, and PNG input.

import { PNG } from 'pngjs';
import { readFileBytes } from '../engine/io/files.ts';
import type { L1Radii } from '../samplers/intermediate_layer.ts';
import { setupFromBytes, type Setup } from './reconstruct_common.ts';

// The runtime-neutral parts live in reconstruct_common.ts (the web page imports them too).
export { methodConfig, type Setup } from './reconstruct_common.ts';

export const MODEL_DIR = new URL('../models/fashion32/', import.meta.url);
export const modelPath = (f: string) => new URL(f, MODEL_DIR).pathname;
export const DEFAULT_GENERATOR = modelPath('fashion32-stylegan2.pt');

/**
 * ILO's l1 balls for the shipped Fashion model, rounds over blocks [1, 2]: features radius 100 in
 * round 1 (entering block 1, 2,048 values) and 200 in round 2 (8,192 values). Chosen on test images
 * 0-3 (tuning images of the Figure-3 protocol) at 5% inpainting, 100 steps per round: mean MSE 0.2845
 * free against 0.2150 with these balls (seed 0), 0.2570 against 0.2061 (seed 1); free ILO fits the
 * measured pixels to ~5e-7 and ends worse than CSGM. The demo and the experiment use them for ILO.
 */
export function fashionIloBalls(blocks: number[]): L1Radii {
  const radius: Record<number, number> = { 1: 100, 2: 200 };
  return { features: [Infinity, ...blocks.map((k) => radius[k] ?? Infinity)] };
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
  const dir = generatorPath.includes('/') ? generatorPath.slice(0, generatorPath.lastIndexOf('/') + 1) : './';
  const proxyFile = `${dir}mapping-proxy.safetensors`;
  const useProxyFile = generatorPath === DEFAULT_GENERATOR && (await exists(proxyFile));
  return setupFromBytes({
    generator: await readFileBytes(generatorPath),
    proxy: useProxyFile ? await readFileBytes(proxyFile) : null,
    scores: await Promise.all(scorePaths.map(async (p) => ({ name: p, bytes: await readFileBytes(p) }))),
  });
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

/**
 * A radius list for ILO's l1 balls from the command line: "R" (every round) or "R0,R1,..." (one per
 * round, round 0 first); "inf" means unconstrained.
 */
export function parseL1Radius(option: string, text: string): number | number[] {
  const list = text.split(',').map((t) => t.trim());
  const values = list.map((t) => (/^\+?inf(inity)?$/i.test(t) ? Infinity : t === '' ? NaN : Number(t)));
  const bad = list.find((_, i) => Number.isNaN(values[i]) || values[i] < 0);
  if (bad !== undefined) throw new RangeError(`${option}: radii must be numbers >= 0 or "inf", got "${bad}" in "${text}"`);
  return values.length === 1 ? values[0] : values;
}

/** The l1 radii given by --l1-latent / --l1-noise / --l1-features (undefined when none is). */
export function l1RadiiFromOptions(get: (name: string) => string | undefined): L1Radii | undefined {
  const out: L1Radii = {};
  for (const which of ['latent', 'noise', 'features'] as const) {
    const v = get(`l1-${which}`);
    if (v !== undefined) out[which] = parseL1Radius(`--l1-${which}`, v);
  }
  return Object.keys(out).length ? out : undefined;
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
