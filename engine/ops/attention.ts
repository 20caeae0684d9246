// Scaled dot-product attention: out = softmax(scale q k^T) v, one op with a hand-written backward.
// Kernels: shaders/attention.wgsl (flash); on hardware GPUs the flash kernels are
// shaders/attention_tiled.wgsl's (engine/ops/attention_tiled.ts); reference: engine/reference/attention.ts.
//
// Dimensions: q [B, H, Tq, d], k [B, H, Tk, d], v [B, H, Tk, d] -> out [B, H, Tq, d] (the ViT
// uses Tq = Tk = T tokens); BH = B * H heads computed independently; scale defaults to d^-0.5.
//
// Two implementations, the same maths (test/attention.test.ts checks they agree):
//   'flash'        online softmax, the [Tq, Tk] scores never stored: the forward saves the row
//                  log-sum-exp lse [B, H, Tq], the backward recomputes p = exp(s - lse) in two
//                  kernels (dq + delta per query row, then dk and dv per key row). d <= 64.
//   'materialized' matmul(scale q, k^T) -> softmax -> matmul(., v) from engine/ops, which record
//                  their own backward; stores P [B, H, Tq, Tk] for the backward. Any d.
// 'auto' (the default) picks between them by Tq, Tk and d; see chooseImpl for the measurements.

import { defineKernel } from '../kernel.ts';
import { backend } from '../backend.ts';
import { gradEnabled, record } from '../tape.ts';
import { Tensor, empty } from '../tensor.ts';
import { shapeString } from '../shape.ts';
import { affine } from './elementwise.ts';
import { pad, slice } from './layout.ts';
import { matmul } from './matmul.ts';
import { softmax } from './softmax.ts';
import { workgroupTiles } from '../device.ts';
import { tiledAttention } from './attention_tiled.ts';

export type AttentionImpl = 'auto' | 'flash' | 'materialized';

export interface AttentionOptions {
  /** Multiplies the scores before the softmax (default d^-0.5). */
  scale?: number;
  /** Which implementation (default 'auto'). */
  impl?: AttentionImpl;
}

/** Rows per workgroup: WG invocations x R rows each (shaders/attention.wgsl). */
const ROWS_PER_WORKGROUP = 16 * 4;

/** Largest head size of the flash kernels: the capacity D4 = 16 vec4s of their per-row arrays. */
export const FLASH_MAX_D = 64;

const spec = (entry: string, bindings: Record<string, 'read' | 'read_write' | 'uniform'>) =>
  defineKernel({ shader: 'attention', entry, specialize: { D4: FLASH_MAX_D / 4 }, bindings });
const K = {
  forward: spec('attention_forward', { q: 'read', k: 'read', v: 'read', out: 'read_write', lse: 'read_write', params: 'uniform' }),
  dq: spec('attention_backward_dq', {
    q: 'read',
    k: 'read',
    v: 'read',
    out_saved: 'read',
    lse_saved: 'read',
    gy: 'read',
    gq: 'read_write',
    delta: 'read_write',
    params: 'uniform',
  }),
  dkv: spec('attention_backward_dkv', {
    q: 'read',
    k: 'read',
    v: 'read',
    lse_saved: 'read',
    gy: 'read',
    delta_saved: 'read',
    gk: 'read_write',
    gv: 'read_write',
    params: 'uniform',
  }),
};

/** Above this many scores per head, 'auto' takes the materialized version when a backward follows. */
const FLASH_MAX_SCORES_WITH_BACKWARD = 128 * 128;

/**
 * The default ('auto') choice, given whether a backward pass will follow (the op is recorded).
 * The flash forward is faster at every size (one dispatch instead of four, no [T, T] round trip).
 * Its backward does 14 T^2 d flops (scores and G v^T are recomputed in both passes) against 8 T^2 d
 * for the materialized one, which catches up at T = 128 and wins beyond. So: flash for
 * forward-only calls (sampling), and with a backward up to Tq * Tk = 128^2. The crossover comes
 * from lavapipe (bench/attention.ts; the table is in bench/results/2026-11-notes-from-code.md,
 * "Attention: flash vs materialized"); on a hardware GPU it is still to be measured.
 */
export function chooseImpl(Tq: number, Tk: number, d: number, backward: boolean): 'flash' | 'materialized' {
  if (d > FLASH_MAX_D) return 'materialized';
  if (backward && Tq * Tk > FLASH_MAX_SCORES_WITH_BACKWARD) return 'materialized';
  return 'flash';
}

function checkInputs(q: Tensor, k: Tensor, v: Tensor): void {
  for (const [t, n] of [[q, 'q'], [k, 'k'], [v, 'v']] as const) {
    if (t.dtype !== 'f32') throw new TypeError(`attention: ${n} must be f32, got ${t.dtype}${shapeString(t.shape)}`);
    if (t.rank !== 4) throw new RangeError(`attention: ${n} must have rank 4 [B, heads, T, d], got rank ${t.rank} ${shapeString(t.shape)}`);
  }
  const sameExceptT = (a: Tensor, b: Tensor) => a.shape[0] === b.shape[0] && a.shape[1] === b.shape[1] && a.shape[3] === b.shape[3];
  if (!sameExceptT(q, k)) {
    throw new RangeError(`attention: shape mismatch: q ${shapeString(q.shape)} and k ${shapeString(k.shape)} must agree in B, heads and d (dims 0, 1, 3)`);
  }
  if (k.shape.join() !== v.shape.join()) throw new RangeError(`attention: shape mismatch: k ${shapeString(k.shape)} and v ${shapeString(v.shape)} must have the same shape`);
}

