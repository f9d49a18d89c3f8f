import { defineKernel, grid, rowReductionWidth } from './kernel';
import { lib } from './lib';
import source from './rmsnorm.wgsl?raw';
import { Params, type Recorder } from '../runtime/recorder';
import type { Tensor } from '../runtime/tensor';
import { expectActivation, expectDistinct, expectShape, rowsOf } from './checks';
import { normLayout, type NormLayout } from './tunings';

const kernel = defineKernel({ name: 'rmsnorm', source, libs: [lib.common], castsOutput: true });
const ROWS_PER_GROUP = 64; // 'thread' layout: a row per thread

/**
 * out = RMSNorm(x) * weight over the last dimension of x (rows, D); weight (D)
 * f32; out of x's type, or f32 (an f16 model's last norm, before the f32 LM head).
 * `layout`: a workgroup per row, or a thread per row (see rmsnorm.wgsl);
 * tunings.ts chooses per adapter.
 */
export function rmsnorm(rec: Recorder, x: Tensor, weight: Tensor, out: Tensor, eps: number, layout: NormLayout = normLayout(rec.gpu.report)): void {
  const op = 'rmsnorm';
  const type = expectActivation(op, 'x', x);
  const [rows, dim] = rowsOf(op, 'x', x);
  expectShape(op, 'weight', weight, [dim], 'f32');
  expectShape(op, 'out', out, x.shape, out.dtype === 'f32' ? 'f32' : x.dtype);
  expectDistinct(op, ['out', out], ['x', x], ['weight', weight]);
  if (!(eps >= 0)) throw new Error(`${op}: eps must be a non-negative number, got ${eps}`);
  const params = new Params(3).u32(rows).u32(dim).f32(eps).buffer;
  const max = rec.gpu.device.limits.maxComputeWorkgroupsPerDimension;
  if (layout === 'thread') kernel.dispatch(rec, { type, out: out.dtype as typeof type, overrides: { WG: ROWS_PER_GROUP, PER_THREAD: 1 } }, [x, weight, out], params, grid(Math.ceil(rows / ROWS_PER_GROUP), max));
  else kernel.dispatch(rec, { type, out: out.dtype as typeof type, overrides: { WG: rowReductionWidth(dim) } }, [x, weight, out], params, grid(rows, max));
}
