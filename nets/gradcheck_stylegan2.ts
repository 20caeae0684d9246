// Whole-network gradient check of the StyleGAN2 generator (docs/design.md, "Numerics and tests": for
// whole networks, random directional derivatives instead of every coordinate), on a tiny config
// with seeded random weights, batch 2 (per-sample modulation) and a random upstream gradient R.
//
// Objective: f(leaves) = <R, G(leaves)>, G one of the generator's passes (mapping + truncation, the
// image from z, from W+, the features after block k, the image from block k given layer_in). The
// leaves are the pass's inputs (z, W+ rows, noise maps, layer_in) and the parameters it uses.
// For every leaf x, along a random direction v (and once along a joint direction over all leaves):
//   1. the float64 reference's own backward (nets/reference/stylegan2_ref.ts, composed from the
//      per-op reference VJPs) against central finite differences of its forward, (f(x+hv) - f(x-hv)) / 2h;
//   2. the GPU tape's gradient <grad_GPU, v> against the same finite difference;
// and everywhere: 3. the GPU forward against the reference forward, 4. every GPU gradient against the
// reference's, element by element.
//
// Kinks: the network has thousands of leaky-ReLUs; a step that crosses one makes a central difference
// wrong by O(1) of that unit's contribution. The difference is therefore taken at h, h/4, h/16, ...
// until two successive estimates agree (once h is below the distance to the nearest kink they do).
//
// Tolerances scale with the size of the terms: for a directional derivative, sum_i |g_i v_i|; for a
// tensor, max |b|. float32 sums of a few hundred terms through ~15 layers stay near 1e-6 of that
// scale; a wrong rule gives O(1) (a 1% error in one gradient is caught: see the negative controls).
//
// The rows print with engine/gradcheck.ts's formatTable (same CheckResult). Wire-up for the CLI
// (`sgilo gradcheck [stylegan2]`): run `runStyleGAN2GradChecks()` after the op cases.

import { compare, describeMismatch, type CheckResult, type Tolerance } from '../engine/gradcheck.ts';
import { HostRandom, host, type HostArray } from '../engine/reference/host.ts';
import { grad, clearTape } from '../engine/tape.ts';
import { scope, tensor, type Tensor } from '../engine/tensor.ts';
import { StyleGAN2, blockResolution, numLatents, type StateDict, type StyleGAN2Config } from './stylegan2.ts';
import { RefGraph, StyleGAN2Ref, randomHost, randomNoise, randomRefParams } from './reference/stylegan2_ref.ts';

/** size 16 (3 blocks: two upsampling blocks, two RGB skips), style dim 8, 2 mapping layers. */
export const TINY_CONFIG: StyleGAN2Config = { size: 16, styleDim: 8, nMlp: 2, lrMlp: 0.01, channels: { 4: 4, 8: 4, 16: 3 } };
const BATCH = 2;

/** Relative to the scale of the terms (see the file comment). */
export const NETWORK_TOLERANCES = {
  /** float64 backward vs float64 central differences. */
  reference: { atol: 1e-7, rtol: 1e-6 },
  /** GPU (float32) forward and gradients, and its directional derivatives. */
  gpu: { atol: 1e-5, rtol: 1e-4 },
} satisfies Record<string, Tolerance>;

const H0 = 1e-5;
const MAX_HALVINGS = 6;

export type PassKind = 'mapping' | 'generate' | 'synthesis' | 'features' | 'from_layer';

export interface NetworkCheck {
  name: string;
  pass: PassKind;
  /** Block for 'features' (features after block k) and 'from_layer' (generate from block k). */
  k?: number;
  config?: StyleGAN2Config;
  /** Random directions per leaf (default 1), plus one joint direction. */
  directions?: number;
  /** Negative control: scale one leaf's GPU or reference gradient before comparing. */
  corrupt?: { leaf: string; scale: number; where: 'gpu' | 'reference' };
  seed?: number;
}

