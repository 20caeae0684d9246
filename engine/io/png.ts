// PNG input and output: reading images for the generator and writing grids from [C, H, W] float images in [-1, 1] (StyleGAN2's range).
import { PNG } from 'pngjs';
import { readFileBytes, writeFileBytes } from './files.ts';
import { renderFigure, type FigureSpec, type Rgba } from './figure.ts';
import { fitImage, fromRgba, type Fit, type RawImage } from './image_fit.ts';

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

/** Writes an RGBA image as a PNG. */
export async function writePng(path: string, image: Rgba): Promise<void> {
  const png = new PNG({ width: image.width, height: image.height });
  png.data.set(image.data);
  await writeFileBytes(path, new Uint8Array(PNG.sync.write(png)));
}

/** Writes a labelled figure (figure.ts) as a PNG. */
export async function writeFigure(path: string, spec: FigureSpec): Promise<void> {
  await writePng(path, renderFigure(spec));
}

const SIGNATURE = [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a];

/** Decodes PNG bytes (gray, RGB, RGBA, palette; 8 or 16 bit) as a RawImage; errors name the file. */
export function decodePng(bytes: Uint8Array, path: string): RawImage {
  if (bytes.length < 8 || SIGNATURE.some((b, i) => bytes[i] !== b)) {
    throw new Error(`${path}: not a PNG file (expected the 8-byte PNG signature; the file has ${bytes.length} bytes${bytes.length ? ' starting ' + [...bytes.subarray(0, 4)].map((b) => b.toString(16).padStart(2, '0')).join(' ') : ''})`);
  }
  let png: PNG;
  try {
    png = PNG.sync.read(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength));
  } catch (e) {
    throw new Error(`${path}: a damaged or unsupported PNG (${(e as Error).message})`);
  }
  if (!(png.width > 0 && png.height > 0) || png.width * png.height > 64e6) throw new RangeError(`${path}: a ${png.width}x${png.height} image is outside 1x1 to 64 megapixels`);
  return fromRgba(png.data, png.width, png.height);
}

/** Reads a PNG file of any size and kind as [3, size, size] in [-1, 1], brought to size by `fit` (image_fit.ts). */
export async function readImagePng(path: string, size: number, fit: Fit = 'pad'): Promise<Float32Array> {
  return fitImage(decodePng(await readFileBytes(path), path), size, fit);
}
