// The SGILO ViT score model (docs/design.md, "Score model") on the engine's ops: it predicts the noise
// eps(x, t) of the VP-SDE; score(x, t) = -eps(x, t) / std(t).
//
// Dimensions: B batch, C channels of the modelled activation, H x W its spatial grid, T = H*W tokens
// (patch 1: a token is the C channels at one position), D model width, h heads of size dh,
// M MLP width, E the time-feature width (T, or D in 'vector' mode, rounded up to even).
//   x          [B, C, H, W]       input (an activation, or the latent as [S, 2L, 1])
//   tokens     [B, T, D]          Linear(C, D) + learned position embedding [1, T, D]
//   time       [B] -> [B, T, 1]:  Gaussian Fourier features of raw t ([sin, cos] of 2 pi t W, W [E/2]),
//                                 Linear(E, E), swish, Linear(E, E), the first T values; added to every D
//                                 (config.time 'token'; 'vector' below)
//   depth x    x += Attn(LN(x)); x += FF(LN(x))     (pre-LN, eps 1e-5)
//              qkv = x @ Wqkv^T (no bias) [B, T, 3 h dh]: q, k, v in that order, each (h dh) head-major
//              FF = Linear(D, M) -> exact GELU -> Linear(M, D)
//              (one token, T = 1: the softmax over one key is exactly 1, attention returns v, so
//              only v's rows of Wqkv are applied and the attention kernels are skipped)
//   output     Linear(D, C) -> [B, C, H, W]                   (no final LayerNorm)
//
// State-dict names (SGILO's, with or without a `module.` prefix): pos_embedding, embed.0.W,
// embed.1.{weight,bias}, dense.dense.{weight,bias}, to_patch_embedding.1.{weight,bias},
// transformer.layers.{i}.0.fn.norm.*, .0.fn.fn.to_qkv.weight, .0.fn.fn.to_out.0.*,
// transformer.layers.{i}.1.fn.norm.*, .1.fn.fn.net.0.*, .1.fn.fn.net.3.*, projector.*.
//
// Time conditioning, `config.time` (absent = 'token'):
//   'token'   SGILO's layout exactly (docs/design.md, "Score model"; the fixture and shipped models): one scalar
//             per token added to all D features. Every block reads z through a pre-LayerNorm, and
//             LN(z + c 1) = LN(z), so the time input never reaches the blocks; with no final LN it
//             reaches the output only through the projector: eps(y, t) = g(y) + b(t), time shifts
//             the output. That is enough where the noise level can be read off y (SGILO's thousands
//             of dimensions), not in a few dimensions (test/score_gaussian.test.ts: in R^4 the exact
//             eps has the t-dependent slope s_t Sigma_t^{-1}).
//   'vector'  the time features give one D-vector per sample (E = D rounded up to even Fourier
//             features, Linear(E, E), swish, Linear(E, D)): tau [B, D]. It is added to every token
//             (not constant across features, so LN keeps part of it) and, as the standard remedy
//             (FiLM / DiT's adaLN), modulates every LayerNorm output:
//               LN_l(z) (1 + a_l) + b_l,  [a_l, b_l] = Linear(D, 2D)(swish(tau))  [B, 2D] per LN,
//             so each block's input, and through it the slope of eps in y, depends on t directly.
//             Why the modulation too: the added vector alone also reaches the blocks (LN keeps
//             its non-constant part, and the GELU's curvature turns it into a t-dependent slope),
//             but only through those side effects; the modulation gives the time a direct path,
//             for two Linear(D, 2D) per block. The covariance test passes because of the
//             training's emphasis on small t (samplers/score/train.ts tPower), not the
//             architecture (bench/results/2026-11-notes-from-code.md, "Score model: 'vector'
//             time conditioning"). Extra names:
//             dense.dense is [D, E], and each LN has transformer.layers.{i}.{0,1}.fn.time_mod.
//             {weight [2D, D], bias [2D]} (PyTorch-default Linear initialization).

