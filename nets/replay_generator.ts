// `replay generator`: computes, with our engine, every `out.*` and `grad.*` quantity of the
// reference fixture (test/fixtures/reference-tiny/README.md) from the `in.*` tensors alone, so any
// reference checkpoint can be checked from the command line.
//
// Inputs: in.z [N,S], in.noise.i [N,1,r,r], in.upstream R [N,3,size,size], in.wplus [N,2L,S], and
// optionally in.latent_avg [S], the truncation centre to use instead of the network's latent_avg.
// Gradients are of sum(image * R), i.e. backward with upstream R.

import { Tensor, scope, tensor } from '../engine/tensor.ts';
import { grad, clearTape, noGrad } from '../engine/tape.ts';
import type { HostTensor } from '../engine/host_tensor.ts';
import { StyleGAN2, numBlocks, numNoises } from './stylegan2.ts';

export type TensorMap = Map<string, HostTensor<Float32Array>>;

/** A tensor read back to the host, as the replay commands write it. */
export async function host(t: Tensor): Promise<HostTensor<Float32Array>> {
  return { dtype: 'float32', shape: [...t.shape], data: await t.readF32() };
}

/** Uploads the named input of a replay (`what` names the command in the error for a missing one). */
export function inputReader(what: string, inputs: TensorMap): (name: string) => Tensor {
  return (name) => {
    const t = inputs.get(name);
    if (!t) throw new Error(`${what}: the inputs file has no "${name}"`);
    return tensor(t.data, t.shape);
  };
}

/**
 * Every quantity is computed in a scope of its own and read back before the next starts, so the
 * activations (and the tape) of one pass are freed before the next pass allocates: the pool's
 * peak is that of the largest single pass (a forward + backward), not the sum of all of them.
 */
export async function replayGenerator(g: StyleGAN2, inputs: TensorMap, targets?: readonly string[]): Promise<TensorMap> {
  // A pass runs when one of its quantities is wanted (all by default); the features of block k-1
  // when the pass from layer k is wanted too, as its input.
  const wanted = (name: string) => !targets || targets.some((t) => name === t || (t.endsWith('*') && name.startsWith(t.slice(0, -1))));
  const L = numBlocks(g.config);
  const fromLayerWanted = (k: number) => ['out.image_from_layer', 'grad.layer_in', 'grad.wplus_from_layer'].some((n) => wanted(`${n}.${k}`));
  const get = inputReader('replay generator', inputs);
  const out: TensorMap = new Map();
  /** Runs one pass in its own scope and reads its results back; the tape is cleared after it. */
  const pass = async (names: string[], fn: () => Tensor[], needed = false) => {
    if (!needed && !names.some(wanted)) return;
    const got = await scope(async () => Promise.all(fn().map(host))).finally(clearTape);
    names.forEach((name, i) => out.set(name, got[i]));
  };
  await scope(async () => {
    const z = get('in.z');
    const R = get('in.upstream');
    const noise = Array.from({ length: numNoises(g.config) }, (_, i) => get(`in.noise.${i}`));
    const center = inputs.has('in.latent_avg') ? get('in.latent_avg') : undefined;
    const wplus = get('in.wplus');
    await pass(['out.w'], () => [g.mapping(z)]);
    await pass(['out.image_from_z'], () => [g.generate(z, { noise })]);
    await pass(['out.image_from_z_const_noise'], () => [g.generate(z)]);
    await pass(['out.image_truncated'], () => [g.generate(z, { noise, psi: 0.7, center })]);

    await pass(['out.image_from_wplus', 'grad.wplus', ...noise.map((_, i) => `grad.noise.${i}`)], () => {
      wplus.requireGrad();
      noise.forEach((n) => n.requireGrad());
      const image = g.synthesis({ wplus, noise });
      const grads = grad(image, [wplus, ...noise], { upstream: R });
      noise.forEach((n) => n.requireGrad(false));
      wplus.requireGrad(false);
      return [image, ...grads];
    });

    for (let k = 0; k < L - 1; k++) {
      await pass([`out.features.${k}`, `out.rgb_skip.${k}`], () => {
        const { features, rgb } = noGrad(() => g.blocks({ wplus, noise }, 0, k));
        return [features, rgb];
      }, k + 1 < L && fromLayerWanted(k + 1));
    }
    for (let k = 1; k < L; k++) {
      const f = out.get(`out.features.${k - 1}`)!;
      await pass([`out.image_from_layer.${k}`, `grad.layer_in.${k}`, `grad.wplus_from_layer.${k}`], () => {
        const layerIn = tensor(f.data, f.shape).requireGrad();
        const w = get('in.wplus').requireGrad();
        const image = g.fromLayer({ wplus: w, noise }, k, layerIn);
        return [image, ...grad(image, [layerIn, w], { upstream: R })];
      });
    }
  }).finally(clearTape);
  for (const name of out.keys()) if (!wanted(name)) out.delete(name);
  return out;
}
