// The elementwise table: each row gives an op's WGSL forward and derivative expressions (slotted
// into shaders/unary.wgsl or shaders/binary.wgsl) and the same math in float64 for the CPU
// reference. Adding a row adds the op, its kernels, its reference and its gradcheck case.
//
// Unary expressions see `a` (input), `y` (output, derivative only), `p0`, `p1` (op scalars).
// Binary expressions see `a`, `b`.

import { erf } from './reference/special.ts';

/** How test inputs are drawn so that finite differences stay away from kinks and poles. */
export type Domain =
  | { kind: 'normal' }
  | { kind: 'positive'; lo: number; hi: number }
  | { kind: 'avoid'; points: number[]; gap: number };

export interface UnaryRow {
  name: string;
  fwd: string;
  bwd: string;
  ref: (a: number, p0: number, p1: number) => number;
  dref: (a: number, y: number, p0: number, p1: number) => number;
  domain: Domain;
  /** Scalars used by the gradcheck case (the op's defaults where it has any). */
  testParams?: [number, number];
}

export interface BinaryRow {
  name: string;
  fwd: string;
  da: string;
  db: string;
  ref: (a: number, b: number) => number;
  dra: (a: number, b: number) => number;
  drb: (a: number, b: number) => number;
  domainB: Domain;
}

const normal: Domain = { kind: 'normal' };
const positive: Domain = { kind: 'positive', lo: 0.5, hi: 2 };
const awayFromZero: Domain = { kind: 'avoid', points: [0], gap: 0.05 };

const sigmoid = (a: number) => 1 / (1 + Math.exp(-a));
const SQRT1_2PI = 1 / Math.sqrt(2 * Math.PI);

export const UNARY_ROWS: UnaryRow[] = [
  { name: 'neg', fwd: '-a', bwd: '-1.0', ref: (a) => -a, dref: () => -1, domain: normal },
  { name: 'exp', fwd: 'exp(a)', bwd: 'y', ref: Math.exp, dref: (_a, y) => y, domain: normal },
  { name: 'log', fwd: 'log(a)', bwd: '1.0 / a', ref: Math.log, dref: (a) => 1 / a, domain: positive },
  { name: 'sqrt', fwd: 'sqrt(a)', bwd: '0.5 / y', ref: Math.sqrt, dref: (_a, y) => 0.5 / y, domain: positive },
  { name: 'rsqrt', fwd: 'inverseSqrt(a)', bwd: '-0.5 * y / a', ref: (a) => 1 / Math.sqrt(a), dref: (a, y) => (-0.5 * y) / a, domain: positive },
  { name: 'sin', fwd: 'sin(a)', bwd: 'cos(a)', ref: Math.sin, dref: (a) => Math.cos(a), domain: normal },
  { name: 'cos', fwd: 'cos(a)', bwd: '-sin(a)', ref: Math.cos, dref: (a) => -Math.sin(a), domain: normal },
  { name: 'square', fwd: 'a * a', bwd: '2.0 * a', ref: (a) => a * a, dref: (a) => 2 * a, domain: normal },
  { name: 'abs', fwd: 'abs(a)', bwd: 'sign(a)', ref: Math.abs, dref: (a) => Math.sign(a), domain: awayFromZero },
  { name: 'sigmoid', fwd: 'sigmoid_(a)', bwd: 'y * (1.0 - y)', ref: sigmoid, dref: (_a, y) => y * (1 - y), domain: normal },
  { name: 'tanh', fwd: 'tanh_(a)', bwd: '1.0 - y * y', ref: Math.tanh, dref: (_a, y) => 1 - y * y, domain: normal },
  {
    name: 'swish',
    fwd: 'a * sigmoid_(a)',
    bwd: 'sigmoid_(a) * (1.0 + a * (1.0 - sigmoid_(a)))',
    ref: (a) => a * sigmoid(a),
    dref: (a) => sigmoid(a) * (1 + a * (1 - sigmoid(a))),
    domain: normal,
  },
  {
    // Exact GELU: x * Phi(x) with the Gaussian CDF through erf (not the tanh approximation).
    name: 'gelu',
    fwd: '0.5 * a * (1.0 + erf_(a * INV_SQRT2))',
    bwd: '0.5 * (1.0 + erf_(a * INV_SQRT2)) + a * INV_SQRT_2PI * exp(-0.5 * a * a)',
    ref: (a) => 0.5 * a * (1 + erf(a / Math.SQRT2)),
    dref: (a) => 0.5 * (1 + erf(a / Math.SQRT2)) + a * SQRT1_2PI * Math.exp(-0.5 * a * a),
    domain: normal,
  },
  { name: 'relu', fwd: 'max(a, 0.0)', bwd: 'select(0.0, 1.0, a > 0.0)', ref: (a) => Math.max(a, 0), dref: (a) => (a > 0 ? 1 : 0), domain: awayFromZero },
  {
    // p0 = negative slope, p1 = gain (StyleGAN2: 0.2 and sqrt(2)).
    name: 'leaky_relu',
    fwd: 'select(p0 * a, a, a > 0.0) * p1',
    bwd: 'select(p0, 1.0, a > 0.0) * p1',
    ref: (a, p0, p1) => (a > 0 ? a : p0 * a) * p1,
    dref: (a, _y, p0, p1) => (a > 0 ? 1 : p0) * p1,
    domain: awayFromZero,
    testParams: [0.2, Math.SQRT2],
  },
  {
    // p0 = lower bound, p1 = upper bound; gradient 1 inside [p0, p1] (bounds included), else 0.
    name: 'clamp',
    fwd: 'clamp(a, p0, p1)',
    bwd: 'select(0.0, 1.0, a >= p0 && a <= p1)',
    ref: (a, p0, p1) => Math.min(Math.max(a, p0), p1),
    dref: (a, _y, p0, p1) => (a >= p0 && a <= p1 ? 1 : 0),
    domain: { kind: 'avoid', points: [-0.5, 0.5], gap: 0.05 },
    testParams: [-0.5, 0.5],
  },
  {
    // y = p0 * a + p1: scaling and shifting by constants without materializing them.
    name: 'affine',
    fwd: 'p0 * a + p1',
    bwd: 'p0',
    ref: (a, p0, p1) => p0 * a + p1,
    dref: (_a, _y, p0) => p0,
    domain: normal,
    testParams: [-1.5, 0.25],
  },
];

export const BINARY_ROWS: BinaryRow[] = [
  { name: 'add', fwd: 'a + b', da: '1.0', db: '1.0', ref: (a, b) => a + b, dra: () => 1, drb: () => 1, domainB: normal },
  { name: 'sub', fwd: 'a - b', da: '1.0', db: '-1.0', ref: (a, b) => a - b, dra: () => 1, drb: () => -1, domainB: normal },
  { name: 'mul', fwd: 'a * b', da: 'b', db: 'a', ref: (a, b) => a * b, dra: (_a, b) => b, drb: (a) => a, domainB: normal },
  {
    name: 'div',
    fwd: 'a / b',
    da: '1.0 / b',
    db: '-a / (b * b)',
    ref: (a, b) => a / b,
    dra: (_a, b) => 1 / b,
    drb: (a, b) => -a / (b * b),
    domainB: { kind: 'avoid', points: [0], gap: 0.5 },
  },
];