import { Tensor, tensor } from '../engine/tensor.ts';
import { add, affine, cos, gelu, mul, sin, swish } from '../engine/ops/elementwise.ts';
import { matmul } from '../engine/ops/matmul.ts';
import { concat, permute, reshape, slice } from '../engine/ops/layout.ts';
import { layerNorm } from '../engine/ops/layer_norm.ts';
import { biasAct } from '../engine/ops/bias_act.ts';
import { qkvAttention } from '../engine/ops/attention.ts';
import { shapeString } from '../engine/shape.ts';
import type { HostTensor } from '../engine/host_tensor.ts';

export interface ScoreViTConfig {
  channels: number;
  height: number;
  width: number;
  dim: number;
  depth: number;
  heads: number;
  dimHead: number;
  mlp: number;
  /** How the diffusion time enters (see the header); absent means 'token', SGILO's layout. */
  time?: ScoreTimeMode;
}

export type ScoreTimeMode = 'token' | 'vector';

export function timeMode(c: ScoreViTConfig): ScoreTimeMode {
  const mode = c.time ?? 'token';
  if (mode !== 'token' && mode !== 'vector') throw new RangeError(`ScoreViT: config.time must be "token" or "vector", got ${JSON.stringify(c.time)}`);
  return mode;
}

/** Width of the Fourier time features: H*W (token mode) or D (vector mode), rounded up to even. */
export function timeFeatureWidth(c: ScoreViTConfig): number {
  const n = timeMode(c) === 'vector' ? c.dim : c.height * c.width;
  return n + (n % 2);
}

export function parameterShapes(c: ScoreViTConfig): Map<string, number[]> {
  const T = c.height * c.width;
  const E = timeFeatureWidth(c);
  const vector = timeMode(c) === 'vector';
  const out = vector ? c.dim : E; // the time MLP's output: tau [D] or one value per token [E >= T]
  const inner = c.heads * c.dimHead;
  const m = new Map<string, number[]>([
    ['pos_embedding', [1, T, c.dim]],
    ['embed.0.W', [E / 2]],
    ['embed.1.weight', [E, E]],
    ['embed.1.bias', [E]],
    ['dense.dense.weight', [out, E]],
    ['dense.dense.bias', [out]],
    ['to_patch_embedding.1.weight', [c.dim, c.channels]],
    ['to_patch_embedding.1.bias', [c.dim]],
  ]);
  for (let i = 0; i < c.depth; i++) {
    const a = `transformer.layers.${i}.0.fn`;
    const f = `transformer.layers.${i}.1.fn`;
    m.set(`${a}.norm.weight`, [c.dim]).set(`${a}.norm.bias`, [c.dim]);
    if (vector) m.set(`${a}.time_mod.weight`, [2 * c.dim, c.dim]).set(`${a}.time_mod.bias`, [2 * c.dim]);
    m.set(`${a}.fn.to_qkv.weight`, [3 * inner, c.dim]);
    m.set(`${a}.fn.to_out.0.weight`, [c.dim, inner]).set(`${a}.fn.to_out.0.bias`, [c.dim]);
    m.set(`${f}.norm.weight`, [c.dim]).set(`${f}.norm.bias`, [c.dim]);
    if (vector) m.set(`${f}.time_mod.weight`, [2 * c.dim, c.dim]).set(`${f}.time_mod.bias`, [2 * c.dim]);
    m.set(`${f}.fn.net.0.weight`, [c.mlp, c.dim]).set(`${f}.fn.net.0.bias`, [c.mlp]);
    m.set(`${f}.fn.net.3.weight`, [c.dim, c.mlp]).set(`${f}.fn.net.3.bias`, [c.dim]);
  }
  m.set('projector.weight', [c.channels, c.dim]).set('projector.bias', [c.channels]);
  return m;
}

