// The two differentiable ops the random ReLU generators are made of, batched over independent
// network instances. Kernels: shaders/relu_generator.wgsl; float64 references:
// engine/reference/relu_generator.ts; gradcheck rows: engine/cases/relu_generator.ts.
//
// Legend: I = instances (independent networks), C = chains (rows) per instance, n_in / n_out =
// layer widths, m = measurements.
//
//   dense(x [I, C, n_in], w [I, n_out, n_in], act) -> [I, C, n_out]   act(x_c W_i^T) per row
//   halfSqErr(pred [I, C, m], target [I, m])       -> [I, C]          0.5 ||pred_c - target_i||^2
//
// Backward rules compute only what the tape needs: the weight gradient of `dense` is dispatched
// only when `w` requires grad, and `halfSqErr` treats `target` as a constant (the measurements y),
// so a sampler asking for d loss / d z pays for input gradients alone.

import { defineKernel, grid1d } from '../kernel.ts';
import { record } from '../tape.ts';
import { Tensor, empty } from '../tensor.ts';
import { shapeString } from '../shape.ts';

const WG_COLS = 64; // output columns per dense workgroup (16 invocations x 4)
const WG_ROWS = 16; // output rows per dense workgroup (4 invocations x 4)

const denseBindings = { x: 'read', w: 'read', y: 'read_write', params: 'uniform' } as const;
const K = {
  forward: defineKernel({ shader: 'relu_generator', entry: 'dense_forward', bindings: denseBindings }),
  backwardInput: defineKernel({
    shader: 'relu_generator',
    entry: 'dense_backward_input',
    bindings: { gy: 'read', w: 'read', gx: 'read_write', params: 'uniform', y_saved: 'read' },
  }),
  backwardWeight: defineKernel({
    shader: 'relu_generator',
    entry: 'dense_backward_weight',
    bindings: { gy: 'read', params: 'uniform', y_saved: 'read', x_saved: 'read', gw: 'read_write' },
  }),
  lossForward: defineKernel({ shader: 'relu_generator', entry: 'half_sq_err_forward', bindings: { pred: 'read', meas: 'read', loss: 'read_write', lparams: 'uniform' } }),
  lossBackward: defineKernel({
    shader: 'relu_generator',
    entry: 'half_sq_err_backward',
    bindings: { pred: 'read', meas: 'read', lparams: 'uniform', gloss: 'read', gpred: 'read_write' },
  }),
};

export type Activation = 'relu' | 'linear';

function requireF32Rank(op: string, name: string, t: Tensor, rank: number, layout: string): void {
  if (!(t instanceof Tensor)) throw new TypeError(`${op}: ${name} must be a Tensor`);
  if (t.dtype !== 'f32') throw new TypeError(`${op}: ${name} must be f32, got ${t.dtype}`);
  if (t.rank !== rank) throw new RangeError(`${op}: ${name} must be ${layout}, got shape ${shapeString(t.shape)}`);
}

/** act(x W^T) for each instance: x [I, C, n_in], w [I, n_out, n_in] -> [I, C, n_out]. */
export function dense(x: Tensor, w: Tensor, act: Activation = 'relu'): Tensor {
  requireF32Rank('dense', 'x', x, 3, '[instances, chains, n_in]');
  requireF32Rank('dense', 'w', w, 3, '[instances, n_out, n_in]');
  if (act !== 'relu' && act !== 'linear') throw new RangeError(`dense: activation must be "relu" or "linear", got ${JSON.stringify(act)}`);
  const [I, C, nIn] = x.shape;
  const [Iw, nOut, nInW] = w.shape;
  if (Iw !== I) throw new RangeError(`dense: x ${shapeString(x.shape)} has ${I} instances but w ${shapeString(w.shape)} has ${Iw}`);
  if (nInW !== nIn) throw new RangeError(`dense: x ${shapeString(x.shape)} has n_in=${nIn} but w ${shapeString(w.shape)} expects ${nInW}`);
  const params = { chains: C, n_in: nIn, n_out: nOut, relu: act === 'relu' ? 1 : 0 };
  const y = empty([I, C, nOut]);
  K.forward.dispatch({ x, w, y, params }, [Math.ceil(nOut / WG_COLS), Math.ceil(C / WG_ROWS), I]);
  record(`dense<${act}>`, [x, w], y, [x, w, y], (gy) => {
    let gx: Tensor | null = null;
    let gw: Tensor | null = null;
    if (x.requiresGrad) {
      gx = empty(x.shape);
      K.backwardInput.dispatch({ gy, w, gx, params, y_saved: y }, [Math.ceil(nIn / WG_COLS), Math.ceil(C / WG_ROWS), I]);
    }
    if (w.requiresGrad) {
      gw = empty(w.shape);
      K.backwardWeight.dispatch({ gy, params, y_saved: y, x_saved: x, gw }, [Math.ceil(nIn / WG_COLS), Math.ceil(nOut / WG_ROWS), I]);
    }
    return [gx, gw];
  });
  return y;
}

/** 0.5 ||pred[i, c] - target[i]||^2 per row: pred [I, C, m], target [I, m] (a constant) -> [I, C]. */
export function halfSqErr(pred: Tensor, target: Tensor): Tensor {
  requireF32Rank('halfSqErr', 'pred', pred, 3, '[instances, chains, m]');
  requireF32Rank('halfSqErr', 'target', target, 2, '[instances, m]');
  const [I, C, m] = pred.shape;
  if (target.shape[0] !== I || target.shape[1] !== m) {
    throw new RangeError(`halfSqErr: target ${shapeString(target.shape)} must be [${I}, ${m}] to match pred ${shapeString(pred.shape)}`);
  }
  if (target.requiresGrad) throw new Error('halfSqErr: target is a constant (the measurements); it must not require grad');
  const lparams = { rows: I * C, chains: C, m };
  const loss = empty([I, C]);
  K.lossForward.dispatch({ pred, meas: target, loss, lparams }, grid1d(Math.ceil((I * C) / 64)));
  record('half_sq_err', [pred], loss, [pred, target], (gloss) => {
    const gpred = empty(pred.shape);
    K.lossBackward.dispatch({ pred, meas: target, lparams, gloss, gpred }, grid1d(Math.ceil(pred.size / 64)));
    return [gpred];
  });
  return loss;
}
