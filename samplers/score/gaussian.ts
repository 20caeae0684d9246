// The closed-form Gaussian prior: x0 ~ N(mu, C) on the normalized data (the same global min/max
// normalization as the ViT models), and its exact noise predictor under the VP-SDE
// (docs/design.md, the VP-SDE and the score model):
//
//   x_t = a x0 + s z, a = m(t), s = std(t)  =>  x_t ~ N(a mu, a^2 C + s^2 I)
//   eps*(x, t) = E[z | x_t = x] = s (a^2 C + s^2 I)^-1 (x - a mu),   score = -eps* / s
//
// C is stored as its eigendecomposition, so every t is a diagonal solve in one eigenbasis:
//   C = V^T diag(lam) V + sigma2 (I - V^T V),   V [r, n] orthonormal rows (eigenvectors)
// With r = n (full covariance) the residual term is absent. With r < n the remaining n - r
// directions share one variance sigma2 (their mean variance), which keeps them in the same
// eigenbasis: (a^2 C + s^2 I)^-1 = V^T diag(g) V + h (I - V^T V), g = 1 / (a^2 lam + s^2),
// h = 1 / (a^2 sigma2 + s^2). So, with c = x - a mu and w = c V^T [B, r]:
//   eps = s ((w * (g - h)) V + h c)          (full: eps = s (w * g) V)
//
// Time is per sample ([B], on the GPU, like the ViT's input). s^2 = 1 - m^2 loses its digits in
// float32 at small t (t = 1e-3: s^2 = 1.1e-4 beside an ulp of 6e-8 at 1), so it is computed as
// -expm1(u), u = 2 log m = -t (beta0 + t (beta1 - beta0) / 2), split at u_c = max(u, -0.1):
//   -expm1(u) = -expm1(u_c) + e^{u_c} (1 - e^{u - u_c})
// where -expm1(u_c) is its Taylor series to u_c^6 (relative error < 2e-9 for |u_c| <= 0.1) and
// the second term is either exactly 0 or added to a value of at least 0.095.
//
// File (engine safetensors, saveModel): tensors `mean` [n], `eigvecs` [r, n], `eigvals` [r]
// (float32); __metadata__.config = { kind: "sgilo-score-gaussian", shape: [C, H, W], rank: r,
// residualVariance: sigma2, normalization: {min, max} | null, sde, data: {...} }.

import { Tensor, tensor } from '../../engine/tensor.ts';
import { add, affine, clamp, div, exp, mul, sqrt, sub } from '../../engine/ops/elementwise.ts';
import { matmul } from '../../engine/ops/matmul.ts';
import { reshape } from '../../engine/ops/layout.ts';
import { loadModel, saveModel, type HostTensor as IoTensor } from '../../engine/io/index.ts';
import { shapeString } from '../../engine/shape.ts';
import { DEFAULT_VPSDE, VPSDE, type VPSDEConfig } from './vpsde.ts';
import type { Normalization } from './data.ts';
import type { EpsModel } from './sample.ts';

export const GAUSSIAN_MODEL_KIND = 'sgilo-score-gaussian';

export interface GaussianConfig {
  kind: typeof GAUSSIAN_MODEL_KIND;
  /** One sample's shape [C, H, W]; n = C H W. */
  shape: [number, number, number];
  /** Number of stored eigen-directions (n: full covariance). */
  rank: number;
  /** Variance of each of the n - rank remaining directions (0 when rank = n). */
  residualVariance: number;
  normalization: Normalization | null;
  sde: VPSDEConfig;
  data: Record<string, string>;
}

/** The fitted distribution in float64 on the host. */
export interface GaussianParams {
  mean: Float64Array;
  /** [r, n] row-major, orthonormal rows, by descending eigenvalue. */
  vectors: Float64Array;
  /** [r], descending, >= 0. */
  values: Float64Array;
  /** Variance of the directions orthogonal to the rows of `vectors` (0 for a full fit). */
  residualVariance: number;
}

export function gaussianDim(c: Pick<GaussianConfig, 'shape'>): number {
  return c.shape[0] * c.shape[1] * c.shape[2];
}

/** The closed-form eps* of a Gaussian, as an EpsModel on the GPU. */
export class GaussianScore implements EpsModel {
  readonly n: number;
  readonly rank: number;
  private readonly mean: Tensor; // [1, n]
  private readonly vectors: Tensor; // [r, n]
  private readonly values: Tensor; // [1, r]

  constructor(
    readonly config: GaussianConfig,
    readonly params: GaussianParams,
  ) {
    this.n = gaussianDim(config);
    this.rank = params.values.length;
    const { n, rank: r } = this;
    if (params.mean.length !== n || params.vectors.length !== r * n || r < 1 || r > n) {
      throw new RangeError(`GaussianScore: mean [${params.mean.length}], vectors [${params.vectors.length}], values [${r}] do not fit n = ${n}`);
    }
    if (!(params.residualVariance >= 0) || (r < n && !(params.residualVariance > 0))) throw new RangeError(`GaussianScore: residual variance must be > 0 below full rank, got ${params.residualVariance}`);
    this.mean = tensor(Float32Array.from(params.mean), [1, n]).keep();
    this.vectors = tensor(Float32Array.from(params.vectors), [r, n]).keep();
    this.values = tensor(Float32Array.from(params.values), [1, r]).keep();
  }

