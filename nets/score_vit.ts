// The SGILO ViT score model (DESIGN.md section 6) on the engine's ops: it predicts the noise
// eps(x, t) of the VP-SDE; score(x, t) = -eps(x, t) / std(t).
//
// Dimensions: B batch, C channels of the modelled activation, H x W its spatial grid, T = H*W tokens
// (patch 1: a token is the C channels at one position), D model width, h heads of size dh,
// M MLP width, E = T rounded up to even (time-feature width).
//   x          [B, C, H, W]       input (an activation, or the latent as [S, 2L, 1])
//   tokens     [B, T, D]          Linear(C, D) + learned position embedding [1, T, D]
//   time       [B, T] -> [B, T, 1]: Gaussian Fourier features of raw t ([sin, cos] of 2 pi t W, W [E/2]),
//                                 Linear(E, E), swish, Linear(E, E), the first T values; added to every D
//   depth x    x += Attn(LN(x)); x += FF(LN(x))     (pre-LN, eps 1e-5)
//              qkv = x @ Wqkv^T (no bias) [B, T, 3 h dh]: q, k, v in that order, each (h dh) head-major
//              FF = Linear(D, M) -> exact GELU -> Linear(M, D)
//   output     Linear(D, C) -> [B, C, H, W]                   (no final LayerNorm)
//
// State-dict names (SGILO's, with or without a `module.` prefix): pos_embedding, embed.0.W,
// embed.1.{weight,bias}, dense.dense.{weight,bias}, to_patch_embedding.1.{weight,bias},
// transformer.layers.{i}.0.fn.norm.*, .0.fn.fn.to_qkv.weight, .0.fn.fn.to_out.0.*,
// transformer.layers.{i}.1.fn.norm.*, .1.fn.fn.net.0.*, .1.fn.fn.net.3.*, projector.*.

import { Tensor, tensor } from '../engine/tensor.ts';
import { add, affine, cos, gelu, mul, sin, swish } from '../engine/ops/elementwise.ts';
import { matmul } from '../engine/ops/matmul.ts';
import { concat, permute, reshape, slice } from '../engine/ops/layout.ts';
import { layerNorm } from '../engine/ops/layer_norm.ts';
import { attention } from '../engine/ops/attention.ts';
import { shapeString } from '../engine/shape.ts';
import type { HostTensor } from './stylegan2.ts';

export interface ScoreViTConfig {
  channels: number;
  height: number;
  width: number;
  dim: number;
  depth: number;
  heads: number;
  dimHead: number;
  mlp: number;
}

export function parameterShapes(c: ScoreViTConfig): Map<string, number[]> {
  const T = c.height * c.width;
  const E = T + (T % 2);
  const inner = c.heads * c.dimHead;
  const m = new Map<string, number[]>([
    ['pos_embedding', [1, T, c.dim]],
    ['embed.0.W', [E / 2]],
    ['embed.1.weight', [E, E]],
    ['embed.1.bias', [E]],
    ['dense.dense.weight', [E, E]],
    ['dense.dense.bias', [E]],
    ['to_patch_embedding.1.weight', [c.dim, c.channels]],
    ['to_patch_embedding.1.bias', [c.dim]],
  ]);
  for (let i = 0; i < c.depth; i++) {
    const a = `transformer.layers.${i}.0.fn`;
    const f = `transformer.layers.${i}.1.fn`;
    m.set(`${a}.norm.weight`, [c.dim]).set(`${a}.norm.bias`, [c.dim]);
    m.set(`${a}.fn.to_qkv.weight`, [3 * inner, c.dim]);
    m.set(`${a}.fn.to_out.0.weight`, [c.dim, inner]).set(`${a}.fn.to_out.0.bias`, [c.dim]);
    m.set(`${f}.norm.weight`, [c.dim]).set(`${f}.norm.bias`, [c.dim]);
    m.set(`${f}.fn.net.0.weight`, [c.mlp, c.dim]).set(`${f}.fn.net.0.bias`, [c.mlp]);
    m.set(`${f}.fn.net.3.weight`, [c.dim, c.mlp]).set(`${f}.fn.net.3.bias`, [c.dim]);
  }
  m.set('projector.weight', [c.channels, c.dim]).set('projector.bias', [c.channels]);
  return m;
}

