// One loader for every kind of prior file, dispatched by `__metadata__.config.kind`:
//   "sgilo-score-vit"       the ViT (samplers/score/checkpoint.ts), or a SGILO PyTorch `.pt` file;
//                           a ViT file that also holds a Gaussian (config.gaussian, tensors
//                           gaussian.*) is the residual model: eps = eps_gaussian + eps_vit
//   "sgilo-score-gaussian"  the closed-form Gaussian (samplers/score/gaussian.ts)
//   "sgilo-score-mixture"   the closed-form Gaussian mixture (samplers/score/mixture.ts)
// Whatever the kind, the caller gets an EpsModel on normalized data with its normalization, SDE and
// provenance, which is all the samplers, SGILO's prior move and eval-score need.

import { isSafetensors, loadModel } from '../../engine/io/index.ts';
import type { Tensor } from '../../engine/tensor.ts';
import { add } from '../../engine/ops/elementwise.ts';
import { loadScoreModel, type LoadedScoreModel } from './checkpoint.ts';
import { GAUSSIAN_MODEL_KIND, GaussianScore, readGaussianModel } from './gaussian.ts';
import { MIXTURE_MODEL_KIND, MixtureScore, readMixtureModel } from './mixture.ts';
import type { Normalization } from './data.ts';
import type { EpsModel } from './sample.ts';
import type { VPSDEConfig } from './vpsde.ts';

export type PriorKind = 'vit' | 'gaussian' | 'mixture' | 'residual';

export interface LoadedPrior {
  kind: PriorKind;
  model: EpsModel & { dispose(): void };
  /** One sample's shape [C, H, W]. */
  shape: [number, number, number];
  normalization: Normalization | null;
  sde: VPSDEConfig;
  data: Record<string, string>;
  /** The ViT file as loaded (vit and residual kinds). */
  vit?: LoadedScoreModel;
  /** The Gaussian (gaussian kind; the base of a residual model, or the Gaussian under its mixture). */
  gaussian?: GaussianScore;
  /** The mixture (mixture kind; the base of a residual model on a mixture). */
  mixture?: MixtureScore;
}

/** The kind named in a model file's config (PyTorch files: "sgilo-score-vit"). */
export function priorFileKind(bytes: Uint8Array): string {
  if (!isSafetensors(bytes)) return 'sgilo-score-vit';
  const kind = (loadModel(bytes).config as { kind?: unknown } | null)?.kind;
  return typeof kind === 'string' ? kind : String(kind);
}

/** A residual model: the Gaussian's closed-form eps plus the network's correction. */
export class ResidualEps implements EpsModel {
  constructor(
    readonly base: EpsModel & { dispose(): void },
    readonly net: EpsModel & { dispose(): void },
  ) {}

  forward(x: Tensor, t: Tensor): Tensor {
    return add(this.base.forward(x, t), this.net.forward(x, t));
  }

  dispose(): void {
    this.base.dispose();
    this.net.dispose();
  }
}

/** Loads any prior file; `name` labels errors. PyTorch files take `heads` (default 1). */
export async function loadPrior(bytes: Uint8Array, name = 'prior', options: { heads?: number } = {}): Promise<LoadedPrior> {
  const kind = priorFileKind(bytes);
  if (kind === GAUSSIAN_MODEL_KIND) {
    const { config, params } = readGaussianModel(bytes, name);
    const gaussian = new GaussianScore(config, params);
    return { kind: 'gaussian', model: gaussian, shape: config.shape, normalization: config.normalization, sde: config.sde, data: config.data, gaussian };
  }
  if (kind === MIXTURE_MODEL_KIND) {
    const { config, base, mixture: params } = readMixtureModel(bytes, name);
    const mixture = new MixtureScore(config, base, params);
    return { kind: 'mixture', model: mixture, shape: config.shape, normalization: config.normalization, sde: config.sde, data: config.data, mixture };
  }
  const vit = await loadScoreModel(bytes, options);
  const c = vit.config;
  const shape: [number, number, number] = [c.vit.channels, c.vit.height, c.vit.width];
  const common = { shape, normalization: c.normalization, sde: c.sde, data: c.data, vit };
  if (vit.base instanceof MixtureScore) return { ...common, kind: 'residual', model: new ResidualEps(vit.base, vit.net), gaussian: vit.base.gaussian, mixture: vit.base };
  if (vit.base) return { ...common, kind: 'residual', model: new ResidualEps(vit.base, vit.net), gaussian: vit.base };
  return { ...common, kind: 'vit', model: vit.net };
}
