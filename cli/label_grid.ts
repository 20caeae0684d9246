// A PNG grid of images with a text label in front of each row, drawn with a 3x5 pixel font (no
// font files or canvas in Node). Images are [C, size, size] in [-1, 1], 1 or 3 channels.

import { PNG } from 'pngjs';
import { toRgba } from '../engine/io/png.ts';
import { writeFileBytes } from '../engine/io/files.ts';
import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';

// Each glyph: 5 rows of 3 bits, top row first, most significant bit on the left.
const FONT: Record<string, number[]> = {
  A: [2, 5, 7, 5, 5], B: [6, 5, 6, 5, 6], C: [3, 4, 4, 4, 3], D: [6, 5, 5, 5, 6], E: [7, 4, 6, 4, 7],
  F: [7, 4, 6, 4, 4], G: [3, 4, 5, 5, 3], H: [5, 5, 7, 5, 5], I: [7, 2, 2, 2, 7], J: [1, 1, 1, 5, 2],
  K: [5, 5, 6, 5, 5], L: [4, 4, 4, 4, 7], M: [5, 7, 7, 5, 5], N: [6, 5, 5, 5, 5], O: [2, 5, 5, 5, 2],
  P: [6, 5, 6, 4, 4], Q: [2, 5, 5, 6, 3], R: [6, 5, 6, 5, 5], S: [3, 4, 2, 1, 6], T: [7, 2, 2, 2, 2],
  U: [5, 5, 5, 5, 7], V: [5, 5, 5, 5, 2], W: [5, 5, 7, 7, 5], X: [5, 5, 2, 5, 5], Y: [5, 5, 2, 2, 2],
  Z: [7, 1, 2, 4, 7], '0': [7, 5, 5, 5, 7], '1': [2, 6, 2, 2, 7], '2': [6, 1, 2, 4, 7], '3': [6, 1, 2, 1, 6],
  '4': [5, 5, 7, 1, 1], '5': [7, 4, 6, 1, 6], '6': [3, 4, 7, 5, 7], '7': [7, 1, 2, 2, 2], '8': [7, 5, 7, 5, 7],
  '9': [7, 5, 7, 1, 6], '.': [0, 0, 0, 0, 2], '=': [0, 7, 0, 7, 0], '-': [0, 0, 7, 0, 0], ' ': [0, 0, 0, 0, 0],
  '(': [1, 2, 2, 2, 1], ')': [4, 2, 2, 2, 4], ',': [0, 0, 0, 2, 4], ':': [0, 2, 0, 2, 0],
};

/** Writes rows of images, each row after its label; `scale` enlarges the font's pixels. */
export async function writeLabelledGrid(path: string, rows: { label: string; images: Float32Array[] }[], size: number, scale = 2, gap = 2): Promise<void> {
  if (rows.length === 0 || rows.every((r) => r.images.length === 0)) throw new Error('writeLabelledGrid: no images');
  const channels = rows.find((r) => r.images.length)!.images[0].length / (size * size);
  const cols = Math.max(...rows.map((r) => r.images.length));
  const labelWidth = Math.max(...rows.map((r) => r.label.length)) * 4 * scale + 2 * gap;
  const width = labelWidth + cols * (size + gap) + gap;
  const height = rows.length * (size + gap) + gap;
  const png = new PNG({ width, height });
  png.data.fill(255);
  rows.forEach((row, r) => {
    const y0 = gap + r * (size + gap);
    const ty = y0 + Math.floor((size - 5 * scale) / 2);
    [...row.label.toUpperCase()].forEach((ch, i) => {
      const glyph = FONT[ch] ?? FONT[' '];
      for (let gy = 0; gy < 5; gy++)
        for (let gx = 0; gx < 3; gx++) {
          if (!((glyph[gy] >> (2 - gx)) & 1)) continue;
          for (let dy = 0; dy < scale; dy++)
            for (let dx = 0; dx < scale; dx++) {
              const o = ((ty + gy * scale + dy) * width + gap + (i * 4 + gx) * scale + dx) * 4;
              png.data[o] = png.data[o + 1] = png.data[o + 2] = 0;
            }
        }
    });
    row.images.forEach((img, c) => toRgba(img, channels, size, size, png.data, width, labelWidth + c * (size + gap), y0));
  });
  mkdirSync(dirname(path), { recursive: true });
  await writeFileBytes(path, new Uint8Array(PNG.sync.write(png)));
}
