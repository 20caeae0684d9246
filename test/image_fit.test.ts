// Own images and figures (engine/io/png.ts, image_fit.ts, figure.ts): any PNG kind (gray, RGB, RGBA,
// palette; 8 or 16 bit) decodes to the expected values; --fit pad gives Fashion-MNIST's 28x28 exactly
// the 2-pixel border of the shipped 32x32 test images; larger and non-square images are padded and
// area-resized; figures are upscaled to >= 128 px per panel with labels, a std scale bar, and gray
// kept gray. Expected values come from the test's own arithmetic, never from the code under test.

import { crc32, deflateSync } from 'node:zlib';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { readFileBytes } from '../engine/io/files.ts';
import { readSafetensors } from '../engine/io/index.ts';
import { decodePng, readImagePng } from '../engine/io/png.ts';
import { backgroundValues, fitImage, fitToSquare, resizeArea } from '../engine/io/image_fit.ts';
import { colormap, panelScale, renderFigure } from '../engine/io/figure.ts';
import { ROOT } from './cli_run.ts';

const test = suite('image fit and figures');
const tmp = mkdtempSync(join(tmpdir(), 'sgilo-img-'));

/** A PNG by hand (pngjs writes no palette images): chunks, zlib data, CRCs. */
function rawPng(width: number, height: number, colorType: number, bitDepth: number, rows: Uint8Array[], palette?: Uint8Array): Uint8Array {
  const chunk = (type: string, data: Uint8Array) => {
    const out = Buffer.alloc(12 + data.length);
    out.writeUInt32BE(data.length, 0);
    out.write(type, 4, 'latin1');
    Buffer.from(data).copy(out, 8);
    out.writeUInt32BE(crc32(out.subarray(4, 8 + data.length)), 8 + data.length);
    return out;
  };
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(width, 0);
  ihdr.writeUInt32BE(height, 4);
  ihdr[8] = bitDepth;
  ihdr[9] = colorType;
  const raw = Buffer.concat(rows.map((r) => Buffer.concat([Buffer.from([0]), Buffer.from(r)])));
  return new Uint8Array(Buffer.concat([Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]), chunk('IHDR', ihdr), ...(palette ? [chunk('PLTE', palette)] : []), chunk('IDAT', deflateSync(raw)), chunk('IEND', new Uint8Array(0))]));
}

const shipped = readSafetensors(await readFileBytes(join(ROOT, 'models/fashion32/test-images.safetensors'))).tensors.get('images')!;
const testImage = (i: number) => (shipped.data as Float32Array).slice(i * 1024, (i + 1) * 1024);

test("--fit pad: Fashion-MNIST's 28x28 gets exactly the 2-pixel border of the shipped test images", async () => {
  for (let i = 0; i < 8; i++) {
    const img = testImage(i);
    // The 28x28 original: the shipped image without its border, as 8-bit gray.
    const rows = Array.from({ length: 28 }, (_, y) => Uint8Array.from({ length: 28 }, (_, x) => Math.round((img[(y + 2) * 32 + x + 2] + 1) * 127.5)));
    const file = join(tmp, `fm-${i}.png`);
    writeFileSync(file, rawPng(28, 28, 0, 8, rows));
    const got = await readImagePng(file, 32, 'pad');
    for (let c = 0; c < 3; c++) for (let k = 0; k < 1024; k++) if (got[c * 1024 + k] !== img[k]) assert.unreachable(`image ${i} channel ${c} pixel ${k}: ${got[c * 1024 + k]} != ${img[k]}`);
  }
});