export function stylegan2NetworkChecks(): NetworkCheck[] {
  return [
    { name: 'stylegan2[mapping+truncation psi=0.7]', pass: 'mapping' },
    { name: 'stylegan2[image from z, const noise buffers]', pass: 'generate' },
    { name: 'stylegan2[synthesis from W+]', pass: 'synthesis' },
    { name: 'stylegan2[features after block 1]', pass: 'features', k: 1 },
    { name: 'stylegan2[from layer k=1]', pass: 'from_layer', k: 1 },
    { name: 'stylegan2[from layer k=2]', pass: 'from_layer', k: 2 },
    // NVlabs' conv_clamp, small enough to clamp part of every layer's activations.
    { name: 'stylegan2[synthesis from W+, conv_clamp 0.5]', pass: 'synthesis', config: { ...TINY_CONFIG, convClamp: 0.5 } },
    { name: 'stylegan2[from layer k=1, conv_clamp 0.5]', pass: 'from_layer', k: 1, config: { ...TINY_CONFIG, convClamp: 0.5 } },
  ];
}

type Leaves = Map<string, HostArray>;
const PARAM = 'param:';

/** The leaves of a pass: its inputs and the parameters it reads (state-dict names after "param:"). */
function drawLeaves(c: StyleGAN2Config, chk: NetworkCheck, params: Map<string, HostArray>, rng: HostRandom): Leaves {
  const leaves: Leaves = new Map();
  const k = chk.k ?? 0;
  const uses = (name: string): boolean => {
    if (name.startsWith('style.')) return chk.pass === 'mapping' || chk.pass === 'generate';
    if (chk.pass === 'mapping') return false;
    if (name.startsWith('noises.')) return chk.pass === 'generate';
    if (chk.pass !== 'from_layer') return chk.pass !== 'features' || blockOf(name) <= k;
    return blockOf(name) >= k;
  };
  if (chk.pass === 'mapping' || chk.pass === 'generate') leaves.set('z', randomHost(rng, [BATCH, c.styleDim]));
  else leaves.set('wplus', randomHost(rng, [BATCH, numLatents(c), c.styleDim]));
  if (chk.pass !== 'mapping' && chk.pass !== 'generate') randomNoise(rng, c, BATCH).forEach((n, i) => leaves.set(`noise.${i}`, n));
  if (chk.pass === 'from_layer') {
    const r = blockResolution(k - 1);
    leaves.set('layer_in', randomHost(rng, [BATCH, c.channels[r], r, r]));
  }
  for (const [name, p] of params) if (uses(name)) leaves.set(PARAM + name, p);
  return leaves;
}

/** The synthesis block a parameter belongs to (block 0: const, conv1, to_rgb1). */
function blockOf(name: string): number {
  const m = /^(convs|to_rgbs)\.(\d+)\./.exec(name);
  if (!m) return 0;
  return m[1] === 'convs' ? Math.floor(Number(m[2]) / 2) + 1 : Number(m[2]) + 1;
}

/** The reference pass on a given set of leaves (parameters not among them come from `base`). */
function refPass(c: StyleGAN2Config, chk: NetworkCheck, base: Map<string, HostArray>, leaves: Leaves, avg: HostArray, g: RefGraph): HostArray {
  const params = new Map(base);
  for (const [name, v] of leaves) if (name.startsWith(PARAM)) params.set(name.slice(PARAM.length), v);
  const ref = new StyleGAN2Ref(c, params, avg);
  const noise = leaves.has('noise.0') ? [...leaves.keys()].filter((n) => n.startsWith('noise.')).map((n) => leaves.get(n)!) : undefined;
  switch (chk.pass) {
    case 'mapping':
      return ref.truncate(g, ref.mapping(g, leaves.get('z')!), 0.7);
    case 'generate':
      return ref.generate(g, leaves.get('z')!, 0.7);
    case 'synthesis':
      return ref.synthesis(g, leaves.get('wplus')!, noise);
    case 'features':
      return ref.featuresAfter(g, leaves.get('wplus')!, noise, chk.k!);
    case 'from_layer':
      return ref.fromLayer(g, leaves.get('wplus')!, noise, chk.k!, leaves.get('layer_in')!);
  }
}

