// StyleGAN2 generator in rosinality's layout (docs/design.md, "StyleGAN2"), on the engine's ops, with the
// ILO/SGILO split at an intermediate block. Gradients come from the tape (every op has its own
// hand-written backward), so W+ rows, latents through MappingProxy, noise maps, the features
// entering a block and all parameters can ask for gradients.
//
// Dimensions: N batch, S style dim, L = log2(size) - 1 blocks, n_latent = 2L W+ rows,
// C[r] channels at resolution r. Block 0 works at 4x4, block k at 4 * 2^k.
//   W+           [N, 2L, S]
//   noise i      [N, 1, r_i, r_i], r_i = 2^((i + 5) // 2), i < 2L - 1
//   features k   [N, C[4 * 2^k], 4 * 2^k, 4 * 2^k]  (the activation after block k)
//   image        [N, 3, size, size]
//
// Split semantics (both reference codebases): generating from block k with a given `layer_in`
// starts the RGB skip afresh, so the RGB that blocks < k would have contributed is discarded.

import { Tensor, empty, tensor } from '../engine/tensor.ts';
import { add, affine, mul, leakyRelu, square, rsqrt } from '../engine/ops/elementwise.ts';
import { matmul } from '../engine/ops/matmul.ts';
import { mean, broadcastTo } from '../engine/ops/reduce.ts';
import { reshape, slice } from '../engine/ops/layout.ts';
import { modulatedConv2d } from '../engine/ops/modulated_conv.ts';
import { upsample2d } from '../engine/ops/upfirdn2d.ts';
import { biasAct } from '../engine/ops/bias_act.ts';
import { shapeString } from '../engine/shape.ts';
import type { HostTensor } from '../engine/host_tensor.ts';

export interface StyleGAN2Config {
  size: number;
  styleDim: number;
  nMlp: number;
  lrMlp: number;
  /** Channels per resolution, e.g. {4: 512, 8: 512, ..., 1024: 32}. */
  channels: Record<number, number>;
  /**
   * NVlabs' conv_clamp: every conv layer's activation and every ToRGB output clamped to
   * [-convClamp, convClamp] (the skip sum is not). Absent: no clamp (rosinality, SGILO).
   */
  convClamp?: number;
}

/** Weights by rosinality's state-dict name, float32 (loaders widen other dtypes). */
export type StateDict = Map<string, HostTensor<Float32Array>>;

/** config-f channel table (channel multiplier 2), for benchmarks and tests with random weights. */
export function configF(size = 1024, styleDim = 512): StyleGAN2Config {
  const table: Record<number, number> = { 4: 512, 8: 512, 16: 512, 32: 512, 64: 512, 128: 256, 256: 128, 512: 64, 1024: 32 };
  const channels: Record<number, number> = {};
  for (let r = 4; r <= size; r *= 2) channels[r] = table[r];
  return { size, styleDim, nMlp: 8, lrMlp: 0.01, channels };
}

export function numBlocks(c: StyleGAN2Config): number {
  return Math.log2(c.size) - 1;
}
export function numLatents(c: StyleGAN2Config): number {
  return 2 * numBlocks(c);
}
export function numNoises(c: StyleGAN2Config): number {
  return 2 * numBlocks(c) - 1;
}
/** Side of noise map i. */
export function noiseSide(i: number): number {
  return 2 ** Math.floor((i + 5) / 2);
}
/** Resolution at the output of block k. */
export function blockResolution(k: number): number {
  return 4 * 2 ** k;
}

