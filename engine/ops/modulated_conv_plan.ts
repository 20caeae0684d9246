// The modulated conv's sizes: validation of one call's shapes and options, and the plan every
// kernel of the op reads (engine/ops/modulated_conv.ts, modulated_conv_subgroup.ts, and the
// benches' FLOP counts). Its own file so that the op and its subgroup variant both import it and
// neither imports the other's internals.

import { shapeString } from '../shape.ts';
import type { ModulatedConvDims, ModulatedConvOptions } from '../reference/modulated_conv.ts';

export type { ModulatedConvDims, ModulatedConvOptions };

/** Sizes of one call, from which each op file builds its kernels' uniforms. */
export interface ModulatedConvPlan extends ModulatedConvDims {
  up: 1 | 2;
  T: number;
  pad: number;
  Hp: number;
  Wp: number;
  Ho: number;
  Wo: number;
  demod: boolean;
  scale: number;
  /** Phase kernel shape [Co, Ci, PH, T, T]. */
  kshape: number[];
  /** Multiply-adds of the conv itself (the FLOP count is twice this). */
  macs: number;
}

function fail(msg: string): never {
  throw new RangeError(`modulated_conv: ${msg}`);
}

/** Validates the inputs and sizes the op. Throws an error naming the problem. */
export function planModulatedConv(xShape: readonly number[], wShape: readonly number[], sShape: readonly number[], o: ModulatedConvOptions = {}): ModulatedConvPlan {
  if (xShape.length !== 4) fail(`x must be [N, C_in, H, W], got ${shapeString(xShape)}`);
  if (wShape.length !== 4) fail(`weight must be [C_out, C_in, k, k], got ${shapeString(wShape)}`);
  if (sShape.length !== 2) fail(`styles must be [N, C_in], got ${shapeString(sShape)}`);
  const [N, Ci, H, W] = xShape;
  const [Co, wCi, k, k2] = wShape;
  if (k !== k2) fail(`weight ${shapeString(wShape)} must have a square kernel, got ${k}x${k2}`);
  if (wCi !== Ci) fail(`weight ${shapeString(wShape)} has C_in = ${wCi}, but x ${shapeString(xShape)} has ${Ci} channels`);
  if (sShape[0] !== N || sShape[1] !== Ci) fail(`styles ${shapeString(sShape)} must be [N, C_in] = [${N}, ${Ci}] for x ${shapeString(xShape)}`);
  const demod = o.demodulate ?? true;
  const scale = 1 / Math.sqrt(Ci * k * k);
  let plan: Omit<ModulatedConvPlan, 'kshape' | 'macs' | 'Ho' | 'Wo'>;
  if (o.upsample) {
    if (k % 2 === 0) fail(`upsample needs an odd kernel size (the blur's padding is (5-k)/2 per side), got k = ${k}`);
    // The phase kernels are built with the k = 3 maps hard-coded in the shader (rosinality's
    // upsampling StyledConv is always 3x3); other odd sizes are defined (upsampleLink, the reference).
    if (k !== 3) fail(`upsample is implemented for 3x3 kernels (rosinality's upsampling conv), got k = ${k}`);
    if (o.padding !== undefined) fail(`padding is fixed by the blur when upsampling; got padding ${o.padding}`);
    const pad = Math.floor((k + 3) / 4);
    plan = { N, Ci, Co, H, W, k, up: 2, T: 2 * pad + 1, pad, Hp: H, Wp: W, demod, scale };
  } else {
    const pad = o.padding ?? Math.floor(k / 2);
    if (!Number.isInteger(pad) || pad < 0) fail(`padding must be a non-negative integer, got ${pad}`);
    const Hp = H + 2 * pad - k + 1;
    const Wp = W + 2 * pad - k + 1;
    if (Hp < 1 || Wp < 1) fail(`the ${k}x${k} kernel with padding ${pad} does not fit the ${H}x${W} input`);
    plan = { N, Ci, Co, H, W, k, up: 1, T: k, pad, Hp, Wp, demod, scale };
  }
  const PH = plan.up * plan.up;
  return {
    ...plan,
    Ho: plan.Hp * plan.up,
    Wo: plan.Wp * plan.up,
    kshape: [Co, Ci, PH, plan.T, plan.T],
    macs: N * Co * Ci * PH * plan.T * plan.T * plan.Hp * plan.Wp,
  };
}


/**
 * The split upsampling path's plan (engine/ops/modulated_conv.ts, splitUpsample): the same op as a
 * phase convolution with the stride-2 transposed conv alone, T = 2 taps per phase and side reading
 * x[a - 1 + t] (9 of its 16 taps nonzero), the output t of (2H + 2) x 2 Wp (Wp = W + 1 or W + 2,
 * even; the rows and columns past 2H and 2W zero) that the blur then filters to 2H x 2W. Everything else (coef, scale, k) is `pl`'s.
 */
export function transposedUpsamplePlan(pl: ModulatedConvPlan): ModulatedConvPlan {
  if (pl.up !== 2 || pl.k !== 3) throw new RangeError(`modulated_conv: the split upsampling path needs an upsampling 3x3 plan, got up ${pl.up}, k ${pl.k}`);
  // Wp even, so rows of t (2 Wp) are whole vec4s: the input gradient reads them as vec4s (one more zero phase column where W is even).
  const [Hp, Wp] = [pl.H + 1, pl.W + 1 + ((pl.W + 1) % 2)];
  return { ...pl, T: 2, pad: 1, Hp, Wp, Ho: 2 * Hp, Wo: 2 * Wp, kshape: [pl.Co, pl.Ci, 4, 2, 2], macs: pl.N * pl.Co * pl.Ci * 16 * Hp * Wp };
}

/**
 * The uniform every kernel of the op reads (ModParams, shaders/modulated_conv_params.wgsl) for a
 * dispatch of `total` invocations that do work.
 */
export function modulatedConvParams(pl: ModulatedConvPlan, total: number): Record<string, number> {
  const { N, Ci, Co, H, W, k, up, T, pad, Hp, Wp, Ho, Wo, scale } = pl;
  return { N, Ci, Co, H, W, k, up, T, pad, Hp, Wp, Ho, Wo, scale, demod: pl.demod ? 1 : 0, total };
}
