import { defineKernel } from './kernel';
import { lib } from './lib';
import source from './matmul_q4_rows.wgsl?raw';
import { Params, type Recorder } from '../runtime/recorder';
import { fmtShape, type Tensor } from '../runtime/tensor';
import { expectActivation, expectQuantWeight, outputColumns } from './checks';

const kernel = defineKernel({ name: 'matmul_q4_rows', source, libs: [lib.q4Rows] });
const WG = 64; // threads per workgroup (matmul_q4_rows.wgsl WG)
const ROWS_PER_THREAD = 4;
const TOKENS_PER_THREAD = 8; // lib/q4_rows.wgsl

/**
 * y = x @ W^T for T tokens, as matmulQ4, with no workgroup memory and no
 * barrier: a thread computes 4 rows for 8 tokens in registers (see
 * lib/q4_rows.wgsl). The prefill path where barriers are dear (software
 * adapters; tunings.ts chooses).
 */
export function matmulQ4Rows(rec: Recorder, x: Tensor, w: Tensor, y: Tensor, yColumn?: number): void {
  const op = kernel.name;
  const [N, K] = expectQuantWeight(op, 'w', w, 'q4');
  const type = expectActivation(op, 'x', x);
  if (x.shape.length !== 2 || x.shape[1] !== K) throw new Error(`${op}: x '${x.label}' has shape ${fmtShape(x.shape)}, expected (T, ${K}) to match w '${w.label}' ${fmtShape(w.shape)}`);
  const T = x.shape[0];
  const out = outputColumns(op, y, T, N, type, yColumn);
  if (y.buffer === x.buffer) throw new Error(`${op}: y '${y.label}' shares a buffer with x '${x.label}'; an input bound read and an output bound read_write cannot alias`);
  const q = w.quant!;
  const kw = K / 8; // code words per row
  const params = new Params(7).u32(T).u32(N).u32(kw).u32(Math.floor(kw / 4)).u32(kw % 4).u32(Math.ceil(K / q.groupSize)).u32(out.ldy).buffer;
  // The codes are read as vec4<u32>: round the binding up to 16 bytes, which the 256-aligned scales offset leaves room for.
  const codesSize = Math.min(Math.ceil(q.packedBytes / 16) * 16, q.scalesOffset);
  if (codesSize % 16 !== 0) throw new Error(`${op}: w '${w.label}' ${fmtShape(w.shape)} has no room to read its codes 16 bytes at a time`);
  const bindings = [{ tensor: w, offset: 0, size: codesSize }, { tensor: w, offset: q.scalesOffset, size: q.scalesBytes }, x, out.binding];
  kernel.dispatch(rec, { type, overrides: { WG, G: q.groupSize } }, bindings, params, [Math.ceil(N / (ROWS_PER_THREAD * WG)), Math.ceil(T / TOKENS_PER_THREAD)]);
}
