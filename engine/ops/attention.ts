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
//
// qkvAttention: the same attention on a fused projection qkv [B, T, 3 H d] (q, k, v in that order,
// each head-major, the ViT's to_qkv output), returning the heads concatenated [B, T, H d]. The
// flash kernels address rows by strides (shaders/attention.wgsl), so they read q, k and v in place
// and write the output, and in the backward one gradient [B, T, 3 H d], already in the
// projection's layout: no permute, slice or zero-padding copies (the composed version, 'composed',
// is permute + slice + attention + permute, whose backward pads each slice's gradient into zeros
// and sums the three).

import { defineKernel } from '../kernel.ts';
import { backend } from '../backend.ts';
import { gradEnabled, record } from '../tape.ts';
import { Tensor, empty } from '../tensor.ts';
import { shapeString } from '../shape.ts';
import { affine } from './elementwise.ts';
import { pad, permute, reshape, slice } from './layout.ts';
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

/** Invocations per workgroup and rows per invocation (shaders/attention.wgsl). */
const WG = 16;
const R = 4;

/** Invocations per head over T rows: short heads share a workgroup (shaders/attention.wgsl). */
const lanesFor = (T: number) => Math.min(WG, Math.ceil(T / R));

/** The kernels' grid and the uniforms that go with it, for BH heads of Tq query and Tk key rows. */
function gridParams(BH: number, Tq: number, Tk: number) {
  const [lq, lk] = [lanesFor(Tq), lanesFor(Tk)];
  const grid = (rows: number, lanes: number) => [Math.ceil(rows / (lanes * R)), Math.ceil(BH / Math.floor(WG / lanes)), 1];
  return { uniforms: { bh: BH, lanes_q: lq, lanes_k: lk }, queries: grid(Tq, lq), keys: grid(Tk, lk) };
}

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
/** Row addressing in vec4s: (batch stride, head stride, row stride, base); see shaders/attention.wgsl. */
type At = [number, number, number, number];

/** Addressing of separate [B, H, T, d] tensors. */
const headMajor = (H: number, T: number, d4: number): At => [H * T * d4, T * d4, d4, 0];

/** The flash kernels on rows whose d is a multiple of 4, on separate q, k, v [B, H, T, d]. */
function flashKernels(q: Tensor, k: Tensor, v: Tensor, scale: number): Tensor {
  const [B, H, Tq, d] = q.shape;
  const Tk = k.shape[2];
  const d4 = d / 4;
  const g = gridParams(B * H, Tq, Tk);
  const params = { tq: Tq, tk: Tk, d4, scale, heads: H, v_in_gk: 0, ...g.uniforms, q_at: headMajor(H, Tq, d4), k_at: headMajor(H, Tk, d4), v_at: headMajor(H, Tk, d4), o_at: headMajor(H, Tq, d4) };
  const out = empty(q.shape); // [B, H, Tq, d]
  const lse = empty([B, H, Tq]); // log-sum-exp of each query row's scores
  // Hardware GPUs: the same maths with workgroup-memory tiles (engine/ops/attention_tiled.ts).
  const tiles = workgroupTiles(backend().gpu);
  const tiledParams = { tq: Tq, tk: Tk, d4, scale };
  if (tiles) tiledAttention('forward', { q, k, v, out, lse }, tiledParams, B * H, FLASH_MAX_D / 4);
  else K.forward.dispatch({ q, k, v, out, lse, params }, g.queries);

  record('attention', [q, k, v], out, [q, k, v, out, lse], (gy) => {
    const gq = empty(q.shape); // [B, H, Tq, d]
    const delta = empty([B, H, Tq]); // rowsum(gy * out), needed by the dk/dv pass
    const dqBindings = { q, k, v, out_saved: out, lse_saved: lse, gy, gq, delta };
    if (tiles) tiledAttention('dq', dqBindings, tiledParams, B * H, FLASH_MAX_D / 4);
    else K.dq.dispatch({ ...dqBindings, params }, g.queries);
    let gk: Tensor | null = null;
    let gv: Tensor | null = null;
    if (k.requiresGrad || v.requiresGrad) {
      gk = empty(k.shape); // [B, H, Tk, d]
      gv = empty(v.shape); // [B, H, Tk, d]
      const dkvBindings = { q, k, v, lse_saved: lse, gy, delta_saved: delta, gk, gv };
      if (tiles) tiledAttention('dkv', dkvBindings, tiledParams, B * H, FLASH_MAX_D / 4);
      else K.dkv.dispatch({ ...dkvBindings, params }, g.keys);
    }
    delta.dispose();
    return [gq, gk, gv];
  });
  lse.dispose(); // the tape retains it when a backward needs it
  return out;
}

export type QkvAttentionImpl = 'auto' | 'packed' | 'composed';

export interface QkvAttentionOptions {
  /** Multiplies the scores before the softmax (default d^-0.5). */
  scale?: number;
  /** 'packed': the flash kernels in place (d a multiple of 4, d <= 64); 'composed': permute and slice around attention(); 'auto' (default): packed wherever attention() would take flash. */
  impl?: QkvAttentionImpl;
}

