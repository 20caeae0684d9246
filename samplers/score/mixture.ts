// The Gaussian-mixture prior: the closed-form Gaussian of samplers/score/gaussian.ts, refined by a
// mixture of K Gaussians in its leading P principal coordinates. Features of real images are not
// Gaussian (garment classes, the generator's leaky ReLU bends), and a mixture's eps is as exact
// under the VP-SDE as one Gaussian's, so it is the learned prior with a closed form
// (docs/design.md, "Priors").
//
// Coordinates: u = V_P (x0 - mu) [P], the top P rows of the Gaussian's eigenvectors V. The other
// r - P stored directions (and, below full rank, the n - r residual ones) keep the Gaussian's
// independent variances. In the top coordinates u ~ sum_k pi_k N(m_k, Q_k^T diag(L_k) Q_k), so with
// y = V_P (x_t - a mu) = a u + s z_P:
//   y | k ~ N(a m_k, a^2 S_k + s^2 I),     p_k = Q_k (y - a m_k),   G_k = 1 / (a^2 L_k + s^2)
//   log w_k = log pi_k - 1/2 sum(p_k^2 G_k) + 1/2 sum(log G_k)  (responsibilities: softmax over k)
//   eps_P = s sum_k softmax(w)_k Q_k^T (p_k G_k)
// and the full eps is the Gaussian's with its top P coefficients replaced (see GaussianScore):
//   eps = coef V + h c,  coef_j = w_j (g_j - h) for j >= P,  coef_P = eps_P - h y.
// On the GPU all K components go through one matmul each way: Q_all [P, K P] holds Q_k^T side by
// side, so p = y Q_all - a (m Q) and eps_P = s (p G softmax(w)) Q_all^T.
//
// File (engine safetensors): the Gaussian's tensors (mean, eigvecs, eigvals) plus
// mixture.weights [K], mixture.means [K, P], mixture.eigvecs [K, P, P] (rows: Q_k, by descending
// eigenvalue), mixture.eigvals [K, P]; __metadata__.config = the Gaussian's config with
// kind "sgilo-score-mixture", components K, subspace P.

import { Tensor, tensor } from '../../engine/tensor.ts';
import { add, affine, div, log, mul, sqrt, sub } from '../../engine/ops/elementwise.ts';
import { matmul } from '../../engine/ops/matmul.ts';
import { reshape } from '../../engine/ops/layout.ts';
import { sum } from '../../engine/ops/reduce.ts';
import { softmax } from '../../engine/ops/softmax.ts';
import { loadModel, saveModel, type HostTensor as IoTensor } from '../../engine/io/index.ts';
import { shapeString } from '../../engine/shape.ts';
import { GaussianScore, checkGaussianConfig, gaussianEpsHost, gaussianFromTensors, gaussianTensors, marginalCoefficients, type GaussianConfig, type GaussianParams } from './gaussian.ts';
import { VPSDE } from './vpsde.ts';
import type { EpsModel } from './sample.ts';

export const MIXTURE_MODEL_KIND = 'sgilo-score-mixture';

export interface MixtureConfig extends Omit<GaussianConfig, 'kind'> {
  kind: typeof MIXTURE_MODEL_KIND;
  /** Number of mixture components K. */
  components: number;
  /** Leading principal coordinates P the mixture lives in (<= rank). */
  subspace: number;
}

/** The mixture in the top P coordinates, float64 on the host. */
export interface MixtureParams {
  /** [K], positive, summing to 1. */
  weights: Float64Array;
  /** [K, P]. */
  means: Float64Array;
  /** [K, P, P]: component k's eigenvectors as rows, by descending eigenvalue. */
  vectors: Float64Array;
  /** [K, P], > 0. */
  values: Float64Array;
}

/** The mixture prior's eps* on the GPU. */
export class MixtureScore implements EpsModel {
  readonly gaussian: GaussianScore;
  readonly K: number;
  readonly P: number;
  private readonly vectorsTop: Tensor; // V_P [P, n]
  private readonly vectorsRest: Tensor | null; // V rows P..r [r - P, n]
  private readonly valuesRest: Tensor | null; // [1, r - P]
  private readonly mean: Tensor; // [1, n]
  private readonly qAll: Tensor; // [P, K P]: Q_k^T side by side
  private readonly meanProj: Tensor; // [1, K P]: m_k Q_k^T
  private readonly valuesAll: Tensor; // [1, K P]
  private readonly logWeights: Tensor; // [1, K]

