// Reverse-mode autodiff with hand-written backward rules.
//
// Ops call `record()` after computing their output. If gradients are enabled and any input
// requires grad, a node (inputs, output, tensors saved for backward, backward rule) is appended
// to the global tape and the output is marked as requiring grad. `grad(root, wrt)` walks the tape
// backwards from `root`, calls each rule with the upstream gradient, accumulates gradients per
// tensor, and returns the gradients of `wrt`; `backward(root)` adds them into the `.grad` of every
// leaf that requires grad (PyTorch-style). Both clear the tape afterwards unless asked not to.
//
// Backward rules run under `noGrad`, so they are never recorded themselves (first order only).
// Gradients are summed with engine/accumulate.ts (the `add` op's own kernels), since the tape sits
// below the ops and imports none of them. A node may instead add its input's gradient into the
// running sum in place (`accumulate`, e.g. a slice scatters-and-adds its window), which saves the
// zero-filled copy and the add; every gradient in the running sums is the tape's own tensor (rules
// return fresh tensors), so the in-place add touches nothing else. The caller's `upstream` is never
// written.

import { Tensor, full, type TapeNode } from './tensor.ts';
import { sameShape, shapeString } from './shape.ts';
import { accumulate } from './accumulate.ts';

export type { TapeNode } from './tensor.ts';

const tape: TapeNode[] = [];
let disabled = 0;

export function gradEnabled(): boolean {
  return disabled === 0;
}

/** Runs `fn` without recording anything on the tape. */
export function noGrad<T>(fn: () => T): T {
  disabled++;
  try {
    return fn();
  } finally {
    disabled--;
  }
}

export function record(op: string, inputs: Tensor[], output: Tensor, saved: Tensor[], backward: TapeNode['backward'], accumulate?: TapeNode['accumulate']): void {
  if (disabled > 0 || !inputs.some((t) => t.requiresGrad)) return;
  for (const s of saved) s.retain();
  const node: TapeNode = { op, inputs, output, saved, backward, accumulate };
  output.requiresGrad = true;
  output.node = node;
  tape.push(node);
}

export function tapeLength(): number {
  return tape.length;
}

/** Forgets every recorded node and releases the tensors saved for backward. */
export function clearTape(): void {
  for (const node of tape.splice(0)) {
    node.output.node = null;
    for (const s of node.saved) s.release();
  }
}

export interface GradOptions {
  /** Gradient of the root (default: ones, i.e. d(sum root)). Not consumed. */
  upstream?: Tensor;
  /** Keep the tape for another backward pass. */
  retainTape?: boolean;
}

/** Gradients of `root` (contracted with `upstream`) with respect to each tensor in `wrt`. */
export function grad(root: Tensor, wrt: readonly Tensor[], options: GradOptions = {}): Tensor[] {
  const { upstream } = options;
  if (upstream && !sameShape(upstream.shape, root.shape)) {
    throw new RangeError(`grad: upstream gradient ${shapeString(upstream.shape)} does not match the root ${shapeString(root.shape)}`);
  }
  const wanted = new Set(wrt);
  const grads = new Map<Tensor, Tensor>();
  const seed = upstream ?? full(root.shape, 1);
  grads.set(root, seed);
  const owned = (g: Tensor) => g !== upstream;

  noGrad(() => {
    for (let i = tape.length - 1; i >= 0; i--) {
      const node = tape[i];
      const gy = grads.get(node.output);
      if (!gy) continue;
      const into = node.accumulate && node.inputs.length === 1 ? grads.get(node.inputs[0]) : undefined;
      if (into && owned(into)) {
        // The running sum is the tape's own tensor: the node adds its gradient into it in place.
        node.accumulate!(gy, into);
        if (!wanted.has(node.output)) {
          grads.delete(node.output);
          if (owned(gy)) gy.dispose();
        }
        continue;
      }
      const gin = node.backward(gy, node.inputs.map((t) => t.requiresGrad));
      node.inputs.forEach((input, j) => {
        const g = gin[j];
        if (!g) return;
        if (!input.requiresGrad) {
          g.dispose();
          return;
        }
        if (!sameShape(g.shape, input.shape)) {
          throw new Error(`grad: backward of ${node.op} gave ${shapeString(g.shape)} for input ${j} of shape ${shapeString(input.shape)}`);
        }
        const prev = grads.get(input);
        if (prev) {
          grads.set(input, accumulate(prev, g));
          if (owned(prev)) prev.dispose();
          g.dispose();
        } else grads.set(input, g);
      });
      if (!wanted.has(node.output)) {
        grads.delete(node.output);
        if (owned(gy)) gy.dispose();
      }
    }
  });

  const result = wrt.map((t) => {
    const g = grads.get(t);
    if (!g) return full(t.shape, 0);
    // The caller owns what we return; never hand back the caller's own upstream tensor.
    return owned(g) ? g : noGrad(() => accumulate(g, full(g.shape, 0)));
  });
  const returned = new Set(result);
  for (const g of grads.values()) if (!returned.has(g) && owned(g)) g.dispose();
  if (!options.retainTape) clearTape();
  return result;
}

/** Adds d(root)/d(leaf) into `leaf.grad` for every leaf on the tape that requires grad. */
export function backward(root: Tensor, options: GradOptions = {}): void {
  const leaves = new Set<Tensor>();
  for (const node of tape) for (const t of node.inputs) if (t.requiresGrad && !t.node) leaves.add(t);
  if (root.requiresGrad && !root.node) leaves.add(root);
  const list = [...leaves];
  const gs = grad(root, list, options);
  list.forEach((leaf, i) => {
    if (leaf.grad) {
      const sum = noGrad(() => accumulate(leaf.grad!, gs[i]));
      leaf.grad.dispose();
      gs[i].dispose();
      leaf.grad = sum;
    } else leaf.grad = gs[i];
    leaf.grad.keep();
  });
}
