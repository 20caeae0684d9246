// float64 reference of the whole StyleGAN2 generator (nets/stylegan2.ts, docs/design.md, "StyleGAN2"),
// composed only from the per-op float64 references in engine/reference/ (matmul, modulated_conv,
// upfirdn2d, bias_act, layout, reduce) plus the few lines of elementwise algebra between them. It is
// the oracle of the whole-network gradient check (nets/gradcheck_stylegan2.ts).
//
// Backward: every step records the VJP of its reference op on a small float64 tape (`RefGraph`),
// so the reference has its own backward, composed from the per-op VJPs; the check compares it with
// central finite differences of the forward along random directions, and the GPU tape with both.
//
// Dimensions: N batch, S style dim, L = log2(size) - 1 blocks, C[r] channels at resolution r.
//   z [N, S]   w [N, S]   W+ [N, 2L, S]   noise i [N or 1, 1, r_i, r_i]
//   features after block k [N, C[4*2^k], 4*2^k, 4*2^k]   image [N, 3, size, size]
// Parameters use the rosinality state-dict names and shapes (parameterShapes in nets/stylegan2.ts).

import { HostRandom, host, type HostArray } from '../../engine/reference/host.ts';
import { matmulForward, matmulVjp } from '../../engine/reference/matmul.ts';
import { BLUR_KERNEL_4x4, modulatedConvForward, modulatedConvVjp } from '../../engine/reference/modulated_conv.ts';
import { upfirdn2dForward, upfirdn2dVjp, type Upfirdn2dConfig } from '../../engine/reference/upfirdn2d.ts';
import { biasActForward, biasActVjp, type BiasActConfig } from '../../engine/reference/bias_act.ts';
import { sliceForward, sliceVjp } from '../../engine/reference/layout.ts';
import { broadcastForward, broadcastVjp, sumForward, sumVjp } from '../../engine/reference/reduce.ts';
import { blockResolution, noiseSide, numBlocks, numLatents, numNoises, parameterShapes, type StyleGAN2Config } from '../stylegan2.ts';

export type RefParams = Map<string, HostArray>;

/**
 * A float64 tape: `op(out, back)` records how to send out's gradient to its inputs; `backward`
 * walks the records in reverse. Gradients are keyed by array identity, so a leaf (a parameter,
 * W+, a noise map) gets its gradient with `grad(leaf)`.
 */
export class RefGraph {
  private readonly steps: { out: HostArray; back: (gy: HostArray) => [HostArray, Float64Array][] }[] = [];
  private grads = new Map<HostArray, Float64Array>();

  op(out: HostArray, back: (gy: HostArray) => [HostArray, Float64Array][]): HostArray {
    this.steps.push({ out, back });
    return out;
  }

  /** Gradients of <upstream, root> for every array the root depends on. */
  backward(root: HostArray, upstream: HostArray): void {
    if (upstream.shape.join() !== root.shape.join()) throw new RangeError(`RefGraph.backward: upstream [${upstream.shape}] does not match the root [${root.shape}]`);
    this.grads = new Map([[root, Float64Array.from(upstream.data)]]);
    for (let i = this.steps.length - 1; i >= 0; i--) {
      const { out, back } = this.steps[i];
      const gy = this.grads.get(out);
      if (!gy) continue;
      for (const [x, gx] of back(host(out.shape, gy))) {
        const prev = this.grads.get(x);
        if (prev) for (let j = 0; j < gx.length; j++) prev[j] += gx[j];
        else this.grads.set(x, Float64Array.from(gx));
      }
    }
  }

  /** The gradient of a leaf after `backward` (zeros where the root does not depend on it). */
  grad(x: HostArray): Float64Array {
    return this.grads.get(x) ?? new Float64Array(x.data.length);
  }
}

const LRELU: BiasActConfig = { alpha: 0.2, gain: Math.SQRT2, clamp: Infinity, dim: 1 };
/** upsample2d of the RGB skip: up 2, pad (2, 1) on both axes, kernel outer([1,3,3,1]) / 64 * 4. */
const SKIP_UP: Upfirdn2dConfig = { upX: 2, upY: 2, downX: 1, downY: 1, pad: [2, 1, 2, 1] };
const BLUR = host([4, 4], BLUR_KERNEL_4x4);

const scaled = (x: HostArray, a: number) => host(x.shape, x.data.map((v) => v * a));

/** a + b with b broadcast to a's shape (NumPy rules). */
function addBroadcast(g: RefGraph, a: HostArray, b: HostArray): HostArray {
  const bb = broadcastForward(b, a.shape);
  const out = host(a.shape, a.data.map((v, i) => v + bb.data[i]));
  return g.op(out, (gy) => [
    [a, gy.data],
    [b, broadcastVjp(b, gy)],
  ]);
}

