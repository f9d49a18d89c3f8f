// Tessera's 4-bit weight format ("q4"), one layout for every model family.
//
// A linear weight W of shape (N, K) (out, in; the checkpoint's layout) is cut
// into groups of G consecutive values along K (G = 32 by default; 64 or 128).
// Each group stores a scale d and a minimum m, and each value a 4-bit code q:
//
//     W[n, k] ≈ m + q * d,   q in 0..15,   d = (max - min) / 15 of the group
//
// We chose the asymmetric form (a minimum per group, like GGUF Q4_1 and ONNX
// MatMulNBits with zero points) over symmetric -8..7: a group's range is
// rarely centred on zero, and using all 16 levels over [min, max] gives lower
// error for the same 4 bits (the README gives the measured figures). It costs
// one extra f16 per group, and the matvec folds it in as m * sum(x) per group.
//
// Memory layout (both arrays are u32, so every GPU can read them):
//   packed: (N, K/8)       word w of row n holds k = 8w .. 8w+7, the value at
//                          k = 8w + j in bits 4j .. 4j+3 (low nibble first)
//   scales: (N, ceil(K/G)) pack2x16float(d, m): d in the low half, m in the high
// K must be a multiple of 8; the last group of a row may be shorter than G
// when K is not a multiple of G (576 with G = 128, for example).

import { f16BitsToF32, f32ToF16Bits } from './f16';

export const Q4_GROUP_SIZES = [32, 64, 128] as const;
export type Q4GroupSize = (typeof Q4_GROUP_SIZES)[number];

export interface Q4Weights {
  rows: number;        // N
  cols: number;        // K
  groupSize: Q4GroupSize;
  packed: Uint32Array; // (N, K/8)
  scales: Uint32Array; // (N, ceil(K/G)), f16 pairs (d, m)
}

export function q4GroupsPerRow(cols: number, groupSize: number): number {
  return Math.ceil(cols / groupSize);
}

export function checkQ4Shape(op: string, rows: number, cols: number, groupSize: number): void {
  if (!Number.isInteger(rows) || rows <= 0 || !Number.isInteger(cols) || cols <= 0) {
    throw new Error(`${op}: shape (${rows}, ${cols}) must be positive integers`);
  }
  if (cols % 8 !== 0) throw new Error(`${op}: input size K = ${cols} of a (${rows}, ${cols}) weight must be a multiple of 8 for 4-bit packing`);
  if (!(Q4_GROUP_SIZES as readonly number[]).includes(groupSize)) {
    throw new Error(`${op}: group size ${groupSize} is not supported (use ${Q4_GROUP_SIZES.join(', ')})`);
  }
}

/** Quantizes a row-major (rows, cols) float matrix to q4. */
export function quantizeQ4(weights: ArrayLike<number>, rows: number, cols: number, groupSize: Q4GroupSize = 32): Q4Weights {
  checkQ4Shape('quantizeQ4', rows, cols, groupSize);
  return { rows, cols, groupSize, ...quantizeGroups('quantizeQ4', weights, rows, cols, groupSize, 4) };
}

/** Expands q4 back to a row-major Float64Array: exactly what the GPU kernels compute with. */
export function dequantizeQ4(q: Q4Weights): Float64Array {
  return dequantizeGroups(q, 4);
}

/**
 * The body of quantizeQ4 and quantizeQ8 (q8.ts): per group of G along K, an
 * f16 (d, m) pair and codes of `bits` bits, 32 / bits to a u32, low bits first.
 */
export function quantizeGroups(op: string, weights: ArrayLike<number>, rows: number, cols: number, groupSize: number, bits: 4 | 8): { packed: Uint32Array; scales: Uint32Array } {
  if (weights.length !== rows * cols) throw new Error(`${op}: got ${weights.length} values for a (${rows}, ${cols}) matrix`);
  const top = (1 << bits) - 1; // largest code
  const wordShift = bits === 4 ? 3 : 2; // element i is in word i >> wordShift ...
  const lane = (32 / bits) - 1;         // ... at code i & lane
  const groups = q4GroupsPerRow(cols, groupSize);
  const packed = new Uint32Array((rows * cols) >>> wordShift);
  const scales = new Uint32Array(rows * groups);
  for (let n = 0; n < rows; n++) {
    const row = n * cols;
    for (let g = 0; g < groups; g++) {
      const k0 = g * groupSize;
      const k1 = Math.min(cols, k0 + groupSize);
      let lo = Infinity;
      let hi = -Infinity;
      for (let k = k0; k < k1; k++) {
        const w = weights[row + k];
        if (!Number.isFinite(w)) throw new Error(`${op}: non-finite weight ${w} at (${n}, ${k})`);
        lo = Math.min(lo, w);
        hi = Math.max(hi, w);
      }
      // Store d and m as f16, then quantize against the rounded values so the
      // codes are the best ones for what the GPU will actually read.
      const dBits = f32ToF16Bits((hi - lo) / top);
      const mBits = f32ToF16Bits(lo);
      const d = f16BitsToF32(dBits);
      const m = f16BitsToF32(mBits);
      scales[n * groups + g] = (dBits | (mBits << 16)) >>> 0;
      for (let k = k0; k < k1; k++) {
        const q = d > 0 ? Math.min(top, Math.max(0, Math.round((weights[row + k] - m) / d))) : 0;
        const i = row + k;
        packed[i >>> wordShift] |= q << ((i & lane) * bits);
      }
    }
  }
  return { packed, scales };
}

/** Expands quantizeGroups' output back to a row-major Float64Array. */
export function dequantizeGroups(q: { rows: number; cols: number; groupSize: number; packed: Uint32Array; scales: Uint32Array }, bits: 4 | 8): Float64Array {
  const { rows, cols, groupSize, packed, scales } = q;
  const mask = (1 << bits) - 1;
  const wordShift = bits === 4 ? 3 : 2;
  const lane = (32 / bits) - 1;
  const groups = q4GroupsPerRow(cols, groupSize);
  const out = new Float64Array(rows * cols);
  for (let n = 0; n < rows; n++) {
    for (let k = 0; k < cols; k++) {
      const s = scales[n * groups + Math.floor(k / groupSize)];
      const i = n * cols + k;
      const code = (packed[i >>> wordShift] >>> ((i & lane) * bits)) & mask;
      out[i] = f16BitsToF32(s >>> 16) + code * f16BitsToF32(s & 0xffff);
    }
  }
  return out;
}

/** Bytes on the device: packed codes plus the scale/minimum pairs. */
export function q4Bytes(rows: number, cols: number, groupSize: number): number {
  return rows * (cols / 8) * 4 + rows * q4GroupsPerRow(cols, groupSize) * 4;
}