  constructor(
    readonly config: MixtureConfig,
    readonly base: GaussianParams,
    readonly mixture: MixtureParams,
  ) {
    const { components: K, subspace: P } = config;
    this.K = K;
    this.P = P;
    checkMixtureParams(mixture, K, P, base.values.length);
    this.gaussian = new GaussianScore({ ...config, kind: 'sgilo-score-gaussian' }, base);
    const n = this.gaussian.n;
    const r = this.gaussian.rank;
    this.vectorsTop = tensor(Float32Array.from(base.vectors.subarray(0, P * n)), [P, n]).keep();
    this.vectorsRest = r > P ? tensor(Float32Array.from(base.vectors.subarray(P * n, r * n)), [r - P, n]).keep() : null;
    this.valuesRest = r > P ? tensor(Float32Array.from(base.values.subarray(P, r)), [1, r - P]).keep() : null;
    this.mean = tensor(Float32Array.from(base.mean), [1, n]).keep();
    const { q, mq } = packComponents(mixture, K, P);
    this.qAll = tensor(q, [P, K * P]).keep();
    this.meanProj = tensor(mq, [1, K * P]).keep();
    this.valuesAll = tensor(Float32Array.from(mixture.values), [1, K * P]).keep();
    this.logWeights = tensor(Float32Array.from(mixture.weights, Math.log), [1, K]).keep();
  }

  get sde(): VPSDE {
    return new VPSDE(this.config.sde);
  }

  dispose(): void {
    this.gaussian.dispose();
    for (const t of [this.mean, this.vectorsTop, this.vectorsRest, this.valuesRest, this.qAll, this.meanProj, this.valuesAll, this.logWeights]) t?.dispose();
  }

  /** eps*(x, t): x [B, C, H, W], t [B] -> [B, C, H, W]. */
  forward(x: Tensor, t: Tensor): Tensor {
    const [C, H, W] = this.config.shape;
    if (x.rank !== 4 || x.shape[1] !== C || x.shape[2] !== H || x.shape[3] !== W) throw new RangeError(`MixtureScore: input must be [B, ${C}, ${H}, ${W}], got ${shapeString(x.shape)}`);
    const B = x.shape[0];
    if (t.rank !== 1 || t.shape[0] !== B) throw new RangeError(`MixtureScore: t must be [${B}], got ${shapeString(t.shape)}`);
    const { K, P } = this;
    const { n, rank: r } = this.gaussian;
    const { a, a2, s2 } = marginalCoefficients(reshape(t, [B, 1]), this.config.sde);
    const s = sqrt(s2);
    const c = sub(reshape(x, [B, n]), mul(a, this.mean)); // x - a mu [B, n]
    const y = matmul(c, this.vectorsTop, { transposeB: true }); // [B, P]
    const p = sub(matmul(y, this.qAll), mul(a, this.meanProj)); // [B, K P]
    const sG = div(s, add(mul(a2, this.valuesAll), s2)); // s G [B, K P]
    const psG = mul(p, sG);
    // Both sums carry the factor s of sG; it is taken back out once per row.
    const quad = div(sum(reshape(mul(p, psG), [B, K, P]), 2), s); // sum p^2 G [B, K]
    const logDet = sub(sum(reshape(log(sG), [B, K, P]), 2), affine(log(s), P)); // sum log G [B, K]
    const resp = softmax(add(this.logWeights, affine(sub(logDet, quad), 0.5))); // [B, K]
    let top = matmul(reshape(mul(reshape(psG, [B, K, P]), reshape(resp, [B, K, 1])), [B, K * P]), this.qAll, { transposeB: true }); // eps_P [B, P]
    // Below full rank: eps = coef V + h c (GaussianScore), so the top coefficients are eps_P - h y.
    const h = r < n ? div(s, add(affine(a2, this.base.residualVariance), s2)) : null; // [B, 1]
    if (h) top = sub(top, mul(y, h));
    let eps = matmul(top, this.vectorsTop);
    if (this.vectorsRest && this.valuesRest) {
      const w = matmul(c, this.vectorsRest, { transposeB: true }); // [B, r - P]
      let g = div(s, add(mul(a2, this.valuesRest), s2));
      if (h) g = sub(g, h);
      eps = add(eps, matmul(mul(w, g), this.vectorsRest));
    }
    if (h) eps = add(eps, mul(c, h));
    return reshape(eps, [B, C, H, W]);
  }
}

/**
 * The components side by side for one matmul each way: q [P, K P] holds Q_k^T in columns
 * k P .. k P + P - 1, mq [K P] holds m_k Q_k^T (each component's mean in its own eigenbasis).
 */
