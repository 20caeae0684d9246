// Shared by the checkpoint-format tests (library and CLI): the fixture folder, reading a fixture's
// tensors, and the comparison against the reference's out.* (<= 1e-4) and grad.* (<= 1e-3,
// max|a-b| / max|b|) quantities.
import { readFileBytes } from '../engine/io/files.ts';
import { readSafetensors } from '../engine/io/index.ts';
import { compare as compareValues, relativeToMax, relToMax } from '../engine/gradcheck.ts';
import type { TensorMap } from '../nets/replay_generator.ts';

type Tensorish = { shape: number[]; data: ArrayLike<number> };
/** max|a - b| / max|b| of two tensors (Infinity when the shapes differ or a value is NaN). */
export function relativeError(a: Tensorish, b: Tensorish): number {
  if (a.shape.join() !== b.shape.join()) return Infinity;
  const r = relToMax(compareValues(a.data, b.data, relativeToMax(b.data, 0)));
  return Number.isNaN(r) ? Infinity : r;
}

const FIX = new URL('./fixtures/', import.meta.url);
export const path = (f: string) => new URL(f, FIX).pathname;
export async function readTensors(file: string): Promise<TensorMap> {
  return readSafetensors(await readFileBytes(path(file))).tensors as unknown as TensorMap;
}

/** Worst relative error per out.* / grad.* target, and the targets over their tolerance. */
export function compare(got: TensorMap, expected: TensorMap): { failures: string[]; worst: number } {
  const failures: string[] = [];
  let worst = 0;
  for (const [name, want] of expected) {
    if (name.startsWith('in.')) continue;
    const g = got.get(name);
    if (!g) {
      failures.push(`${name}: not produced`);
      continue;
    }
    const err = relativeError(g, want);
    worst = Math.max(worst, err);
    const tol = name.startsWith('out.') ? 1e-4 : 1e-3;
    if (!(err <= tol)) failures.push(`${name}: ${err.toExponential(2)} > ${tol}`);
  }
  return { failures, worst };
}

export const inputsOf = (m: TensorMap): TensorMap => new Map([...m].filter(([k]) => k.startsWith('in.')));


export const SCORE_SDE = 'score_sde/checkpoint.pth';
export const ROS = 'rosinality_train/checkpoint.pt';
export const NV = 'nvlabs/network-snapshot.pkl';