  get sde(): VPSDE {
    return new VPSDE(this.config.sde);
  }

  dispose(): void {
    this.mean.dispose();
    this.vectors.dispose();
    this.values.dispose();
  }

  /** eps*(x, t): x [B, C, H, W], t [B] -> [B, C, H, W]. */
  forward(x: Tensor, t: Tensor): Tensor {
    const [C, H, W] = this.config.shape;
    if (x.rank !== 4 || x.shape[1] !== C || x.shape[2] !== H || x.shape[3] !== W) throw new RangeError(`GaussianScore: input must be [B, ${C}, ${H}, ${W}], got ${shapeString(x.shape)}`);
    const B = x.shape[0];
    if (t.rank !== 1 || t.shape[0] !== B) throw new RangeError(`GaussianScore: t must be [${B}], got ${shapeString(t.shape)}`);
    const { a, a2, s2 } = marginalCoefficients(reshape(t, [B, 1]), this.config.sde);
    const s = sqrt(s2);
    const c = sub(reshape(x, [B, this.n]), mul(a, this.mean)); // x - a mu [B, n]
    const w = matmul(c, this.vectors, { transposeB: true }); // [B, r]
    const g = div(s, add(mul(a2, this.values), s2)); // s / (a^2 lam + s^2) [B, r]
    let eps: Tensor;
    if (this.rank === this.n) eps = matmul(mul(w, g), this.vectors);
    else {
      const h = div(s, add(affine(a2, this.params.residualVariance), s2)); // [B, 1]
      eps = add(matmul(mul(w, sub(g, h)), this.vectors), mul(c, h));
    }
    return reshape(eps, [B, C, H, W]);
  }

  /** E||eps*(x_t, t) - z||^2 / n for x0 from this Gaussian: (1/n) sum over directions of a^2 v / (a^2 v + s^2). */
  analyticDsmLoss(t: number): number {
    const sde = this.sde;
    const a2 = sde.meanCoeff(t) ** 2;
    const s2 = sde.std(t) ** 2;
    let sum = 0;
    for (const v of this.params.values) sum += (a2 * v) / (a2 * v + s2);
    const rest = this.n - this.rank;
    if (rest > 0) sum += (rest * a2 * this.params.residualVariance) / (a2 * this.params.residualVariance + s2);
    return sum / this.n;
  }
}

/** a = m(t), a^2 and s^2 = 1 - m(t)^2 (precise at small t, see the header) for t [B, 1] on the GPU. */
export function marginalCoefficients(t: Tensor, c: VPSDEConfig = DEFAULT_VPSDE): { a: Tensor; a2: Tensor; s2: Tensor } {
  const u = mul(t, affine(t, -(c.beta1 - c.beta0) / 2, -c.beta0)); // 2 log m(t) <= 0
  const uc = clamp(u, -0.1, 0);
  // -expm1(uc) = -uc (1 + uc/2 + uc^2/6 + uc^3/24 + uc^4/120 + uc^5/720), Horner form.
  let p = affine(uc, 1 / 720, 1 / 120);
  for (const k of [1 / 24, 1 / 6, 1 / 2, 1]) p = affine(mul(p, uc), 1, k);
  const series = mul(affine(uc, -1), p);
  const s2 = add(series, mul(exp(uc), affine(exp(sub(u, uc)), -1, 1)));
  return { a: exp(affine(u, 0.5)), a2: exp(u), s2 };
}

/** eps* in float64 on the host for one sample x [n] at time t (the same formula, for references). */
export function gaussianEpsHost(p: GaussianParams, x: ArrayLike<number>, t: number, sde = new VPSDE()): Float64Array {
  const n = p.mean.length;
  const r = p.values.length;
  const a = sde.meanCoeff(t);
  const s = sde.std(t);
  const c = Float64Array.from(p.mean, (m, i) => x[i] - a * m);
  const h = r < n ? s / (a * a * p.residualVariance + s * s) : 0;
  const out = Float64Array.from(c, (v) => h * v);
  for (let k = 0; k < r; k++) {
    const row = p.vectors.subarray(k * n, k * n + n);
    let w = 0;
    for (let i = 0; i < n; i++) w += row[i] * c[i];
    const coef = w * (s / (a * a * p.values[k] + s * s) - h);
    for (let i = 0; i < n; i++) out[i] += coef * row[i];
  }
  return out;
}