export function packComponents(m: MixtureParams, K: number, P: number): { q: Float32Array; mq: Float32Array } {
  const q = new Float32Array(P * K * P);
  const mq = new Float32Array(K * P);
  for (let k = 0; k < K; k++) {
    for (let j = 0; j < P; j++) {
      let dot = 0;
      for (let i = 0; i < P; i++) {
        const v = m.vectors[(k * P + j) * P + i];
        q[i * K * P + k * P + j] = v;
        dot += m.means[k * P + i] * v;
      }
      mq[k * P + j] = dot;
    }
  }
  return { q, mq };
}

function checkMixtureParams(m: MixtureParams, K: number, P: number, rank: number, what = 'mixture prior'): void {
  if (!(Number.isInteger(K) && K >= 1 && Number.isInteger(P) && P >= 1 && P <= rank)) throw new RangeError(`${what}: need K >= 1 components in P = 1..${rank} coordinates, got K = ${K}, P = ${P}`);
  if (m.weights.length !== K || m.means.length !== K * P || m.vectors.length !== K * P * P || m.values.length !== K * P) throw new RangeError(`${what}: weights [${m.weights.length}], means [${m.means.length}], eigvecs [${m.vectors.length}], eigvals [${m.values.length}] do not fit K = ${K}, P = ${P}`);
  if (!m.weights.every((w) => w > 0) || Math.abs(m.weights.reduce((s, w) => s + w, 0) - 1) > 1e-4) throw new RangeError(`${what}: the weights must be positive and sum to 1`);
  if (!m.values.every((v) => v > 0)) throw new RangeError(`${what}: every component variance must be > 0`);
  for (const a of [m.means, m.vectors]) if (!a.every(Number.isFinite)) throw new RangeError(`${what}: NaN or Inf in the parameters`);
}

/** eps* in float64 on the host for one sample x [n] at time t (the reference of MixtureScore). */
export function mixtureEpsHost(base: GaussianParams, m: MixtureParams, P: number, x: ArrayLike<number>, t: number, sde = new VPSDE()): Float64Array {
  const n = base.mean.length;
  const K = m.weights.length;
  const a = sde.meanCoeff(t);
  const s = sde.std(t);
  // The Gaussian's eps, then its top-P part swapped for the mixture's: along row j of V the
  // Gaussian puts (s / (a^2 lam_j + s^2) - h) w_j (+ h c), the mixture (eps_P)_j - h y_j (+ h c).
  const out = gaussianEpsHost(base, x, t, sde);
  const r = base.values.length;
  const h = r < n ? s / (a * a * base.residualVariance + s * s) : 0;
  const y = new Float64Array(P);
  for (let j = 0; j < P; j++) {
    let w = 0;
    for (let i = 0; i < n; i++) w += base.vectors[j * n + i] * (x[i] - a * base.mean[i]);
    y[j] = w;
  }
  const logits = new Float64Array(K);
  const parts: Float64Array[] = [];
  for (let k = 0; k < K; k++) {
    const coef = new Float64Array(P); // Q_k^T (p_k G_k), later times s
    let quad = 0;
    let logDet = 0;
    for (let j = 0; j < P; j++) {
      let pj = 0;
      for (let i = 0; i < P; i++) pj += m.vectors[(k * P + j) * P + i] * (y[i] - a * m.means[k * P + i]);
      const g = 1 / (a * a * m.values[k * P + j] + s * s);
      quad += pj * pj * g;
      logDet += Math.log(g);
      for (let i = 0; i < P; i++) coef[i] += m.vectors[(k * P + j) * P + i] * pj * g;
    }
    logits[k] = Math.log(m.weights[k]) + 0.5 * (logDet - quad);
    parts.push(coef);
  }
  const top = Math.max(...logits);
  const e = Array.from(logits, (l) => Math.exp(l - top));
  const z = e.reduce((u, v) => u + v, 0);
  for (let j = 0; j < P; j++) {
    let mix = 0;
    for (let k = 0; k < K; k++) mix += (e[k] / z) * s * parts[k][j];
    const gaussian = (s / (a * a * base.values[j] + s * s) - h) * y[j];
    const delta = mix - h * y[j] - gaussian;
    for (let i = 0; i < n; i++) out[i] += delta * base.vectors[j * n + i];
  }
  return out;
}

/** A residual model's closed-form base: one Gaussian or a mixture. */
export type ClosedFormBase = GaussianScore | MixtureScore;