/** The state-dict names and shapes of a rosinality generator of this config (g_ema, no prefix). */
export function parameterShapes(c: StyleGAN2Config): Map<string, number[]> {
  const S = c.styleDim;
  const L = numBlocks(c);
  const m = new Map<string, number[]>();
  for (let i = 1; i <= c.nMlp; i++) {
    m.set(`style.${i}.weight`, [S, S]);
    m.set(`style.${i}.bias`, [S]);
  }
  const c4 = c.channels[4];
  m.set('input.input', [1, c4, 4, 4]);
  const styled = (name: string, cin: number, cout: number, k: number) => {
    m.set(`${name}.conv.weight`, [1, cout, cin, k, k]);
    m.set(`${name}.conv.modulation.weight`, [cin, S]);
    m.set(`${name}.conv.modulation.bias`, [cin]);
  };
  styled('conv1', c4, c4, 3);
  m.set('conv1.noise.weight', [1]);
  m.set('conv1.activate.bias', [c4]);
  styled('to_rgb1', c4, 3, 1);
  m.set('to_rgb1.bias', [1, 3, 1, 1]);
  for (let k = 1; k < L; k++) {
    const cin = c.channels[blockResolution(k - 1)];
    const cout = c.channels[blockResolution(k)];
    for (const [j, ci] of [[2 * k - 2, cin], [2 * k - 1, cout]] as const) {
      styled(`convs.${j}`, ci, cout, 3);
      m.set(`convs.${j}.noise.weight`, [1]);
      m.set(`convs.${j}.activate.bias`, [cout]);
    }
    styled(`to_rgbs.${k - 1}`, cout, 3, 1);
    m.set(`to_rgbs.${k - 1}.bias`, [1, 3, 1, 1]);
  }
  for (let i = 0; i < numNoises(c); i++) m.set(`noises.noise_${i}`, [1, 1, noiseSide(i), noiseSide(i)]);
  return m;
}

/** One block's tensors, as `blocks` records them for a trace. */
export interface BlockRecord {
  block: number;
  /** The W+ rows the block reads, one [N, S] slice per use, with the row index. */
  rows: [number, Tensor][];
  /** With `splitInputs`, block k >= 1's input: a copy of the features after block k-1 that only block k reads. */
  input?: Tensor;
  /** The features after the block. */
  features: Tensor;
  /** Its ToRGB output, before the upsampled skip is added. */
  toRgb: Tensor;
  /** The RGB accumulated from the first block run up to this one. */
  rgb: Tensor;
}

/**
 * Per-block tensors of one pass, so that what a split at any block would compute (its input's
 * gradient, its W+ rows' gradients, its image) can be had from a single forward and backward.
 */
export interface BlockTrace {
  /** Gives each block k >= 1 a copy of its input that only it reads (one more copy of each block's input is kept for the backward). */
  splitInputs?: boolean;
  records: BlockRecord[];
}

export interface SynthesisInputs {
  /** W+ rows [N, 2L, S]. */
  wplus: Tensor;
  /** One map per noise index [N or 1, 1, r, r]; default: the checkpoint's constant noise buffers. */
  noise?: Tensor[];
}

/**
 * The generator's parameters as GPU tensors (marked keep), plus the forward passes. Create with
 * `StyleGAN2.fromStateDict` (a loaded checkpoint) or `StyleGAN2.random` (benchmarks).
 */
export class StyleGAN2 {
  private constructor(
    readonly config: StyleGAN2Config,
    readonly params: Map<string, Tensor>,
    /** Mean of mapping(z), `latent_avg` in the checkpoint; null if the checkpoint has none. */
    readonly latentAvg: Tensor | null,
  ) {}

  static fromStateDict(config: StyleGAN2Config, sd: StateDict, latentAvg?: HostTensor<Float32Array> | null): StyleGAN2 {
    const params = new Map<string, Tensor>();
    for (const [name, shape] of parameterShapes(config)) {
      const t = sd.get(name);
      if (!t) throw new Error(`StyleGAN2 checkpoint: missing tensor "${name}" (expected ${shapeString(shape)})`);
      if (t.shape.join() !== shape.join()) throw new Error(`StyleGAN2 checkpoint: "${name}" has shape ${shapeString(t.shape)}, expected ${shapeString(shape)}`);
      params.set(name, tensor(t.data, shape).keep());
    }
    const avg = latentAvg ? tensor(latentAvg.data, [config.styleDim]).keep() : null;
    return new StyleGAN2(config, params, avg);
  }

  /** Parameters of the right shapes with unspecified contents (memory planning: nets/stylegan2_plan.ts). */
  static withShapes(config: StyleGAN2Config): StyleGAN2 {
    const params = new Map<string, Tensor>();
    for (const [name, shape] of parameterShapes(config)) params.set(name, empty(shape).keep());
    return new StyleGAN2(config, params, null);
  }

  p(name: string): Tensor {
    const t = this.params.get(name);
    if (!t) throw new Error(`StyleGAN2: no parameter "${name}"`);
    return t;
  }

  /** Marks every parameter as requiring grad (or not). */
  requireGrad(on = true): void {
    for (const t of this.params.values()) t.requireGrad(on);
  }

