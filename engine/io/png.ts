// PNG input and output: reading images for the generator and writing grids from [C, H, W] float images in [-1, 1] (StyleGAN2's range).
import { PNG } from 'pngjs';
import { readFileBytes, writeFileBytes } from './files.ts';

/** Maps [-1, 1] to [0, 255] with clipping; 1 or 3 channels (gray is replicated). */
export function toRgba(image: Float32Array, channels: number, h: number, w: number, into: Uint8Array, stride: number, x0: number, y0: number): void {
  for (let y = 0; y < h; y++)
    for (let x = 0; x < w; x++) {
      const o = ((y0 + y) * stride + x0 + x) * 4;
      for (let c = 0; c < 3; c++) {
        const v = image[(channels === 1 ? 0 : c) * h * w + y * w + x];
        into[o + c] = Math.max(0, Math.min(255, Math.round((v + 1) * 127.5)));
      }
      into[o + 3] = 255;
    }
}

/** Writes `images` (each [C, size, size]) as a grid with `cols` columns and 2-pixel gaps. */
export async function writeImageGrid(path: string, images: Float32Array[], size: number, cols: number, gap = 2): Promise<void> {
  if (images.length === 0) throw new Error('writeImageGrid: no images');
  const channels = images[0].length / (size * size);
  if (channels !== 1 && channels !== 3) throw new RangeError(`writeImageGrid: images hold ${images[0].length} values, not 1 or 3 channels of ${size}x${size}`);
  const rows = Math.ceil(images.length / cols);
  const width = cols * size + (cols + 1) * gap;
  const height = rows * size + (rows + 1) * gap;
  const png = new PNG({ width, height });
  png.data.fill(255);
  images.forEach((img, i) => toRgba(img, channels, size, size, png.data, width, gap + (i % cols) * (size + gap), gap + Math.floor(i / cols) * (size + gap)));
  const dir = path.includes('/') ? path.slice(0, path.lastIndexOf('/')) : '';
  if (dir) {
    const fs = (globalThis as unknown as { process?: { getBuiltinModule?(m: string): { mkdirSync(p: string, o: object): void } } }).process?.getBuiltinModule?.('node:fs');
    fs?.mkdirSync(dir, { recursive: true });
  }
  await writeFileBytes(path, new Uint8Array(PNG.sync.write(png)));
}

/** Reads a PNG as [3, size, size] in [-1, 1]; the size must match the generator's. */
export async function readImagePng(path: string, size: number): Promise<Float32Array> {
  let png: PNG;
  try {
    png = PNG.sync.read(Buffer.from(await readFileBytes(path)));
  } catch (e) {
    throw new Error(`${path}: not a readable PNG (${(e as Error).message})`);
  }
  if (png.width !== size || png.height !== size) throw new RangeError(`${path}: the image is ${png.width}x${png.height}, the generator makes ${size}x${size}`);
  const out = new Float32Array(3 * size * size);
  for (let i = 0; i < size * size; i++) for (let c = 0; c < 3; c++) out[c * size * size + i] = (png.data[i * 4 + c] / 255) * 2 - 1;
  return out;
}