export function attention(q: Tensor, k: Tensor, v: Tensor, options: AttentionOptions = {}): Tensor {
  checkInputs(q, k, v);
  const [B, H, Tq, d] = q.shape;
  const Tk = k.shape[2];
  const scale = options.scale ?? 1 / Math.sqrt(d);
  if (typeof scale !== 'number' || !Number.isFinite(scale)) throw new RangeError(`attention: scale must be a finite number, got ${scale}`);
  const impl = options.impl ?? 'auto';
  const backward = gradEnabled() && (q.requiresGrad || k.requiresGrad || v.requiresGrad);
  const chosen = impl === 'auto' ? chooseImpl(Tq, Tk, d, backward) : impl;
  if (chosen === 'materialized') return materializedAttention(q, k, v, scale);
  if (chosen !== 'flash') throw new RangeError(`attention: unknown impl "${impl}" (auto, flash, materialized)`);
  if (d > FLASH_MAX_D) throw new RangeError(`attention: impl 'flash' supports d <= ${FLASH_MAX_D}, got d = ${d} (use 'materialized' or 'auto')`);
  const maxDim = backend().gpu.limits.maxComputeWorkgroupsPerDimension;
  if (B * H > maxDim) throw new RangeError(`attention: B * heads = ${B * H} exceeds the ${maxDim} workgroups of one grid dimension`);
  return flashAttention(q, k, v, scale);
}

function flashAttention(q: Tensor, k: Tensor, v: Tensor, scale: number): Tensor {
  const d = q.shape[3];
  const d4 = Math.ceil(d / 4);
  if (d === 4 * d4) return flashKernels(q, k, v, scale);
  // The kernels read rows as vec4s. Zero features change no score and give zero output features,
  // so pad d up to a multiple of 4 and slice the output back; pad and slice record their own
  // backward, which drops the padded features' gradients.
  const widen = (t: Tensor) => pad(t, [[0, 0], [0, 0], [0, 0], [0, 4 * d4 - d]]);
  const [qp, kp, vp] = [widen(q), widen(k), widen(v)];
  const outPadded = flashKernels(qp, kp, vp, scale);
  const out = slice(outPadded, [0, 0, 0, 0], [-1, -1, -1, d]);
  for (const t of [qp, kp, vp, outPadded]) t.dispose();
  return out;
}

/** The flash kernels on rows whose d is a multiple of 4. */
function flashKernels(q: Tensor, k: Tensor, v: Tensor, scale: number): Tensor {
  const [B, H, Tq, d] = q.shape;
  const Tk = k.shape[2];
  const params = { tq: Tq, tk: Tk, d4: d / 4, scale };
  const grid = (rows: number) => [Math.ceil(rows / ROWS_PER_WORKGROUP), B * H, 1];
  const out = empty(q.shape); // [B, H, Tq, d]
  const lse = empty([B, H, Tq]); // log-sum-exp of each query row's scores
  // Hardware GPUs: the same maths with workgroup-memory tiles (engine/ops/attention_tiled.ts).
  const tiles = workgroupTiles(backend().gpu);
  if (tiles) tiledAttention('forward', { q, k, v, out, lse }, params, B * H, FLASH_MAX_D / 4);
  else K.forward.dispatch({ q, k, v, out, lse, params }, grid(Tq));

  record('attention', [q, k, v], out, [q, k, v, out, lse], (gy) => {
    const gq = empty(q.shape); // [B, H, Tq, d]
    const delta = empty([B, H, Tq]); // rowsum(gy * out), needed by the dk/dv pass
    const dqBindings = { q, k, v, out_saved: out, lse_saved: lse, gy, gq, delta };
    if (tiles) tiledAttention('dq', dqBindings, params, B * H, FLASH_MAX_D / 4);
    else K.dq.dispatch({ ...dqBindings, params }, grid(Tq));
    let gk: Tensor | null = null;
    let gv: Tensor | null = null;
    if (k.requiresGrad || v.requiresGrad) {
      gk = empty(k.shape); // [B, H, Tk, d]
      gv = empty(v.shape); // [B, H, Tk, d]
      const dkvBindings = { q, k, v, lse_saved: lse, gy, delta_saved: delta, gk, gv };
      if (tiles) tiledAttention('dkv', dkvBindings, params, B * H, FLASH_MAX_D / 4);
      else K.dkv.dispatch({ ...dkvBindings, params }, grid(Tk));
    }
    delta.dispose();
    return [gq, gk, gv];
  });
  lse.dispose(); // the tape retains it when a backward needs it
  return out;
}

/** The composed version; each engine op records its own backward on the tape. */
function materializedAttention(q: Tensor, k: Tensor, v: Tensor, scale: number): Tensor {
  // Scaling q ([.., Tq, d]) is cheaper than scaling the [.., Tq, Tk] scores when Tk > d.
  const qs = affine(q, scale);
  const s = matmul(qs, k, { transposeB: true }); // [B, H, Tq, Tk]
  const p = softmax(s); // [B, H, Tq, Tk]
  const out = matmul(p, v); // [B, H, Tq, d]
  // Intermediates are retained by the tape where a backward needs them.
  qs.dispose();
  s.dispose();
  p.dispose();
  return out;
}