test('PNG kinds: gray, gray+alpha, RGB, RGBA, palette, 16 bit decode to the expected values; gray stays one channel', () => {
  const v = [0, 51, 255, 128];
  const expect = (b: number) => (b / 255) * 2 - 1;
  const close = (a: number, b: number) => Math.abs(a - b) < 1e-6;
  const g8 = decodePng(rawPng(2, 2, 0, 8, [Uint8Array.from(v.slice(0, 2)), Uint8Array.from(v.slice(2))]), 'g8');
  assert.is(g8.channels, 1);
  v.forEach((b, i) => assert.ok(close(g8.data[i], expect(b)), `gray8 ${i}`));
  const g16 = decodePng(rawPng(2, 1, 0, 16, [Uint8Array.from([0xff, 0xff, 0x33, 0x33])]), 'g16');
  assert.is(g16.channels, 1);
  assert.ok(close(g16.data[0], 1) && close(g16.data[1], expect(0x33)), 'gray16');
  const rgb = decodePng(rawPng(1, 1, 2, 8, [Uint8Array.from([255, 0, 51])]), 'rgb');
  assert.is(rgb.channels, 3);
  assert.ok(close(rgb.data[0], 1) && close(rgb.data[1], -1) && close(rgb.data[2], expect(51)), 'rgb8');
  const rgb16 = decodePng(rawPng(1, 1, 2, 16, [Uint8Array.from([0xff, 0xff, 0, 0, 0x33, 0x33])]), 'rgb16');
  assert.ok(close(rgb16.data[0], 1) && close(rgb16.data[1], -1) && close(rgb16.data[2], expect(0x33)), 'rgb16');
  // Alpha is composited over black: half-transparent white is mid gray.
  const rgba = decodePng(rawPng(1, 1, 6, 8, [Uint8Array.from([255, 255, 255, 51])]), 'rgba');
  assert.is(rgba.channels, 1);
  assert.ok(close(rgba.data[0], (51 / 255) * 2 - 1), 'rgba over black');
  const ga = decodePng(rawPng(1, 1, 4, 8, [Uint8Array.from([255, 255])]), 'ga');
  assert.ok(close(ga.data[0], 1), 'gray+alpha');
  const pal = decodePng(rawPng(2, 1, 3, 8, [Uint8Array.from([1, 0])], Uint8Array.from([10, 20, 30, 200, 100, 0])), 'palette');
  assert.is(pal.channels, 3);
  assert.ok(close(pal.data[0], expect(200)) && close(pal.data[1], expect(10)) && close(pal.data[2], expect(100)) && close(pal.data[4], expect(0)), 'palette');
});

test('unreadable images name the file and what was expected', () => {
  assert.throws(() => decodePng(new Uint8Array(0), 'empty.png'), /empty\.png: not a PNG file \(expected the 8-byte PNG signature; the file has 0 bytes\)/);
  assert.throws(() => decodePng(Uint8Array.from([1, 2, 3, 4, 5, 6, 7, 8, 9]), 'r.png'), /r\.png: not a PNG file .* starting 01 02 03 04/);
  const good = rawPng(2, 2, 0, 8, [new Uint8Array(2), new Uint8Array(2)]);
  assert.throws(() => decodePng(good.slice(0, good.length - 20), 'cut.png'), /cut\.png: a damaged or unsupported PNG/);
});

