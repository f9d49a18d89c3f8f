import { describe, expect, it } from 'vitest';
import { dequantizeQ8, quantizeQ8 } from '../../src/runtime/q8';
import { dequantizeQ4, quantizeQ4, type Q4GroupSize } from '../../src/runtime/q4';
import { f16BitsToF32 } from '../../src/runtime/f16';
import { randn } from '../helpers/random';
import { relativeRms } from '../helpers/compare';

/** The 8-bit code of element (n, k), read from the packed words as documented in q8.ts. */
const codeAt = (packed: Uint32Array, cols: number, n: number, k: number) => (packed[(n * cols + k) >>> 2] >>> ((k & 3) * 8)) & 0xff;

describe('q8 quantization', () => {
  // Measured on 256 × 1024 N(0, 0.02²) and N(0, 1) weights, seeds 1, 2, 3 and
  // 2024 (the one used): G32 0.00459..0.00461, G64 0.00526..0.00529, G128
  // 0.00585..0.00589, about 1/17 of q4's error at the same G (the step is
  // 255/15 = 17 times finer). The bounds add ~3%.
  const BOUND: Record<Q4GroupSize, number> = { 32: 0.00475, 64: 0.00545, 128: 0.00605 };

  it('keeps the relative RMS error of Gaussian weights under the bound of each group size, ~17x below q4', () => {
    const [rows, cols] = [256, 1024];
    const w = randn(2024, rows * cols, 0.02);
    const errs = ([32, 64, 128] as const).map((G) => {
      const e = relativeRms(w, dequantizeQ8(quantizeQ8(w, rows, cols, G)));
      expect(e, `group ${G}`).toBeLessThan(BOUND[G]);
      const q4 = relativeRms(w, dequantizeQ4(quantizeQ4(w, rows, cols, G)));
      expect(q4 / e, `group ${G}: q4 error / q8 error`).toBeGreaterThan(15);
      return e;
    });
    expect(errs[0]).toBeLessThan(errs[1]);
    expect(errs[1]).toBeLessThan(errs[2]);
  });

  it('packs four codes per word, low byte first, and values on the grid m + q d come back exactly', () => {
    // A group holding m + q d for q = 0, 255, 1, 254, ... (d = 2^-6, m = -2: exact in f16).
    const codes = Array.from({ length: 32 }, (_, k) => (k % 2 ? 255 - (k >> 1) : k >> 1));
    const grid = Float32Array.from(codes, (q) => -2 + q * 2 ** -6);
    const g = quantizeQ8(grid, 1, 32, 32);
    expect(Array.from({ length: 32 }, (_, k) => codeAt(g.packed, 32, 0, k))).toEqual(codes);
    expect(g.packed[0]).toBe((0 | (255 << 8) | (1 << 16) | (254 << 24)) >>> 0);
    expect(f16BitsToF32(g.scales[0] & 0xffff)).toBe(2 ** -6);
    expect(f16BitsToF32(g.scales[0] >>> 16)).toBe(-2);
    expect(Array.from(dequantizeQ8(g))).toEqual(Array.from(grid));
  });

  it.each([[3, 200, 64], [5, 36, 32], [2, 576, 128], [1, 4, 128]] as [number, number, Q4GroupSize][])(
    '%i rows × K %i with group %i (a short last group): every value within half a step of its group grid',
    (rows, cols, G) => {
      const w = randn(rows * 1000 + cols + G, rows * cols);
      const q = quantizeQ8(w, rows, cols, G);
      const groups = Math.ceil(cols / G);
      expect(q.packed.length).toBe((rows * cols) / 4);
      expect(q.scales.length).toBe(rows * groups);
      const wh = dequantizeQ8(q);
      for (let n = 0; n < rows; n++) {
        for (let g = 0; g < groups; g++) {
          const d = f16BitsToF32(q.scales[n * groups + g] & 0xffff);
          // half a step, plus what rounding d and m to f16 (2^-11 relative) moves the grid
          const slack = d / 2 + 256 * d * 2 ** -11 + 1e-6;
          for (let k = g * G; k < Math.min(cols, (g + 1) * G); k++) {
            expect(Math.abs(wh[n * cols + k] - w[n * cols + k]), `(${n}, ${k})`).toBeLessThanOrEqual(slack);
          }
        }
      }
    },
  );

  it('refuses K not a multiple of 4, an unknown group size, a length mismatch and non-finite weights, naming them', () => {
    expect(() => quantizeQ8(new Float32Array(6), 1, 6)).toThrow(/quantizeQ8: input size K = 6 of a \(1, 6\) weight must be a multiple of 4/);
    expect(() => quantizeQ8(new Float32Array(32), 1, 32, 16 as Q4GroupSize)).toThrow(/quantizeQ8: group size 16 is not supported/);
    expect(() => quantizeQ8(new Float32Array(8), 1, 4)).toThrow(/quantizeQ8: got 8 values for a \(1, 4\) matrix/);
    expect(() => quantizeQ8(Float32Array.of(0, NaN, 0, 0), 1, 4)).toThrow(/quantizeQ8: non-finite weight NaN at \(0, 1\)/);
  });
});
