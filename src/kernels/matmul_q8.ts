import { defineKernel } from './kernel';
import { lib } from './lib';
import source from './matmul_q8.wgsl?raw';
import type { Recorder } from '../runtime/recorder';
import type { Tensor } from '../runtime/tensor';
import { dispatchQuantMatmul } from './matmul_q4';

const kernel = defineKernel({ name: 'matmul_q8', source, libs: [lib.matmulTile, lib.matmulQuant] });

/**
 * y = x @ W^T for T tokens: x (T, K) f32|f16, W q8 (N, K) (out, in), y (T, N)
 * of x's dtype or columns [yColumn, yColumn + N) of a wider y. matmul_q4's
 * tiling with 8-bit codes: 64 × 64 tiles of y, W dequantized into workgroup
 * memory once per 64 tokens (see matmul_q8.wgsl). G is an override constant.
 */
export function matmulQ8(rec: Recorder, x: Tensor, w: Tensor, y: Tensor, yColumn?: number): void {
  dispatchQuantMatmul(rec, kernel, 'q8', x, w, y, yColumn);
}
