// The tiled attention kernels for hardware GPUs (shaders/attention_tiled.wgsl): engine/ops/attention.ts
// runs them instead of the flash kernels of shaders/attention.wgsl (forward, dq, dk and dv) when
// `workgroupTiles` (engine/device.ts) says so. They read and write the same tensors (out, lse,
// delta), so the choice is made per dispatch.

import { backend } from '../backend.ts';
import { defineKernel, type Kernel } from '../kernel.ts';
import type { Tensor } from '../tensor.ts';

/** Query rows per workgroup (one per invocation) and key/value rows per workgroup-memory block. */
export interface AttentionTile {
  bq: number;
  bkv: number;
}

export const attentionTileName = (t: AttentionTile): string => `q${t.bq}/kv${t.bkv}`;

/** Why a tile cannot run on this device (rows of d4Max vec4s), or null when it can. */
export function attentionTileProblem(t: AttentionTile, d4Max: number): string | null {
  const lim = backend().gpu.limits;
  if (![t.bq, t.bkv].every((x) => Number.isInteger(x) && x >= 1)) return 'tile sizes must be positive integers';
  if (t.bkv % 4 !== 0) return 'bkv must be a multiple of 4 (keys are scored 4 at a time)';
  if (t.bq > lim.maxComputeInvocationsPerWorkgroup || t.bq > lim.maxComputeWorkgroupSizeX) return `workgroup of ${t.bq} exceeds the device's limits`;
  const bytes = 2 * 16 * t.bkv * d4Max + 2 * 4 * t.bkv; // staged rows, and their lse and delta (dkv)
  if (bytes > lim.maxComputeWorkgroupStorageSize) return `${bytes} bytes of workgroup memory exceed the device's ${lim.maxComputeWorkgroupStorageSize}`;
  return null;
}

/** Untuned until a GPU run is recorded: 64 query rows, 32 keys per block (16 KiB at d = 64). */
const DEFAULT_TILE: AttentionTile = { bq: 64, bkv: 32 };
let tileOverride: AttentionTile | null = null;

type Entry = 'forward' | 'dq' | 'dkv';
const BINDINGS: Record<Entry, Record<string, 'read' | 'read_write' | 'uniform'>> = {
  forward: { q: 'read', k: 'read', v: 'read', out: 'read_write', lse: 'read_write', params: 'uniform' },
  dq: { q: 'read', k: 'read', v: 'read', out_saved: 'read', lse_saved: 'read', gy: 'read', gq: 'read_write', delta: 'read_write', params: 'uniform' },
  dkv: { q: 'read', k: 'read', v: 'read', lse_saved: 'read', gy: 'read', delta_saved: 'read', gk: 'read_write', gv: 'read_write', params: 'uniform' },
};

const kernels = new Map<string, Kernel>();
function kernelFor(entry: Entry, t: AttentionTile, d4Max: number): Kernel {
  const variant = attentionTileName(t);
  let k = kernels.get(`${entry}/${variant}`);
  if (!k) {
    k = defineKernel({ shader: 'attention_tiled', entry: `attention_tiled_${entry}`, variant, specialize: { D4: d4Max }, constants: { BQ: t.bq, BKV: t.bkv }, bindings: BINDINGS[entry] });
    kernels.set(`${entry}/${variant}`, k);
  }
  return k;
}

/** Tests and benches: use this tile for every tiled attention kernel; null restores the default. */
export function overrideAttentionTile(t: AttentionTile | null, d4Max: number): void {
  if (t) {
    const problem = attentionTileProblem(t, d4Max);
    if (problem) throw new RangeError(`attention tile ${attentionTileName(t)}: ${problem}`);
  }
  tileOverride = t;
}

export type AttentionParams = {
  tq: number;
  tk: number;
  d4: number;
  scale: number;
};

/**
 * One of the kernels: 'forward' (out, lse), 'dq' (gq, delta) over the query rows, 'dkv' (gk, gv)
 * over the key rows; q [BH, Tq, d], k and v [BH, Tk, d] (d a multiple of 4, at most 4 d4Max), the
 * bindings as in shaders/attention.wgsl. BH must fit one grid dimension (the op checks).
 */
export function tiledAttention(entry: Entry, b: Record<string, Tensor>, params: AttentionParams, heads: number, d4Max: number): void {
  const t = tileOverride ?? DEFAULT_TILE;
  const rows = entry === 'dkv' ? params.tk : params.tq;
  kernelFor(entry, t, d4Max).dispatch({ ...b, params }, [Math.ceil(rows / t.bq), heads, 1]);
}
