// Numbers and input files the CLI refuses: a NaN or Inf computed anywhere (a loss, a sample, a
// checkpoint tensor, a metric) is an error naming the step and the variable; a model file that does
// not load, or holds non-finite weights, is an error naming the file and what was expected.

import { readFileBytes } from '../engine/io/files.ts';
import { flattenTensors, loadCheckpoint } from '../engine/io/index.ts';

export class NonFiniteError extends Error {
  override name = 'NonFiniteError';
}

/** Throws when `values` holds a NaN or an infinity: "<where>: <what> is not finite (3 NaN, 0 Inf ...)". */
export function assertFinite(values: ArrayLike<number> | number, what: string, where: string): void {
  const arr = typeof values === 'number' ? [values] : values;
  let nan = 0;
  let inf = 0;
  let first = -1;
  for (let i = 0; i < arr.length; i++) {
    const v = arr[i];
    if (Number.isFinite(v)) continue;
    if (Number.isNaN(v)) nan++;
    else inf++;
    if (first < 0) first = i;
  }
  if (nan + inf === 0) return;
  const detail = arr.length === 1 ? `${arr[0]}` : `${nan} NaN and ${inf} Inf of ${arr.length} values, first at index ${first}`;
  throw new NonFiniteError(`${where}: ${what} is not finite (${detail})`);
}

/** What each kind of model file is, for loader errors. */
const EXPECTED: Record<string, string> = {
  generator: 'a StyleGAN2 generator: an NVlabs pickle, a rosinality .pt (train.py or generator checkpoint, zip or legacy pickle), a state dict, or a .safetensors file written by convert',
  score: 'an SGILO score model: a .safetensors file written by train-score, a PyTorch state dict or a score_sde checkpoint',
  checkpoint: 'a PyTorch .pt (zip or legacy pickle) or .safetensors file',
  activations: 'an activations .safetensors file (reconstruct --save-features, or data written by train-score)',
  inputs: 'a .safetensors file of float32 in.* tensors',
};

/** Reads a file, naming it in the error. */
export async function readInput(path: string, kind: keyof typeof EXPECTED | 'image'): Promise<Uint8Array> {
  try {
    return await readFileBytes(path);
  } catch (e) {
    const code = (e as { code?: string }).code;
    const why = code === 'ENOENT' ? 'no such file' : code === 'EISDIR' ? 'is a folder' : code ?? (e as Error).message;
    throw new Error(`${path}: cannot read the ${kind} file (${why})`);
  }
}

/** Runs a loader on a file's bytes; its errors name the file and what it should have been. */
export async function loadAs<T>(path: string, kind: keyof typeof EXPECTED, load: (bytes: Uint8Array) => Promise<T> | T): Promise<T> {
  const bytes = await readInput(path, kind);
  try {
    return await load(bytes);
  } catch (e) {
    const msg = (e as Error).message;
    if (e instanceof NonFiniteError || msg.startsWith(path)) throw e;
    throw new Error(`${path}: not ${EXPECTED[kind]} (${bytes.length} bytes; ${msg})`);
  }
}

/** Every float tensor of a checkpoint file finite; throws naming the file and the first bad tensor. */
export async function assertFiniteCheckpoint(bytes: Uint8Array, path: string): Promise<void> {
  const tensors = flattenTensors(await loadCheckpoint(bytes));
  for (const [name, t] of tensors) {
    if (t.dtype !== 'float32' && t.dtype !== 'float64') continue;
    assertFinite(t.data as ArrayLike<number>, `tensor "${name}"`, path);
  }
}
