// Gradcheck rows of the random ReLU generator's ops (engine/ops/relu_generator.ts): the batched
// dense layer (relu and linear, one and several instances, shapes past one 64 x 16 workgroup tile
// and not multiples of the 4 x 4 register block) and the per-row half squared error.
// Included in the table by allGradCases() (engine/cases/index.ts).
//
// The target of half_sq_err is a constant of the case (the measurements y are never
// differentiated), drawn once with float32-exact values.

import { TOLERANCES, type GradCase } from '../gradcheck.ts';
import { dense, halfSqErr, type Activation } from '../ops/relu_generator.ts';
import { denseForward, denseVjp, halfSqErrForward, halfSqErrVjp } from '../reference/relu_generator.ts';
import { HostRandom, host } from '../reference/host.ts';
import { tensor } from '../tensor.ts';

function denseCase(I: number, C: number, nIn: number, nOut: number, act: Activation): GradCase {
  return {
    name: `dense[${act}, ${I}x${C}x${nIn} -> ${nOut}]`,
    inputs: [{ shape: [I, C, nIn] }, { shape: [I, nOut, nIn] }],
    // Each output is a float32 dot product of n_in terms, like matmul.
    tol: TOLERANCES.matmul,
    forward: ([x, w]) => denseForward(x, w, act),
    vjp: ([x, w], gy) => denseVjp(x, w, act, gy),
    gpu: ([x, w]) => dense(x, w, act),
  };
}

function halfSqErrCase(I: number, C: number, m: number): GradCase {
  const rng = new HostRandom(99);
  const target = host([I, m], Float64Array.from({ length: I * m }, () => Math.fround(rng.normal())));
  return {
    name: `half_sq_err[${I}x${C}x${m}]`,
    inputs: [{ shape: [I, C, m] }],
    tol: TOLERANCES.reduction,
    forward: ([pred]) => halfSqErrForward(pred, target),
    vjp: ([pred], gy) => [halfSqErrVjp(pred, target, gy)],
    gpu: ([pred]) => halfSqErr(pred, tensor(target.data, target.shape)),
  };
}

export function reluGeneratorGradCases(): GradCase[] {
  return [
    denseCase(1, 5, 3, 7, 'relu'),
    denseCase(2, 3, 6, 5, 'linear'),
    denseCase(3, 17, 9, 70, 'relu'),
    halfSqErrCase(2, 3, 5),
    halfSqErrCase(3, 70, 2),
  ];
}
