// One contender (our engine or the tfjs peer) on one shape of a GFLOP/s bench (bench/conv.ts,
// bench/matmul.ts): its result is checked against float64 sums before it is timed, and a
// contender that throws becomes a cell with the error instead of ending the bench.

import type { Cell } from './table.ts';
import { errorText } from './tfjs_peer.ts';
import { measure, type MeasureOptions, type TimedTarget, type Timing } from './timing.ts';

/** A tensor of our engine or of the peer. */
export interface Disposable {
  dispose(): void;
}

/** One contender's side of a shape: record one step, or run one and read it back. */
export interface Contender {
  target: TimedTarget;
  step(): void;
  result(): Promise<ArrayLike<number>>;
  dispose(): void;
}

/**
 * Runs `run` once and reads its output back; the output, one tensor or several, is disposed even
 * when the read fails.
 */
export async function readOnce<T extends Disposable | Disposable[], R>(run: () => T, read: (out: T) => Promise<R>): Promise<R> {
  const out = run();
  try {
    return await read(out);
  } finally {
    for (const t of ([] as Disposable[]).concat(out)) t.dispose();
  }
}

/**
 * The contender that times `run` (one step, whose output is disposed) and checks what `read`
 * makes of one run's output; dispose() frees `inputs`.
 */
export function contender<T extends Disposable>(target: TimedTarget, run: () => T, read: (out: T) => Promise<ArrayLike<number>>, inputs: Disposable[]): Contender {
  return {
    target,
    step: () => run().dispose(),
    result: () => readOnce(run, read),
    dispose: () => inputs.forEach((t) => t.dispose()),
  };
}

/**
 * Prepares a contender, checks its result (`check` names the first wrong element, or returns
 * null), times `flops` per step, and disposes it. The timing is appended to `timings`.
 */
export async function benchContender(
  prepare: () => Contender,
  check: (got: ArrayLike<number>) => string | null,
  flops: number,
  o: MeasureOptions,
  timings: Timing[],
): Promise<Cell> {
  let c: Contender | null = null;
  try {
    c = prepare();
    const wrong = check(await c.result());
    if (wrong) return { error: `WRONG: ${wrong}` };
    const t = await measure(c.target, () => c!.step(), o);
    timings.push(t);
    return { gflops: (flops * t.iterations) / (t.ms / 1000) / 1e9, iterations: t.iterations };
  } catch (e) {
    return { error: `failed: ${errorText(e)}` };
  } finally {
    c?.dispose();
  }
}