function gpuPass(gen: StyleGAN2, chk: NetworkCheck, t: Map<string, Tensor>): Tensor {
  const noise = t.has('noise.0') ? [...t.keys()].filter((n) => n.startsWith('noise.')).map((n) => t.get(n)!) : undefined;
  switch (chk.pass) {
    case 'mapping':
      return gen.truncate(gen.mapping(t.get('z')!), 0.7);
    case 'generate':
      return gen.generate(t.get('z')!, { psi: 0.7 });
    case 'synthesis':
      return gen.synthesis({ wplus: t.get('wplus')!, noise });
    case 'features':
      return gen.featuresAfter({ wplus: t.get('wplus')!, noise }, chk.k!);
    case 'from_layer':
      return gen.fromLayer({ wplus: t.get('wplus')!, noise }, chk.k!, t.get('layer_in')!);
  }
}

const dot = (a: ArrayLike<number>, b: ArrayLike<number>) => {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += a[i] * b[i];
  return s;
};
const absDot = (a: ArrayLike<number>, b: ArrayLike<number>) => {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += Math.abs(a[i] * b[i]);
  return s;
};
const maxAbs = (a: ArrayLike<number>) => {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]));
  return m;
};

/** |a - b| <= atol * scale + rtol * |b| (engine/gradcheck.ts's compare); the row's error numbers. */
class Tally {
  maxAbs = 0;
  maxRel = 0;
  failures: string[] = [];
  compare(what: string, got: ArrayLike<number>, want: ArrayLike<number>, scale: number, tol: Tolerance, shape?: number[]): void {
    const scaled = { atol: tol.atol * scale, rtol: tol.rtol };
    const c = compare(got, want, scaled);
    this.maxAbs = Math.max(this.maxAbs, c.maxAbsErr);
    this.maxRel = Math.max(this.maxRel, c.maxRelErr);
    if (!c.pass) this.failures.push(describeMismatch(`${what} (scale ${scale.toExponential(2)}, atol ${tol.atol} x scale)`, got, want, c, scaled, shape));
  }
}

/** Runs one whole-network check (see the file comment). */
export async function runNetworkCheck(chk: NetworkCheck): Promise<CheckResult> {
  const c = chk.config ?? TINY_CONFIG;
  const rng = new HostRandom(4321 + (chk.seed ?? 0));
  const base = randomRefParams(c, 1000 + (chk.seed ?? 0));
  const leaves = drawLeaves(c, chk, base, rng);
  const avg = randomHost(rng, [c.styleDim], 0.5);
  const out = refPass(c, chk, base, leaves, avg, new RefGraph());
  const R = randomHost(rng, out.shape);
  const objective = (ls: Leaves) => dot(R.data, refPass(c, chk, base, ls, avg, new RefGraph()).data);

  // Reference backward.
  const g = new RefGraph();
  const refOut = refPass(c, chk, base, leaves, avg, g);
  g.backward(refOut, R);
  const refGrads = new Map([...leaves].map(([n, x]) => [n, g.grad(x)]));

  // GPU forward and tape gradients of every leaf.
  const tally = new Tally();
  let gpu: { out: Float32Array; grads: Map<string, Float32Array> };
  try {
    gpu = await runGpu(c, chk, base, leaves, avg, R);
  } catch (e) {
    return { name: chk.name, maxAbsErr: Infinity, maxRelErr: Infinity, pass: false, failures: [`GPU run threw: ${(e as Error).message}`] };
  }
  if (chk.corrupt) {
    const target = chk.corrupt.where === 'gpu' ? gpu.grads.get(chk.corrupt.leaf) : refGrads.get(chk.corrupt.leaf);
    if (!target) throw new Error(`${chk.name}: no leaf "${chk.corrupt.leaf}" to corrupt`);
    for (let i = 0; i < target.length; i++) target[i] *= chk.corrupt.scale;
  }

  // Directions: `directions` per leaf, then one over all leaves at once.
  const perLeaf = chk.directions ?? 1;
  const dirs: Map<string, Float64Array>[] = [];
  for (const [name, x] of leaves) for (let r = 0; r < perLeaf; r++) dirs.push(new Map([[name, randomHost(rng, x.shape).data]]));
  dirs.push(new Map([...leaves].map(([n, x]) => [n, randomHost(rng, x.shape).data])));
  const fd: number[] = [];
  const refDir: number[] = [];
  const gpuDir: number[] = [];
  const scales: number[] = [];
  for (const dir of dirs) {
    let analytic = 0;
    let onGpu = 0;
    let scale = 0;
    for (const [n, v] of dir) {
      analytic += dot(refGrads.get(n)!, v);
      onGpu += dot(gpu.grads.get(n)!, v);
      scale += absDot(refGrads.get(n)!, v);
    }
    const estimate = finiteDifference(objective, leaves, dir, scale);
    fd.push(estimate);
    refDir.push(analytic);
    gpuDir.push(onGpu);
    scales.push(scale);
  }
  const label = (i: number) => (i < dirs.length - 1 ? [...dirs[i].keys()][0] : 'all leaves');
  for (let i = 0; i < dirs.length; i++) {
    tally.compare(`reference backward vs finite differences along a random direction of ${label(i)}`, [refDir[i]], [fd[i]], scales[i], NETWORK_TOLERANCES.reference);
    tally.compare(`GPU tape gradient vs finite differences along a random direction of ${label(i)}`, [gpuDir[i]], [fd[i]], scales[i], NETWORK_TOLERANCES.gpu);
  }
  tally.compare('GPU forward vs reference', gpu.out, refOut.data, maxAbs(refOut.data), NETWORK_TOLERANCES.gpu, refOut.shape);
  for (const [n, want] of refGrads) tally.compare(`GPU gradient of ${n} vs reference`, gpu.grads.get(n)!, want, maxAbs(want), NETWORK_TOLERANCES.gpu, leaves.get(n)!.shape);
  return { name: chk.name, maxAbsErr: tally.maxAbs, maxRelErr: tally.maxRel, pass: tally.failures.length === 0, failures: tally.failures };
}

