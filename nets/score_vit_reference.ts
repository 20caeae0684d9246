// float64 CPU forward of the ViT score model (nets/score_vit.ts), composed from the engine's
// reference ops (engine/reference/). It is the oracle of the whole-network gradient check: the GPU
// gradient of sum(eps * R) is compared with central finite differences of this forward along
// random directions (docs/design.md, "Numerics and tests": whole networks).
//
// Dimensions as in score_vit.ts: x [B, C, H, W], t [B], T = H*W tokens, D width, h heads of dh,
// M MLP width, E the time-feature width (T, or D in 'vector' mode, rounded up to even). Both time
// modes (config.time 'token' and 'vector', see score_vit.ts).

import { host, type HostArray } from '../engine/reference/host.ts';
import { matmulForward } from '../engine/reference/matmul.ts';
import { binaryForward, unaryForward } from '../engine/reference/elementwise.ts';
import { concatForward, permuteForward, reshapeForward, sliceForward } from '../engine/reference/layout.ts';
import { layerNormForward } from '../engine/reference/layer_norm.ts';
import { attentionForward } from '../engine/reference/attention.ts';
import { BINARY_ROWS, UNARY_ROWS } from '../engine/elementwise_table.ts';
import { timeMode, type ScoreViTConfig } from './score_vit.ts';

const un = (name: string, x: HostArray) => unaryForward(UNARY_ROWS.find((r) => r.name === name)!, x);
const add = (a: HostArray, b: HostArray) => binaryForward(BINARY_ROWS.find((r) => r.name === 'add')!, a, b);
const mul = (a: HostArray, b: HostArray) => binaryForward(BINARY_ROWS.find((r) => r.name === 'mul')!, a, b);

/** eps(x, t) in float64; `params` maps state-dict names to float64 host arrays. */
export function scoreViTForwardRef(c: ScoreViTConfig, params: Map<string, HostArray>, x: HostArray, t: HostArray): HostArray {
  const p = (n: string) => {
    const v = params.get(n);
    if (!v) throw new Error(`scoreViTForwardRef: no parameter "${n}"`);
    return v;
  };
  const linear = (v: HostArray, name: string, bias = true) => {
    const y = matmulForward(v, p(`${name}.weight`), { transposeB: true });
    return bias ? add(y, p(`${name}.bias`)) : y;
  };
  const B = x.shape[0];
  const T = c.height * c.width;
  const { heads: h, dimHead: dh } = c;

  // Time: [sin, cos](2 pi t W) -> Linear, swish, Linear -> first T values, one per token.
  const W = p('embed.0.W');
  const proj = host([B, W.data.length]);
  for (let b = 0; b < B; b++) for (let i = 0; i < W.data.length; i++) proj.data[b * W.data.length + i] = 2 * Math.PI * t.data[b] * W.data[i];
  const features = concatForward([un('sin', proj), un('cos', proj)], 1);
  const e = linear(un('swish', linear(features, 'embed.1')), 'dense.dense');
  const vector = timeMode(c) === 'vector';
  const time = vector ? reshapeForward(e, [B, 1, c.dim]) : reshapeForward(sliceForward(e, [0, 0], [B, T]), [B, T, 1]);
  const cond = vector ? un('swish', e) : null; // [B, D]
  // Pre-LayerNorm, FiLM-modulated in vector mode: LN(z) (1 + a) + b, [a, b] = Linear(cond).
  const norm = (z: HostArray, name: string) => {
    const y = layerNormForward(z, p(`${name}.norm.weight`), p(`${name}.norm.bias`), 1e-5);
    if (!cond) return y;
    const mod = linear(cond, `${name}.time_mod`);
    const a = reshapeForward(sliceForward(mod, [0, 0], [B, c.dim]), [B, 1, c.dim]);
    const b = reshapeForward(sliceForward(mod, [0, c.dim], [B, c.dim]), [B, 1, c.dim]);
    return add(mul(y, host(a.shape, a.data.map((v) => v + 1))), b);
  };

  const tokens = permuteForward(reshapeForward(x, [B, c.channels, T]), [0, 2, 1]);
  let z = add(add(linear(tokens, 'to_patch_embedding.1'), p('pos_embedding')), time);
  for (let i = 0; i < c.depth; i++) {
    const a = `transformer.layers.${i}.0.fn`;
    const f = `transformer.layers.${i}.1.fn`;
    const qkv = linear(norm(z, a), `${a}.fn.to_qkv`, false);
    const split = permuteForward(reshapeForward(qkv, [B, T, 3, h, dh]), [2, 0, 3, 1, 4]);
    const part = (j: number) => reshapeForward(sliceForward(split, [j, 0, 0, 0, 0], [1, B, h, T, dh]), [B, h, T, dh]);
    const o = attentionForward(part(0), part(1), part(2), dh ** -0.5);
    z = add(z, linear(reshapeForward(permuteForward(o, [0, 2, 1, 3]), [B, T, h * dh]), `${a}.fn.to_out.0`));
    const hidden = un('gelu', linear(norm(z, f), `${f}.fn.net.0`));
    z = add(z, linear(hidden, `${f}.fn.net.3`));
  }
  const out = linear(z, 'projector');
  return reshapeForward(permuteForward(out, [0, 2, 1]), [B, c.channels, c.height, c.width]);
}
