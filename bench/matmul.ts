// Placeholder until the benchmark lands (filled in below).
import type { Engine } from '../engine/engine.ts';
export async function runMatmulBench(_eng: Engine, _o: { sizes: number[]; probes: boolean }): Promise<void> {}