/** The base's tensors under `prefix` and the config record a score model file keeps of it. */
export function baseRecord(base: ClosedFormBase, prefix: string): { tensors: Map<string, IoTensor>; gaussian: Pick<GaussianConfig, 'shape' | 'rank' | 'residualVariance'>; mixture?: { components: number; subspace: number } } {
  const g = base instanceof MixtureScore ? base.gaussian : base;
  const gaussian = { shape: g.config.shape, rank: g.rank, residualVariance: g.params.residualVariance };
  if (base instanceof MixtureScore) return { tensors: mixtureTensors(base.base, base.mixture, prefix), gaussian, mixture: { components: base.K, subspace: base.P } };
  return { tensors: gaussianTensors(base.params, prefix), gaussian };
}

export function checkMixtureConfig(c: unknown): MixtureConfig {
  const cfg = c as Partial<MixtureConfig>;
  if (!cfg || cfg.kind !== MIXTURE_MODEL_KIND) throw new Error(`mixture prior: config.kind is ${JSON.stringify(cfg?.kind)}, expected "${MIXTURE_MODEL_KIND}"`);
  const g = checkGaussianConfig({ ...cfg, kind: 'sgilo-score-gaussian' });
  if (!(Number.isInteger(cfg.components) && cfg.components! >= 1)) throw new Error(`mixture prior: config.components must be a positive integer, got ${JSON.stringify(cfg.components)}`);
  if (!(Number.isInteger(cfg.subspace) && cfg.subspace! >= 1 && cfg.subspace! <= g.rank)) throw new Error(`mixture prior: config.subspace must be an integer in 1..${g.rank} (the rank), got ${JSON.stringify(cfg.subspace)}`);
  return { ...g, kind: MIXTURE_MODEL_KIND, components: cfg.components!, subspace: cfg.subspace! };
}

/** The tensors of a mixture under `prefix` (mixture.*), beside the Gaussian's. */
export function mixtureTensors(base: GaussianParams, m: MixtureParams, prefix = ''): Map<string, IoTensor> {
  const K = m.weights.length;
  const P = m.means.length / K;
  const out = gaussianTensors(base, prefix);
  const f = (name: string, shape: number[], data: Float64Array) => out.set(`${prefix}mixture.${name}`, { dtype: 'float32', shape, data: Float32Array.from(data) });
  f('weights', [K], m.weights);
  f('means', [K, P], m.means);
  f('eigvecs', [K, P, P], m.vectors);
  f('eigvals', [K, P], m.values);
  return out;
}

export function mixtureFromTensors(tensors: Map<string, { shape: readonly number[]; data: ArrayLike<number> }>, config: MixtureConfig, prefix = '', what = 'mixture prior'): { base: GaussianParams; mixture: MixtureParams } {
  const base = gaussianFromTensors(tensors, { ...config, kind: 'sgilo-score-gaussian' }, prefix, what);
  const { components: K, subspace: P } = config;
  const get = (name: string, shape: number[]) => {
    const t = tensors.get(`${prefix}mixture.${name}`);
    if (!t || t.shape.join() !== shape.join()) throw new Error(`${what}: tensor "${prefix}mixture.${name}" must be float32 ${shapeString(shape)}, got ${t ? shapeString(t.shape) : 'none'}`);
    return Float64Array.from(t.data);
  };
  const weights = get('weights', [K]);
  const total = weights.reduce((s, w) => s + w, 0);
  const mixture: MixtureParams = { weights: weights.map((w) => w / total), means: get('means', [K, P]), vectors: get('eigvecs', [K, P, P]), values: get('eigvals', [K, P]) };
  checkMixtureParams(mixture, K, P, config.rank, what);
  return { base, mixture };
}

export function writeMixtureModel(config: MixtureConfig, base: GaussianParams, m: MixtureParams, metadata: Record<string, string> = {}): Uint8Array {
  return saveModel(mixtureTensors(base, m), config, metadata);
}

export function readMixtureModel(bytes: Uint8Array, what = 'mixture prior'): { config: MixtureConfig; base: GaussianParams; mixture: MixtureParams } {
  const file = loadModel(bytes);
  const config = checkMixtureConfig(file.config);
  for (const [name, t] of file.tensors) if (t.dtype !== 'float32' && t.dtype !== 'float64') throw new Error(`${what}: tensor "${name}" is ${t.dtype}, expected float32`);
  return { config, ...mixtureFromTensors(file.tensors as Map<string, { shape: number[]; data: Float32Array }>, config, '', what) };
}
