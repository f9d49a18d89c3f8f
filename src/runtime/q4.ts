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
  if (weights.length !== rows * cols) {
    throw new Error(`quantizeQ4: got ${weights.length} values for a (${rows}, ${cols}) matrix`);
  }
  const groups = q4GroupsPerRow(cols, groupSize);
  const packed = new Uint32Array(rows * (cols / 8));
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
        if (!Number.isFinite(w)) throw new Error(`quantizeQ4: non-finite weight ${w} at (${n}, ${k})`);
        lo = Math.min(lo, w);
        hi = Math.max(hi, w);
      }
      // Store d and m as f16, then quantize against the rounded values so the
      // codes are the best ones for what the GPU will actually read.
      const dBits = f32ToF16Bits((hi - lo) / 15);
      const mBits = f32ToF16Bits(lo);
      const d = f16BitsToF32(dBits);
      const m = f16BitsToF32(mBits);
      scales[n * groups + g] = (dBits | (mBits << 16)) >>> 0;
      for (let k = k0; k < k1; k++) {
        const q = d > 0 ? Math.min(15, Math.max(0, Math.round((weights[row + k] - m) / d))) : 0;
        packed[(row + k) >>> 3] |= q << ((k & 7) * 4);
      }
    }
  }
  return { rows, cols, groupSize, packed, scales };
}

/** Expands q4 back to a row-major Float64Array: exactly what the GPU kernels compute with. */
export function dequantizeQ4(q: Q4Weights): Float64Array {
  const { rows, cols, groupSize, packed, scales } = q;
  const groups = q4GroupsPerRow(cols, groupSize);
  const out = new Float64Array(rows * cols);
  for (let n = 0; n < rows; n++) {
    for (let k = 0; k < cols; k++) {
      const s = scales[n * groups + Math.floor(k / groupSize)];
      const d = f16BitsToF32(s & 0xffff);
      const m = f16BitsToF32(s >>> 16);
      const code = (packed[(n * cols + k) >>> 3] >>> ((k & 7) * 4)) & 0xf;
      out[n * cols + k] = m + code * d;
    }
  }
  return out;
}

/** Bytes on the device: packed codes plus the scale/minimum pairs. */
export function q4Bytes(rows: number, cols: number, groupSize: number): number {
  return rows * (cols / 8) * 4 + rows * q4GroupsPerRow(cols, groupSize) * 4;
}
