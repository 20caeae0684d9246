// Shared setup of the reconstruction commands (`reconstruct`, `demo`, `experiment`): the generator,
// its MappingProxy statistics, the score models that act as priors, method presets.

import { readFileBytes } from '../../engine/io/files.ts';
import { disposePriors, priorsFromBytes, setupFromBytes, type Setup } from './setup.ts';
import type { ProtocolModels } from './protocol.ts';
import { parseTunedFile, type TunedFile } from './tuning.ts';

// The runtime-neutral parts live in setup.ts (the web page imports them too).
export { methodConfig, type Setup } from './setup.ts';

export const MODEL_DIR = new URL('../../models/fashion32/', import.meta.url);
export const modelPath = (f: string) => new URL(f, MODEL_DIR).pathname;
export const DEFAULT_GENERATOR = modelPath('fashion32-stylegan2.pt');

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

/** The shipped priors of one family, in round order: the latent (round 0), then blocks 0 and 1. */
export const PRIOR_FAMILIES = ['mixture', 'gaussian', 'score'] as const;
export type PriorFamily = (typeof PRIOR_FAMILIES)[number];

/**
 * Shipped prior files of a family that exist: `<family>-latent`, `<family>-block0`, `<family>-block1`
 * (the ViT family, `score-block<k>`, has no latent model). The default is the best measured:
 * the Gaussian mixtures (models/fashion32/README.md, held-out DSM loss below the single Gaussian's).
 */
export async function shippedPriors(family: PriorFamily = 'mixture'): Promise<string[]> {
  const found: string[] = [];
  for (const space of ['latent', 'block0', 'block1', 'block2']) {
    const p = modelPath(`${family}-${space}.safetensors`);
    if (await exists(p)) found.push(p);
  }
  return found;
}

/** The default priors of `reconstruct`, the demo and the experiment: the shipped mixtures. */
export const shippedScoreModels = () => shippedPriors('mixture');

/** models/fashion32/tuned.json (made by `sgilo tune`), or null when it is not there. */
export const TUNED_FILE = modelPath('tuned.json');

export async function readTunedFile(path: string = TUNED_FILE, required = false): Promise<TunedFile | null> {
  let bytes: Uint8Array;
  try {
    bytes = await readFileBytes(path);
  } catch (e) {
    if (required) throw new Error(`${path}: cannot read the tuned values (${(e as Error).message})`);
    return null;
  }
  return parseTunedFile(new TextDecoder().decode(bytes), path);
}

/** The generator, its proxy, the learned priors and the Gaussian control (`tune`, `experiment`). */
export async function loadProtocolModels(): Promise<ProtocolModels & { dispose(): void }> {
  const setup = await loadSetup(DEFAULT_GENERATOR, await shippedPriors('mixture'));
  try {
    const gaussianFiles = await shippedPriors('gaussian');
    const gaussian = await priorsFromBytes(setup.generator, await Promise.all(gaussianFiles.map(async (p) => ({ name: p, bytes: await readFileBytes(p) }))));
    return {
      generator: setup.generator,
      proxy: setup.proxy,
      learned: setup.priors,
      gaussian,
      dispose() {
        setup.dispose();
        disposePriors(gaussian);
      },
    };
  } catch (e) {
    setup.dispose();
    throw e;
  }
}
