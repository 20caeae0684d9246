// Figures a person can read: panels upscaled nearest-neighbour to at least 128 px, row and column
// labels drawn with the bitmap font (font.ts), std maps in a colour map with a scale bar and its
// range, and gray figures kept gray. Pure RGBA rendering; png.ts encodes it.

import { drawText, GLYPH_H, textWidth } from './font.ts';

/** An image [C, size, size] (C = 1 or 3, values in [-1, 1]); a std map [size * size] (raw std, >= 0); or a blank cell. */
export type Panel = { image: Float32Array } | { std: Float32Array } | null;

export interface FigureSpec {
  /** The images' side in pixels. */
  size: number;
  rows: { label?: string; panels: Panel[] }[];
  columns?: string[];
  title?: string;
  /** RGB images shown as gray (the channel mean): the input was gray. */
  gray?: boolean;
  /** Smallest panel side in pixels after upscaling (default 128). */
  minPanel?: number;
}

export interface Rgba {
  width: number;
  height: number;
  data: Uint8Array;
}

const GAP = 6;
const TEXT = 2; // font scale of labels
const LINE = GLYPH_H * TEXT;
const BAR = 10;

/** Colour-map stops (dark to bright, perceptually ordered) for std maps. */
const STOPS: [number, number, number][] = [
  [0, 0, 4],
  [87, 16, 110],
  [188, 55, 84],
  [249, 142, 9],
  [252, 255, 164],
];

export function colormap(t: number): [number, number, number] {
  const u = Math.max(0, Math.min(1, Number.isFinite(t) ? t : 0)) * (STOPS.length - 1);
  const i = Math.min(STOPS.length - 2, Math.floor(u));
  const f = u - i;
  return [0, 1, 2].map((c) => Math.round(STOPS[i][c] * (1 - f) + STOPS[i + 1][c] * f)) as [number, number, number];
}

/** The scale of a figure's panels: the smallest integer factor reaching minPanel. */
export const panelScale = (size: number, minPanel = 128) => Math.max(1, Math.ceil(minPanel / size));

/** A short number for a scale bar ("0.031", "1.2e-5"). */
export const shortNumber = (v: number) => (v === 0 ? '0' : Math.abs(v) >= 0.01 && Math.abs(v) < 1000 ? String(Number(v.toPrecision(2))) : v.toExponential(1));

export function renderFigure(spec: FigureSpec): Rgba {
  const { size } = spec;
  const s = panelScale(size, spec.minPanel);
  const P = size * s;
  const cols = Math.max(...spec.rows.map((r) => r.panels.length), spec.columns?.length ?? 0, 1);
  const labelW = Math.max(0, ...spec.rows.map((r) => (r.label ? textWidth(r.label, TEXT) + 2 * GAP : 0)));
  const colScale = (t: string) => (textWidth(t, TEXT) <= P ? TEXT : 1);
  const titleH = spec.title ? LINE + 2 * GAP : 0;
  const colH = spec.columns?.length ? LINE + GAP : 0;
  const rowH = spec.rows.map((r) => P + (r.panels.some((p) => p && 'std' in p) ? BAR + 2 + LINE + GAP : 0));
  const width = Math.max(labelW + cols * (P + GAP) + GAP, spec.title ? textWidth(spec.title, TEXT) + 2 * GAP : 0);
  const height = titleH + colH + rowH.reduce((a, b) => a + b + GAP, 0) + GAP;
  const data = new Uint8Array(width * height * 4).fill(255);
  const put = (x: number, y: number, rgb: readonly number[]) => {
    const o = (y * width + x) * 4;
    data[o] = rgb[0];
    data[o + 1] = rgb[1];
    data[o + 2] = rgb[2];
  };
  if (spec.title) drawText(data, width, height, spec.title, GAP, GAP, TEXT);
  spec.columns?.forEach((t, j) => {
    const sc = colScale(t);
    const x = labelW + GAP + j * (P + GAP) + Math.max(0, Math.floor((P - textWidth(t, sc)) / 2));
    drawText(data, width, height, t, x, titleH + (LINE - GLYPH_H * sc), sc);
  });
  let y0 = titleH + colH + GAP;
  spec.rows.forEach((row, i) => {
    if (row.label) drawText(data, width, height, row.label, GAP, y0 + Math.floor((P - LINE) / 2), TEXT);
    row.panels.forEach((p, j) => {
      if (!p) return;
      const x0 = labelW + GAP + j * (P + GAP);
      if ('std' in p) {
        const max = p.std.reduce((m, v) => (v > m ? v : m), 0);
        for (let y = 0; y < P; y++) for (let x = 0; x < P; x++) put(x0 + x, y0 + y, colormap(max > 0 ? p.std[Math.floor(y / s) * size + Math.floor(x / s)] / max : 0));
        for (let y = 0; y < BAR; y++) for (let x = 0; x < P; x++) put(x0 + x, y0 + P + 2 + y, colormap(x / (P - 1)));
        const hi = shortNumber(max);
        const ly = y0 + P + 2 + BAR + 2;
        drawText(data, width, height, '0', x0, ly, TEXT);
        drawText(data, width, height, hi, x0 + P - textWidth(hi, TEXT), ly, TEXT);
        return;
      }
      const img = p.image;
      const C = img.length / (size * size);
      for (let y = 0; y < P; y++)
        for (let x = 0; x < P; x++) {
          const k = Math.floor(y / s) * size + Math.floor(x / s);
          const rgb = C === 1 || spec.gray ? [0, 1, 2].map(() => (C === 1 ? img[k] : (img[k] + img[size * size + k] + img[2 * size * size + k]) / 3)) : [img[k], img[size * size + k], img[2 * size * size + k]];
          put(x0 + x, y0 + y, rgb.map((v) => Math.max(0, Math.min(255, Math.round((v + 1) * 127.5)))));
        }
    });
    y0 += rowH[i] + GAP;
  });
  return { width, height, data };
}
