// tfjs-backend-webgpu as a benchmark peer, on the same adapter, in the same process. Bench-only:
// nothing in engine/ imports tfjs (it is a devDependency).
//
// tfjs finds WebGPU through `navigator.gpu` and registers its backend at import time only if it is
// there; Node 20 has no `navigator`, so we provide one whose `gpu` is the Dawn GPU object that
// created our device (eng.gpu.gpu). tfjs then requests its own adapter and device from it; we
// record the adapter it got and refuse to compare if it is not the one our device runs on.
//
// Shapes: a [batch?, M, K] x b [batch?, K, N] -> [batch?, M, N], as for our matmul.

import type { Engine } from '../engine/engine.ts';
import type { TimedTarget } from './timing.ts';
import { releaseTimer } from './timing.ts';

/** The parts of tfjs-core we use (typed here so the bench does not depend on its type surface). */
interface TfTensor {
  data(): Promise<ArrayLike<number>>;
  dispose(): void;
}
interface Tf {
  setBackend(name: string): Promise<boolean>;
  ready(): Promise<void>;
  getBackend(): string;
  backend(): unknown;
  engine(): { reset(): void };
  tensor(values: Float32Array, shape: number[], dtype: 'float32'): TfTensor;
  matMul(a: TfTensor, b: TfTensor): TfTensor;
  version_core: string;
}
/** Public members of tfjs-backend-webgpu's WebGPUBackend that we call. */
interface TfWebGpuBackend {
  device: GPUDevice;
  ensureCommandEncoderReady(): void;
  endComputePassEncoder(): void;
  submitQueue(): void;
}

export interface TfjsPeer {
  version: string;
  target: TimedTarget;
  tensor(values: Float32Array, shape: number[]): TfTensor;
  matMul(a: TfTensor, b: TfTensor): TfTensor;
  close(): void;
}

type NavigatorHolder = { navigator?: { gpu?: unknown } };

/** Makes `navigator.gpu` resolve to `gpu` (returns how to undo it). */
function provideNavigatorGpu(gpu: unknown): () => void {
  const g = globalThis as NavigatorHolder;
  if (g.navigator?.gpu) return () => {}; // a browser or Deno: tfjs finds WebGPU by itself
  if (g.navigator) {
    // Node 21+ has a navigator without gpu.
    Object.defineProperty(g.navigator, 'gpu', { value: gpu, configurable: true });
    return () => void delete (g.navigator as { gpu?: unknown }).gpu;
  }
  Object.defineProperty(globalThis, 'navigator', { value: { gpu }, configurable: true, writable: true });
  return () => void delete g.navigator;
}

function sameAdapter(info: GPUAdapterInfo, eng: Engine): string | null {
  const ours = eng.gpu.adapter;
  const fields = ['vendor', 'architecture', 'device', 'description'] as const;
  const differs = fields.filter((f) => (info[f] ?? '') !== ours[f]);
  return differs.length ? `tfjs was given another adapter (${info.description || info.device || info.vendor}), not ours` : null;
}

