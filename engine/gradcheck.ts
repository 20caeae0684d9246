// Gradient checking, as a library feature (the CLI's `gradcheck` and the tests use it).
//
// For one case:
//   1. draw inputs (rounded to float32 so the GPU and the reference see identical values) and a
//      random upstream gradient gy (never just ones: a wrong transpose could hide behind symmetry);
//   2. check the float64 reference's backward against central finite differences of
//      <gy, forward(x)>: every coordinate for small inputs, random directions for large ones;
//   3. run the op on the GPU with the tape, compare its forward and its gradients with the reference
//      at float32 tolerances |a - b| <= atol + rtol |b|.
// The report's "max rel err" is max |a - b| / max(|b|, atol/rtol), so for a passing check it is at
// most about rtol; "max abs err" is max |a - b|. Failures name the check and the worst element.
// `compare` is that per-element check on its own: tests (test/helpers.ts, assertClose) and benches
// use it for every numerical comparison, so there is one metric and one tally in the project.

import { scope, tensor, type Tensor } from './tensor.ts';
import { grad, clearTape } from './tape.ts';
import { sizeOf, type Shape } from './shape.ts';
import { HostRandom, host, unravel, type HostArray } from './reference/host.ts';
import type { Domain } from './elementwise_table.ts';

export interface Tolerance {
  atol: number;
  rtol: number;
}

/** Named float32 tolerances per op class. */
export const TOLERANCES = {
  elementwise: { atol: 1e-6, rtol: 1e-5 },
  transcendental: { atol: 2e-6, rtol: 2e-5 },
  reduction: { atol: 1e-5, rtol: 1e-4 },
  matmul: { atol: 1e-5, rtol: 1e-4 },
} satisfies Record<string, Tolerance>;

/** Finite differences of the float64 reference: step and tolerance. */
const FD_STEP = 1e-5;
const FD_TOL: Tolerance = { atol: 1e-7, rtol: 1e-6 };
/** Inputs larger than this are checked along random directions instead of every coordinate. */
const FD_FULL_LIMIT = 96;
const FD_DIRECTIONS = 6;

export interface InputSpec {
  shape: Shape;
  domain?: Domain;
}

export interface GradCase {
  /** Row name, e.g. "sum[axes=1]". The op name is the part before "[". */
  name: string;
  inputs: InputSpec[];
  tol: Tolerance;
  forward: (xs: HostArray[]) => HostArray;
  vjp: (xs: HostArray[], gy: HostArray) => Float64Array[];
  gpu: (xs: Tensor[]) => Tensor;
}

export interface CheckResult {
  name: string;
  maxAbsErr: number;
  maxRelErr: number;
  pass: boolean;
  /** One line per failed comparison. */
  failures: string[];
}

function draw(rng: HostRandom, spec: InputSpec): HostArray {
  const d = spec.domain ?? { kind: 'normal' };
  const n = sizeOf(spec.shape);
  const data = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    let v: number;
    if (d.kind === 'positive') v = d.lo + (d.hi - d.lo) * rng.uniform();
    else {
      v = rng.normal();
      if (d.kind === 'avoid') {
        // Redraw until the value is at least `gap` from every kink or pole.
        while (d.points.some((p) => Math.abs(v - p) < d.gap)) v = rng.normal();
      }
    }
    data[i] = Math.fround(v);
  }
  return host(spec.shape, data);
}

function dot(a: Float64Array, b: Float64Array): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += a[i] * b[i];
  return s;
}

/**
 * One comparison of `got` against `want` at |a - b| <= atol + rtol |b| per element: the tally the
 * gradcheck table reports (max abs err, max rel err) and the worst failing element. NaN counts as
 * a failure with error Infinity. Tests and benches compare with this too (test/helpers.ts).
 */
