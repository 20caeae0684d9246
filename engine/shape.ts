// Shape arithmetic shared by tensors, ops and references. Shapes are row-major, contiguous.
// Kernels take at most MAX_RANK dimensions (they index through fixed-size uniform arrays).

export type Shape = readonly number[];

export const MAX_RANK = 8;

export function shapeString(shape: Shape): string {
  return `[${shape.join(', ')}]`;
}

/** Throws an error naming `what` when `shape` is not a list of positive integers of rank <= MAX_RANK. */
export function validateShape(shape: Shape, what = 'tensor'): void {
  if (!Array.isArray(shape)) throw new TypeError(`${what}: shape must be an array of integers, got ${String(shape)}`);
  if (shape.length > MAX_RANK) {
    throw new RangeError(`${what}: rank ${shape.length} exceeds the engine's maximum rank ${MAX_RANK} (shape ${shapeString(shape)})`);
  }
  for (const d of shape) {
    if (!Number.isInteger(d) || d <= 0) {
      throw new RangeError(`${what}: every dimension must be a positive integer, got shape ${shapeString(shape)}`);
    }
  }
}

export function sizeOf(shape: Shape): number {
  let n = 1;
  for (const d of shape) n *= d;
  return n;
}

/** Row-major strides in elements. */
export function stridesOf(shape: Shape): number[] {
  const s = new Array<number>(shape.length);
  let acc = 1;
  for (let i = shape.length - 1; i >= 0; i--) {
    s[i] = acc;
    acc *= shape[i];
  }
  return s;
}

export function sameShape(a: Shape, b: Shape): boolean {
  return a.length === b.length && a.every((d, i) => d === b[i]);
}

/** NumPy broadcasting of two shapes; the error names the op and both shapes. */
export function broadcastShapes(a: Shape, b: Shape, op: string): number[] {
  const rank = Math.max(a.length, b.length);
  const out = new Array<number>(rank);
  for (let i = 0; i < rank; i++) {
    const da = a[a.length - rank + i] ?? 1;
    const db = b[b.length - rank + i] ?? 1;
    if (da !== db && da !== 1 && db !== 1) {
      throw new RangeError(`${op}: shapes ${shapeString(a)} and ${shapeString(b)} cannot be broadcast together (dimension ${i}: ${da} vs ${db})`);
    }
    out[i] = Math.max(da, db);
  }
  return out;
}

/**
 * Strides (in elements of `shape`) to read `shape` as if it had `outShape`: broadcast dimensions,
 * and leading dimensions `shape` lacks, get stride 0.
 */
export function broadcastStrides(shape: Shape, outShape: Shape): number[] {
  const own = stridesOf(shape);
  const off = outShape.length - shape.length;
  return outShape.map((_, i) => (i < off || shape[i - off] === 1 ? 0 : own[i - off]));
}

/** Normalizes axes (negative allowed), checks range and duplicates, returns them sorted. */
export function normalizeAxes(axes: number | readonly number[] | undefined, rank: number, op: string): number[] {
  if (axes === undefined) return Array.from({ length: rank }, (_, i) => i);
  const list = typeof axes === 'number' ? [axes] : [...axes];
  const out = list.map((ax) => {
    if (!Number.isInteger(ax) || ax < -rank || ax >= rank) {
      throw new RangeError(`${op}: axis ${ax} is out of range for a tensor of rank ${rank}`);
    }
    return ax < 0 ? ax + rank : ax;
  });
  if (new Set(out).size !== out.length) throw new RangeError(`${op}: repeated axis in ${JSON.stringify(list)}`);
  return out.sort((x, y) => x - y);
}

/**
 * Merges adjacent dimensions that every stride list walks through (d and d+1 with
 * strides[d] == strides[d+1] * shape[d+1] in each list) and drops size-1 dimensions. Kernels spend
 * their index arithmetic on one division and remainder per dimension and element, so e.g. a bias
 * [D] broadcast over [B, T, D] becomes [B*T, D], and a permute or slice often drops to rank 2.
 * Returns at least one dimension.
 */
export function coalesceDims(shape: readonly number[], stridesList: readonly (readonly number[])[]): { shape: number[]; strides: number[][] } {
  const outShape: number[] = [];
  const outStrides: number[][] = stridesList.map(() => []);
  for (let d = 0; d < shape.length; d++) {
    if (shape[d] === 1) continue;
    const last = outShape.length - 1;
    if (last >= 0 && stridesList.every((s, j) => outStrides[j][last] === s[d] * shape[d])) {
      outShape[last] *= shape[d];
      stridesList.forEach((s, j) => (outStrides[j][last] = s[d]));
    } else {
      outShape.push(shape[d]);
      stridesList.forEach((s, j) => outStrides[j].push(s[d]));
    }
  }
  return outShape.length ? { shape: outShape, strides: outStrides } : { shape: [1], strides: stridesList.map(() => [0]) };
}
