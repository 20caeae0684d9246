// Bringing an image of any size to the generator's square size (no PNG or browser API here: the
// CLI decodes with pngjs, the web page with a canvas, and both call fitImage).
//
//   pad     an image no larger than size x size in both axes is centre-padded with its background
//           value (Fashion-MNIST's 28x28 gets the 2-pixel border of the shipped 32x32 test images);
//           a larger or non-square one is first padded to a square, then resized with an area filter
//   resize  stretched to size x size with the area filter (the aspect ratio is not kept)
//   crop    the centre square, then padded or area-resized like `pad`
//
// Area filter: each output pixel is the mean of the input it covers (fractional pixels weighted by
// their covered fraction), separably; for upsampling this repeats or blends neighbouring pixels.
// The background value is the most frequent border value of each channel (quantized to 1/255).

export type Fit = 'pad' | 'resize' | 'crop';

/** A decoded image: [channels, height, width] values in [-1, 1]; 1 channel = gray. */
export interface RawImage {
  width: number;
  height: number;
  channels: 1 | 3;
  data: Float32Array;
}

/** The most frequent border value of each channel. */
export function backgroundValues(img: RawImage): number[] {
  const { width: W, height: H } = img;
  return Array.from({ length: img.channels }, (_, c) => {
    const counts = new Map<number, number>();
    const plane = img.data.subarray(c * H * W, (c + 1) * H * W);
    const add = (v: number) => {
      const k = Math.round((v + 1) * 127.5);
      counts.set(k, (counts.get(k) ?? 0) + 1);
    };
    for (let x = 0; x < W; x++) add(plane[x]), H > 1 && add(plane[(H - 1) * W + x]);
    for (let y = 1; y < H - 1; y++) add(plane[y * W]), W > 1 && add(plane[y * W + W - 1]);
    let best = 0;
    let bestN = -1;
    for (const [k, n] of counts) if (n > bestN || (n === bestN && k < best)) [best, bestN] = [k, n];
    return best / 127.5 - 1;
  });
}

/** Centre-places the image on a w x h canvas filled with `fill` (per channel); crops if smaller. */
export function placeCentred(img: RawImage, w: number, h: number, fill: number[]): RawImage {
  const out = new Float32Array(img.channels * w * h);
  const ox = Math.floor((w - img.width) / 2);
  const oy = Math.floor((h - img.height) / 2);
  for (let c = 0; c < img.channels; c++) {
    out.fill(fill[c], c * w * h, (c + 1) * w * h);
    for (let y = 0; y < h; y++) {
      const sy = y - oy;
      if (sy < 0 || sy >= img.height) continue;
      for (let x = 0; x < w; x++) {
        const sx = x - ox;
        if (sx >= 0 && sx < img.width) out[c * w * h + y * w + x] = img.data[c * img.width * img.height + sy * img.width + sx];
      }
    }
  }
  return { width: w, height: h, channels: img.channels, data: out };
}

/** Area-filter weights: out[i] = sum_j m[i][j] in[j], each row summing to 1. */
function areaWeights(n: number, m: number): { j: number; w: number }[][] {
  const scale = n / m;
  return Array.from({ length: m }, (_, i) => {
    const a = i * scale;
    const b = (i + 1) * scale;
    const taps: { j: number; w: number }[] = [];
    for (let j = Math.floor(a); j < Math.min(n, Math.ceil(b)); j++) {
      const cover = Math.min(b, j + 1) - Math.max(a, j);
      if (cover > 1e-12) taps.push({ j, w: cover / scale });
    }
    return taps;
  });
}

/** Resizes with the area filter to w x h. */
export function resizeArea(img: RawImage, w: number, h: number): RawImage {
  if (img.width === w && img.height === h) return img;
  const wx = areaWeights(img.width, w);
  const wy = areaWeights(img.height, h);
  const out = new Float32Array(img.channels * w * h);
  const row = new Float64Array(w);
  for (let c = 0; c < img.channels; c++) {
    const src = img.data.subarray(c * img.width * img.height);
    for (let y = 0; y < h; y++) {
      row.fill(0);
      for (const { j: sy, w: ay } of wy[y])
        for (let x = 0; x < w; x++) {
          let s = 0;
          for (const { j: sx, w: ax } of wx[x]) s += ax * src[sy * img.width + sx];
          row[x] += ay * s;
        }
      for (let x = 0; x < w; x++) out[c * w * h + y * w + x] = row[x];
    }
  }
  return { width: w, height: h, channels: img.channels, data: out };
}

/** The image as [channels, size, size] (a square of the generator's side) by the chosen fit. */
export function fitToSquare(img: RawImage, size: number, fit: Fit): RawImage {
  if (img.width === size && img.height === size) return img;
  if (fit === 'resize') return resizeArea(img, size, size);
  const bg = backgroundValues(img);
  let src = img;
  if (fit === 'crop') {
    const s = Math.min(img.width, img.height);
    src = placeCentred(img, s, s, bg);
  }
  if (src.width <= size && src.height <= size) return placeCentred(src, size, size, bg);
  const s = Math.max(src.width, src.height);
  return resizeArea(placeCentred(src, s, s, bg), size, size);
}

/** fitToSquare, then three channels (gray replicated, so gray stays exactly gray). */
export function fitImage(img: RawImage, size: number, fit: Fit): Float32Array {
  const sq = fitToSquare(img, size, fit);
  if (sq.channels === 3) return sq.data;
  const out = new Float32Array(3 * size * size);
  for (let c = 0; c < 3; c++) out.set(sq.data, c * size * size);
  return out;
}

/** An RGBA byte image (PNG decoders, canvas getImageData) as a RawImage: alpha composited over black, gray kept as 1 channel. */
export function fromRgba(rgba: ArrayLike<number>, width: number, height: number, maxValue = 255): RawImage {
  const P = width * height;
  let gray = true;
  for (let i = 0; i < P && gray; i++) gray = rgba[i * 4] === rgba[i * 4 + 1] && rgba[i * 4] === rgba[i * 4 + 2];
  const channels = gray ? 1 : 3;
  const data = new Float32Array(channels * P);
  for (let i = 0; i < P; i++) {
    const a = rgba[i * 4 + 3] / maxValue;
    for (let c = 0; c < channels; c++) data[c * P + i] = ((rgba[i * 4 + c] / maxValue) * a) * 2 - 1;
  }
  return { width, height, channels, data };
}
