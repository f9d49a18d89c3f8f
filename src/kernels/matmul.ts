import { defineKernel } from './kernel';
import { lib } from './lib';
import source from './matmul.wgsl?raw';
import { Params, type Recorder } from '../runtime/recorder';
import { fmtShape, type Tensor } from '../runtime/tensor';
import { expectActivation, outputColumns } from './checks';

const kernel = defineKernel({ name: 'matmul', source, libs: [lib.matmulTile] });
const TILE = 64; // tokens and rows per workgroup (matmul.wgsl TM, TN)

/**
 * y = x @ W^T: x (T, K) f32|f16, W f32 (N, K) (out, in), y (T, N) of x's
 * dtype, or columns [yColumn, yColumn + N) of a wider y. The dense-weight
 * linear layer, any T, N, K (see matmul.wgsl).
 */
export function matmul(rec: Recorder, x: Tensor, w: Tensor, y: Tensor, yColumn?: number): void {
  const op = 'matmul';
  const type = expectActivation(op, 'x', x);
  w.assertAlive(op);
  if (w.dtype !== 'f32' || w.shape.length !== 2) throw new Error(`${op}: w '${w.label}' ${fmtShape(w.shape)} must be an f32 (N, K) weight, got ${w.dtype} of rank ${w.shape.length}`);
  const [N, K] = w.shape;
  if (x.shape.length !== 2 || x.shape[1] !== K) throw new Error(`${op}: x '${x.label}' has shape ${fmtShape(x.shape)}, expected (T, ${K}) to match w '${w.label}' ${fmtShape(w.shape)}`);
  const T = x.shape[0];
  const out = outputColumns(op, y, T, N, type, yColumn);
  if (y.buffer === x.buffer || y.buffer === w.buffer) throw new Error(`${op}: y '${y.label}' shares a buffer with an input; an input bound read and an output bound read_write cannot alias`);
  const params = new Params(4).u32(T).u32(N).u32(K).u32(out.ldy).buffer;
  kernel.dispatch(rec, { type }, [x, w, out.binding], params, [Math.ceil(N / TILE), Math.ceil(T / TILE)]);
}
