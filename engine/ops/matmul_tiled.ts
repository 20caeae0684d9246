// The workgroup-tiled variant of the matmul kernel for hardware GPUs (shaders/matmul_tiled.wgsl):
// which products it takes, its tile per shape, and the load code per operand layout.
// engine/ops/matmul.ts calls tryTiledMatmul for every product (forward and both gradients) when
// engine/device.ts `matmulKernels` says 'tiled', and falls back to the general kernel when it declines.

import { backend } from '../backend.ts';
import { defineKernel, type Kernel } from '../kernel.ts';
import type { Tensor } from '../tensor.ts';
import type { StridedView } from './matmul_subgroup.ts';

/**
 * A tile shape: tm x tn outputs per invocation, wgX x wgY invocations, so a workgroup computes a
 * (wgY tm) x (wgX tn) block of the output; bk is the k step through workgroup memory, pad the
 * extra elements per k row of the tiles. These are the WGSL `override` constants of the kernel.
 */
export interface MatmulTile {
  tm: number;
  tn: number;
  wgX: number;
  wgY: number;
  bk: number;
  pad: number;
}

export const tileName = (t: MatmulTile): string => `${t.wgY * t.tm}x${t.wgX * t.tn}/${t.tm}x${t.tn}/k${t.bk}/p${t.pad}`;

/** Why a tile cannot run on this device, or null when it can. */
export function tileProblem(t: MatmulTile): string | null {
  const lim = backend().gpu.limits;
  const bm = t.wgY * t.tm;
  const bn = t.wgX * t.tn;
  const ints = [t.tm, t.tn, t.wgX, t.wgY, t.bk].every((x) => Number.isInteger(x) && x >= 1) && Number.isInteger(t.pad) && t.pad >= 0;
  if (!ints) return 'tile sizes must be positive integers (pad >= 0)';
  if (t.tm > 8 || t.tn > 8) return 'at most 8 x 8 outputs per invocation (the register arrays hold 8)';
  if (t.bk % 4 !== 0 || bm % 4 !== 0 || bn % 4 !== 0) return 'bk and the workgroup tile sides must be multiples of 4 (vec4 loads)';
  if (t.wgX * t.wgY > lim.maxComputeInvocationsPerWorkgroup || t.wgX > lim.maxComputeWorkgroupSizeX || t.wgY > lim.maxComputeWorkgroupSizeY) {
    return `workgroup ${t.wgX}x${t.wgY} exceeds the device's limits`;
  }
  const bytes = 4 * t.bk * (bm + t.pad + bn + t.pad);
  if (bytes > lim.maxComputeWorkgroupStorageSize) return `${bytes} bytes of workgroup memory exceed the device's ${lim.maxComputeWorkgroupStorageSize}`;
  return null;
}

let tileOverride: MatmulTile | null = null;

/** Benches (the tile sweep) and tests: use this tile for every tiled product; null restores the per-shape choice. */
export function overrideMatmulTile(t: MatmulTile | null): void {
  if (t) {
    const problem = tileProblem(t);
    if (problem) throw new RangeError(`matmul tile ${tileName(t)}: ${problem}`);
  }
  tileOverride = t;
}

/**
 * Tile per shape: 128 x 128 blocks of 8 x 8 for big products, 64 x 64 blocks of 4 x 4 for medium
 * ones, 32 x 32 blocks of 4 x 4 when a side is small (fewer idle invocations). Untuned: a GPU run
 * sweeps them (`sgilo bench matmul --sweep`).
 */
function tileFor(M: number, N: number): MatmulTile {
  if (tileOverride) return tileOverride;
  if (M >= 1024 && N >= 1024) return { tm: 8, tn: 8, wgX: 16, wgY: 16, bk: 8, pad: 4 };
  if (M >= 64 && N >= 64) return { tm: 4, tn: 4, wgX: 16, wgY: 16, bk: 16, pad: 4 };
  return { tm: 4, tn: 4, wgX: 8, wgY: 8, bk: 16, pad: 4 };
}

/**
 * Load code of one operand's BK-deep block into workgroup memory, k-major with pitch `P`.
 * `kContiguous`: the operand's k axis is the contiguous one (A by rows, B by columns); else its
 * outer axis (m of A, n of B) is. `vec4`: loads of 4 along the contiguous axis.
 */
