// The Fashion generator's encoder (models/fashion32/README.md: the Wasserstein autoencoder that
// fitted the generator), stored in the generator checkpoint under `encoder` as a PyTorch Sequential:
//   0 Conv(3 -> 32, 4x4, stride 2, padding 1)  1 LeakyReLU(0.2)   [N, 32, 16, 16]
//   2 Conv(32 -> 64, same)                      3 LeakyReLU(0.2)   [N, 64, 8, 8]
//   4 Conv(64 -> 128, same)                     5 LeakyReLU(0.2)   [N, 128, 4, 4]
//   6 Flatten (channel-major, as PyTorch)       7 Linear(2048 -> 128)
// then z is projected to the sphere of radius sqrt(128): z * sqrt(S) / |z| (the mapping network's
// PixelNorm ignores the scale; the shipped codes file holds z on that sphere).
//
// Input: images [N, 3, 32, 32] in [-1, 1] (Fashion-MNIST's 28x28 gray padded with -1, replicated
// to three channels). Output: z [N, 128].

import { Tensor, tensor } from '../engine/tensor.ts';
import { add, leakyRelu, mul, rsqrt } from '../engine/ops/elementwise.ts';
import { conv2d } from '../engine/ops/conv2d.ts';
import { matmul } from '../engine/ops/matmul.ts';
import { reshape } from '../engine/ops/layout.ts';
import { sum } from '../engine/ops/reduce.ts';
import { affine } from '../engine/ops/elementwise.ts';
import { flattenTensors, loadCheckpoint } from '../engine/io/index.ts';
import { shapeString } from '../engine/shape.ts';
import type { HostTensor } from '../engine/host_tensor.ts';

const SHAPES: [string, number[]][] = [
  ['0.weight', [32, 3, 4, 4]],
  ['0.bias', [32]],
  ['2.weight', [64, 32, 4, 4]],
  ['2.bias', [64]],
  ['4.weight', [128, 64, 4, 4]],
  ['4.bias', [128]],
  ['7.weight', [128, 2048]],
  ['7.bias', [128]],
];

export class FashionEncoder {
  private constructor(private readonly params: Map<string, Tensor>) {}

  static fromStateDict(sd: Map<string, HostTensor<Float32Array>>): FashionEncoder {
    const params = new Map<string, Tensor>();
    for (const [name, shape] of SHAPES) {
      const t = sd.get(name);
      if (!t || t.shape.join() !== shape.join()) throw new Error(`encoder: "${name}" must be ${shapeString(shape)}, got ${t ? shapeString(t.shape) : 'none'}`);
      params.set(name, tensor(t.data, shape).keep());
    }
    return new FashionEncoder(params);
  }

  /** The encoder of a generator checkpoint (`encoder` beside `g_ema`). */
  static async fromCheckpoint(bytes: Uint8Array): Promise<FashionEncoder> {
    const root = (await loadCheckpoint(bytes)) as Record<string, unknown>;
    if (!root?.encoder) throw new Error('encoder: the checkpoint has no "encoder" state dict');
    const sd = new Map<string, HostTensor<Float32Array>>();
    for (const [name, t] of flattenTensors(root.encoder as Record<string, unknown>)) {
      if (t.dtype !== 'float32') throw new Error(`encoder: "${name}" is ${t.dtype}, expected float32`);
      sd.set(name, { dtype: 'float32', shape: t.shape, data: t.data as Float32Array });
    }
    return FashionEncoder.fromStateDict(sd);
  }

  dispose(): void {
    for (const t of this.params.values()) t.dispose();
  }

  /** images [N, 3, 32, 32] -> z [N, 128] on the sphere of radius sqrt(128). */
  forward(images: Tensor): Tensor {
    if (images.rank !== 4 || images.shape[1] !== 3 || images.shape[2] !== 32 || images.shape[3] !== 32) throw new RangeError(`encoder: images must be [N, 3, 32, 32], got ${shapeString(images.shape)}`);
    const N = images.shape[0];
    const p = (k: string) => this.params.get(k)!;
    let h = images;
    for (const i of [0, 2, 4]) h = leakyRelu(conv2d(h, p(`${i}.weight`), p(`${i}.bias`), { stride: 2, padding: 1 }), 0.2);
    const z = add(matmul(reshape(h, [N, 2048]), p('7.weight'), { transposeB: true }), p('7.bias')); // [N, 128]
    const S = z.shape[1];
    return mul(z, affine(rsqrt(sum(mul(z, z), [1], { keepdims: true })), Math.sqrt(S)));
  }
}

/** Fashion-MNIST IDX images (uint8 28x28) -> [count, 3, 32, 32] in [-1, 1], padded with -1. */
export function fashionImages(idx: Uint8Array, start: number, count: number): Float32Array {
  const view = new DataView(idx.buffer, idx.byteOffset, idx.byteLength);
  if (view.getUint32(0) !== 2051 || view.getUint32(8) !== 28 || view.getUint32(12) !== 28) throw new Error('not an IDX file of 28x28 images');
  const total = view.getUint32(4);
  if (!(start >= 0 && start + count <= total)) throw new RangeError(`images ${start}..${start + count - 1} outside the file's ${total}`);
  const out = new Float32Array(count * 3 * 1024).fill(-1);
  for (let n = 0; n < count; n++)
    for (let y = 0; y < 28; y++)
      for (let x = 0; x < 28; x++) {
        const v = (idx[16 + (start + n) * 784 + y * 28 + x] / 255) * 2 - 1;
        for (let c = 0; c < 3; c++) out[(n * 3 + c) * 1024 + (y + 2) * 32 + x + 2] = v;
      }
  return out;
}