/** Equalized linear layer: x @ (W * lrMul / sqrt(in))^T + b * lrMul. x [N, in], W [out, in], b [out]. */
function equalLinear(g: RefGraph, x: HostArray, w: HostArray, b: HostArray, lrMul: number): HostArray {
  const scale = lrMul / Math.sqrt(w.shape[1]);
  const xw = matmulForward(x, w, { transposeB: true });
  const out = host(xw.shape, xw.data.map((v, i) => v * scale + b.data[i % b.data.length] * lrMul));
  return g.op(out, (gy) => {
    const [gx, gw] = matmulVjp(x, w, scaled(gy, scale), { transposeB: true });
    return [
      [x, gx],
      [w, gw],
      [b, scaled(host([b.data.length], sumForward(gy, [0], [b.data.length]).data), lrMul).data],
    ];
  });
}

function lrelu(g: RefGraph, x: HostArray, bias: HostArray | null, clamp = Infinity): HostArray {
  return biasAct(g, x, bias, { ...LRELU, clamp });
}

function biasAct(g: RefGraph, x: HostArray, bias: HostArray | null, cfg: BiasActConfig): HostArray {
  const y = biasActForward(x, bias, cfg);
  return g.op(y, (gy) => {
    const gs = biasActVjp(x, bias, cfg, gy);
    return bias ? [[x, gs[0]], [bias, gs[1]]] : [[x, gs[0]]];
  });
}

/** x + bias [1, C, 1, 1], clamped to [-clamp, clamp] (NVlabs' ToRGB with conv_clamp). */
function clampedBias(g: RefGraph, x: HostArray, bias: HostArray, clamp: number): HostArray {
  const cfg: BiasActConfig = { alpha: 1, gain: 1, clamp, dim: 1 };
  const b = host([bias.data.length], bias.data);
  const y = biasActForward(x, b, cfg);
  return g.op(y, (gy) => {
    const [gx, gb] = biasActVjp(x, b, cfg, gy);
    return [[x, gx], [bias, gb]];
  });
}

/** PixelNorm over the last axis: x * rsqrt(mean(x^2) + 1e-8); x [N, S]. */
function pixelNorm(g: RefGraph, x: HostArray): HostArray {
  const [N, S] = x.shape;
  const ms = sumForward(host(x.shape, x.data.map((v) => v * v)), [1], [N], true); // [N]
  const r = ms.data.map((m) => 1 / Math.sqrt(m + 1e-8)); // [N]
  const y = host(x.shape, x.data.map((v, i) => v * r[Math.floor(i / S)]));
  return g.op(y, (gy) => {
    // y = x r, r = (m + eps)^(-1/2), dm/dx = 2x/S: gx = gy r - x r^3 sum(gy x) / S.
    const dot = sumForward(host(x.shape, gy.data.map((v, i) => v * x.data[i])), [1], [N]).data;
    const gm = host([N], dot.map((d, n) => -0.5 * d * r[n] ** 3)); // gradient of the mean square
    const gsq = sumVjp(host(x.shape, x.data.map((v) => v * v)), [1], gm, true);
    return [[x, gy.data.map((v, i) => v * r[Math.floor(i / S)] + 2 * x.data[i] * gsq[i])]];
  });
}

/** Row i of W+ as [N, S] (slice; the reshape is free on the host). */
function row(g: RefGraph, wplus: HostArray, i: number): HostArray {
  const [N, , S] = wplus.shape;
  const r = sliceForward(wplus, [0, i, 0], [N, 1, S]);
  return g.op(host([N, S], r.data), (gy) => [[wplus, sliceVjp(wplus, [0, i, 0], host([N, 1, S], gy.data))]]);
}

function modConv(g: RefGraph, x: HostArray, w5: HostArray, s: HostArray, demodulate: boolean, upsample: boolean): HostArray {
  const w = host(w5.shape.slice(1), w5.data); // stored [1, out, in, k, k] -> [out, in, k, k]
  const o = { demodulate, upsample };
  return g.op(modulatedConvForward(x, w, s, o), (gy) => {
    const [gx, gw, gs] = modulatedConvVjp(x, w, s, gy, o);
    return [
      [x, gx],
      [w5, gw],
      [s, gs],
    ];
  });
}

