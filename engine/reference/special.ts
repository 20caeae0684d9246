// Special functions in float64 for the CPU references (JavaScript has no Math.erf).

/** erf(x) to ~1e-15: Maclaurin series for |x| < 3, Laplace's continued fraction for erfc beyond. */
export function erf(x: number): number {
  if (Number.isNaN(x)) return NaN;
  const ax = Math.abs(x);
  if (ax < 3) {
    // erf(x) = 2/sqrt(pi) * sum_n (-1)^n x^(2n+1) / (n! (2n+1))
    let term = ax;
    let sum = ax;
    const x2 = ax * ax;
    for (let n = 1; n < 200; n++) {
      term *= -x2 / n;
      const add = term / (2 * n + 1);
      sum += add;
      if (Math.abs(add) < 1e-17 * Math.abs(sum)) break;
    }
    return Math.sign(x) * (2 / Math.sqrt(Math.PI)) * sum;
  }
  // erfc(x) = exp(-x^2)/sqrt(pi) / (x + (1/2)/(x + 1/(x + (3/2)/(x + ...)))), evaluated bottom-up.
  let k = ax;
  for (let n = 60; n >= 1; n--) k = ax + n / 2 / k;
  const erfc = Math.exp(-ax * ax) / Math.sqrt(Math.PI) / k;
  return Math.sign(x) * (1 - erfc);
}
