// The 8-lane subgroup variants of the modulated conv's forward and input-gradient kernels
// (shaders/modulated_conv_subgroup.wgsl), scaled formulation only. engine/ops/modulated_conv.ts
// asks here first and uses shaders/modulated_conv.wgsl when these decline.

import { subgroupTiles } from '../device.ts';
import { engine } from '../engine.ts';
import { defineKernel, type Kernel } from '../kernel.ts';
import type { Tensor } from '../tensor.ts';
import type { ModConvPlan } from './modulated_conv.ts';

const SHADER = 'modulated_conv_subgroup';

/**
 * What the forward multiplies in: the modulated conv's styles and coef ('scaled'), or nothing, as a
 * plain conv2d, with ('bias') or without ('plain') a bias added.
 */
export type ForwardMode = 'scaled' | 'plain' | 'bias';

const FORWARD_STYLE: Record<ForwardMode, string> = { scaled: 'st[n * q.Ci + i]', plain: '1.0', bias: '1.0' };
const FORWARD_OUT: Record<ForwardMode, string> = { scaled: 'coef[n * q.Co + o] * v', plain: 'v', bias: 'v + bias[o]' };

/** The unrolled per-channel code of both entry points for `ch` channels per workgroup. */
export function modconvSubgroupSpecialization(ch: number, mode: ForwardMode = 'scaled'): Record<string, string | number> {
  const blocks = ch / 8;
  const accs: string[] = [];
  const tap: string[] = [];
  for (let b = 0; b < blocks; b++) tap.push(`let wl${b} = keff[kw${b} + t];`);
  for (let c = 0; c < ch; c++) {
    accs.push(`var acc${c}_0 = vec4f(0.0);`, `var acc${c}_1 = vec4f(0.0);`);
    tap.push(`let w${c} = vec4f(subgroupBroadcast(wl${c >> 3}, ${c & 7}u));`, `acc${c}_0 = fma(w${c}, v0, acc${c}_0);`, `acc${c}_1 = fma(w${c}, v1, acc${c}_1);`);
  }
  const fwdSetup: string[] = [];
  const ibSetup: string[] = [];
  for (let b = 0; b < blocks; b++) {
    fwdSetup.push(`let kw${b} = (min(c0 + ${8 * b}u + lane, q.Co - 1u) * q.Ci * PH + ph) * tt;`);
    ibSetup.push(`let kw${b} = min(c0 + ${8 * b}u + lane, q.Ci - 1u) * PH * tt;`);
  }
  const fwdStore: string[] = [];
  const ibStore: string[] = [];
  for (let c = 0; c < ch; c++) {
    fwdStore.push(`store_y(live, n, c0 + ${c}u, oy, ox0, b0, acc${c}_0, acc${c}_1);`);
    ibStore.push(`store_gx(live, n, c0 + ${c}u, py, px0, pg % PB, acc${c}_0, acc${c}_1);`);
  }
  const join = (lines: string[], indent: string) => lines.join(`\n${indent}`);
  return {
    CH: ch,
    FWD_STYLE: FORWARD_STYLE[mode],
    FWD_OUT: FORWARD_OUT[mode],
    FWD_SETUP: join([...fwdSetup, ...accs], '  '),
    FWD_TAP: join(tap, '        '),
    FWD_STORE: join(fwdStore, '  '),
    IB_SETUP: join([...ibSetup, ...accs], '  '),
    IB_TAP: join(tap, '          '),
    IB_STORE: join(ibStore, '  '),
  };
}

type Bindings = Record<string, 'read' | 'read_write' | 'uniform'>;
const forwardBindings: Record<ForwardMode, Bindings> = {
  scaled: { q: 'uniform', x: 'read', keff: 'read', st: 'read', coef: 'read', y: 'read_write' },
  plain: { q: 'uniform', x: 'read', keff: 'read', y: 'read_write' },
  bias: { q: 'uniform', x: 'read', keff: 'read', bias: 'read', y: 'read_write' },
};
const inputBindings: Bindings = { q: 'uniform', x: 'read', keff: 'read', st: 'read', coef: 'read', gy: 'read', gx: 'read_write', part_out: 'read_write' };

