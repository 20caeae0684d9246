// upfirdn2d (upsample, FIR filter, downsample) with NVlabs' semantics, its input gradient, and the
// StyleGAN2 helpers built on it: makeKernel, blur, upsample2d, downsample2d.
// Kernels: shaders/upfirdn2d.wgsl; reference: engine/reference/upfirdn2d.ts (step-by-step).
//
// Dimensions: x [N, C, H, W] (NCHW), kernel f [kH, kW], y [N, C, OH, OW];
// per axis (W: ux, dx, px0, px1, kW; H: uy, dy, py0, py1, kH):
//   out = (in * up + p0 + p1 - k + down) // down
// Definition: insert up-1 zeros after each sample, pad by (p0, p1) (negative values crop), convolve
// with f (a TRUE convolution: f is flipped), keep samples 0, down, 2*down, ...
//
// Gradient for x. Per axis the forward is
//   y[o] = sum_{i, t : i*u + p0 = o*d + t, 0 <= t < k} x[i] * f[k-1-t]
// (sample i sits at upsampled position i*u, i.e. padded position i*u + p0; output o's window covers
// padded positions o*d + t). Its adjoint is
//   gx[i] = sum_{o, t : o*d + (k-1-p0) = i*u + t', t' = k-1-t} gy[o] * f[t']
// which is the same formula for an upfirdn2d of gy with up' = d, down' = u, the flipped kernel
// g[j] = f[k-1-j] (g[k-1-t'] = f[t']) and p0' = k - 1 - p0. p1' is whatever makes the output have
// exactly `in` samples: p1' = in*u - out*d + p0 - u + 1 (then (out*d + p0' + p1' - k + u) // u = in
// with no remainder; it matches NVlabs' _upfirdn2d_cuda backward). p1' never enters the kernel:
// only p0' and the output size do. The backward kernel reads f unflipped instead of flipping it
// into a new buffer.
//
// The kernel f is a constant: no gradient flows to it (a kernel tensor that requires grad is an
// error, not a silent zero). Host kernels are uploaded once and cached per device by content, so
// repeated calls do not interrupt the command encoder with a buffer write.

import { backend, type Backend } from '../backend.ts';
import { defineKernel, grid1d } from '../kernel.ts';
import { record } from '../tape.ts';
import { Tensor, empty, tensor } from '../tensor.ts';
import { shapeString } from '../shape.ts';
import type { Upfirdn2dConfig } from '../reference/upfirdn2d.ts';

const WG = 64; // workgroup size in upfirdn2d.wgsl
const PER_INVOCATION = 4; // outputs per invocation (R in upfirdn2d.wgsl)
const bindings = { src: 'read', fir: 'read', dst: 'read_write', params: 'uniform' } as const;
const K = {
  forward: defineKernel({ shader: 'upfirdn2d', entry: 'upfirdn2d_forward', bindings }),
  backward: defineKernel({ shader: 'upfirdn2d', entry: 'upfirdn2d_backward', bindings }),
};

/** A FIR kernel on the host: row-major [kH, kW] values. */
export interface HostKernel {
  shape: readonly number[];
  data: ArrayLike<number>;
}

/** A [kH, kW] kernel: a tensor, a host array, or nested rows. */
export type FirKernel = Tensor | HostKernel | readonly (readonly number[])[];

export interface Upfirdn2dOptions {
  /** Upsampling factor, for both axes or [x, y]. Default 1. */
  up?: number | readonly [number, number];
  /** Downsampling factor, for both axes or [x, y]. Default 1. */
  down?: number | readonly [number, number];
  /** [px0, px1, py0, py1] (NVlabs order: along W, then along H), or one value for all four; negative crops. Default 0. */
  pad?: number | readonly number[];
}

function factorPair(v: number | readonly [number, number] | undefined, what: string): [number, number] {
  const pair = v === undefined ? [1, 1] : typeof v === 'number' ? [v, v] : [...v];
  if (pair.length !== 2 || !pair.every((f) => Number.isInteger(f) && f >= 1)) {
    throw new RangeError(`upfirdn2d: ${what} must be a positive integer or a pair [x, y] of them, got ${JSON.stringify(v)}`);
  }
  return pair as [number, number];
}

