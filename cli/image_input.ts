// The images `reconstruct` starts from: a reference (--image, any PNG, or --image-index, a shipped
// test image), or a real measurement (--measured: the low-resolution image of sr-*, the noisy
// image of denoise), and the inpainting mask (--mask). Each is brought to the size the operator
// needs with --fit (engine/io/image_fit.ts). Gray inputs are reported as gray, so figures stay gray.

import { readSafetensors } from '../engine/io/index.ts';
import { decodePng } from '../engine/io/png.ts';
import { fitImage, fitToSquare, type Fit } from '../engine/io/image_fit.ts';
import { maskOperator, parseOperatorSpec, type MeasurementOperator } from '../samplers/inverse/operators/index.ts';
import { modelPath } from '../samplers/inverse/fashion.ts';
import { readInput } from './checks.ts';

export interface ImageInput {
  /** [3, size, size] in [-1, 1]; absent with --measured. */
  reference?: Float32Array;
  /** The input had one channel (or three equal ones). */
  gray: boolean;
}

async function readPng(path: string) {
  return decodePng(await readInput(path, 'image'), path);
}

/** --image, or --image-index N (shipped Fashion-MNIST test images, gray). */
export async function readReference(opts: { image?: string; index?: number; fit: Fit }, size: number): Promise<ImageInput> {
  if (opts.image !== undefined) {
    const raw = await readPng(opts.image);
    return { reference: fitImage(raw, size, opts.fit), gray: raw.channels === 1 };
  }
  const file = modelPath('test-images.safetensors');
  const t = readSafetensors(await readInput(file, 'image')).tensors.get('images')!;
  const [N, , H, W] = t.shape;
  const i = opts.index!;
  if (i >= N) throw new RangeError(`--image-index ${i}: ${N} test images are shipped (0 to ${N - 1})`);
  if (H !== size || W !== size) throw new RangeError(`--image-index: the test images are ${W}x${H}, the generator makes ${size}x${size}`);
  const plane = (t.data as Float32Array).slice(i * H * W, (i + 1) * H * W);
  return { reference: fitImage({ width: W, height: H, channels: 1, data: plane }, size, 'pad'), gray: true };
}

/**
 * --measured: a real measurement image at the operator's output size (sr-k: size/k; denoise,
 * inpaint, colorize: size). Operators whose measurement is not an image are refused.
 */
export async function readMeasured(path: string, op: MeasurementOperator, fit: Fit): Promise<{ y: Float32Array; gray: boolean }> {
  const shape = op.outShape;
  if (shape.length !== 3 || shape[1] !== shape[2]) {
    throw new Error(`--measured: ${op.name} measures [${shape.join(', ')}] values, not a square image; give --image (a reference) and let the tool measure`);
  }
  const [C, H] = shape;
  const raw = await readPng(path);
  const rgb = fitImage(raw, H, fit);
  return { y: C === 3 ? rgb : rgb.slice(0, C * H * H), gray: raw.channels === 1 };
}

/** --mask for --operator inpaint-mask: white (> 50%) = observed; padding is unobserved. */
export async function maskFromPng(path: string, spec: string, size: number, fit: Fit): Promise<{ operator: MeasurementOperator; noiseStd: number }> {
  const raw = await readPng(path);
  const P = raw.width * raw.height;
  const plane = raw.channels === 1 ? raw.data : Float32Array.from({ length: P }, (_, i) => (raw.data[i] + raw.data[P + i] + raw.data[2 * P + i]) / 3);
  const gray = { width: raw.width, height: raw.height, channels: 1 as const, data: plane };
  const fitted = fitToSquare(gray, size, fit);
  // Padding takes the border's most frequent value; a mask's padding is unobserved whatever its border.
  const mask = new Float32Array(size * size);
  const ox = Math.floor((size - Math.min(size, raw.width)) / 2);
  const oy = Math.floor((size - Math.min(size, raw.height)) / 2);
  const padOnly = fit === 'pad' && raw.width <= size && raw.height <= size;
  for (let y = 0; y < size; y++)
    for (let x = 0; x < size; x++) {
      const inside = !padOnly || (x >= ox && x < ox + raw.width && y >= oy && y < oy + raw.height);
      mask[y * size + x] = inside && fitted.data[y * size + x] > 0 ? 1 : 0;
    }
  if (!mask.some((v) => v === 1)) throw new Error(`--mask ${path}: no observed pixel (white = observed)`);
  // The spec's noise option, read by the parser of a level-free operator.
  const { noiseStd } = parseOperatorSpec(spec.replace(/^\s*inpaint-mask/, 'identity'));
  return { operator: maskOperator('inpaint-mask', [3, size, size], mask), noiseStd };
}
