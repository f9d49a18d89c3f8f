import { defineKernel, grid, rowReductionWidth } from './kernel';
import { lib } from './lib';
import source from './layernorm.wgsl?raw';
import { Params, type Recorder } from '../runtime/recorder';
import type { Tensor } from '../runtime/tensor';
import { expectActivation, expectDistinct, expectShape, rowsOf } from './checks';
import { normLayout, type NormLayout } from './tunings';

const kernel = defineKernel({ name: 'layernorm', source, libs: [lib.common] });
const ROWS_PER_GROUP = 64; // 'thread' layout: a row per thread

/**
 * out = LayerNorm(x) * weight + bias over the last dimension of x (rows, D), as
 * torch.nn.LayerNorm; weight and bias (D) f32; bias null for LayerNorm(bias=False).
 *
 * No bias is the override HAS_BIAS = 0 (in the pipeline key), with weight bound
 * a second time in the bias slot. We chose this over a second entry point or
 * file: one shader and one binding list for both variants, the 'auto' layout
 * keeps the slot because the shader references it, and nothing is allocated
 * (a zero bias buffer would need an owner and a lifetime). `layout`: a
 * workgroup or a thread per row, as rmsnorm; tunings.ts chooses per adapter.
 */
export function layernorm(rec: Recorder, x: Tensor, weight: Tensor, bias: Tensor | null, out: Tensor, eps: number, layout: NormLayout = normLayout(rec.gpu.report)): void {
  const op = 'layernorm';
  const type = expectActivation(op, 'x', x);
  const [rows, dim] = rowsOf(op, 'x', x);
  expectShape(op, 'weight', weight, [dim], 'f32');
  if (bias) expectShape(op, 'bias', bias, [dim], 'f32');
  expectShape(op, 'out', out, x.shape, x.dtype);
  expectDistinct(op, ['out', out], ['x', x]);
  if (!(eps >= 0)) throw new Error(`${op}: eps must be a non-negative number, got ${eps}`);
  const params = new Params(3).u32(rows).u32(dim).f32(eps).buffer;
  const max = rec.gpu.device.limits.maxComputeWorkgroupsPerDimension;
  const bindings = [x, weight, bias ?? weight, out];
  if (layout === 'thread') kernel.dispatch(rec, { type, overrides: { WG: ROWS_PER_GROUP, HAS_BIAS: bias ? 1 : 0, PER_THREAD: 1 } }, bindings, params, grid(Math.ceil(rows / ROWS_PER_GROUP), max));
  else kernel.dispatch(rec, { type, overrides: { WG: rowReductionWidth(dim), HAS_BIAS: bias ? 1 : 0 } }, bindings, params, grid(rows, max));
}
