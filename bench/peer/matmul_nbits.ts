// 4-bit weights in the layout of onnxruntime's com.microsoft MatMulNBits
// (bits 4, block_size 32), from the (N, K) = (out, in) matrices of a
// Hugging Face checkpoint. MatMulNBits computes Y = A · Wᵀ with
//
//     W[n, k] = (q[n, k] - zero_point[n, b]) * scale[n, b],   b = k / block_size
//
// (onnxruntime docs/ContribOperators.md, contrib_ops/cpu/quantization/matmul_nbits.cc):
//   B:           uint8 (N, n_blocks, 16)  block b of row n holds k = 32b .. 32b+31, two codes
//                a byte, the lower k in the low nibble; a short last block is zero-padded
//   scales:      T (N * n_blocks)
//   zero_points: uint8 (N * ceil(n_blocks / 2)), two a byte, block 2j in the low nibble;
//                or T (N * n_blocks) where the execution provider accepts float zero points
//
// Two ways to fill them:
//  - 'float' zero points reproduce Tessera's own 4-bit weights (src/runtime/q4.ts:
//    W ≈ m + q·d per group of 32, f16 d and m) exactly up to f32 rounding: the same
//    codes q, scale = d and zero_point = -m/d. onnxruntime's CPU kernel (the WASM EP)
//    registers T3 as uint8 or float, but its WebGPU EP registers uint8 only and
//    enforces it ("Currently, only uint8 is supported for zero points",
//    contrib_ops/webgpu/quantization/matmul_nbits.cc), so this form runs on WASM only.
//  - 'uint8' zero points (the default, runs on every EP): round-to-nearest asymmetric
//    quantization of the f32 weights as onnxruntime's own quantizer does it
//    (MlasQuantizeBlockwise: the block's range widened to include 0, scale =
//    range / 15, zero_point = round(-min / scale), q = clamp(round(w / scale) + zp)).
//    An integer zero point cannot express Tessera's f16 minimum m, so these are
//    ORT's 4-bit weights of the same f32 matrix, not Tessera's: both have the
//    error of 4-bit round-to-nearest, but different codes.

import { quantizeQ4 } from '../../src/runtime/q4';
import { f16BitsToF32 } from '../../src/runtime/f16';

export const NBITS_BLOCK = 32;
const BLOB = NBITS_BLOCK / 2; // bytes per block at 4 bits

export type ZeroPointMode = 'uint8' | 'float';

export interface NBitsWeights {
  N: number;
  K: number;
  nBlocks: number;
  B: Uint8Array;            // (N, nBlocks, 16)
  scales: Float32Array;     // (N * nBlocks)
  zeroPoints: Uint8Array | Float32Array; // (N * ceil(nBlocks / 2)) u8, or (N * nBlocks) f32
}

/** Packs a row-major (N, K) f32 matrix for MatMulNBits. */
export function toMatMulNBits(w: Float32Array, N: number, K: number, zeroPoints: ZeroPointMode): NBitsWeights {
  if (w.length !== N * K) throw new Error(`toMatMulNBits: got ${w.length} values for a (${N}, ${K}) matrix`);
  if (zeroPoints !== 'uint8' && zeroPoints !== 'float') throw new Error(`toMatMulNBits: zeroPoints must be 'uint8' or 'float', got ${JSON.stringify(zeroPoints)}`);
  return zeroPoints === 'float' ? fromTessera(w, N, K) : roundToNearest(w, N, K);
}

