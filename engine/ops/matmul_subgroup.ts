// The 8-lane subgroup variant of the matmul kernel (shaders/matmul_subgroup.wgsl): which products
// it takes, its tile per shape, and the unrolled body. engine/ops/matmul.ts calls trySubgroupMatmul for
// every product (forward and both gradients) and falls back to shaders/matmul.wgsl when it declines.

import { subgroupTiles } from '../device.ts';
import { backend } from '../backend.ts';
import { defineKernel, type Kernel } from '../kernel.ts';
import type { Tensor } from '../tensor.ts';

const bindingsIn = { a: 'read', b: 'read', params: 'uniform' } as const;

/** How an operand is read: element (row, col) of batch item t is at t*batch + row*row + col*col. */
export interface StridedView {
  buffer: Tensor;
  batch: number;
  row: number;
  col: number;
}

/** A by rows ('k': k contiguous) or by columns ('m'); B by rows ('n': n contiguous) or columns ('k'). */
type ALayout = 'k' | 'm';
type BLayout = 'n' | 'k';

interface SubgroupTile {
  a: ALayout;
  b: BLayout;
  /** Row blocks of 8 rows per workgroup. */
  rowBlocks: number;
  /** 'n' layout: vec4 column groups per lane; 'k' layout: scalar columns per lane. */
  colUnits: number;
}

/** Columns of the output one lane computes. */
function colsPerLane(t: SubgroupTile): number {
  return t.b === 'n' ? 4 * t.colUnits : t.colUnits;
}

/** The unrolled SETUP / STEP / STORE of shaders/matmul_subgroup.wgsl for one tile. */
function subgroupSpecialization(t: SubgroupTile): Record<string, string | number> {
  const rows = 8 * t.rowBlocks;
  const setup: string[] = [];
  const step: string[] = [];
  const store: string[] = [];
  // A: one vec4 per lane and row block per k4 step; broadcasts give every lane A(r0 + i, 4 k4 + kk).
  if (t.a === 'k') {
    for (let r = 0; r < t.rowBlocks; r++) {
      setup.push(`let ar${r} = a_base + min(r0 + ${8 * r}u + lane, last_m) * params.a_stride;`);
      step.push(`let al${r} = a[ar${r} + k4];`);
    }
  } else {
    setup.push('let last_m4 = last_m / 4u;', 'let a_lane_k = (lane >> 1u) * params.a_stride;', 'let a_step = 4u * params.a_stride;');
    for (let r = 0; r < t.rowBlocks; r++) {
      setup.push(`let ac${r} = a_base + a_lane_k + min((r0 + ${8 * r}u) / 4u + (lane & 1u), last_m4);`);
      step.push(`let al${r} = a[ac${r} + k4 * a_step];`);
    }
  }
  const aValue = (i: number, kk: number): string => {
    const block = i >> 3;
    const inBlock = i & 7;
    // 'k': lane inBlock holds row i's four k; 'm': lane q + 2 kk holds rows 4q..4q+3 of the block at k = kk.
    return t.a === 'k' ? `subgroupBroadcast(al${block}[${kk}], ${inBlock}u)` : `subgroupBroadcast(al${block}[${inBlock & 3}], ${(inBlock >> 2) + 2 * kk}u)`;
  };
  // B and the accumulators.
  if (t.b === 'n') {
    setup.push('let last_n4 = last_n / 4u;', `let n4_first = wid.x * ${8 * t.colUnits}u + lane;`, 'let b_step = 4u * params.b_stride;');
    for (let j = 0; j < t.colUnits; j++) setup.push(`let n4_${j} = n4_first + ${8 * j}u;`, `let bc${j} = b_base + min(n4_${j}, last_n4);`);
    step.push('let bk = k4 * b_step;');
    for (let kk = 0; kk < 4; kk++) {
      for (let j = 0; j < t.colUnits; j++) step.push(`let b${kk}_${j} = b[bc${j} + bk + ${kk}u * params.b_stride];`);
    }
    for (let kk = 0; kk < 4; kk++) {
      for (let i = 0; i < rows; i++) {
        step.push(`let a${i}_${kk} = vec4f(${aValue(i, kk)});`);
        for (let j = 0; j < t.colUnits; j++) step.push(`s${i}_${j} = fma(a${i}_${kk}, b${kk}_${j}, s${i}_${j});`);
      }
    }
    for (let i = 0; i < rows; i++) {
      for (let j = 0; j < t.colUnits; j++) {
        setup.push(`var s${i}_${j} = vec4f(0.0);`);
        // One vec4 store: on lavapipe a store costs per lane whatever its width.
        store.push(`if (r0 + ${i}u < params.M && n4_${j} <= last_n4) { out4[(out_base + (r0 + ${i}u) * params.N) / 4u + n4_${j}] = s${i}_${j}; }`);
      }
    }
  } else {
    setup.push(`let n_first = wid.x * ${8 * t.colUnits}u + lane;`);
    for (let j = 0; j < t.colUnits; j++) setup.push(`let n${j} = n_first + ${8 * j}u;`, `let bc${j} = b_base + min(n${j}, last_n) * params.b_stride;`);
    for (let j = 0; j < t.colUnits; j++) step.push(`let b${j} = b[bc${j} + k4];`);
    for (let kk = 0; kk < 4; kk++) {
      for (let i = 0; i < rows; i++) {
        step.push(`let a${i}_${kk} = ${aValue(i, kk)};`);
        for (let j = 0; j < t.colUnits; j++) step.push(`s${i}_${j} = fma(a${i}_${kk}, b${j}[${kk}], s${i}_${j});`);
      }
    }
    for (let i = 0; i < rows; i++) {
      for (let j = 0; j < t.colUnits; j++) {
        setup.push(`var s${i}_${j} = 0.0;`);
        store.push(`if (r0 + ${i}u < params.M && n${j} < params.N) { out[out_base + (r0 + ${i}u) * params.N + n${j}] = s${i}_${j}; }`);
      }
    }
  }
  return { ROWS: rows, SETUP: setup.join('\n  '), STEP: step.join('\n    '), STORE: store.join('\n  ') };
}