  dispose(): void {
    for (const t of this.params.values()) t.dispose();
    this.latentAvg?.dispose();
  }

  /** Equalized linear layer: x @ (W * lrMul / sqrt(in))^T + b * lrMul. x [N, in], W [out, in]. */
  private equalLinear(x: Tensor, name: string, lrMul: number): Tensor {
    const w = this.p(`${name}.weight`);
    const scale = lrMul / Math.sqrt(w.shape[1]);
    // (x W^T * scale / lrMul + b) * lrMul in one bias_act (linear): at lrMul 1 (the styles) the same
    // bits as the separate affine, bias scale and add.
    return biasAct(matmul(x, w, { transposeB: true }), this.p(`${name}.bias`), { act: 'linear', scale: scale / lrMul, gain: lrMul });
  }

  /** Mapping network: z [N, S] -> w [N, S]. PixelNorm, then nMlp equalized linear + lrelu(0.2)*sqrt2. */
  mapping(z: Tensor): Tensor {
    let h = pixelNorm(z);
    for (let i = 1; i <= this.config.nMlp; i++) {
      h = leakyRelu(this.equalLinear(h, `style.${i}`, this.config.lrMlp), 0.2, Math.SQRT2);
    }
    return h;
  }

  /** w_avg + psi * (w - w_avg); `center` replaces latent_avg as w_avg. */
  truncate(w: Tensor, psi: number, center?: Tensor): Tensor {
    if (psi === 1) return w;
    const avg = center ?? this.latentAvg;
    if (!avg) throw new Error('truncation needs latent_avg, which this checkpoint lacks');
    return add(affine(w, psi), affine(avg, 1 - psi));
  }

  /** W+ [N, 2L, S] with the same w in every row. */
  broadcastWplus(w: Tensor): Tensor {
    const [N, S] = w.shape;
    return broadcastTo(reshape(w, [N, 1, S]), [N, numLatents(this.config), S]);
  }

  /** Row i of W+ as [N, S]. */
  private row(wplus: Tensor, i: number): Tensor {
    const [N, , S] = wplus.shape;
    return reshape(slice(wplus, [0, i, 0], [N, 1, S]), [N, S]);
  }

  private styles(w: Tensor, name: string): Tensor {
    return this.equalLinear(w, `${name}.conv.modulation`, 1);
  }

  /** Modulated conv, noise injection, bias + lrelu(0.2) * sqrt(2). */
  private styledConv(x: Tensor, w: Tensor, name: string, noise: Tensor, upsample: boolean): Tensor {
    const weight = this.convWeight(name);
    const y = modulatedConv2d(x, weight, this.styles(w, name), { demodulate: true, upsample });
    // Noise injection fused into the bias + activation: y + noise * w, then the bias.
    const injected = { map: noise, weight: this.p(`${name}.noise.weight`) };
    return biasAct(y, this.p(`${name}.activate.bias`), { act: 'lrelu', clamp: this.config.convClamp, noise: injected });
  }

  /** The stored weight [1, out, in, k, k] as [out, in, k, k] (a copy, recorded on the tape). */
  private convWeight(name: string): Tensor {
    const w = this.p(`${name}.conv.weight`);
    return reshape(w, w.shape.slice(1));
  }

  /** ToRGB: 1x1 modulated conv without demodulation, plus bias, plus the upsampled `skip` when given (one bias_act). */
  private toRgb(x: Tensor, w: Tensor, name: string, skip: Tensor | null): Tensor {
    const y = modulatedConv2d(x, this.convWeight(name), this.styles(w, name), { demodulate: false });
    const residual = skip ? upsample2d(skip) : undefined;
    return biasAct(y, this.p(`${name}.bias`), { act: 'linear', clamp: this.config.convClamp, residual });
  }

  private noiseFor(i: number, given?: Tensor[]): Tensor {
    if (given) {
      const t = given[i];
      if (!t) throw new Error(`synthesis: noise map ${i} missing (${given.length} given, ${numNoises(this.config)} needed)`);
      return t;
    }
    return this.p(`noises.noise_${i}`);
  }