function padQuad(v: number | readonly number[] | undefined): [number, number, number, number] {
  const quad = v === undefined ? [0, 0, 0, 0] : typeof v === 'number' ? [v, v, v, v] : [...v];
  if (quad.length !== 4 || !quad.every((p) => Number.isInteger(p))) {
    throw new RangeError(`upfirdn2d: pad must be an integer or [px0, px1, py0, py1] (4 integers), got ${JSON.stringify(v)}`);
  }
  return quad as [number, number, number, number];
}

/** Normalizes the options (the same object the reference takes). */
export function upfirdn2dConfig(options: Upfirdn2dOptions = {}): Upfirdn2dConfig {
  const [upX, upY] = factorPair(options.up, 'up');
  const [downX, downY] = factorPair(options.down, 'down');
  return { upX, upY, downX, downY, pad: padQuad(options.pad) };
}

/** Output [OH, OW] of an [H, W] input, or an error naming the axis that comes out empty. */
export function upfirdn2dOutputSize(H: number, W: number, kH: number, kW: number, c: Upfirdn2dConfig): [number, number] {
  const axis = (name: string, n: number, u: number, p0: number, p1: number, k: number, d: number) => {
    const out = Math.floor((n * u + p0 + p1 - k + d) / d);
    if (out <= 0) {
      throw new RangeError(
        `upfirdn2d: output ${name} would be ${out} <= 0: (${name} ${n} * up ${u} + pads ${p0} + ${p1} - kernel ${k} + down ${d}) // ${d}; pad more or use a smaller kernel`,
      );
    }
    return out;
  };
  return [axis('height', H, c.upY, c.pad[2], c.pad[3], kH, c.downY), axis('width', W, c.upX, c.pad[0], c.pad[1], kW, c.downX)];
}

// ---- kernel tensors -----------------------------------------------------------------------

/** Per backend: a new device (or a planning backend) starts empty; a dead one's cache goes with it. */
const kernelCaches = new WeakMap<Backend, Map<string, Tensor>>();
const MAX_CACHED_KERNELS = 64;

function hostKernel(k: Exclude<FirKernel, Tensor>): { shape: number[]; data: Float32Array } {
  if (Array.isArray(k)) {
    const rows = k as readonly (readonly number[])[];
    const w = rows[0]?.length ?? 0;
    if (rows.length === 0 || w === 0 || !rows.every((r) => Array.isArray(r) && r.length === w)) {
      throw new RangeError(`upfirdn2d: kernel rows must be a non-empty 2-D array of equal-length rows (got row lengths [${rows.map((r) => (Array.isArray(r) ? r.length : typeof r))}]); for a 1-D kernel use makeKernel()`);
    }
    return { shape: [rows.length, w], data: Float32Array.from(rows.flat()) };
  }
  const h = k as HostKernel;
  if (!h.shape || h.shape.length !== 2 || !h.shape.every((d) => Number.isInteger(d) && d >= 1)) {
    throw new RangeError(`upfirdn2d: kernel must have shape [kH, kW], got ${h.shape ? shapeString(h.shape) : 'no shape'}`);
  }
  if (h.data.length !== h.shape[0] * h.shape[1]) throw new RangeError(`upfirdn2d: kernel ${shapeString(h.shape)} needs ${h.shape[0] * h.shape[1]} values, got ${h.data.length}`);
  return { shape: [...h.shape], data: Float32Array.from(h.data) };
}

