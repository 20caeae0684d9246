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
import { add } from '../engine/ops/elementwise.ts';
import { upsample2d } from '../engine/ops/upfirdn2d.ts';
import { StyleGAN2, numBlocks, numNoises, type BlockTrace } from './stylegan2.ts';

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
 * Each pass runs in a scope of its own and is read back before the next starts, so the
 * activations (and the tape) of one pass are freed before the next pass allocates: the pool's
 * peak is that of the largest pass (the forward + backward from W+), not the sum of all of them.
 *
 * The per-block quantities come from that W+ pass (synthesisPass): a split at block k computes,
 * on the same inputs, exactly the ops of blocks k.. of the full pass, so its image, its input's
 * gradient and its W+ rows' gradients are read off the full pass's trace instead of running
 * a forward and a backward per block.
 */
export async function replayGenerator(g: StyleGAN2, inputs: TensorMap, targets?: readonly string[]): Promise<TensorMap> {
  // A pass runs when one of its quantities is wanted (all by default).
  const wanted = (name: string) => !targets || targets.some((t) => name === t || (t.endsWith('*') && name.startsWith(t.slice(0, -1))));
  const get = inputReader('replay generator', inputs);
  const out: TensorMap = new Map();
  /** Runs one pass in its own scope and reads its results back; the tape is cleared after it. */
  const pass = async (names: string[], fn: () => Tensor[]) => {
    if (!names.some(wanted)) return;
    const got = await scope(async () => Promise.all(fn().map(host))).finally(clearTape);
    names.forEach((name, i) => out.set(name, got[i]));
  };
  await scope(async () => {
    const z = get('in.z');
    const noise = Array.from({ length: numNoises(g.config) }, (_, i) => get(`in.noise.${i}`));
    const center = inputs.has('in.latent_avg') ? get('in.latent_avg') : undefined;
    await pass(['out.w'], () => [g.mapping(z)]);
    await pass(['out.image_from_z'], () => [g.generate(z, { noise })]);
    await pass(['out.image_from_z_const_noise'], () => [g.generate(z)]);
    await pass(['out.image_truncated'], () => [g.generate(z, { noise, psi: 0.7, center })]);
    await synthesisPass(g, get, noise, wanted, out);
  }).finally(clearTape);
  return out;
}

/** The names of the W+ pass, in the order the replay writes them. */
function synthesisNames(L: number, noises: number): string[] {
  const names = ['out.image_from_wplus', 'grad.wplus', ...Array.from({ length: noises }, (_, i) => `grad.noise.${i}`)];
  for (let k = 0; k < L - 1; k++) names.push(`out.features.${k}`, `out.rgb_skip.${k}`);
  for (let k = 1; k < L; k++) names.push(`out.image_from_layer.${k}`, `grad.layer_in.${k}`, `grad.wplus_from_layer.${k}`);
  return names;
}

/**
 * Image from W+ and its gradients, the features and RGB skip after each block, and for each split
 * block k the image from block k on and the gradients of sum(image_from_layer.k * R) for
 * layer_in (the copy of the features that only block k reads) and W+ (the row uses of blocks
 * k..). One forward and at most one backward; only what is wanted is kept and read back.
 */
async function synthesisPass(g: StyleGAN2, get: (name: string) => Tensor, noise: Tensor[], wanted: (name: string) => boolean, out: TensorMap): Promise<void> {
  const L = numBlocks(g.config);
  const names = synthesisNames(L, noise.length).filter(wanted);
  if (!names.length) return;
  const want = (prefix: string) => names.some((n) => n.startsWith(prefix));
  const backward = want('grad.');
  const got = new Map<string, HostTensor<Float32Array>>();
  await scope(async () => {
    const wplus = get('in.wplus');
    const R = get('in.upstream');
    const trace: BlockTrace = { splitInputs: want('grad.layer_in.'), records: [] };
    if (backward) wplus.requireGrad();
    if (want('grad.noise.')) noise.forEach((n) => n.requireGrad());
    const image = g.synthesis({ wplus, noise }, trace);
    const blocks = trace.records;
    const fromLayerRows = want('grad.wplus_from_layer.');
    const uses = fromLayerRows ? blocks.slice(1).flatMap((b) => b.rows.map(([, t]) => t)) : [];
    const splitInputs = blocks.map((b) => b.input).filter((t): t is Tensor => t !== undefined);
    const read = async (name: string, t: () => Tensor) => {
      if (wanted(name)) got.set(name, await host(t()));
    };
    await read('out.image_from_wplus', () => image);
    for (let k = 0; k < L - 1; k++) {
      await read(`out.features.${k}`, () => blocks[k].features);
      await read(`out.rgb_skip.${k}`, () => blocks[k].rgb);
    }
    if (backward) {
      const grads = grad(image, [wplus, ...noise, ...splitInputs, ...uses], { upstream: R });
      noise.forEach((n) => n.requireGrad(false));
      wplus.requireGrad(false);
      const [gw, ...rest] = grads;
      const gNoise = rest.splice(0, noise.length);
      const gInputs = rest.splice(0, splitInputs.length);
      await read('grad.wplus', () => gw);
      for (let i = 0; i < noise.length; i++) await read(`grad.noise.${i}`, () => gNoise[i]);
      for (let k = 1; k < L; k++) await read(`grad.layer_in.${k}`, () => gInputs[k - 1]);
      if (fromLayerRows) {
        const gUses = await Promise.all(rest.map(host));
        const [N, rowsN, S] = wplus.shape;
        let u = uses.length;
        // Block k's uses are the last ones not yet taken: walking k down adds each block's rows once.
        const acc = new Float32Array(N * rowsN * S);
        for (let k = L - 1; k >= 1; k--) {
          for (let j = blocks[k].rows.length - 1; j >= 0; j--) {
            const gRow = gUses[--u].data;
            const r = blocks[k].rows[j][0];
            for (let n = 0; n < N; n++) for (let s = 0; s < S; s++) acc[(n * rowsN + r) * S + s] += gRow[n * S + s];
          }
          if (wanted(`grad.wplus_from_layer.${k}`)) got.set(`grad.wplus_from_layer.${k}`, { dtype: 'float32', shape: [N, rowsN, S], data: acc.slice() });
        }
      }
    }
    // A split at block k restarts the RGB skip there: ToRGB of block k, then the same upsample-and-add as the full pass.
    for (let k = 1; k < L; k++) {
      const name = `out.image_from_layer.${k}`;
      if (!wanted(name)) continue;
      got.set(name, await scope(async () => host(noGrad(() => blocks.slice(k + 1).reduce((rgb, b) => add(b.toRgb, upsample2d(rgb)), blocks[k].toRgb)))));
    }
  }).finally(clearTape);
  for (const name of names) out.set(name, got.get(name)!);
}