/** Infers the configuration from state-dict shapes; heads must be given (dim_head = inner / heads). */
export function inferScoreConfig(sd: Map<string, HostTensor>, heads = 1): ScoreViTConfig {
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
  return { channels, height, width, dim, depth, heads, dimHead: inner / heads, mlp };
}

export class ScoreViT {
  private constructor(
    readonly config: ScoreViTConfig,
    readonly params: Map<string, Tensor>,
  ) {}

  static fromStateDict(config: ScoreViTConfig, sd: Map<string, HostTensor>): ScoreViT {
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

  /** One scalar per token from the diffusion time: [B] -> [B, T, 1]. */
  private timeEmbedding(t: Tensor): Tensor {
    const B = t.shape[0];
    const T = this.config.height * this.config.width;
    const W = this.p('embed.0.W');
    const proj = affine(mul(reshape(t, [B, 1]), reshape(W, [1, W.size])), 2 * Math.PI); // [B, E/2]
    const features = concat([sin(proj), cos(proj)], 1); // [B, E]
    const e = this.linear(swish(this.linear(features, 'embed.1')), 'dense.dense');
    return reshape(slice(e, [0, 0], [B, T]), [B, T, 1]);
  }

  /** eps(x, t): x [B, C, H, W], t [B] -> [B, C, H, W]. */
  forward(x: Tensor, t: Tensor): Tensor {
    const { channels: C, height: H, width: W, heads: h, dimHead: dh } = this.config;
    const T = H * W;
    if (x.rank !== 4 || x.shape[1] !== C || x.shape[2] !== H || x.shape[3] !== W) {
      throw new RangeError(`ScoreViT: input must be [B, ${C}, ${H}, ${W}], got ${shapeString(x.shape)}`);
    }
    const B = x.shape[0];
    if (t.rank !== 1 || t.shape[0] !== B) throw new RangeError(`ScoreViT: t must be [${B}], got ${shapeString(t.shape)}`);
    const tokens = permute(reshape(x, [B, C, T]), [0, 2, 1]); // [B, T, C]
    let z = add(add(this.linear(tokens, 'to_patch_embedding.1'), this.p('pos_embedding')), this.timeEmbedding(t));
    for (let i = 0; i < this.config.depth; i++) {
      const a = `transformer.layers.${i}.0.fn`;
      const f = `transformer.layers.${i}.1.fn`;
      const qkv = this.linear(layerNorm(z, this.p(`${a}.norm.weight`), this.p(`${a}.norm.bias`)), `${a}.fn.to_qkv`, false);
      const heads = permute(reshape(qkv, [B, T, 3, h, dh]), [2, 0, 3, 1, 4]); // [3, B, h, T, dh]
      const part = (j: number) => reshape(slice(heads, [j, 0, 0, 0, 0], [1, B, h, T, dh]), [B, h, T, dh]);
      const o = attention(part(0), part(1), part(2), { scale: dh ** -0.5 }); // [B, h, T, dh]
      const merged = reshape(permute(o, [0, 2, 1, 3]), [B, T, h * dh]);
      z = add(z, this.linear(merged, `${a}.fn.to_out.0`));
      const hidden = gelu(this.linear(layerNorm(z, this.p(`${f}.norm.weight`), this.p(`${f}.norm.bias`)), `${f}.fn.net.0`));
      z = add(z, this.linear(hidden, `${f}.fn.net.3`));
    }
    const out = this.linear(z, 'projector'); // [B, T, C]
    return reshape(permute(out, [0, 2, 1]), [B, C, H, W]);
  }
}
