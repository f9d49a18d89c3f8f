import { describe, expect, it } from 'vitest';
import { dequantizeQ4, q4Bytes, q4GroupsPerRow, quantizeQ4, type Q4GroupSize } from '../../src/runtime/q4';
import { f16BitsToF32 } from '../../src/runtime/f16';
import { randn } from '../helpers/random';
import { relativeRms } from '../helpers/compare';

/** The 4-bit code of element (n, k), read from the packed words as documented in q4.ts. */
const codeAt = (packed: Uint32Array, cols: number, n: number, k: number) => (packed[(n * cols + k) >>> 3] >>> ((k & 7) * 4)) & 0xf;

describe('q4 quantization', () => {
  // Measured on 256 × 1024 N(0, 0.02²) weights, seeds 1, 2, 3 and 2024 (the one
  // used): G32 0.0780..0.0784, G64 0.0896..0.0901, G128 0.0994..0.1002 (the
  // scale hardly matters: f16 keeps d and m to 2^-11). The bounds add ~2%.
  const BOUND: Record<Q4GroupSize, number> = { 32: 0.08, 64: 0.0915, 128: 0.102 };

  it('keeps the relative RMS error of Gaussian weights under the bound of each group size, growing with G', () => {
    const [rows, cols] = [256, 1024];
    const w = randn(2024, rows * cols, 0.02);
    const errs = ([32, 64, 128] as const).map((G) => {
      const e = relativeRms(w, dequantizeQ4(quantizeQ4(w, rows, cols, G)));
      expect(e, `group ${G}`).toBeLessThan(BOUND[G]);
      // 4 bits over a group's [min, max] cannot do much better than uniform noise: not below 0.06.
      expect(e, `group ${G}`).toBeGreaterThan(0.06);
      return e;
    });
    expect(errs[0]).toBeLessThan(errs[1]);
    expect(errs[1]).toBeLessThan(errs[2]);
  });

  it('uses every code 0..15, and values on the grid m + q d come back exactly with codes in order', () => {
    // Gaussian weights use all 16 levels.
    const [rows, cols] = [4, 256];
    const q = quantizeQ4(randn(7, rows * cols), rows, cols, 32);
    const seen = new Set<number>();
    for (let n = 0; n < rows; n++) for (let k = 0; k < cols; k++) seen.add(codeAt(q.packed, cols, n, k));
    expect([...seen].sort((a, b) => a - b)).toEqual(Array.from({ length: 16 }, (_, i) => i));
    // A group holding m + q d for q = 15, 14, ..., 0, twice (d = 0.25, m = -1.5: exact in f16).
    const grid = Float32Array.from({ length: 32 }, (_, k) => -1.5 + (15 - (k % 16)) * 0.25);
    const g = quantizeQ4(grid, 1, 32, 32);
    expect(Array.from({ length: 32 }, (_, k) => codeAt(g.packed, 32, 0, k))).toEqual(Array.from({ length: 32 }, (_, k) => 15 - (k % 16)));
    expect(f16BitsToF32(g.scales[0] & 0xffff)).toBe(0.25);
    expect(f16BitsToF32(g.scales[0] >>> 16)).toBe(-1.5);
    expect(Array.from(dequantizeQ4(g))).toEqual(Array.from(grid));
  });

  it('dequantizes a constant group exactly (d = 0, every code 0)', () => {
    // f16-representable constants: zero, negative, positive, tiny.
    const values = [0, -0.71875, 3.5, 2 ** -14];
    const w = new Float32Array(values.length * 64);
    values.forEach((v, n) => w.fill(v, n * 64, (n + 1) * 64));
    const q = quantizeQ4(w, values.length, 64, 64);
    expect(Array.from(q.packed).every((word) => word === 0)).toBe(true);
    expect(Array.from(dequantizeQ4(q))).toEqual(Array.from(w));
  });

  it.each([
    [3, 200, 64], [5, 72, 32], [2, 576, 128], [1, 8, 128],
  ] as [number, number, Q4GroupSize][])('handles K = %i rows × %i with group %i (a short last group)', (rows, cols, G) => {
    const w = randn(rows * 1000 + cols + G, rows * cols);
    const q = quantizeQ4(w, rows, cols, G);
    const groups = Math.ceil(cols / G);
    expect(q4GroupsPerRow(cols, G)).toBe(groups);
    expect(q.packed.length).toBe((rows * cols) / 8);
    expect(q.scales.length).toBe(rows * groups);
    expect(q4Bytes(rows, cols, G)).toBe(q.packed.byteLength + q.scales.byteLength);
    const wh = dequantizeQ4(q);
    // Each value lies within half a step of its group's grid, plus what rounding d and m
    // to f16 (relative 2^-11) can move the grid: |lo - m| and 15 |d - (hi - lo) / 15|.
    for (let n = 0; n < rows; n++) {
      for (let g = 0; g < groups; g++) {
        const k0 = g * G;
        const k1 = Math.min(cols, k0 + G);
        const part = Array.from(w.subarray(n * cols + k0, n * cols + k1));
        const lo = Math.min(...part);
        const d = (Math.max(...part) - lo) / 15;
        const bound = 0.5 * d + 2 ** -11 * (Math.abs(lo) + 15 * d) + 1e-12;
        for (let k = k0; k < k1; k++) {
          expect(Math.abs(w[n * cols + k] - wh[n * cols + k]), `(${n}, ${k})`).toBeLessThanOrEqual(bound);
        }
      }
    }
  });

  it('rejects bad shapes, group sizes and values with clear messages', () => {
    expect(() => quantizeQ4(new Float32Array(2 * 12), 2, 12, 32)).toThrow(/quantizeQ4: input size K = 12 of a \(2, 12\) weight must be a multiple of 8 for 4-bit packing/);
    expect(() => quantizeQ4(new Float32Array(64), 1, 64, 16 as Q4GroupSize)).toThrow(/quantizeQ4: group size 16 is not supported \(use 32, 64, 128\)/);
    expect(() => quantizeQ4(new Float32Array(10), 2, 8, 32)).toThrow(/quantizeQ4: got 10 values for a \(2, 8\) matrix/);
    expect(() => quantizeQ4(new Float32Array(0), 0, 8, 32)).toThrow(/quantizeQ4: shape \(0, 8\) must be positive integers/);
    const bad = new Float32Array(16);
    bad[9] = NaN;
    expect(() => quantizeQ4(bad, 2, 8, 32)).toThrow(/quantizeQ4: non-finite weight NaN at \(1, 1\)/);
  });
});
