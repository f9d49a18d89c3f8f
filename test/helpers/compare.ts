// Element-wise comparison with a stated tolerance: |got - want| <= atol + rtol*|want|.
// Reports the first mismatching index with both values; NaN never passes.

import { expect } from 'vitest';

export interface Tolerance { atol: number; rtol: number }

export function expectClose(got: ArrayLike<number>, want: ArrayLike<number>, tol: Tolerance, what: string): void {
  expect(got.length, `${what}: length`).toBe(want.length);
  let bad = -1;
  let count = 0;
  let worst = 0;
  for (let i = 0; i < want.length; i++) {
    const err = Math.abs(got[i] - want[i]);
    const lim = tol.atol + tol.rtol * Math.abs(want[i]);
    if (!(err <= lim)) {
      if (bad < 0) bad = i;
      count++;
    }
    if (Number.isFinite(err) && lim > 0) worst = Math.max(worst, err / lim);
  }
  const msg = bad < 0 ? '' : `${what}: ${count} of ${want.length} elements out of tolerance (atol ${tol.atol}, rtol ${tol.rtol}); first at [${bad}]: got ${got[bad]}, want ${want[bad]}`;
  expect(msg, msg).toBe('');
  expect(worst).toBeLessThanOrEqual(1);
}

/** Normalised mean squared error sum((a-b)^2) / sum(b^2). */
export function nmse(got: ArrayLike<number>, want: ArrayLike<number>): number {
  let num = 0;
  let den = 0;
  for (let i = 0; i < want.length; i++) {
    num += (got[i] - want[i]) ** 2;
    den += want[i] ** 2;
  }
  return num / den;
}

/** sqrt(sum (w - ŵ)^2 / sum w^2): the relative RMS error of an approximation ŵ of w. */
export function relativeRms(w: ArrayLike<number>, wh: ArrayLike<number>): number {
  return Math.sqrt(nmse(wh, w));
}