/** Central difference along `dir`, refined (h, h/4, ...) until two successive estimates agree. */
function finiteDifference(objective: (ls: Leaves) => number, leaves: Leaves, dir: Map<string, Float64Array>, scale: number): number {
  const at = (h: number) => {
    const moved = new Map(leaves);
    for (const [n, v] of dir) {
      const x = leaves.get(n)!;
      moved.set(n, host(x.shape, x.data.map((a, i) => a + h * v[i])));
    }
    return objective(moved);
  };
  const central = (h: number) => (at(h) - at(-h)) / (2 * h);
  const tol = NETWORK_TOLERANCES.reference;
  let h = H0;
  let prev = central(h);
  for (let i = 0; i < MAX_HALVINGS; i++) {
    h /= 4;
    const next = central(h);
    if (Math.abs(next - prev) <= 0.5 * (tol.atol * scale + tol.rtol * Math.abs(next))) return next;
    prev = next;
  }
  return prev; // never settled: the comparison will report it
}

async function runGpu(c: StyleGAN2Config, chk: NetworkCheck, base: Map<string, HostArray>, leaves: Leaves, avg: HostArray, R: HostArray) {
  const sd: StateDict = new Map();
  for (const [name, p] of base) sd.set(name, { dtype: 'float32', shape: p.shape, data: Float32Array.from(leaves.get(PARAM + name)?.data ?? p.data) });
  const gen = StyleGAN2.fromStateDict(c, sd, { dtype: 'float32', shape: avg.shape, data: Float32Array.from(avg.data) });
  try {
    return await scope(async () => {
      const t = new Map<string, Tensor>();
      for (const [n, x] of leaves) t.set(n, n.startsWith(PARAM) ? gen.p(n.slice(PARAM.length)) : tensor(x.data, x.shape));
      for (const x of t.values()) x.requireGrad();
      const out = gpuPass(gen, chk, t);
      const names = [...t.keys()];
      const grads = grad(out, names.map((n) => t.get(n)!), { upstream: tensor(R.data, R.shape) });
      const read = await Promise.all(grads.map((x) => x.readF32()));
      return { out: await out.readF32(), grads: new Map(names.map((n, i) => [n, read[i]])) };
    }).finally(clearTape);
  } finally {
    gen.dispose();
  }
}

/** Every row of the whole-network check, in order. */
export async function runStyleGAN2GradChecks(checks = stylegan2NetworkChecks()): Promise<CheckResult[]> {
  const results: CheckResult[] = [];
  for (const chk of checks) results.push(await runNetworkCheck(chk));
  return results;
}