/** Self-attention of a fused projection qkv [B, T, 3 H d] (q, k, v, each head-major) -> [B, T, H d]. */
export function qkvAttention(qkv: Tensor, heads: number, options: QkvAttentionOptions = {}): Tensor {
  if (qkv.dtype !== 'f32') throw new TypeError(`qkvAttention: qkv must be f32, got ${qkv.dtype}${shapeString(qkv.shape)}`);
  if (qkv.rank !== 3) throw new RangeError(`qkvAttention: qkv must have rank 3 [B, T, 3 heads d], got ${shapeString(qkv.shape)}`);
  if (!(Number.isInteger(heads) && heads >= 1)) throw new RangeError(`qkvAttention: heads must be a positive integer, got ${heads}`);
  const [B, T, width] = qkv.shape;
  if (width % (3 * heads) !== 0) throw new RangeError(`qkvAttention: the last dimension ${width} of qkv ${shapeString(qkv.shape)} is not 3 x ${heads} heads x d`);
  const d = width / (3 * heads);
  const scale = options.scale ?? 1 / Math.sqrt(d);
  if (typeof scale !== 'number' || !Number.isFinite(scale)) throw new RangeError(`qkvAttention: scale must be a finite number, got ${scale}`);
  const impl = options.impl ?? 'auto';
  if (impl !== 'auto' && impl !== 'packed' && impl !== 'composed') throw new RangeError(`qkvAttention: unknown impl "${impl}" (auto, packed, composed)`);
  const maxDim = backend().gpu.limits.maxComputeWorkgroupsPerDimension;
  const packable = d % 4 === 0 && d <= FLASH_MAX_D && B * heads <= maxDim;
  const backward = gradEnabled() && qkv.requiresGrad;
  // Where attention runs its tiled kernels (hardware GPUs), the composed path reaches them; the
  // packed kernels are the flash ones reading qkv in place.
  const tiled = workgroupTiles(backend().gpu);
  const chosen = impl === 'auto' ? (packable && !tiled && chooseImpl(T, T, d, backward) === 'flash' ? 'packed' : 'composed') : impl;
  if (chosen === 'composed') return composedQkvAttention(qkv, heads, d, scale);
  if (!packable) throw new RangeError(`qkvAttention: impl 'packed' needs d a multiple of 4 and <= ${FLASH_MAX_D} and B * heads <= ${maxDim}, got d = ${d}, B * heads = ${B * heads} (use 'composed' or 'auto')`);
  return packedKernels(qkv, B, T, heads, d, scale);
}

/** The flash kernels on q, k, v in place in qkv [B, T, 3, H, d]; out [B, T, H, d]. */
function packedKernels(qkv: Tensor, B: number, T: number, H: number, d: number, scale: number): Tensor {
  const d4 = d / 4;
  const row = 3 * H * d4; // one token's q, k and v
  const at = (part: number): At => [T * row, d4, row, part * H * d4];
  const g = gridParams(B * H, T, T);
  const params = { tq: T, tk: T, d4, scale, heads: H, v_in_gk: 1, ...g.uniforms, q_at: at(0), k_at: at(1), v_at: at(2), o_at: [T * H * d4, d4, H * d4, 0] };
  const grid = g.queries;
  const out = empty([B, T, H * d]);
  const lse = empty([B, H, T]);
  K.forward.dispatch({ q: qkv, k: qkv, v: qkv, out, lse, params }, grid);

  record('qkv_attention', [qkv], out, [qkv, out, lse], (gy) => {
    const gqkv = empty(qkv.shape); // every element written: q's rows by the dq pass, k's and v's by dkv
    const delta = empty([B, H, T]);
    const unused = empty([4]); // the gv binding, unused with v_in_gk
    K.dq.dispatch({ q: qkv, k: qkv, v: qkv, out_saved: out, lse_saved: lse, gy, gq: gqkv, delta, params }, grid);
    K.dkv.dispatch({ q: qkv, k: qkv, v: qkv, lse_saved: lse, gy, delta_saved: delta, gk: gqkv, gv: unused, params }, grid);
    delta.dispose();
    unused.dispose();
    return [gqkv];
  });
  lse.dispose();
  return out;
}

/** Permute and slice into q, k, v [B, H, T, d], attention(), and back to [B, T, H d]; each op records its own backward. */
function composedQkvAttention(qkv: Tensor, H: number, d: number, scale: number): Tensor {
  const [B, T] = qkv.shape;
  const heads = permute(reshape(qkv, [B, T, 3, H, d]), [2, 0, 3, 1, 4]); // [3, B, H, T, d]
  const part = (j: number) => reshape(slice(heads, [j, 0, 0, 0, 0], [1, B, H, T, d]), [B, H, T, d]);
  const o = attention(part(0), part(1), part(2), { scale }); // [B, H, T, d]
  return reshape(permute(o, [0, 2, 1, 3]), [B, T, H * d]);
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
