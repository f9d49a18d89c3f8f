import { defineKernel } from './kernel';
import { lib } from './lib';
import source from './matmul_q4.wgsl?raw';
import { Params, type Recorder } from '../runtime/recorder';
import { fmtShape, type Tensor } from '../runtime/tensor';
import { expectActivation, outputColumns } from './checks';

const kernel = defineKernel({ name: 'matmul_q4', source, libs: [lib.matmulQuant] });
const TILE = 64; // tokens and rows per workgroup (matmul_q4.wgsl TM, TN)

/**
 * y = x @ W^T for T tokens: x (T, K) f32|f16, W q4 (N, K) (out, in), y (T, N)
 * of x's dtype or columns [yColumn, yColumn + N) of a wider y. The prefill path: 64 × 64 tiles of y, W dequantized into
 * workgroup memory once per 64 tokens (see matmul_q4.wgsl). G is an override
 * constant, as in matvec_q4.
 */
export function matmulQ4(rec: Recorder, x: Tensor, w: Tensor, y: Tensor, yColumn?: number): void {
  const op = 'matmul_q4';
  w.assertAlive(op);
  if (w.dtype !== 'q4' || !w.quant) throw new Error(`${op}: w '${w.label}' ${fmtShape(w.shape)} must be a q4 weight (gpu.uploadQ4), got ${w.dtype}`);
  const [N, K] = w.shape;
  const type = expectActivation(op, 'x', x);
  if (x.shape.length !== 2 || x.shape[1] !== K) throw new Error(`${op}: x '${x.label}' has shape ${fmtShape(x.shape)}, expected (T, ${K}) to match w '${w.label}' ${fmtShape(w.shape)}`);
  const T = x.shape[0];
  const out = outputColumns(op, y, T, N, type, yColumn);
  if (y.buffer === x.buffer) throw new Error(`${op}: y '${y.label}' shares a buffer with x '${x.label}'; an input bound read and an output bound read_write cannot alias`);
  const q4 = w.quant;
  const params = new Params(5).u32(T).u32(N).u32(K / 8).u32(Math.ceil(K / q4.groupSize)).u32(out.ldy).buffer;
  const bindings = [x, { tensor: w, offset: 0, size: q4.packedBytes }, { tensor: w, offset: q4.scalesOffset, size: q4.scalesBytes }, out.binding];
  kernel.dispatch(rec, { type, overrides: { G: q4.groupSize } }, bindings, params, [Math.ceil(N / TILE), Math.ceil(T / TILE)]);
}
