// Hand-written SVG plots for experiment reports (no plotting library): line/scatter plots with
// linear or log axes, and grouped bar charts. Output is a self-contained SVG string.

export interface Series {
  name: string;
  points: [number, number][];
  /** 'line' (default), 'points', or 'both'. */
  style?: 'line' | 'points' | 'both';
  dashed?: boolean;
  /** Index into the palette (default: the series' position), so related series can share a color. */
  color?: number;
}

export interface LinePlot {
  title: string;
  xLabel: string;
  yLabel: string;
  series: Series[];
  xLog?: boolean;
  yLog?: boolean;
  /** Horizontal reference lines. */
  hlines?: { y: number; label: string }[];
  /** Fixed axis ranges (data range otherwise). */
  xRange?: [number, number];
  yRange?: [number, number];
}

export interface BarChart {
  title: string;
  yLabel: string;
  categories: string[];
  groups: { name: string; values: number[] }[];
  yRange?: [number, number];
}

const W = 720;
const H = 400;
const M = { left: 70, right: 220, top: 40, bottom: 56 };
const COLORS = ['#1f77b4', '#d62728', '#2ca02c', '#ff7f0e', '#9467bd', '#8c564b', '#e377c2', '#17becf', '#7f7f7f', '#bcbd22'];

const esc = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
const fmt = (v: number) => (Math.abs(v) >= 1e4 || (Math.abs(v) < 1e-2 && v !== 0) ? v.toExponential(0) : String(Number(v.toPrecision(3))));

/** Tick values: 1-2-5 steps on linear axes, powers of ten (with 2 and 5 on short ranges) on log axes. */
function ticks(lo: number, hi: number, log: boolean): number[] {
  if (log) {
    const a = Math.floor(Math.log10(lo));
    const b = Math.ceil(Math.log10(hi));
    const out: number[] = [];
    const mult = b - a <= 2 ? [1, 2, 5] : [1];
    for (let e = a; e <= b; e++) for (const m of mult) {
      const v = m * 10 ** e;
      if (v >= lo * 0.999 && v <= hi * 1.001) out.push(v);
    }
    return out;
  }
  const raw = (hi - lo) / 6;
  const p = 10 ** Math.floor(Math.log10(raw || 1));
  const step = [1, 2, 5, 10].map((m) => m * p).find((s) => s >= raw) ?? 10 * p;
  const out: number[] = [];
  for (let v = Math.ceil(lo / step) * step; v <= hi + step * 1e-9; v += step) out.push(Number(v.toPrecision(12)));
  return out;
}

function range(values: number[], log: boolean, fixed?: [number, number]): [number, number] {
  if (fixed) return fixed;
  const v = values.filter((x) => Number.isFinite(x) && (!log || x > 0));
  if (v.length === 0) return log ? [1, 10] : [0, 1];
  let lo = Math.min(...v);
  let hi = Math.max(...v);
  if (log) {
    if (lo === hi) [lo, hi] = [lo / 2, hi * 2];
    return [lo / 1.15, hi * 1.15];
  }
  if (lo === hi) [lo, hi] = [lo - 1, hi + 1];
  const pad = (hi - lo) * 0.05;
  return [lo > 0 && lo - pad < 0 ? 0 : lo - pad, hi + pad];
}