export interface Comparison {
  /** max |a - b|. */
  maxAbsErr: number;
  /** max |a - b| / max(|b|, atol/rtol): at most about rtol when the comparison passes. */
  maxRelErr: number;
  /** max |b|, so a caller can also report max |a - b| / max |b|. */
  maxAbsWant: number;
  /** Index of the element furthest outside atol + rtol |b|, or -1 when every element is within. */
  worst: number;
  pass: boolean;
}

export function compare(got: ArrayLike<number>, want: ArrayLike<number>, tol: Tolerance): Comparison {
  if (got.length !== want.length) return { maxAbsErr: Infinity, maxRelErr: Infinity, maxAbsWant: 0, worst: 0, pass: false };
  let maxAbsErr = 0;
  let maxRelErr = 0;
  let maxAbsWant = 0;
  let worst = -1;
  let worstExcess = 0;
  // rtol 0 with atol > 0 is an absolute check (max rel err stays 0); atol = rtol = 0 asks for
  // equality, and then max rel err is max |a - b| / |b|.
  const floor = tol.rtol > 0 ? tol.atol / tol.rtol : tol.atol > 0 ? Infinity : 0;
  for (let i = 0; i < want.length; i++) {
    const b = Math.abs(want[i]);
    const d = Math.abs(got[i] - want[i]);
    const e = Number.isNaN(d) ? Infinity : d;
    maxAbsErr = Math.max(maxAbsErr, e);
    if (e > 0) maxRelErr = Math.max(maxRelErr, e / Math.max(b, floor));
    maxAbsWant = Math.max(maxAbsWant, b);
    const excess = e - (tol.atol + tol.rtol * b);
    if (!(d <= tol.atol + tol.rtol * b) && (worst < 0 || excess > worstExcess)) {
      worst = i;
      worstExcess = excess;
    }
  }
  return { maxAbsErr, maxRelErr, maxAbsWant, worst, pass: worst < 0 };
}

/** The line that names a failed comparison's worst element (by multi-index when a shape is given). */
export function describeMismatch(what: string, got: ArrayLike<number>, want: ArrayLike<number>, c: Comparison, tol: Tolerance, shape?: Shape): string {
  if (got.length !== want.length) return `${what}: ${got.length} values, expected ${want.length}`;
  const at = shape ? `[${shape.length ? unravel(c.worst, shape).join(', ') : ''}]` : String(c.worst);
  return `${what}: worst element ${at}: got ${got[c.worst]}, expected ${want[c.worst]} (atol ${tol.atol}, rtol ${tol.rtol}; max abs err ${c.maxAbsErr.toExponential(2)}, max rel err ${c.maxRelErr.toExponential(2)})`;
}

/**
 * A tolerance relative to the largest expected value: |a - b| <= t max|b| per element is exactly
 * max|a - b| / max|b| <= t, the whole-tensor metric of the reference fixtures (docs/design.md,
 * numerics and testing policy). `floor` keeps the bound from vanishing when every expected value is ~0.
 */
export function relativeToMax(expected: ArrayLike<number>, t: number, floor = 0): Tolerance {
  let m = 0;
  for (let i = 0; i < expected.length; i++) m = Math.max(m, Math.abs(expected[i]));
  return { atol: t * Math.max(m, floor), rtol: 0 };
}

/** max |a - b| / max |b| of a comparison, for printing. */
export const relToMax = (c: Comparison): number => c.maxAbsErr / c.maxAbsWant;

class ErrorTally {
  maxAbs = 0;
  maxRel = 0;
  failures: string[] = [];
  compare(what: string, got: ArrayLike<number>, want: ArrayLike<number>, shape: Shape, tol: Tolerance): void {
    const c = compare(got, want, tol);
    this.maxAbs = Math.max(this.maxAbs, c.maxAbsErr);
    this.maxRel = Math.max(this.maxRel, c.maxRelErr);
    if (!c.pass) this.failures.push(describeMismatch(what, got, want, c, tol, shape));
  }
}