/** Infers the configuration from state-dict shapes; heads must be given (dim_head = inner / heads). */
export function inferScoreConfig(sd: Map<string, HostTensor<Float32Array>>, heads = 1): ScoreViTConfig {
  const need = (n: string) => {
    const t = sd.get(n);
    if (!t) throw new Error(`score checkpoint: missing "${n}"`);
    return t.shape;
  };
  const [, T, dim] = need('pos_embedding');
  const channels = need('to_patch_embedding.1.weight')[1];
  let depth = 0;
  while (sd.has(`transformer.layers.${depth}.0.fn.norm.weight`)) depth++;
  const inner = need('transformer.layers.0.0.fn.fn.to_qkv.weight')[0] / 3;
  if (inner % heads !== 0) throw new Error(`score checkpoint: attention width ${inner} is not divisible by ${heads} heads`);
  const mlp = need('transformer.layers.0.1.fn.fn.net.0.weight')[0];
  // The token grid is not stored; square grids are the common case (latent models pass [2L, 1]).
  const side = Math.round(Math.sqrt(T));
  const [height, width] = side * side === T ? [side, side] : [T, 1];
  const config: ScoreViTConfig = { channels, height, width, dim, depth, heads, dimHead: inner / heads, mlp };
  if (sd.has('transformer.layers.0.0.fn.time_mod.weight')) config.time = 'vector';
  return config;
}

export class ScoreViT {
  /**
   * false (the default): attention runs the flash kernels in place on the fused qkv projection
   * (qkvAttention) and the LayerNorm applies its time modulation in its own kernels. true: the
   * compositions these replace (permute and slice around attention(); slice, multiply and add
   * after layerNorm()), kept so tests can hold the fused paths to them.
   */
  compose = false;

  private constructor(
    readonly config: ScoreViTConfig,
    readonly params: Map<string, Tensor>,
  ) {}

  static fromStateDict(config: ScoreViTConfig, sd: Map<string, HostTensor<Float32Array>>): ScoreViT {
    const params = new Map<string, Tensor>();
    for (const [name, shape] of parameterShapes(config)) {
      const t = sd.get(name) ?? sd.get(`module.${name}`);
      if (!t) throw new Error(`score checkpoint: missing tensor "${name}" (expected ${shapeString(shape)})`);
      if (t.shape.join() !== shape.join()) throw new Error(`score checkpoint: "${name}" has shape ${shapeString(t.shape)}, expected ${shapeString(shape)}`);
      params.set(name, tensor(t.data, shape).keep());
    }
    return new ScoreViT(config, params);
  }

  p(name: string): Tensor {
    const t = this.params.get(name);
    if (!t) throw new Error(`ScoreViT: no parameter "${name}"`);
    return t;
  }

  /** Trainable parameters (the Fourier features `embed.0.W` are fixed). */
  trainable(): [string, Tensor][] {
    return [...this.params].filter(([n]) => n !== 'embed.0.W');
  }

  dispose(): void {
    for (const t of this.params.values()) t.dispose();
  }

  private linear(x: Tensor, name: string, bias = true): Tensor {
    const y = matmul(x, this.p(`${name}.weight`), { transposeB: true });
    return bias ? add(y, this.p(`${name}.bias`)) : y;
  }

  /** residual + linear(x): the bias and the residual added in one dispatch (the same sums as two adds). */
  private linearResidual(x: Tensor, name: string, residual: Tensor): Tensor {
    const y = matmul(x, this.p(`${name}.weight`), { transposeB: true });
    return biasAct(y, this.p(`${name}.bias`), { act: 'linear', dim: -1, residual });
  }

  /** The time MLP: [B] -> [B, E] (token mode) or tau [B, D] (vector mode). */
  private timeFeatures(t: Tensor): Tensor {
    const B = t.shape[0];
    const W = this.p('embed.0.W');
    const proj = affine(mul(reshape(t, [B, 1]), reshape(W, [1, W.size])), 2 * Math.PI); // [B, E/2]
    const features = concat([sin(proj), cos(proj)], 1); // [B, E]
    return this.linear(swish(this.linear(features, 'embed.1')), 'dense.dense');
  }

