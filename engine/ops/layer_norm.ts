// Layer normalization over the last axis with a per-feature scale and shift (PyTorch semantics:
// biased variance, eps inside the square root). Kernels: shaders/layer_norm.wgsl; reference:
// engine/reference/layer_norm.ts.
//
// Dimensions: x [..., D], weight [D], bias [D] -> y [..., D]; rows = size / D.
// Optional FiLM modulation (the score ViT's 'vector' time mode): mod [Bm, 2D] with rows = Bm * T,
//   y = LN(x) (1 + mod[b, :D]) + mod[b, D:] for the T rows of item b,
// in the same kernels (one dispatch where slicing mod and broadcasting a multiply and an add took
// seven, and their backward eight), its gradient by one more kernel.
// The forward also writes mean and rstd [rows], saved for the backward so it does not recompute
// the row statistics; the backward computes gx and, only when asked, the weight and bias gradients
// (one workgroup per feature, summing over the rows).
// Two implementations of the row kernels (forward and gx), chosen by chooseLayerNormImpl:
//   'workgroup'  one 64-wide workgroup per row, tree reductions (wide rows);
//   'serial'     one invocation per row, serial loops (D <= SERIAL_MAX_D): for the ViT score
//                model's rows of 32 features the workgroup kernels leave half their lanes idle and
//                pay six barriers per reduction, which on lavapipe costs an order of magnitude
//                (bench/results/2026-11-notes-from-code.md, "LayerNorm: serial rows for narrow
//                rows"). Wide rows keep the workgroup kernels on a hardware GPU (coalesced loads,
//                where one invocation walking a long row would be slow); a CPU adapter runs a
//                workgroup as one thread's SIMD lanes, where the serial kernels stay ahead up to
//                SERIAL_MAX_D_SOFTWARE (the score model's D = 128 rows: about 10x, forward and gx).

import { backend } from '../backend.ts';
import { defineKernel, grid1d } from '../kernel.ts';
import { record } from '../tape.ts';
import { Tensor, empty } from '../tensor.ts';
import { shapeString } from '../shape.ts';

const forwardBindings = { x: 'read', weight: 'read', bias: 'read', y: 'read_write', mean: 'read_write', rstd: 'read_write', params: 'uniform', modulation: 'read' } as const;
const backwardBindings = { x: 'read', weight: 'read', mean_saved: 'read', rstd_saved: 'read', gy: 'read', gx: 'read_write', params: 'uniform', modulation: 'read' } as const;
const layerNormKernel = (entry: string, bindings: Record<string, 'read' | 'read_write' | 'uniform'>) => defineKernel({ shader: 'layer_norm', entry, bindings });
const K = {
  forward: layerNormKernel('layer_norm_forward', forwardBindings),
  backward: layerNormKernel('layer_norm_backward', backwardBindings),
  backwardParams: layerNormKernel('layer_norm_backward_params', { x: 'read', mean_saved: 'read', rstd_saved: 'read', gy: 'read', gw: 'read_write', gb: 'read_write', params: 'uniform', modulation: 'read' }),
  backwardMod: layerNormKernel('layer_norm_backward_mod', { x: 'read', weight: 'read', bias: 'read', mean_saved: 'read', rstd_saved: 'read', gy: 'read', gmod: 'read_write', params: 'uniform' }),
  // One row per invocation (short rows): see chooseLayerNormImpl.
  forwardRows: layerNormKernel('layer_norm_forward_rows', forwardBindings),
  backwardRows: layerNormKernel('layer_norm_backward_rows', backwardBindings),
};
const WG = 64; // workgroup size of the row kernels (rows per workgroup in the serial ones)

export type LayerNormImpl = 'workgroup' | 'serial';
/** Widest row the serial kernels take by default on a hardware GPU. */
export const SERIAL_MAX_D = 64;
/** Widest row the serial kernels take by default on a CPU adapter (lavapipe, SwiftShader). */
export const SERIAL_MAX_D_SOFTWARE = 256;

/** Widest row the serial kernels take by default on the current device. */
export function serialMaxD(): number {
  return backend().gpu.adapter.isSoftware ? SERIAL_MAX_D_SOFTWARE : SERIAL_MAX_D;
}

export function chooseLayerNormImpl(d: number): LayerNormImpl {
  return d <= serialMaxD() ? 'serial' : 'workgroup';
}

