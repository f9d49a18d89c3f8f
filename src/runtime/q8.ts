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

import { dequantizeGroups, Q4_GROUP_SIZES, quantizeGroups, type Q4GroupSize } from './q4';

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
  return { rows, cols, groupSize, ...quantizeGroups('quantizeQ8', weights, rows, cols, groupSize, 8) };
}

/** Expands q8 back to a row-major Float64Array: exactly what the GPU kernels compute with. */
export function dequantizeQ8(q: Q8Weights): Float64Array {
  return dequantizeGroups(q, 8);
}