  /** Pre-LayerNorm of block part `name`, FiLM-modulated by c = swish(tau) [B, D] in vector mode. */
  private norm(z: Tensor, name: string, c: Tensor | null): Tensor {
    const [w, bias] = [this.p(`${name}.norm.weight`), this.p(`${name}.norm.bias`)];
    if (!c || !this.compose) return layerNorm(z, w, bias, 1e-5, { modulation: c ? this.linear(c, `${name}.time_mod`) : undefined }); // [B, T, D]
    const y = layerNorm(z, w, bias); // [B, T, D]
    const [B, D] = c.shape;
    const mod = this.linear(c, `${name}.time_mod`); // [B, 2D]: scale a, shift b
    const a = reshape(slice(mod, [0, 0], [B, D]), [B, 1, D]);
    const b = reshape(slice(mod, [0, D], [B, D]), [B, 1, D]);
    return add(mul(y, affine(a, 1, 1)), b);
  }

  /** eps(x, t): x [B, C, H, W], t [B] -> [B, C, H, W]. */
  forward(x: Tensor, t: Tensor): Tensor {
    const { channels: C, height: H, width: W } = this.config;
    const T = H * W;
    if (x.rank !== 4 || x.shape[1] !== C || x.shape[2] !== H || x.shape[3] !== W) {
      throw new RangeError(`ScoreViT: input must be [B, ${C}, ${H}, ${W}], got ${shapeString(x.shape)}`);
    }
    const B = x.shape[0];
    if (t.rank !== 1 || t.shape[0] !== B) throw new RangeError(`ScoreViT: t must be [${B}], got ${shapeString(t.shape)}`);
    // One token (T = 1): [B, C, 1] and [B, 1, C] have the same layout, a permute would only copy.
    const tokens = T === 1 ? reshape(x, [B, 1, C]) : permute(reshape(x, [B, C, T]), [0, 2, 1]); // [B, T, C]
    const e = this.timeFeatures(t); // [B, E] or tau [B, D]
    const vector = timeMode(this.config) === 'vector';
    // token: the first T values, one per token, added to all D features; vector: tau added to every token.
    const time = vector ? reshape(e, [B, 1, e.shape[1]]) : reshape(slice(e, [0, 0], [B, T]), [B, T, 1]);
    const c = vector ? swish(e) : null; // [B, D], input of the LayerNorm modulations
    let z = add(add(this.linear(tokens, 'to_patch_embedding.1'), this.p('pos_embedding')), time);
    for (let i = 0; i < this.config.depth; i++) {
      const a = `transformer.layers.${i}.0.fn`;
      const f = `transformer.layers.${i}.1.fn`;
      z = this.linearResidual(this.attend(this.norm(z, a, c), `${a}.fn.to_qkv.weight`), `${a}.fn.to_out.0`, z);
      const hidden = gelu(this.linear(this.norm(z, f, c), `${f}.fn.net.0`));
      z = this.linearResidual(hidden, `${f}.fn.net.3`, z);
    }
    const out = this.linear(z, 'projector'); // [B, T, C]
    return reshape(T === 1 ? out : permute(out, [0, 2, 1]), [B, C, H, W]);
  }

  /** Multi-head self-attention of the normalized tokens u [B, T, D] -> heads concatenated [B, T, h dh]. */
  private attend(u: Tensor, qkvWeight: string): Tensor {
    const [, T, D] = u.shape;
    const { heads: h, dimHead: dh } = this.config;
    const W = this.p(qkvWeight); // [3 h dh, D]: q, k, v rows
    if (T === 1) {
      // A single key: its softmax weight is exactly 1, so each head returns its v (q and k drop out,
      // their gradients are exactly 0 either way). v is already in (h dh) order: its rows of W only.
      return matmul(u, slice(W, [2 * h * dh, 0], [h * dh, D]), { transposeB: true });
    }
    const qkv = matmul(u, W, { transposeB: true }); // [B, T, 3 h dh], no bias
    return qkvAttention(qkv, h, { scale: dh ** -0.5, impl: this.compose ? 'composed' : 'auto' }); // [B, T, h dh]
  }
}