export function checkGaussianConfig(c: unknown): GaussianConfig {
  const cfg = c as Partial<GaussianConfig>;
  if (!cfg || cfg.kind !== GAUSSIAN_MODEL_KIND) throw new Error(`Gaussian prior: config.kind is ${JSON.stringify(cfg?.kind)}, expected "${GAUSSIAN_MODEL_KIND}"`);
  if (!Array.isArray(cfg.shape) || cfg.shape.length !== 3 || !cfg.shape.every((v) => Number.isInteger(v) && v > 0)) throw new Error(`Gaussian prior: config.shape must be [C, H, W], got ${JSON.stringify(cfg.shape)}`);
  const n = gaussianDim(cfg as GaussianConfig);
  if (!(Number.isInteger(cfg.rank) && cfg.rank! >= 1 && cfg.rank! <= n)) throw new Error(`Gaussian prior: config.rank must be an integer in 1..${n}, got ${JSON.stringify(cfg.rank)}`);
  if (!(typeof cfg.residualVariance === 'number' && cfg.residualVariance >= 0)) throw new Error(`Gaussian prior: config.residualVariance must be a number >= 0, got ${JSON.stringify(cfg.residualVariance)}`);
  const norm = cfg.normalization;
  if (norm !== null && !(norm && Number.isFinite(norm.min) && Number.isFinite(norm.max) && norm.max > norm.min)) throw new Error(`Gaussian prior: config.normalization must be {min, max} with max > min, got ${JSON.stringify(norm)}`);
  return { kind: GAUSSIAN_MODEL_KIND, shape: cfg.shape as [number, number, number], rank: cfg.rank!, residualVariance: cfg.residualVariance, normalization: norm ?? null, sde: { ...DEFAULT_VPSDE, ...cfg.sde }, data: cfg.data ?? {} };
}

/** The tensors of a Gaussian under `prefix` (a residual ViT file keeps them under "gaussian."). */
export function gaussianTensors(p: GaussianParams, prefix = ''): Map<string, IoTensor> {
  const n = p.mean.length;
  const r = p.values.length;
  return new Map<string, IoTensor>([
    [`${prefix}mean`, { dtype: 'float32', shape: [n], data: Float32Array.from(p.mean) }],
    [`${prefix}eigvecs`, { dtype: 'float32', shape: [r, n], data: Float32Array.from(p.vectors) }],
    [`${prefix}eigvals`, { dtype: 'float32', shape: [r], data: Float32Array.from(p.values) }],
  ]);
}

/** The parameters from tensors named as gaussianTensors names them, checked against the config. */
export function gaussianFromTensors(tensors: Map<string, { shape: readonly number[]; data: ArrayLike<number> }>, config: GaussianConfig, prefix = '', what = 'Gaussian prior'): GaussianParams {
  const n = gaussianDim(config);
  const r = config.rank;
  const get = (name: string, shape: number[]) => {
    const t = tensors.get(prefix + name);
    if (!t || t.shape.join() !== shape.join()) throw new Error(`${what}: tensor "${prefix}${name}" must be float32 ${shapeString(shape)}, got ${t ? shapeString(t.shape) : 'none'}`);
    const data = Float64Array.from(t.data);
    if (!data.every(Number.isFinite)) throw new Error(`${what}: tensor "${prefix}${name}" holds NaN or Inf`);
    return data;
  };
  const params: GaussianParams = { mean: get('mean', [n]), vectors: get('eigvecs', [r, n]), values: get('eigvals', [r]), residualVariance: config.residualVariance };
  if (params.values.some((v) => v < 0)) throw new Error(`${what}: negative eigenvalue`);
  return params;
}

/** The config a set of parameters implies (rank and residual variance from the fit). */
export function gaussianConfig(shape: [number, number, number], p: GaussianParams, normalization: Normalization | null, data: Record<string, string> = {}, sde: VPSDEConfig = DEFAULT_VPSDE): GaussianConfig {
  return { kind: GAUSSIAN_MODEL_KIND, shape, rank: p.values.length, residualVariance: p.residualVariance, normalization, sde, data };
}

/** The model file (see the header). */
export function writeGaussianModel(config: GaussianConfig, p: GaussianParams, metadata: Record<string, string> = {}): Uint8Array {
  return saveModel(gaussianTensors(p), { ...config, rank: p.values.length, residualVariance: p.residualVariance }, metadata);
}

/** Reads a model file; `what` names it in errors. */
export function readGaussianModel(bytes: Uint8Array, what = 'Gaussian prior'): { config: GaussianConfig; params: GaussianParams; metadata: Record<string, string> } {
  const file = loadModel(bytes);
  const config = checkGaussianConfig(file.config);
  for (const [name, t] of file.tensors) if (t.dtype !== 'float32' && t.dtype !== 'float64') throw new Error(`${what}: tensor "${name}" is ${t.dtype}, expected float32`);
  const params = gaussianFromTensors(file.tensors as Map<string, { shape: number[]; data: Float32Array }>, config, '', what);
  const { config: _c, ...metadata } = file.metadata;
  return { config, params, metadata };
}