function frame(title: string, xLabel: string, yLabel: string): string[] {
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="sans-serif" font-size="12">`,
    `<rect width="${W}" height="${H}" fill="white"/>`,
    `<text x="${(M.left + W - M.right) / 2}" y="22" text-anchor="middle" font-size="14" font-weight="bold">${esc(title)}</text>`,
    `<text x="${(M.left + W - M.right) / 2}" y="${H - 12}" text-anchor="middle">${esc(xLabel)}</text>`,
    `<text transform="translate(16 ${(M.top + H - M.bottom) / 2}) rotate(-90)" text-anchor="middle">${esc(yLabel)}</text>`,
  ];
}

function legend(names: { name: string; color: string; dashed?: boolean }[]): string[] {
  return names.map((s, i) => {
    const y = M.top + 10 + i * 18;
    const x = W - M.right + 12;
    return `<line x1="${x}" y1="${y}" x2="${x + 22}" y2="${y}" stroke="${s.color}" stroke-width="2"${s.dashed ? ' stroke-dasharray="5 3"' : ''}/><text x="${x + 28}" y="${y + 4}">${esc(s.name)}</text>`;
  });
}

export function linePlot(p: LinePlot): string {
  const xs = p.series.flatMap((s) => s.points.map(([x]) => x));
  const ys = [...p.series.flatMap((s) => s.points.map(([, y]) => y)), ...(p.hlines ?? []).map((h) => h.y)];
  const [x0, x1] = range(xs, !!p.xLog, p.xRange);
  const [y0, y1] = range(ys, !!p.yLog, p.yRange);
  const tx = (x: number) => (p.xLog ? Math.log(x / x0) / Math.log(x1 / x0) : (x - x0) / (x1 - x0));
  const ty = (y: number) => (p.yLog ? Math.log(y / y0) / Math.log(y1 / y0) : (y - y0) / (y1 - y0));
  const px = (x: number) => M.left + tx(x) * (W - M.left - M.right);
  const py = (y: number) => H - M.bottom - ty(y) * (H - M.top - M.bottom);
  const ok = ([x, y]: [number, number]) => Number.isFinite(x) && Number.isFinite(y) && (!p.xLog || x > 0) && (!p.yLog || y > 0) && x >= x0 && x <= x1 && y >= y0 && y <= y1;
  const out = frame(p.title, p.xLabel, p.yLabel);
  out.push(`<rect x="${M.left}" y="${M.top}" width="${W - M.left - M.right}" height="${H - M.top - M.bottom}" fill="none" stroke="#444"/>`);
  for (const t of ticks(x0, x1, !!p.xLog)) {
    out.push(`<line x1="${px(t)}" y1="${M.top}" x2="${px(t)}" y2="${H - M.bottom}" stroke="#ddd"/><text x="${px(t)}" y="${H - M.bottom + 16}" text-anchor="middle">${fmt(t)}</text>`);
  }
  for (const t of ticks(y0, y1, !!p.yLog)) {
    out.push(`<line x1="${M.left}" y1="${py(t)}" x2="${W - M.right}" y2="${py(t)}" stroke="#ddd"/><text x="${M.left - 6}" y="${py(t) + 4}" text-anchor="end">${fmt(t)}</text>`);
  }
  for (const h of p.hlines ?? []) {
    if (!(h.y >= y0 && h.y <= y1)) continue;
    out.push(`<line x1="${M.left}" y1="${py(h.y)}" x2="${W - M.right}" y2="${py(h.y)}" stroke="#555" stroke-dasharray="2 3"/><text x="${W - M.right - 4}" y="${py(h.y) - 4}" text-anchor="end" fill="#555">${esc(h.label)}</text>`);
  }
  const colorOf = (s: Series, i: number) => COLORS[(s.color ?? i) % COLORS.length];
  p.series.forEach((s, i) => {
    const color = colorOf(s, i);
    const pts = s.points.filter(ok);
    const style = s.style ?? 'line';
    if (style !== 'points' && pts.length > 1) {
      const d = pts.map(([x, y], j) => `${j ? 'L' : 'M'}${px(x).toFixed(1)},${py(y).toFixed(1)}`).join(' ');
      out.push(`<path d="${d}" fill="none" stroke="${color}" stroke-width="2"${s.dashed ? ' stroke-dasharray="5 3"' : ''}/>`);
    }
    if (style !== 'line') for (const [x, y] of pts) out.push(`<circle cx="${px(x).toFixed(1)}" cy="${py(y).toFixed(1)}" r="3.5" fill="${color}"/>`);
  });
  out.push(...legend(p.series.map((s, i) => ({ name: s.name, color: colorOf(s, i), dashed: s.dashed }))));
  out.push('</svg>');
  return out.join('\n');
}

export function barChart(b: BarChart): string {
  const values = b.groups.flatMap((g) => g.values);
  const [y0, y1] = b.yRange ?? [0, Math.max(...values.filter(Number.isFinite), 1e-9) * 1.1];
  const plotW = W - M.left - M.right;
  const py = (y: number) => H - M.bottom - ((y - y0) / (y1 - y0)) * (H - M.top - M.bottom);
  const out = frame(b.title, '', b.yLabel);
  out.push(`<rect x="${M.left}" y="${M.top}" width="${plotW}" height="${H - M.top - M.bottom}" fill="none" stroke="#444"/>`);
  for (const t of ticks(y0, y1, false)) {
    out.push(`<line x1="${M.left}" y1="${py(t)}" x2="${W - M.right}" y2="${py(t)}" stroke="#ddd"/><text x="${M.left - 6}" y="${py(t) + 4}" text-anchor="end">${fmt(t)}</text>`);
  }
  const slot = plotW / b.categories.length;
  const barW = (slot * 0.8) / b.groups.length;
  b.categories.forEach((c, ci) => {
    const x = M.left + ci * slot;
    out.push(`<text x="${x + slot / 2}" y="${H - M.bottom + 16}" text-anchor="middle">${esc(c)}</text>`);
    b.groups.forEach((g, gi) => {
      const v = g.values[ci];
      if (!Number.isFinite(v)) return;
      const top = py(Math.min(Math.max(v, y0), y1));
      out.push(`<rect x="${(x + slot * 0.1 + gi * barW).toFixed(1)}" y="${top.toFixed(1)}" width="${(barW - 1).toFixed(1)}" height="${(py(y0) - top).toFixed(1)}" fill="${COLORS[gi % COLORS.length]}"/>`);
    });
  });
  out.push(...legend(b.groups.map((g, i) => ({ name: g.name, color: COLORS[i % COLORS.length] }))));
  out.push('</svg>');
  return out.join('\n');
}