  /**
   * Runs blocks `from`..`to` (inclusive). Block 0 starts from the constant input; a later start
   * needs `layerIn`, the features after block from-1. Returns the features after block `to` and
   * the RGB accumulated from block `from` on. With `trace`, also records each block's tensors.
   */
  blocks(inputs: SynthesisInputs, from: number, to: number, layerIn?: Tensor, trace?: BlockTrace): { features: Tensor; rgb: Tensor } {
    const L = numBlocks(this.config);
    const { wplus, noise } = inputs;
    if (wplus.rank !== 3 || wplus.shape[1] !== numLatents(this.config) || wplus.shape[2] !== this.config.styleDim) {
      throw new RangeError(`synthesis: W+ must be [N, ${numLatents(this.config)}, ${this.config.styleDim}], got ${shapeString(wplus.shape)}`);
    }
    if (!(from >= 0 && to < L && from <= to)) throw new RangeError(`synthesis: blocks ${from}..${to} outside 0..${L - 1}`);
    const N = wplus.shape[0];
    let x: Tensor;
    let rgb: Tensor | null = null;
    let k = from;
    // Each use of a W+ row is a slice of its own, so a trace can hand out per-use rows.
    const rows: [number, Tensor][] = [];
    const row = (i: number) => {
      const r = this.row(wplus, i);
      rows.push([i, r]);
      return r;
    };
    const done = (input: Tensor | undefined, w: Tensor, name: string) => {
      if (!trace) {
        rgb = this.toRgb(x, w, name, rgb);
        return;
      }
      // A trace hands out ToRGB's own output, so the skip is added separately.
      const t = this.toRgb(x, w, name, null);
      rgb = rgb ? add(t, upsample2d(rgb)) : t;
      trace.records.push({ block: k, rows: rows.splice(0), input, features: x, toRgb: t, rgb });
    };
    if (from === 0) {
      const c = this.p('input.input');
      x = broadcastTo(c, [N, ...c.shape.slice(1)]);
      x = this.styledConv(x, row(0), 'conv1', this.noiseFor(0, noise), false);
      done(undefined, row(1), 'to_rgb1');
      k = 1;
    } else {
      if (!layerIn) throw new Error(`synthesis: starting at block ${from} needs the features after block ${from - 1}`);
      const r = blockResolution(from - 1);
      const want = [N, this.config.channels[r], r, r];
      if (layerIn.shape.join() !== want.join()) throw new RangeError(`synthesis: layer_in must be ${shapeString(want)}, got ${shapeString(layerIn.shape)}`);
      x = layerIn;
    }
    for (; k <= to; k++) {
      // The copy is read by this block alone, so its gradient is that of a split at block k.
      const input = trace?.splitInputs ? reshape(x, x.shape) : x;
      x = this.styledConv(input, row(2 * k - 1), `convs.${2 * k - 2}`, this.noiseFor(2 * k - 1, noise), true);
      x = this.styledConv(x, row(2 * k), `convs.${2 * k - 1}`, this.noiseFor(2 * k, noise), false);
      done(trace?.splitInputs ? input : undefined, row(2 * k + 1), `to_rgbs.${k - 1}`);
    }
    return { features: x, rgb: rgb! };
  }

  /** The image from W+ (all blocks). */
  synthesis(inputs: SynthesisInputs, trace?: BlockTrace): Tensor {
    return this.blocks(inputs, 0, numBlocks(this.config) - 1, undefined, trace).rgb;
  }

  /** Features after block k (the input of block k+1), from W+. */
  featuresAfter(inputs: SynthesisInputs, k: number): Tensor {
    return this.blocks(inputs, 0, k).features;
  }

  /** The image generated from block k on, given the features after block k-1 (RGB of earlier blocks discarded). */
  fromLayer(inputs: SynthesisInputs, k: number, layerIn: Tensor): Tensor {
    return this.blocks(inputs, k, numBlocks(this.config) - 1, layerIn).rgb;
  }

  /** z [N, S] -> image, with optional truncation. */
  generate(z: Tensor, options: { psi?: number; noise?: Tensor[]; center?: Tensor } = {}): Tensor {
    const w = this.truncate(this.mapping(z), options.psi ?? 1, options.center);
    return this.synthesis({ wplus: this.broadcastWplus(w), noise: options.noise });
  }
}

/** x * rsqrt(mean(x^2 over the last axis) + 1e-8). */
export function pixelNorm(x: Tensor): Tensor {
  const ms = mean(square(x), [x.rank - 1], { keepdims: true });
  return mul(x, rsqrt(affine(ms, 1, 1e-8)));
}
