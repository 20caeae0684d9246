// Helpers of scripts/fullsize.ts: the process's memory from /proc (on a CPU adapter device memory
// is host memory, so the resident set is the whole bill) and the comparison with the reference's
// statistics and sampled elements (scripts/fullsize_reference.py writes them).

import { readFileSync, writeFileSync } from 'node:fs';

function statusField(name: string): number {
  const m = new RegExp(`^${name}:\\s+(\\d+) kB`, 'm').exec(readFileSync('/proc/self/status', 'utf8'));
  return m ? Number(m[1]) * 1024 : NaN;
}

export const peakRss = () => statusField('VmHWM');

/** Resets the kernel's peak-RSS mark (VmHWM) to the current RSS and returns it. */
export function resetPeakRss(): number {
  writeFileSync('/proc/self/clear_refs', '5');
  return statusField('VmRSS');
}

export function processMemory(): string {
  const g = (b: number) => `${(b / 2 ** 30).toFixed(2)} GiB`;
  return `RSS ${g(statusField('VmRSS'))}, peak RSS ${g(peakRss())}`;
}

export function loadAverage(): string {
  return readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ');
}

export interface ExpectedTensor {
  shape: number[];
  mean: number;
  rms: number;
  absmax: number;
  /** Flat indices of the sampled elements and their values. */
  index: number[];
  value: number[];
}

export interface Expected {
  tolerance: { output_max_rel: number; grad_rel_rms: number };
  tensors: Record<string, ExpectedTensor>;
}

/**
 * Outputs: every sampled element within output_max_rel x max|ref| of the tensor, and the mean and
 * RMS within the same bound. Gradients: the RMS of the sampled differences within grad_rel_rms x
 * the tensor's RMS, and its mean and RMS within grad_rel_rms relative.
 */
export function compareSamples(got: Map<string, Float32Array>, expected: Expected, log: (l: string) => void): boolean {
  let ok = true;
  for (const [name, e] of Object.entries(expected.tensors)) {
    const a = got.get(name);
    const n = e.shape.reduce((x, y) => x * y, 1);
    if (!a || a.length !== n) {
      log(`FAIL ${name}: ${a ? `${a.length} elements, expected ${n}` : 'not computed'}`);
      ok = false;
      continue;
    }
    let s = 0;
    let s2 = 0;
    for (const v of a) {
      s += v;
      s2 += v * v;
    }
    const mean = s / n;
    const rms = Math.sqrt(s2 / n);
    let maxDiff = 0;
    let sqDiff = 0;
    e.index.forEach((i, j) => {
      const d = Math.abs(a[i] - e.value[j]);
      maxDiff = Math.max(maxDiff, d);
      sqDiff += d * d;
    });
    const isGrad = name.startsWith('grad.');
    const err = isGrad ? Math.sqrt(sqDiff / e.index.length) / e.rms : maxDiff / e.absmax;
    const bound = isGrad ? expected.tolerance.grad_rel_rms : expected.tolerance.output_max_rel;
    const scale = isGrad ? e.rms : e.absmax;
    const statErr = Math.max(Math.abs(mean - e.mean), Math.abs(rms - e.rms)) / scale;
    const pass = err <= bound && statErr <= bound && Number.isFinite(err);
    ok &&= pass;
    const what = isGrad ? 'relative RMS of sampled diffs' : 'max|a-b|/max|b| of sampled';
    log(`${pass ? 'ok  ' : 'FAIL'} ${name.padEnd(20)} ${what} ${err.toExponential(2)}, mean/RMS ${statErr.toExponential(2)} (bound ${bound})`);
  }
  return ok;
}