/** The kernel as a [kH, kW] tensor: the user's own, or a cached upload (never the caller's to dispose). */
function kernelTensor(k: FirKernel): Tensor {
  if (k instanceof Tensor) {
    if (k.rank !== 2 || k.dtype !== 'f32') throw new RangeError(`upfirdn2d: kernel must be an f32 tensor [kH, kW], got ${k.dtype}${shapeString(k.shape)}`);
    if (k.requiresGrad) throw new Error('upfirdn2d: the FIR kernel gets no gradient; pass a constant kernel (a tensor that does not require grad)');
    return k;
  }
  const h = hostKernel(k);
  if (!h.data.every((v) => Number.isFinite(v))) throw new RangeError('upfirdn2d: kernel has a non-finite value');
  const eng = backend();
  let kernelCache = kernelCaches.get(eng);
  if (!kernelCache) kernelCaches.set(eng, (kernelCache = new Map()));
  const key = `${h.shape.join('x')}:${Array.from(h.data).join(',')}`;
  let t = kernelCache.get(key);
  if (!t) {
    if (kernelCache.size >= MAX_CACHED_KERNELS) {
      const [oldKey, old] = kernelCache.entries().next().value as [string, Tensor];
      kernelCache.delete(oldKey);
      old.dispose(); // a pending backward pass still holds its own reference
    }
    t = tensor(h.data, h.shape).keep();
    kernelCache.set(key, t);
  }
  return t;
}

// ---- the op -------------------------------------------------------------------------------

const gcd = (a: number, b: number): number => (b === 0 ? a : gcd(b, a % b));

function dispatch(kernel: typeof K.forward, src: Tensor, fir: Tensor, outShape: number[], up: [number, number], down: [number, number], pad0: [number, number]): Tensor {
  const dst = empty(outShape);
  const [N, C, inH, inW] = src.shape;
  const [kH, kW] = fir.shape;
  const [, , outH, outW] = outShape;
  // Each invocation writes R outputs blocksX apart along x; blocksX is a multiple of the period S
  // of the tap phase, so the R outputs share their weights (shaders/upfirdn2d.wgsl).
  const spacing = up[0] / gcd(up[0], down[0]);
  const blocksX = Math.ceil(outW / (PER_INVOCATION * spacing)) * spacing;
  // The kernel's ceil_div works in f32: positions must stay well inside its exact integer range.
  const extent = Math.max(inW * up[0], inH * up[1], outW * down[0], outH * down[1]) + Math.max(kW, kH) + Math.abs(pad0[0]) + Math.abs(pad0[1]);
  if (extent >= 2 ** 23) throw new RangeError(`upfirdn2d: image extent ${extent} (upsampled size plus kernel and pads) is too large (limit 2^23 per axis)`);
  const params = {
    in_w: inW,
    in_h: inH,
    out_w: outW,
    out_h: outH,
    up_x: up[0],
    up_y: up[1],
    down_x: down[0],
    down_y: down[1],
    k_w: kW,
    k_h: kH,
    pad_x0: pad0[0],
    pad_y0: pad0[1],
    taps_x: Math.ceil(kW / up[0]),
    taps_y: Math.ceil(kH / up[1]),
    out_step: blocksX,
    blocks_x: blocksX,
  };
  const n = N * C * outH * blocksX;
  kernel.dispatch({ src, fir, dst, params: { ...params, n } }, grid1d(Math.ceil(n / WG)));
  return dst;
}

/** upfirdn2d(x, f) with NVlabs semantics (see the file comment). */
export function upfirdn2d(x: Tensor, kernel: FirKernel, options: Upfirdn2dOptions = {}): Tensor {
  if (x.dtype !== 'f32' || x.rank !== 4) throw new RangeError(`upfirdn2d: x must be an f32 tensor [N, C, H, W], got ${x.dtype}${shapeString(x.shape)}`);
  const c = upfirdn2dConfig(options);
  const fir = kernelTensor(kernel);
  const [N, C, H, W] = x.shape;
  const [kH, kW] = fir.shape;
  const [OH, OW] = upfirdn2dOutputSize(H, W, kH, kW, c);
  const [px0, , py0] = c.pad;
  const y = dispatch(K.forward, x, fir, [N, C, OH, OW], [c.upX, c.upY], [c.downX, c.downY], [px0, py0]);
  record('upfirdn2d', [x], y, [fir], (gy) => [
    // The adjoint: an upfirdn2d of gy with the flipped kernel, up and down swapped, p0' = k-1-p0.
    dispatch(K.backward, gy, fir, [N, C, H, W], [c.downX, c.downY], [c.upX, c.upY], [kW - 1 - px0, kH - 1 - py0]),
  ]);
  return y;
}