/** Tile per shape: 16 rows and 8 columns per lane where the product is big enough (best at 512^3). */
function subgroupTileFor(a: ALayout, b: BLayout, M: number, N: number): SubgroupTile {
  const rowBlocks = M > 8 ? 2 : 1;
  const colUnits = b === 'n' ? (N > 32 ? 2 : 1) : N > 32 ? 8 : N > 16 ? 4 : N > 8 ? 2 : 1;
  return { a, b, rowBlocks, colUnits };
}

const kernels = new Map<string, Kernel>();
function kernelFor(t: SubgroupTile): Kernel {
  const variant = `${t.a}${t.b}/${t.rowBlocks}x${t.colUnits}`;
  let k = kernels.get(variant);
  if (!k) {
    const outName = t.b === 'n' ? 'out4' : 'out';
    k = defineKernel({ shader: 'matmul_subgroup', entry: 'matmul_subgroup', variant, specialize: subgroupSpecialization(t), bindings: { ...bindingsIn, [outName]: 'read_write' } });
    kernels.set(variant, k);
  }
  return k;
}

const aligned = (...xs: number[]) => xs.every((x) => x % 4 === 0);

/**
 * Records out[t] = X[t] (M x K) times Y[t] (K x N) with the subgroup kernel and returns true, or
 * returns false (recording nothing) when the device lacks 8-lane subgroups or the operands are not
 * vec4-readable: K % 4, one unit stride per operand, the other strides and offsets multiples of 4.
 */
export function trySubgroupMatmul(out: Tensor, x: StridedView, y: StridedView, M: number, N: number, K: number, batch: number): boolean {
  const eng = backend();
  if (!subgroupTiles(eng.gpu) || K % 4 !== 0) return false;
  const a: ALayout | null = x.col === 1 && aligned(x.row, x.batch) ? 'k' : x.row === 1 && aligned(x.col, x.batch, M) ? 'm' : null;
  const b: BLayout | null = y.col === 1 && aligned(y.row, y.batch, N) ? 'n' : y.row === 1 && aligned(y.col, y.batch) ? 'k' : null;
  if (a === null || b === null) return false;
  const tile = subgroupTileFor(a, b, M, N);
  const grid = [Math.ceil(N / (8 * colsPerLane(tile))), Math.ceil(M / (8 * tile.rowBlocks)), batch];
  if (grid.some((g) => g > eng.gpu.limits.maxComputeWorkgroupsPerDimension)) return false;
  const params = {
    M,
    N,
    K4: K / 4,
    a_batch: x.batch / 4,
    a_stride: (a === 'k' ? x.row : x.col) / 4,
    b_batch: y.batch / 4,
    b_stride: (b === 'n' ? y.row : y.col) / 4,
  };
  kernelFor(tile).dispatch({ a: x.buffer, b: y.buffer, [b === 'n' ? 'out4' : 'out']: out, params }, grid);
  return true;
}