const kernels = new Map<string, Kernel>();
function kernelFor(entry: 'forward' | 'input_backward', ch: number, mode: ForwardMode = 'scaled'): Kernel {
  const variant = mode === 'scaled' ? `${ch}ch` : `${ch}ch ${mode} conv2d`;
  let k = kernels.get(`${entry}/${variant}`);
  if (!k) {
    const bindings = entry === 'forward' ? forwardBindings[mode] : inputBindings;
    k = defineKernel({ shader: SHADER, entry, variant, specialize: modconvSubgroupSpecialization(ch, mode), bindings });
    kernels.set(`${entry}/${variant}`, k);
  }
  return k;
}

/** 16 channels per workgroup where there are that many, else 8; null below 8 (ToRGB's 3 outputs). */
function channelsPerTile(channels: number): number | null {
  if (!subgroupTiles(engine().gpu) || channels < 8) return null;
  return channels >= 16 ? 16 : 8; // 32 measured slower (more accumulators than registers)
}

function params(pl: ModConvPlan, lanes: number) {
  const { Ci, Co, H, W, up, T, pad, Hp, Wp, Ho, Wo } = pl;
  return { Ci, Co, H, W, up, T, pad, Hp, Wp, Ho, Wo, lanes };
}

function fits(grid: number[]): boolean {
  return grid.every((g) => g <= engine().gpu.limits.maxComputeWorkgroupsPerDimension);
}

/** Records the scaled forward y = conv(x * s, K) * coef with the subgroup kernel, or returns false. */
export function trySubgroupForward(pl: ModConvPlan, b: { x: Tensor; keff: Tensor; st: Tensor; coef: Tensor; y: Tensor }): boolean {
  const ch = channelsPerTile(pl.Co);
  if (ch === null) return false;
  const lanes = pl.N * pl.Hp * Math.ceil(pl.Wp / 8);
  const grid = [Math.ceil(lanes / 8), Math.ceil(pl.Co / ch), pl.up * pl.up];
  if (!fits(grid)) return false;
  kernelFor('forward', ch).dispatch({ ...b, q: params(pl, lanes) }, grid);
  return true;
}

/** Records the scaled input gradient gx and the style-gradient pieces part_out, or returns false. */
export function trySubgroupInputBackward(pl: ModConvPlan, b: { gy: Tensor; keff: Tensor; coef: Tensor; x: Tensor; st: Tensor; gx: Tensor; part_out: Tensor }): boolean {
  const ch = channelsPerTile(pl.Ci);
  if (ch === null) return false;
  const lanes = pl.N * pl.H * Math.ceil(pl.W / 8);
  const grid = [Math.ceil(lanes / 8), Math.ceil(pl.Ci / ch)];
  if (!fits(grid)) return false;
  kernelFor('input_backward', ch).dispatch({ ...b, q: params(pl, lanes) }, grid);
  return true;
}

/**
 * A plain conv2d y = conv(x, w) (+ bias) with the forward kernel: stride 1, no dilation, one group,
 * a square k x k kernel and the same padding on every side. x [N, Ci, H, W], w [Co, Ci, k, k] (the
 * kernel's [Co, Ci, 1, k, k]), y [N, Co, Ho, Wo] allocated by the caller. Returns false when the
 * device lacks 8-lane subgroups or there are fewer than 8 output channels.
 */
export function trySubgroupConv2d(x: Tensor, w: Tensor, bias: Tensor | null, pad: number, y: Tensor): boolean {
  const [N, Ci, H, W] = x.shape;
  const [Co, , k] = w.shape;
  const [Ho, Wo] = [y.shape[2], y.shape[3]];
  const ch = channelsPerTile(Co);
  if (ch === null) return false;
  const lanes = N * Ho * Math.ceil(Wo / 8);
  const grid = [Math.ceil(lanes / 8), Math.ceil(Co / ch), 1];
  if (!fits(grid)) return false;
  const q = { Ci, Co, H, W, up: 1, T: k, pad, Hp: Ho, Wp: Wo, Ho, Wo, lanes };
  const mode: ForwardMode = bias ? 'bias' : 'plain';
  kernelFor('forward', ch, mode).dispatch({ q, x, keff: w, y, ...(bias ? { bias } : {}) }, grid);
  return true;
}
