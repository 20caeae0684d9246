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

class ErrorTally {
  maxAbs = 0;
  maxRel = 0;
  failures: string[] = [];
  compare(what: string, got: ArrayLike<number>, want: ArrayLike<number>, shape: Shape, tol: Tolerance): void {
    if (got.length !== want.length) {
      this.failures.push(`${what}: ${got.length} values, expected ${want.length}`);
      this.maxAbs = Infinity;
      return;
    }
    let worst = -1;
    let worstExcess = 0;
    for (let i = 0; i < want.length; i++) {
      const err = Math.abs(got[i] - want[i]);
      const bad = !(err <= tol.atol + tol.rtol * Math.abs(want[i])); // NaN counts as bad
      const e = Number.isNaN(err) ? Infinity : err;
      this.maxAbs = Math.max(this.maxAbs, e);
      this.maxRel = Math.max(this.maxRel, e / Math.max(Math.abs(want[i]), tol.atol / tol.rtol));
      const excess = e - (tol.atol + tol.rtol * Math.abs(want[i]));
      if (bad && (worst < 0 || excess > worstExcess)) {
        worst = i;
        worstExcess = excess;
      }
    }
    if (worst >= 0) {
      const at = shape.length ? `[${unravel(worst, shape).join(', ')}]` : '[]';
      this.failures.push(`${what}: worst element ${at}: got ${got[worst]}, expected ${want[worst]} (atol ${tol.atol}, rtol ${tol.rtol})`);
    }
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
