// Canvas drawing for the web page: images in [-1, 1] and the loss curve.
//
//   image: [C, size, size] float, C = 1 (gray) or 3 (RGB), values in [-1, 1] (StyleGAN2's range)
//   canvases for images are size x size pixels, scaled up by CSS (image-rendering: pixelated)

/** Draws one [C, size, size] image (C = 1 or 3) onto a size x size canvas, clipping to [-1, 1]. */
export function drawImage(canvas: HTMLCanvasElement, image: Float32Array, size: number): void {
  const channels = image.length / (size * size);
  if (channels !== 1 && channels !== 3) throw new RangeError(`drawImage: ${image.length} values are not 1 or 3 channels of ${size}x${size}`);
  canvas.width = size;
  canvas.height = size;
  const ctx = canvas.getContext('2d')!;
  const pixels = ctx.createImageData(size, size);
  for (let i = 0; i < size * size; i++) {
    for (let c = 0; c < 3; c++) {
      const v = image[(channels === 1 ? 0 : c) * size * size + i];
      pixels.data[i * 4 + c] = Math.max(0, Math.min(255, Math.round((v + 1) * 127.5)));
    }
    pixels.data[i * 4 + 3] = 255;
  }
  ctx.putImageData(pixels, 0, 0);
}

/** A titled canvas in a figure, appended to `parent`; returns the canvas. */
export function imageCell(parent: HTMLElement, caption: string, image?: Float32Array, size = 32): HTMLCanvasElement {
  const fig = document.createElement('figure');
  const canvas = document.createElement('canvas');
  canvas.className = 'img';
  canvas.width = size;
  canvas.height = size;
  const cap = document.createElement('figcaption');
  cap.textContent = caption;
  fig.append(canvas, cap);
  parent.append(fig);
  if (image) drawImage(canvas, image, size);
  return canvas;
}

/**
 * The loss after each step on a log scale, `totalSteps` wide; a line marks every `stepsPerRound`
 * steps (the rounds: round 0 on the latent, then one round per intermediate block).
 */
export function drawLossCurve(canvas: HTMLCanvasElement, losses: number[], stepsPerRound: number, totalSteps: number): void {
  const dpr = globalThis.devicePixelRatio || 1;
  const cssW = canvas.clientWidth || 480;
  const cssH = canvas.clientHeight || 200;
  canvas.width = Math.round(cssW * dpr);
  canvas.height = Math.round(cssH * dpr);
  const ctx = canvas.getContext('2d')!;
  ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
  ctx.clearRect(0, 0, cssW, cssH);
  const pad = { l: 52, r: 10, t: 10, b: 24 };
  const w = cssW - pad.l - pad.r;
  const h = cssH - pad.t - pad.b;
  ctx.strokeStyle = '#999';
  ctx.strokeRect(pad.l, pad.t, w, h);
  ctx.font = '11px system-ui, sans-serif';
  ctx.fillStyle = '#555';
  ctx.fillText('step', pad.l + w / 2 - 10, cssH - 6);
  ctx.textAlign = 'right';
  ctx.fillText('loss (log scale)', pad.l + w - 6, pad.t + 14);
  ctx.textAlign = 'left';
  const n = Math.max(totalSteps, 2);
  const x = (i: number) => pad.l + (i / (n - 1)) * w;
  // Round boundaries.
  ctx.strokeStyle = '#ddd';
  for (let b = stepsPerRound; b < totalSteps; b += stepsPerRound) {
    ctx.beginPath();
    ctx.moveTo(x(b - 0.5), pad.t);
    ctx.lineTo(x(b - 0.5), pad.t + h);
    ctx.stroke();
  }
  const finite = losses.filter((v) => Number.isFinite(v) && v > 0);
  if (finite.length === 0) return;
  const lo = Math.log10(Math.min(...finite));
  const hi = Math.max(Math.log10(Math.max(...finite)), lo + 1e-3);
  const y = (v: number) => pad.t + h - ((Math.log10(v) - lo) / (hi - lo)) * h;
  ctx.fillStyle = '#555';
  ctx.fillText(10 ** hi < 1e-2 || 10 ** hi > 1e3 ? (10 ** hi).toExponential(1) : (10 ** hi).toPrecision(2), 4, pad.t + 9);
  ctx.fillText(10 ** lo < 1e-2 || 10 ** lo > 1e3 ? (10 ** lo).toExponential(1) : (10 ** lo).toPrecision(2), 4, pad.t + h);
  ctx.strokeStyle = '#1f5fbf';
  ctx.lineWidth = 1.5;
  ctx.beginPath();
  losses.forEach((v, i) => {
    if (!(Number.isFinite(v) && v > 0)) return;
    if (i === 0) ctx.moveTo(x(i), y(v));
    else ctx.lineTo(x(i), y(v));
  });
  ctx.stroke();
}