/** The same codes and (d, m) as Tessera's quantizeQ4, with zero_point = -m / d. */
function fromTessera(w: Float32Array, N: number, K: number): NBitsWeights {
  const q = quantizeQ4(w, N, K, NBITS_BLOCK);
  const nBlocks = Math.ceil(K / NBITS_BLOCK);
  const B = new Uint8Array(N * nBlocks * BLOB);
  const scales = new Float32Array(N * nBlocks);
  const zp = new Float32Array(N * nBlocks);
  const packed = new Uint8Array(q.packed.buffer, q.packed.byteOffset, q.packed.byteLength);
  for (let n = 0; n < N; n++) {
    // Tessera's row n is K/2 bytes, the same nibble order (low nibble = lower k) in
    // little-endian u32 words; only the zero padding of a short last block differs.
    for (let b = 0; b < nBlocks; b++) {
      const bytes = Math.min(BLOB, (K - b * NBITS_BLOCK) / 2);
      B.set(packed.subarray(n * (K / 2) + b * BLOB, n * (K / 2) + b * BLOB + bytes), (n * nBlocks + b) * BLOB);
      const s = q.scales[n * nBlocks + b];
      const d = f16BitsToF32(s & 0xffff);
      const m = f16BitsToF32(s >>> 16);
      const i = n * nBlocks + b;
      if (d !== 0) {
        scales[i] = d;
        zp[i] = -m / d;
      } else {
        // A constant group: every code is 0 and W = m, so (0 - (-1)) * m.
        scales[i] = m;
        zp[i] = m === 0 ? 0 : -1;
      }
    }
  }
  return { N, K, nBlocks, B, scales, zeroPoints: zp };
}

/** onnxruntime's blockwise asymmetric round-to-nearest, with uint8 zero points. */
function roundToNearest(w: Float32Array, N: number, K: number): NBitsWeights {
  const nBlocks = Math.ceil(K / NBITS_BLOCK);
  const B = new Uint8Array(N * nBlocks * BLOB);
  const scales = new Float32Array(N * nBlocks);
  const zpBytes = Math.ceil(nBlocks / 2);
  const zp = new Uint8Array(N * zpBytes);
  for (let n = 0; n < N; n++) {
    for (let b = 0; b < nBlocks; b++) {
      const k0 = b * NBITS_BLOCK;
      const k1 = Math.min(K, k0 + NBITS_BLOCK);
      let lo = 0;
      let hi = 0;
      for (let k = k0; k < k1; k++) {
        const v = w[n * K + k];
        if (!Number.isFinite(v)) throw new Error(`toMatMulNBits: non-finite weight ${v} at (${n}, ${k})`);
        lo = Math.min(lo, v);
        hi = Math.max(hi, v);
      }
      const scale = Math.fround((hi - lo) / 15);
      const inv = scale !== 0 ? 1 / scale : 0;
      const z = Math.min(15, Math.max(0, Math.round(-lo * inv)));
      scales[n * nBlocks + b] = scale;
      zp[n * zpBytes + (b >> 1)] |= z << ((b & 1) * 4);
      for (let k = k0; k < k1; k++) {
        const code = Math.min(15, Math.max(0, Math.round(w[n * K + k] * inv) + z));
        const j = k - k0;
        B[(n * nBlocks + b) * BLOB + (j >> 1)] |= code << ((j & 1) * 4);
      }
    }
  }
  return { N, K, nBlocks, B, scales, zeroPoints: zp };
}

/** W as MatMulNBits reads it, row-major (N, K) in float64: for tests. */
export function dequantizeNBits(q: NBitsWeights): Float64Array {
  const { N, K, nBlocks, B, scales, zeroPoints } = q;
  const out = new Float64Array(N * K);
  const zpBytes = Math.ceil(nBlocks / 2);
  for (let n = 0; n < N; n++) {
    for (let k = 0; k < K; k++) {
      const b = Math.floor(k / NBITS_BLOCK);
      const j = k - b * NBITS_BLOCK;
      const code = (B[(n * nBlocks + b) * BLOB + (j >> 1)] >> ((j & 1) * 4)) & 15;
      const z = zeroPoints instanceof Float32Array ? zeroPoints[n * nBlocks + b] : (zeroPoints[n * zpBytes + (b >> 1)] >> ((b & 1) * 4)) & 15;
      out[n * K + k] = (code - z) * scales[n * nBlocks + b];
    }
  }
  return out;
}