function loadCode(op: 'a' | 'b', kContiguous: boolean, vec4: boolean): string {
  const [S, T, P, o0, E, base, stride] = op === 'a' ? ['As', 'BM', 'BMP', 'm0', 'params.M', 'a_base', 'params.a_stride'] : ['Bs', 'BN', 'BNP', 'n0', 'params.N', 'b_base', 'params.b_stride'];
  const lines: string[] = [];
  if (kContiguous) {
    const per = vec4 ? '(BK / 4u)' : 'BK';
    lines.push(`for (var idx = lid; idx < ${T} * ${per}; idx += THREADS) {`, `  let r = idx / ${per};`, `  let k = ${vec4 ? '4u * ' : ''}(idx % ${per});`);
    const addr = `${base} + (${o0} + r) * ${stride} + k0 + k`;
    if (vec4) {
      lines.push('  var v = vec4f(0.0);', `  if (${o0} + r < ${E} && k0 + k < params.K) { v = ${op}[(${addr}) / 4u]; }`);
      for (let c = 0; c < 4; c++) lines.push(`  ${S}[(k + ${c}u) * ${P} + r] = v[${c}];`);
    } else {
      lines.push('  var v = 0.0;', `  if (${o0} + r < ${E} && k0 + k < params.K) { v = ${op}[${addr}]; }`, `  ${S}[k * ${P} + r] = v;`);
    }
  } else {
    const per = vec4 ? `(${T} / 4u)` : T;
    lines.push(`for (var idx = lid; idx < BK * ${per}; idx += THREADS) {`, `  let k = idx / ${per};`, `  let r = ${vec4 ? '4u * ' : ''}(idx % ${per});`);
    const addr = `${base} + (k0 + k) * ${stride} + ${o0} + r`;
    if (vec4) {
      lines.push('  var v = vec4f(0.0);', `  if (${o0} + r < ${E} && k0 + k < params.K) { v = ${op}[(${addr}) / 4u]; }`);
      for (let c = 0; c < 4; c++) lines.push(`  ${S}[k * ${P} + r + ${c}u] = v[${c}];`);
    } else {
      lines.push('  var v = 0.0;', `  if (${o0} + r < ${E} && k0 + k < params.K) { v = ${op}[${addr}]; }`, `  ${S}[k * ${P} + r] = v;`);
    }
  }
  lines.push('}');
  return lines.join('\n    ');
}

interface Variant {
  aK: boolean; // A's k axis contiguous (by rows)
  aVec: boolean;
  bK: boolean; // B's k axis contiguous (by columns)
  bVec: boolean;
}

const bindings = { a: 'read', b: 'read', out: 'read_write', params: 'uniform' } as const;
const kernels = new Map<string, Kernel>();
function kernelFor(v: Variant, t: MatmulTile): Kernel {
  const layout = `${v.aK ? 'k' : 'm'}${v.aVec ? '4' : '1'}${v.bK ? 'k' : 'n'}${v.bVec ? '4' : '1'}`;
  const variant = `${layout}/${tileName(t)}`;
  let k = kernels.get(variant);
  if (!k) {
    k = defineKernel({
      shader: 'matmul_tiled',
      entry: 'matmul_tiled',
      variant,
      specialize: { A_TYPE: v.aVec ? 'vec4f' : 'f32', B_TYPE: v.bVec ? 'vec4f' : 'f32', LOAD_A: loadCode('a', v.aK, v.aVec), LOAD_B: loadCode('b', v.bK, v.bVec) },
      constants: { TM: t.tm, TN: t.tn, WG_X: t.wgX, WG_Y: t.wgY, BK: t.bk, PAD: t.pad },
      bindings,
    });
    kernels.set(variant, k);
  }
  return k;
}

const aligned = (...xs: number[]) => xs.every((x) => x % 4 === 0);

/**
 * Records out[t] = X[t] (M x K) times Y[t] (K x N) with the tiled kernel and returns true, or returns
 * false (recording nothing) when neither of an operand's strides is 1 or the grid exceeds the
 * device's limits. Any M, N, K; vec4 loads where the contiguous extent, the other stride and the
 * batch stride are multiples of 4.
 */
export function tryTiledMatmul(out: Tensor, x: StridedView, y: StridedView, M: number, N: number, K: number, batch: number): boolean {
  const aK = x.col === 1;
  const bK = y.row === 1;
  if (!aK && x.row !== 1) return false;
  if (!bK && y.col !== 1) return false;
  const aStride = aK ? x.row : x.col;
  const bStride = bK ? y.col : y.row;
  const v: Variant = { aK, aVec: aligned(aK ? K : M, aStride, x.batch), bK, bVec: aligned(bK ? K : N, bStride, y.batch) };
  const t = tileFor(M, N);
  const grid = [Math.ceil(N / (t.wgX * t.tn)), Math.ceil(M / (t.wgY * t.tm)), batch];
  if (grid.some((g) => g > backend().gpu.limits.maxComputeWorkgroupsPerDimension)) return false;
  const params = { M, N, K, a_batch: x.batch, a_stride: aStride, b_batch: y.batch, b_stride: bStride };
  kernelFor(v, t).dispatch({ a: x.buffer, b: y.buffer, out, params }, grid);
  return true;
}