test('larger and non-square images: padded to a square with the background, then area-resized (means kept)', () => {
  // 64x40 gray: background 0.2 with a bright 8x8 block; pad to 64x64, area-resize to 32x32.
  const W = 64;
  const H = 40;
  const data = new Float32Array(W * H).fill(0.2);
  for (let y = 16; y < 24; y++) for (let x = 8; x < 16; x++) data[y * W + x] = 1;
  const img = { width: W, height: H, channels: 1 as const, data };
  assert.ok(Math.abs(backgroundValues(img)[0] - 0.2) < 1 / 255);
  const sq = fitToSquare(img, 32, 'pad');
  assert.is(sq.width, 32);
  const bg = backgroundValues(img)[0];
  // The block lands at rows (12 + 16..24) / 2 = 14..18, columns 4..8, all 1; the rest is the background.
  for (let y = 0; y < 32; y++)
    for (let x = 0; x < 32; x++) {
      const want = y >= 14 && y < 18 && x >= 4 && x < 8 ? 1 : bg;
      assert.ok(Math.abs(sq.data[y * 32 + x] - want) < 1e-6, `(${y}, ${x}): ${sq.data[y * 32 + x]} vs ${want}`);
    }
  // A non-integer factor keeps the mean (each output pixel is an average of the area it covers).
  const r = resizeArea({ width: 45, height: 45, channels: 1, data: Float32Array.from({ length: 45 * 45 }, (_, i) => Math.sin(i)) }, 32, 32);
  const mean = (a: Float32Array) => a.reduce((s, x) => s + x, 0) / a.length;
  assert.ok(Math.abs(mean(r.data) - mean(Float32Array.from({ length: 45 * 45 }, (_, i) => Math.sin(i)))) < 1e-5);
  // crop: the centre square; resize: the whole image stretched.
  assert.is(fitToSquare(img, 32, 'crop').width, 32);
  const stretched = fitImage({ width: 2, height: 1, channels: 1, data: Float32Array.from([-1, 1]) }, 4, 'resize');
  assert.equal([...stretched.slice(0, 4)], [-1, -1, 1, 1]);
  assert.is(stretched.length, 3 * 16);
});

test('figures: panels >= 128 px, labels drawn, the std map with a colour bar, gray kept gray', () => {
  const size = 32;
  const tint = Float32Array.from({ length: 3 * size * size }, (_, i) => (i < size * size ? 0.5 : i < 2 * size * size ? 0.4 : 0.3));
  const std = Float32Array.from({ length: size * size }, (_, i) => i / (size * size));
  const fig = renderFigure({ size, gray: true, rows: [{ label: 'SGILO', panels: [{ image: tint }, { std }] }], columns: ['mean', 'std'] });
  const s = panelScale(size);
  assert.ok(size * s >= 128);
  const px = (x: number, y: number) => [...fig.data.subarray((y * fig.width + x) * 4, (y * fig.width + x) * 4 + 3)];
  // Find the first panel: the first non-white pixel of the middle row, right of the row label.
  const labelW = 5 * 6 * 2 - 2 + 12;
  const rowY = fig.height - 60;
  let x0 = labelW;
  while (px(x0, rowY - 40).every((v) => v === 255)) x0++;
  const [r, g, b] = px(x0 + 10, rowY - 40);
  assert.ok(r === g && g === b, `gray figure, tinted image: ${[r, g, b]}`);
  assert.is(r, Math.round((0.4 + 1) * 127.5));
  // Labels: dark pixels in the left margin and in the column-label band.
  let dark = 0;
  for (let y = 0; y < fig.height; y++) for (let x = 0; x < labelW - 6; x++) if (px(x, y)[0] < 128) dark++;
  assert.ok(dark > 30, `row label pixels: ${dark}`);
  // The std panel's colour bar runs from the map's darkest to its brightest colour.
  const bar = colormap(0);
  const barEnd = colormap(1);
  let sawStart = false;
  let sawEnd = false;
  for (let y = 0; y < fig.height; y++)
    for (let x = 0; x < fig.width; x++) {
      const p = px(x, y);
      if (p.join() === bar.join()) sawStart = true;
      if (p.join() === barEnd.join()) sawEnd = true;
    }
  assert.ok(sawStart && sawEnd, 'colour bar');
  // Without gray, the tint shows.
  const colour = renderFigure({ size, rows: [{ panels: [{ image: tint }] }] });
  const c = [...colour.data.subarray(((6 + 10) * colour.width + 6 + 10) * 4, ((6 + 10) * colour.width + 6 + 10) * 4 + 3)];
  assert.ok(c[0] > c[2], `colour kept: ${c}`);
});

test.after(() => rmSync(tmp, { recursive: true, force: true }));
test.run();