/** Starts tfjs on the WebGPU backend, or throws an Error saying why it cannot run here. */
export async function startTfjs(eng: Engine): Promise<TfjsPeer> {
  const gpu = eng.gpu.gpu;
  if (!gpu) throw new Error('the engine holds no GPU object to share with tfjs');
  let given: GPUAdapter | null = null;
  // Only requestAdapter is used by tfjs's backend factory; we wrap it to see which adapter it got.
  const shim = {
    requestAdapter: async (o?: GPURequestAdapterOptions) => (given = await gpu.requestAdapter(o)),
    getPreferredCanvasFormat: () => gpu.getPreferredCanvasFormat(),
    get wgslLanguageFeatures() {
      return gpu.wgslLanguageFeatures;
    },
  };
  const restore = provideNavigatorGpu(shim);
  let tf: Tf;
  try {
    // Literal specifiers so that esbuild bundles tfjs for the GPU-machine run (bench/device/);
    // both are CommonJS, evaluated only here, after navigator.gpu exists.
    const coreMod = (await import('@tensorflow/tfjs-core')) as unknown as Tf & { default?: Tf };
    tf = coreMod.default && 'matMul' in coreMod.default ? coreMod.default : coreMod;
    await import('@tensorflow/tfjs-backend-webgpu'); // registers the 'webgpu' backend
  } catch (e) {
    restore();
    throw new Error(`cannot load tfjs (npm i -D first?): ${errorText(e)}`);
  }
  try {
    if (!(await tf.setBackend('webgpu'))) throw new Error("tf.setBackend('webgpu') returned false");
    await tf.ready();
    if (tf.getBackend() !== 'webgpu') throw new Error(`tfjs runs on "${tf.getBackend()}", not webgpu`);
  } catch (e) {
    restore();
    throw new Error(`tfjs webgpu backend did not start: ${errorText(e)}`);
  }
  const mismatch = given ? sameAdapter((given as GPUAdapter).info, eng) : 'tfjs did not request an adapter through navigator.gpu';
  const backend = tf.backend() as TfWebGpuBackend;
  const close = () => {
    releaseTimer(backend.device);
    // Disposes the backend's buffers but keeps its factory registered, so a later startTfjs in
    // the same process (tfjs registers the backend only once, at import) can start it again.
    tf.engine().reset();
    backend.device.destroy();
    restore();
  };
  if (mismatch) {
    close();
    throw new Error(mismatch);
  }
  const flush = () => {
    backend.ensureCommandEncoderReady();
    backend.endComputePassEncoder();
    backend.submitQueue();
  };
  return {
    version: tf.version_core,
    target: {
      device: backend.device,
      timestamps: backend.device.features.has('timestamp-query'),
      flush,
      idle: async () => {
        flush();
        await backend.device.queue.onSubmittedWorkDone();
      },
    },
    tensor: (values, shape) => tf.tensor(values, shape, 'float32'),
    matMul: (a, b) => tf.matMul(a, b),
    close,
  };
}

/** The first line of an error's message: bench cells and logs show one line per failure. */
export function errorText(e: unknown): string {
  return (e instanceof Error ? e.message : String(e)).split('\n')[0];
}

/**
 * tfjs-core as startTfjs loaded it (the same module instance, so the same backend), typed as the
 * ops a bench calls beyond TfjsPeer; `member` (one of them) tells the CommonJS default export from
 * the namespace object.
 */
export async function tfjsCore<T extends object>(member: string): Promise<T> {
  const core = '@tensorflow/tfjs-core';
  const mod = (await import(core)) as T & { default?: T };
  return mod.default && member in mod.default ? mod.default : mod;
}

/** A bench's tfjs peer: both set, or both null with `reason` (what its tfjs cells then show). */
export interface OptionalTfjs<T> {
  peer: TfjsPeer | null;
  ops: T | null;
  reason: string;
}

/**
 * Starts the tfjs peer when `wanted`, with the tfjs-core ops named by `member` (null: the peer's
 * own interface is enough); logs what happened. A peer that cannot run here is not an error: the
 * bench reports our numbers with `reason` in the tfjs column.
 */
export async function optionalTfjs<T extends object>(eng: Engine, wanted: boolean, member: string | null, log: (line: string) => void): Promise<OptionalTfjs<T>> {
  if (!wanted) return { peer: null, ops: null, reason: 'not requested' };
  let peer: TfjsPeer | null = null;
  try {
    peer = await startTfjs(eng);
    const ops = member === null ? ({} as T) : await tfjsCore<T>(member);
    log(`  tfjs ${peer.version} (webgpu backend) started on the same adapter`);
    return { peer, ops, reason: '' };
  } catch (e) {
    peer?.close();
    const reason = errorText(e);
    log(`  tfjs unavailable: ${reason}`);
    return { peer: null, ops: null, reason };
  }
}
