import { defineKernel } from './kernel';
import { lib } from './lib';
import source from './matmul_q4_rows.wgsl?raw';
import { Params, type Recorder } from '../runtime/recorder';
import type { Tensor } from '../runtime/tensor';
import { expectQuantMatmul, vec4CodesBinding } from './checks';

const kernel = defineKernel({ name: 'matmul_q4_rows', source, libs: [lib.q4Rows] });
const WG = 16; // threads per workgroup (matmul_q4_rows.wgsl WG): about 1.2x faster than 64 on SwiftShader, 8 and 32 alike
const ROWS_PER_THREAD = 8; // lib/q4_rows.wgsl
const TOKENS_PER_THREAD = 8; // lib/q4_rows.wgsl

/**
 * y = x @ W^T for T tokens, as matmulQ4, with no workgroup memory and no
 * barrier: a thread computes 8 rows for 8 tokens in registers (see
 * lib/q4_rows.wgsl). The prefill path where barriers are dear (software
 * adapters; tunings.ts chooses).
 */
export function matmulQ4Rows(rec: Recorder, x: Tensor, w: Tensor, y: Tensor, yColumn?: number): void {
  const { N, K, T, type, out } = expectQuantMatmul(kernel.name, 'q4', x, w, y, yColumn);
  const q = w.quant!;
  const kw = K / 8; // code words per row
  const params = new Params(7).u32(T).u32(N).u32(kw).u32(Math.floor(kw / 4)).u32(kw % 4).u32(Math.ceil(K / q.groupSize)).u32(out.ldy).buffer;
  const bindings = [vec4CodesBinding(kernel.name, w), { tensor: w, offset: q.scalesOffset, size: q.scalesBytes }, x, out.binding];
  kernel.dispatch(rec, { type, overrides: { WG, G: q.groupSize } }, bindings, params, [Math.ceil(N / (ROWS_PER_THREAD * WG)), Math.ceil(T / TOKENS_PER_THREAD)]);
}