export interface LayerNormOptions {
  /** Default: chooseLayerNormImpl(D). Both give the same result (tests and gradcheck force each). */
  impl?: LayerNormImpl;
  /** FiLM modulation [Bm, 2D] (scale - 1, then shift), Bm dividing the rows (see the header). */
  modulation?: Tensor;
}

export function layerNorm(x: Tensor, weight: Tensor, bias: Tensor, eps = 1e-5, options: LayerNormOptions = {}): Tensor {
  for (const [t, n] of [[x, 'x'], [weight, 'weight'], [bias, 'bias']] as const) {
    if (t.dtype !== 'f32') throw new TypeError(`layer_norm: ${n} must be f32, got ${t.dtype}${shapeString(t.shape)}`);
  }
  if (x.rank < 1) throw new RangeError('layer_norm: x needs rank >= 1 (it normalizes the last axis), got a scalar');
  const d = x.shape[x.rank - 1];
  for (const [t, n] of [[weight, 'weight'], [bias, 'bias']] as const) {
    if (t.rank !== 1 || t.shape[0] !== d) {
      throw new RangeError(`layer_norm: ${n} has shape ${shapeString(t.shape)}, expected [${d}] (the last dimension of x ${shapeString(x.shape)})`);
    }
  }
  if (!(typeof eps === 'number' && eps >= 0 && Number.isFinite(eps))) throw new RangeError(`layer_norm: eps must be a finite number >= 0, got ${eps}`);
  const impl = options.impl ?? chooseLayerNormImpl(d);
  if (impl !== 'serial' && impl !== 'workgroup') throw new RangeError(`layer_norm: unknown impl "${impl}" (serial, workgroup)`);
  const rows = x.size / d;
  const m = options.modulation;
  if (m !== undefined) {
    if (!(m instanceof Tensor) || m.dtype !== 'f32' || m.rank !== 2 || m.shape[1] !== 2 * d || rows % m.shape[0] !== 0) {
      throw new RangeError(`layer_norm: modulation must be f32 [Bm, ${2 * d}] with Bm dividing the ${rows} rows of x ${shapeString(x.shape)}, got ${m instanceof Tensor ? `${m.dtype}${shapeString(m.shape)}` : String(m)}`);
    }
  }
  const params = { rows, d, eps, tokens: m ? rows / m.shape[0] : 0 };
  // Unmodulated, the kernels never read the modulation binding: a one-element stand-in fills it.
  const modulation = m ?? empty([1]);
  const y = empty(x.shape);
  const mean = empty([rows]);
  const rstd = empty([rows]);
  // serial: one invocation per row, WG rows per workgroup; workgroup: one workgroup per row.
  const [fwd, bwd, grid] = impl === 'serial' ? [K.forwardRows, K.backwardRows, grid1d(Math.ceil(rows / WG))] : [K.forward, K.backward, grid1d(rows)];
  fwd.dispatch({ x, weight, bias, y, mean, rstd, params, modulation }, grid);

  const inputs = m ? [x, weight, bias, m] : [x, weight, bias];
  record('layer_norm', inputs, y, m ? [x, weight, bias, mean, rstd, m] : [x, weight, mean, rstd], (gy) => {
    const stand = m ?? empty([1]);
    let gx: Tensor | null = null;
    if (x.requiresGrad) {
      gx = empty(x.shape);
      bwd.dispatch({ x, weight, mean_saved: mean, rstd_saved: rstd, gy, gx, params, modulation: stand }, grid);
    }
    let gw: Tensor | null = null;
    let gb: Tensor | null = null;
    if (weight.requiresGrad || bias.requiresGrad) {
      // One kernel gives both; the tape disposes the one whose input needs no gradient.
      gw = empty([d]);
      gb = empty([d]);
      K.backwardParams.dispatch({ x, mean_saved: mean, rstd_saved: rstd, gy, gw, gb, params, modulation: stand }, grid1d(d) /* one workgroup per feature */);
    }
    if (!m) {
      stand.dispose();
      return [gx, gw, gb];
    }
    let gmod: Tensor | null = null;
    if (m.requiresGrad) {
      gmod = empty(m.shape);
      K.backwardMod.dispatch({ x, weight, bias, mean_saved: mean, rstd_saved: rstd, gy, gmod, params }, grid1d(Math.ceil((m.shape[0] * d) / WG)));
    }
    return [gx, gw, gb, gmod];
  });
  // The tape retains them when backward needs them.
  mean.dispose();
  rstd.dispose();
  if (!m) modulation.dispose();
  return y;
}
