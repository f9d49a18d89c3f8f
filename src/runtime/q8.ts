// Tessera's 8-bit weight format ("q8"): the q4 layout (q4.ts) with 8-bit
// codes, for the weights 4 bits cost too much on: the embedding and LM head
// of small models (../README: quantize -> dequantize error per format).
//
//     W[n, k] ≈ m + q * d,   q in 0..255,   d = (max - min) / 255 of the group
//
// Groups of G consecutive values along K (32 by default; 64 or 128), with an
// f16 (scale, min) pair per group, as in q4.
//
// Memory layout (u32 arrays, like q4):
//   packed: (N, K/4)       word w of row n holds k = 4w .. 4w+3, the value at
//                          k = 4w + j in bits 8j .. 8j+7 (low byte first)
//   scales: (N, ceil(K/G)) pack2x16float(d, m): d in the low half, m in the high
// K must be a multiple of 4; the last group of a row may be shorter than G.

import { f16BitsToF32, f32ToF16Bits } from './f16';
import { Q4_GROUP_SIZES, q4GroupsPerRow, type Q4GroupSize } from './q4';

export interface Q8Weights {
  rows: number;        // N
  cols: number;        // K
  groupSize: Q4GroupSize;
  packed: Uint32Array; // (N, K/4)
  scales: Uint32Array; // (N, ceil(K/G)), f16 pairs (d, m)
}

export function checkQ8Shape(op: string, rows: number, cols: number, groupSize: number): void {
  if (!Number.isInteger(rows) || rows <= 0 || !Number.isInteger(cols) || cols <= 0) {
    throw new Error(`${op}: shape (${rows}, ${cols}) must be positive integers`);
  }
  if (cols % 4 !== 0) throw new Error(`${op}: input size K = ${cols} of a (${rows}, ${cols}) weight must be a multiple of 4 for 8-bit packing`);
  if (!(Q4_GROUP_SIZES as readonly number[]).includes(groupSize)) {
    throw new Error(`${op}: group size ${groupSize} is not supported (use ${Q4_GROUP_SIZES.join(', ')})`);
  }
}

/** Quantizes a row-major (rows, cols) float matrix to q8. */
export function quantizeQ8(weights: ArrayLike<number>, rows: number, cols: number, groupSize: Q4GroupSize = 32): Q8Weights {
  checkQ8Shape('quantizeQ8', rows, cols, groupSize);
  if (weights.length !== rows * cols) throw new Error(`quantizeQ8: got ${weights.length} values for a (${rows}, ${cols}) matrix`);
  const groups = q4GroupsPerRow(cols, groupSize);
  const packed = new Uint32Array(rows * (cols / 4));
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
        if (!Number.isFinite(w)) throw new Error(`quantizeQ8: non-finite weight ${w} at (${n}, ${k})`);
        lo = Math.min(lo, w);
        hi = Math.max(hi, w);
      }
      // As in q4: codes chosen against the f16-rounded d and m the GPU reads.
      const dBits = f32ToF16Bits((hi - lo) / 255);
      const mBits = f32ToF16Bits(lo);
      const d = f16BitsToF32(dBits);
      const m = f16BitsToF32(mBits);
      scales[n * groups + g] = (dBits | (mBits << 16)) >>> 0;
      for (let k = k0; k < k1; k++) {
        const q = d > 0 ? Math.min(255, Math.max(0, Math.round((weights[row + k] - m) / d))) : 0;
        packed[(row + k) >>> 2] |= q << ((k & 3) * 8);
      }
    }
  }
  return { rows, cols, groupSize, packed, scales };
}

/** Expands q8 back to a row-major Float64Array: exactly what the GPU kernels compute with. */
export function dequantizeQ8(q: Q8Weights): Float64Array {
  const { rows, cols, groupSize, packed, scales } = q;
  const groups = q4GroupsPerRow(cols, groupSize);
  const out = new Float64Array(rows * cols);
  for (let n = 0; n < rows; n++) {
    for (let k = 0; k < cols; k++) {
      const s = scales[n * groups + Math.floor(k / groupSize)];
      const code = (packed[(n * cols + k) >>> 2] >>> ((k & 3) * 8)) & 0xff;
      out[n * cols + k] = f16BitsToF32(s >>> 16) + code * f16BitsToF32(s & 0xffff);
    }
  }
  return out;
}