// ---- StyleGAN2 helpers --------------------------------------------------------------------

/**
 * StyleGAN2's kernel normalization (rosinality `make_kernel`, NVlabs `setup_filter`): a 1-D kernel
 * becomes its outer product with itself; the result is divided by its sum, then multiplied by
 * `scale` (factor^2 when it follows a zero-inserting upsampling, so the image keeps its mean).
 */
export function makeKernel(k: readonly number[] | readonly (readonly number[])[], scale = 1): { shape: [number, number]; data: Float64Array } {
  if (k.length === 0) throw new RangeError('makeKernel: empty kernel');
  const rows: number[][] = typeof k[0] === 'number' ? (k as number[]).map((a) => (k as number[]).map((b) => a * b)) : (k as number[][]).map((r) => [...r]);
  if (!rows.every((r) => r.length === rows[0].length && r.length > 0)) throw new RangeError('makeKernel: rows of unequal length');
  const sum = rows.flat().reduce((s, v) => s + v, 0);
  if (!(Math.abs(sum) > 0) || !Number.isFinite(sum)) throw new RangeError(`makeKernel: the kernel sums to ${sum}, cannot normalize`);
  return { shape: [rows.length, rows[0].length], data: Float64Array.from(rows.flat(), (v) => (v / sum) * scale) };
}

export interface ResampleOptions {
  /** 1-D (separable, outer product) or 2-D taps before normalization. Default [1, 3, 3, 1]. */
  kernel?: readonly number[] | readonly (readonly number[])[];
  /** Default 2. */
  factor?: number;
}

const BLUR_TAPS = [1, 3, 3, 1];

/**
 * rosinality `Blur`: the normalized kernel (times upsampleFactor^2 after a transposed conv),
 * padding (p0, p1) on both axes. StyleGAN2's upsampling conv uses pad (1, 1), factor 2.
 */
export function blur(x: Tensor, pad: readonly [number, number], options: { kernel?: ResampleOptions['kernel']; upsampleFactor?: number } = {}): Tensor {
  const f = options.upsampleFactor ?? 1;
  return upfirdn2d(x, makeKernel(options.kernel ?? BLUR_TAPS, f * f), { pad: [pad[0], pad[1], pad[0], pad[1]] });
}

/** Pads (p0, p1) per axis for a k-tap kernel and resampling `factor` (rosinality Upsample / Downsample). */
function resamplePads(k: number, factor: number, up: boolean): [number, number] {
  const p = k - factor;
  return up ? [Math.floor((p + 1) / 2) + factor - 1, Math.floor(p / 2)] : [Math.floor((p + 1) / 2), Math.floor(p / 2)];
}

function resample(x: Tensor, options: ResampleOptions, up: boolean): Tensor {
  const factor = options.factor ?? 2;
  if (!Number.isInteger(factor) || factor < 1) throw new RangeError(`${up ? 'upsample2d' : 'downsample2d'}: factor must be a positive integer, got ${factor}`);
  const k = makeKernel(options.kernel ?? BLUR_TAPS, up ? factor * factor : 1);
  const [py0, py1] = resamplePads(k.shape[0], factor, up);
  const [px0, px1] = resamplePads(k.shape[1], factor, up);
  return upfirdn2d(x, k, up ? { up: factor, pad: [px0, px1, py0, py1] } : { down: factor, pad: [px0, px1, py0, py1] });
}

/** rosinality `Upsample` (ToRGB skip): up = factor, kernel * factor^2; [1,3,3,1], 2 gives pad (2, 1). */
export function upsample2d(x: Tensor, options: ResampleOptions = {}): Tensor {
  return resample(x, options, true);
}

/** rosinality `Downsample`: down = factor; [1,3,3,1], 2 gives pad (1, 1). */
export function downsample2d(x: Tensor, options: ResampleOptions = {}): Tensor {
  return resample(x, options, false);
}
