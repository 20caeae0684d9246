// Gradcheck rows of the fused bias + activation (engine/ops/bias_act.ts): linear and lrelu, with
// and without bias and clamp, channel dim 1 and -1. Included in the table by allGradCases()
// (engine/cases/index.ts). The inputs are kept away from the kinks (z = 0, and the z where
// |act(z) * gain| = clamp) so that central finite differences are exact there: x avoids each kink
// by 0.15 and the bias is drawn from [-0.05, 0.05] (a "positive" domain with a negative lower end,
// i.e. plain uniform), so |z - kink| >= 0.1. With noise (StyleGAN2's injection) on an activation
// with kinks, map and weight are drawn from [-0.05, 0.05] and [-0.5, 0.5], so the noise term
// moves z by at most 0.025 and |z - kink| >= 0.075.

import { TOLERANCES, type GradCase, type InputSpec } from '../gradcheck.ts';
import { biasAct, biasActConfig, type BiasActOptions } from '../ops/bias_act.ts';
import { biasActForward, biasActVjp, type BiasActConfig } from '../reference/bias_act.ts';
import type { Shape } from '../shape.ts';
import type { HostArray } from '../reference/host.ts';

const dims = (s: Shape) => s.join('x');

/** Both values x must avoid: z where act(z) * gain crosses +-clamp, and the lrelu kink at 0. */
function kinks(o: BiasActOptions, c: BiasActConfig): number[] {
  const pts = o.act === 'lrelu' ? [0] : [];
  if (Number.isFinite(c.clamp)) pts.push(c.clamp / c.gain, -c.clamp / (c.alpha * c.gain));
  return pts;
}

function biasActCase(xShape: Shape, withBias: boolean, o: BiasActOptions, label: string): GradCase {
  const c = biasActConfig(xShape, o);
  const points = kinks(o, c);
  const inputs: InputSpec[] = [{ shape: xShape, domain: points.length ? { kind: 'avoid', points, gap: 0.15 } : undefined }];
  if (withBias) inputs.push({ shape: [xShape[c.dim]], domain: { kind: 'positive', lo: -0.05, hi: 0.05 } });
  return {
    name: `bias_act[${dims(xShape)}, ${label}${withBias ? ', bias' : ''}]`,
    inputs,
    // The bias gradient is a sum over N*H*W elements: the reduction tolerance.
    tol: withBias ? TOLERANCES.reduction : TOLERANCES.elementwise,
    forward: ([x, b]) => biasActForward(x, b ?? null, c),
    vjp: ([x, b], gy) => biasActVjp(x, b ?? null, c, gy),
    gpu: ([x, b]) => biasAct(x, b ?? null, o),
  };
}

/** bias_act with noise injection: a map per sample ([N, 1, ...]) or one for the batch ([1, 1, ...]). */
function noiseCase(xShape: Shape, shared: boolean, withBias: boolean, o: BiasActOptions, label: string): GradCase {
  const c = biasActConfig(xShape, o);
  const points = kinks(o, c);
  const mapShape = xShape.map((d, i) => (i === c.dim || (shared && i < c.dim) ? 1 : d));
  const outer = xShape.slice(0, c.dim).reduce((p, d) => p * d, 1);
  const small = (hi: number) => (points.length ? { kind: 'positive' as const, lo: -hi, hi } : undefined);
  const inputs: InputSpec[] = [{ shape: xShape, domain: points.length ? { kind: 'avoid', points, gap: 0.15 } : undefined }];
  if (withBias) inputs.push({ shape: [xShape[c.dim]], domain: { kind: 'positive', lo: -0.05, hi: 0.05 } });
  inputs.push({ shape: mapShape, domain: small(0.05) }, { shape: [1], domain: small(0.5) });
  const split = <T>(xs: T[]) => ({ x: xs[0], b: withBias ? xs[1] : null, map: xs[withBias ? 2 : 1], w: xs[withBias ? 3 : 2] });
  const noise = (xs: ReturnType<typeof split<HostArray>>) => ({ map: xs.map, weight: xs.w, group: shared ? outer : 1 });
  return {
    name: `bias_act[${dims(xShape)}, ${label}${withBias ? ', bias' : ''}, noise ${dims(mapShape)}]`,
    inputs,
    // The map's gradient sums over channels (and samples), the weight's over everything.
    tol: TOLERANCES.reduction,
    forward: (xs) => {
      const a = split(xs);
      return biasActForward(a.x, a.b, c, noise(a));
    },
    vjp: (xs, gy) => {
      const a = split(xs);
      return biasActVjp(a.x, a.b, c, gy, noise(a));
    },
    gpu: (xs) => {
      const a = split(xs);
      return biasAct(a.x, a.b, { ...o, noise: { map: a.map, weight: a.w } });
    },
  };
}

/** bias_act with a residual added after the activation (the ViT's z + linear(h), ToRGB's skip). */
function residualCase(xShape: Shape, o: BiasActOptions, label: string): GradCase {
  const c = biasActConfig(xShape, o);
  const points = kinks(o, c);
  const inputs: InputSpec[] = [
    { shape: xShape, domain: points.length ? { kind: 'avoid', points, gap: 0.15 } : undefined },
    { shape: [xShape[c.dim]], domain: { kind: 'positive', lo: -0.05, hi: 0.05 } },
    { shape: xShape },
  ];
  return {
    name: `bias_act[${dims(xShape)}, ${label}, bias, residual]`,
    inputs,
    tol: TOLERANCES.reduction,
    forward: ([x, b, r]) => biasActForward(x, b, c, undefined, r),
    vjp: ([x, b, r], gy) => biasActVjp(x, b, c, gy, undefined, r),
    gpu: ([x, b, r]) => biasAct(x, b, { ...o, residual: r }),
  };
}

export function biasActGradCases(): GradCase[] {
  return [
    biasActCase([2, 3, 4, 5], true, { act: 'linear' }, 'linear'),
    biasActCase([2, 3, 4, 5], true, { act: 'lrelu' }, 'lrelu'),
    biasActCase([4, 6], false, { act: 'lrelu', alpha: 0.1, gain: 1.5 }, 'lrelu alpha=0.1 gain=1.5'),
    biasActCase([2, 3, 4, 5], true, { act: 'lrelu', clamp: 0.5 }, 'lrelu clamp=0.5'),
    biasActCase([3, 7], true, { act: 'linear', clamp: 1, dim: -1 }, 'linear clamp=1 dim=-1'),
    biasActCase([2, 5, 3], true, { act: 'lrelu', clamp: 0.8, dim: 2 }, 'lrelu clamp=0.8 dim=2'),
    // The equalized linear layer's form (scale 1/sqrt(in)), and a scale on lrelu (kink at x = 0 for scale > 0).
    biasActCase([4, 6], true, { act: 'linear', scale: 0.25 }, 'linear scale=0.25'),
    biasActCase([3, 4, 2], true, { act: 'lrelu', scale: 2 }, 'lrelu scale=2'),
    noiseCase([2, 3, 4, 5], false, true, { act: 'linear' }, 'linear'),
    noiseCase([2, 3, 4, 4], true, true, { act: 'lrelu' }, 'lrelu'),
    noiseCase([3, 2, 5], false, false, { act: 'lrelu', clamp: 0.5 }, 'lrelu clamp=0.5'),
    residualCase([2, 8, 6], { act: 'linear', dim: -1 }, 'linear dim=-1'),
    residualCase([2, 3, 4, 5], { act: 'lrelu', clamp: 0.5 }, 'lrelu clamp=0.5'),
  ];
}
