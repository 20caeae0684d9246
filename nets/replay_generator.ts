// `replay generator`: computes, with our engine, every `out.*` and `grad.*` quantity of the
// reference fixture (test/fixtures/reference-tiny/README.md) from the `in.*` tensors alone, so any
// reference checkpoint can be checked from the command line.
//
// Inputs: in.z [N,S], in.noise.i [N,1,r,r], in.upstream R [N,3,size,size], in.wplus [N,2L,S], and
// optionally in.latent_avg [S], the truncation centre to use instead of the network's latent_avg.
// Gradients are of sum(image * R), i.e. backward with upstream R.

import { Tensor, scope, tensor } from '../engine/tensor.ts';
import { grad, clearTape } from '../engine/tape.ts';
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

export async function replayGenerator(g: StyleGAN2, inputs: TensorMap): Promise<TensorMap> {
  const get = inputReader('replay generator', inputs);
  const out: TensorMap = new Map();
  const L = numBlocks(g.config);
  await scope(async () => {
    const z = get('in.z');
    const R = get('in.upstream');
    const noise = Array.from({ length: numNoises(g.config) }, (_, i) => get(`in.noise.${i}`));
    out.set('out.w', await host(g.mapping(z)));
    out.set('out.image_from_z', await host(g.generate(z, { noise })));
    out.set('out.image_from_z_const_noise', await host(g.generate(z)));
    const center = inputs.has('in.latent_avg') ? get('in.latent_avg') : undefined;
    out.set('out.image_truncated', await host(g.generate(z, { noise, psi: 0.7, center })));

    const wplus = get('in.wplus').requireGrad();
    noise.forEach((n) => n.requireGrad());
    const image = g.synthesis({ wplus, noise });
    out.set('out.image_from_wplus', await host(image));
    const [gw, ...gn] = grad(image, [wplus, ...noise], { upstream: R });
    out.set('grad.wplus', await host(gw));
    for (const [i, t] of gn.entries()) out.set(`grad.noise.${i}`, await host(t));
    noise.forEach((n) => n.requireGrad(false));
    wplus.requireGrad(false);

    const features: Tensor[] = [];
    for (let k = 0; k < L - 1; k++) {
      const { features: f, rgb } = g.blocks({ wplus, noise }, 0, k);
      features.push(f);
      out.set(`out.features.${k}`, await host(f));
      out.set(`out.rgb_skip.${k}`, await host(rgb));
    }
    for (let k = 1; k < L; k++) {
      const layerIn = features[k - 1];
      const w = tensor(await wplus.readF32(), wplus.shape).requireGrad();
      layerIn.requireGrad();
      const img = g.fromLayer({ wplus: w, noise }, k, layerIn);
      out.set(`out.image_from_layer.${k}`, await host(img));
      const [gl, gwk] = grad(img, [layerIn, w], { upstream: R });
      out.set(`grad.layer_in.${k}`, await host(gl));
      out.set(`grad.wplus_from_layer.${k}`, await host(gwk));
      layerIn.requireGrad(false);
    }
  }).finally(clearTape);
  return out;
}