/** y + strength * noise, the noise [N or 1, 1, H, W] broadcast over channels. */
function addNoise(g: RefGraph, y: HostArray, noise: HostArray, strength: HostArray): HostArray {
  const [N, C, H, W] = y.shape;
  const HW = H * W;
  const at = (i: number) => (noise.shape[0] === 1 ? 0 : Math.floor(i / (C * HW)) * HW) + (i % HW);
  const sv = strength.data[0];
  const out = host(y.shape, y.data.map((v, i) => v + sv * noise.data[at(i)]));
  return g.op(out, (gy) => {
    const gn = new Float64Array(noise.data.length);
    let gsv = 0;
    gy.data.forEach((v, i) => {
      gn[at(i)] += v * sv;
      gsv += v * noise.data[at(i)];
    });
    if (noise.shape[0] !== 1 && noise.shape[0] !== N) throw new RangeError(`noise [${noise.shape}] for a batch of ${N}`);
    return [
      [y, gy.data],
      [noise, gn],
      [strength, Float64Array.of(gsv)],
    ];
  });
}

function upsampleSkip(g: RefGraph, x: HostArray): HostArray {
  return g.op(upfirdn2dForward(x, BLUR, SKIP_UP), (gy) => [[x, upfirdn2dVjp(x, BLUR, SKIP_UP, gy)]]);
}

/** The reference generator: a config, its parameters (state-dict names), and the forward passes. */
export class StyleGAN2Ref {
  constructor(
    readonly config: StyleGAN2Config,
    readonly params: RefParams,
    readonly latentAvg: HostArray | null = null,
  ) {
    for (const [name, shape] of parameterShapes(config)) {
      const p = params.get(name);
      if (!p || p.shape.join() !== shape.join()) throw new RangeError(`StyleGAN2Ref: parameter "${name}" must be [${shape}], got ${p ? `[${p.shape}]` : 'nothing'}`);
    }
  }

  p(name: string): HostArray {
    const t = this.params.get(name);
    if (!t) throw new Error(`StyleGAN2Ref: no parameter "${name}"`);
    return t;
  }

  mapping(g: RefGraph, z: HostArray): HostArray {
    let h = pixelNorm(g, z);
    for (let i = 1; i <= this.config.nMlp; i++) h = lrelu(g, equalLinear(g, h, this.p(`style.${i}.weight`), this.p(`style.${i}.bias`), this.config.lrMlp), null);
    return h;
  }

  /** w_avg + psi (w - w_avg), w_avg a constant. */
  truncate(g: RefGraph, w: HostArray, psi: number): HostArray {
    if (psi === 1) return w;
    const avg = this.latentAvg;
    if (!avg) throw new Error('StyleGAN2Ref: truncation needs latent_avg');
    const S = avg.data.length;
    return g.op(host(w.shape, w.data.map((v, i) => psi * v + (1 - psi) * avg.data[i % S])), (gy) => [[w, scaled(gy, psi).data]]);
  }

  /** W+ [N, 2L, S] with w [N, S] in every row. */
  broadcastWplus(g: RefGraph, w: HostArray): HostArray {
    const [N, S] = w.shape;
    const w3 = host([N, 1, S], w.data);
    const out = broadcastForward(w3, [N, numLatents(this.config), S]);
    return g.op(out, (gy) => [[w, broadcastVjp(w3, gy)]]);
  }

  private styledConv(g: RefGraph, x: HostArray, w: HostArray, name: string, noise: HostArray, upsample: boolean): HostArray {
    const s = equalLinear(g, w, this.p(`${name}.conv.modulation.weight`), this.p(`${name}.conv.modulation.bias`), 1);
    const y = addNoise(g, modConv(g, x, this.p(`${name}.conv.weight`), s, true, upsample), noise, this.p(`${name}.noise.weight`));
    return lrelu(g, y, this.p(`${name}.activate.bias`), this.config.convClamp ?? Infinity);
  }

  private toRgb(g: RefGraph, x: HostArray, w: HostArray, name: string, skip: HostArray | null): HostArray {
    const s = equalLinear(g, w, this.p(`${name}.conv.modulation.weight`), this.p(`${name}.conv.modulation.bias`), 1);
    const y = modConv(g, x, this.p(`${name}.conv.weight`), s, false, false);
    const clamp = this.config.convClamp;
    const rgb = clamp === undefined ? addBroadcast(g, y, this.p(`${name}.bias`)) : clampedBias(g, y, this.p(`${name}.bias`), clamp);
    return skip ? addBroadcast(g, rgb, upsampleSkip(g, skip)) : rgb;
  }

