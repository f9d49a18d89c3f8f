import { defineKernel, type Kernel } from './kernel';
import { lib } from './lib';
import source from './matmul_q4.wgsl?raw';
import { Params, type Recorder } from '../runtime/recorder';
import type { Tensor } from '../runtime/tensor';
import { expectQuantMatmul } from './checks';
import { matmulQ4Rows } from './matmul_q4_rows';
import { prefillMatmul } from './tunings';

const kernel = defineKernel({ name: 'matmul_q4', source, libs: [lib.matmulTile, lib.matmulQuant] });
const TILE = 64; // tokens and rows per workgroup (matmul_q4.wgsl TM, TN)

/**
 * y = x @ W^T for T tokens: x (T, K) f32|f16, W q4 (N, K) (out, in), y (T, N)
 * of x's dtype or columns [yColumn, yColumn + N) of a wider y. The prefill path: 64 × 64 tiles of y, W dequantized into
 * workgroup memory once per 64 tokens (see matmul_q4.wgsl). G is an override
 * constant, as in matvec_q4.
 */
export function matmulQ4Tiled(rec: Recorder, x: Tensor, w: Tensor, y: Tensor, yColumn?: number): void {
  dispatchQuantMatmul(rec, kernel, 'q4', x, w, y, yColumn);
}

/**
 * y = x @ W^T for T tokens (the prefill path), by the kernel tunings.ts
 * chooses for the adapter: the tiled one above, or matmul_q4_rows where
 * barriers are dear.
 */
export function matmulQ4(rec: Recorder, x: Tensor, w: Tensor, y: Tensor, yColumn?: number): void {
  if (prefillMatmul(rec.gpu.report) === 'rows') matmulQ4Rows(rec, x, w, y, yColumn);
  else matmulQ4Tiled(rec, x, w, y, yColumn);
}

/** The dispatch of matmul_q4 and matmul_q8, which share their entry point (lib/matmul_quant.wgsl). */
export function dispatchQuantMatmul(rec: Recorder, k: Kernel, dtype: 'q4' | 'q8', x: Tensor, w: Tensor, y: Tensor, yColumn?: number): void {
  const { N, K, T, type, out } = expectQuantMatmul(k.name, dtype, x, w, y, yColumn);
  const q = w.quant!;
  const kw = K / (dtype === 'q4' ? 8 : 4); // code words per row
  const params = new Params(5).u32(T).u32(N).u32(kw).u32(Math.ceil(K / q.groupSize)).u32(out.ldy).buffer;
  const bindings = [x, { tensor: w, offset: 0, size: q.packedBytes }, { tensor: w, offset: q.scalesOffset, size: q.scalesBytes }, out.binding];
  k.dispatch(rec, { type, overrides: { G: q.groupSize } }, bindings, params, [Math.ceil(N / TILE), Math.ceil(T / TILE)]);
}