/** Checks the reference's own backward against finite differences of its forward. */
function checkReference(c: GradCase, xs: HostArray[], gy: HostArray, rng: HostRandom, tally: ErrorTally): void {
  const analytic = c.vjp(xs, gy);
  const objective = (ys: HostArray[]) => dot(c.forward(ys).data, gy.data);
  xs.forEach((x, j) => {
    const perturbed = (delta: Float64Array, h: number) => xs.map((y, k) => (k === j ? host(y.shape, y.data.map((v, i) => v + h * delta[i])) : y));
    const fd = (delta: Float64Array) => (objective(perturbed(delta, FD_STEP)) - objective(perturbed(delta, -FD_STEP))) / (2 * FD_STEP);
    if (x.data.length <= FD_FULL_LIMIT) {
      const numeric = new Float64Array(x.data.length);
      for (let i = 0; i < numeric.length; i++) {
        const e = new Float64Array(x.data.length);
        e[i] = 1;
        numeric[i] = fd(e);
      }
      tally.compare(`reference backward vs finite differences, input ${j}`, analytic[j], numeric, x.shape, FD_TOL);
    } else {
      const got: number[] = [];
      const want: number[] = [];
      for (let r = 0; r < FD_DIRECTIONS; r++) {
        const v = Float64Array.from({ length: x.data.length }, () => rng.normal());
        got.push(dot(analytic[j], v));
        want.push(fd(v));
      }
      tally.compare(`reference backward vs finite differences along ${FD_DIRECTIONS} random directions, input ${j}`, got, want, [FD_DIRECTIONS], FD_TOL);
    }
  });
}

export async function runGradCase(c: GradCase, seed = 1234): Promise<CheckResult> {
  const rng = new HostRandom(seed);
  const xs = c.inputs.map((spec) => draw(rng, spec));
  const want = c.forward(xs);
  const gy = draw(rng, { shape: want.shape });
  const tally = new ErrorTally();
  checkReference(c, xs, gy, rng, tally);
  const wantGrads = c.vjp(xs, gy);

  let gpu: { out: Float32Array; shape: readonly number[]; grads: Float32Array[] };
  try {
    gpu = await scope(async () => {
      const inputs = xs.map((x) => tensor(x.data, x.shape).requireGrad());
      const out = c.gpu(inputs);
      const grads = grad(out, inputs, { upstream: tensor(gy.data, gy.shape) });
      return { out: await out.readF32(), shape: out.shape, grads: await Promise.all(grads.map((g) => g.readF32())) };
    }).finally(clearTape);
  } catch (e) {
    // An op that throws (e.g. a backward rule returning a wrong shape) is a failed row, not a crash.
    tally.failures.push(`GPU run threw: ${(e as Error).message}`);
    return { name: c.name, maxAbsErr: Infinity, maxRelErr: Infinity, pass: false, failures: tally.failures };
  }

  if (gpu.shape.join() !== want.shape.join()) tally.failures.push(`GPU forward has shape [${gpu.shape}], reference [${want.shape}]`);
  tally.compare('GPU forward vs reference', gpu.out, want.data, want.shape, c.tol);
  gpu.grads.forEach((g, j) => tally.compare(`GPU gradient of input ${j} vs reference`, g, wantGrads[j], xs[j].shape, c.tol));
  return { name: c.name, maxAbsErr: tally.maxAbs, maxRelErr: tally.maxRel, pass: tally.failures.length === 0, failures: tally.failures };
}

/** The table the CLI prints: op | max abs err | max rel err | status. */
export function formatTable(results: CheckResult[]): string {
  const rows = [['op', 'max abs err', 'max rel err', 'status'], ...results.map((r) => [r.name, r.maxAbsErr.toExponential(2), r.maxRelErr.toExponential(2), r.pass ? 'PASS' : 'FAIL'])];
  const widths = rows[0].map((_, c) => Math.max(...rows.map((r) => r[c].length)));
  const line = (r: string[]) => r.map((cell, c) => cell.padEnd(widths[c])).join('  ').trimEnd();
  return [line(rows[0]), widths.map((w) => '-'.repeat(w)).join('  '), ...rows.slice(1).map(line)].join('\n');
}