  /** Blocks from..to, as StyleGAN2.blocks: the RGB skip starts afresh at `from`. */
  blocks(g: RefGraph, wplus: HostArray, noise: HostArray[] | undefined, from: number, to: number, layerIn?: HostArray): { features: HostArray; rgb: HostArray } {
    const c = this.config;
    if (wplus.shape.length !== 3 || wplus.shape[1] !== numLatents(c) || wplus.shape[2] !== c.styleDim) throw new RangeError(`StyleGAN2Ref: W+ must be [N, ${numLatents(c)}, ${c.styleDim}], got [${wplus.shape}]`);
    if (!(from >= 0 && to < numBlocks(c) && from <= to)) throw new RangeError(`StyleGAN2Ref: blocks ${from}..${to} outside 0..${numBlocks(c) - 1}`);
    const N = wplus.shape[0];
    const nz = (i: number) => noise?.[i] ?? this.p(`noises.noise_${i}`);
    let x: HostArray;
    let rgb: HostArray | null = null;
    let k = from;
    if (from === 0) {
      const cst = this.p('input.input');
      const xb = broadcastForward(cst, [N, ...cst.shape.slice(1)]);
      x = g.op(xb, (gy) => [[cst, broadcastVjp(cst, gy)]]);
      x = this.styledConv(g, x, row(g, wplus, 0), 'conv1', nz(0), false);
      rgb = this.toRgb(g, x, row(g, wplus, 1), 'to_rgb1', null);
      k = 1;
    } else {
      const r = blockResolution(from - 1);
      if (!layerIn || layerIn.shape.join() !== [N, c.channels[r], r, r].join()) throw new RangeError(`StyleGAN2Ref: layer_in must be [${[N, c.channels[r], r, r]}]`);
      x = layerIn;
    }
    for (; k <= to; k++) {
      x = this.styledConv(g, x, row(g, wplus, 2 * k - 1), `convs.${2 * k - 2}`, nz(2 * k - 1), true);
      x = this.styledConv(g, x, row(g, wplus, 2 * k), `convs.${2 * k - 1}`, nz(2 * k), false);
      rgb = this.toRgb(g, x, row(g, wplus, 2 * k + 1), `to_rgbs.${k - 1}`, rgb);
    }
    return { features: x, rgb: rgb! };
  }

  synthesis(g: RefGraph, wplus: HostArray, noise?: HostArray[]): HostArray {
    return this.blocks(g, wplus, noise, 0, numBlocks(this.config) - 1).rgb;
  }

  featuresAfter(g: RefGraph, wplus: HostArray, noise: HostArray[] | undefined, k: number): HostArray {
    return this.blocks(g, wplus, noise, 0, k).features;
  }

  /** The image from block k on, given the features after block k-1 (earlier RGB discarded). */
  fromLayer(g: RefGraph, wplus: HostArray, noise: HostArray[] | undefined, k: number, layerIn: HostArray): HostArray {
    return this.blocks(g, wplus, noise, k, numBlocks(this.config) - 1, layerIn).rgb;
  }

  generate(g: RefGraph, z: HostArray, psi: number, noise?: HostArray[]): HostArray {
    return this.synthesis(g, this.broadcastWplus(g, this.truncate(g, this.mapping(g, z), psi)), noise);
  }
}

/**
 * Seeded random parameters, float32-exact (so the GPU sees the same numbers), scaled like
 * rosinality's initialization where that matters: mapping weights N(0, 1) / lrMul, modulation
 * biases near 1 (the +1 init), and non-zero noise strengths and biases so that every parameter
 * has a gradient worth checking.
 */
export function randomRefParams(c: StyleGAN2Config, seed: number): RefParams {
  const rng = new HostRandom(seed);
  const params: RefParams = new Map();
  for (const [name, shape] of parameterShapes(c)) {
    const n = shape.reduce((a, b) => a * b, 1);
    let draw = () => rng.normal();
    if (/^style\.\d+\.weight$/.test(name)) draw = () => rng.normal() / c.lrMlp;
    else if (/^style\.\d+\.bias$/.test(name)) draw = () => (0.1 * rng.normal()) / c.lrMlp;
    else if (name.endsWith('modulation.bias')) draw = () => 1 + 0.2 * rng.normal();
    else if (name.endsWith('noise.weight') || name.endsWith('activate.bias') || /to_rgbs?\d*\.(\d+\.)?bias$/.test(name)) draw = () => 0.3 * rng.normal();
    params.set(name, host(shape, Float64Array.from({ length: n }, () => Math.fround(draw()))));
  }
  return params;
}

/** Seeded float32-exact N(0, 1) array. */
export function randomHost(rng: HostRandom, shape: number[], scale = 1): HostArray {
  const n = shape.reduce((a, b) => a * b, 1);
  return host(shape, Float64Array.from({ length: n }, () => Math.fround(scale * rng.normal())));
}

/** Per-sample noise maps [N, 1, r_i, r_i] for every noise index. */
export function randomNoise(rng: HostRandom, c: StyleGAN2Config, N: number): HostArray[] {
  return Array.from({ length: numNoises(c) }, (_, i) => randomHost(rng, [N, 1, noiseSide(i), noiseSide(i)]));
}
