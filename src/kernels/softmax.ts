import { defineKernel, grid } from './kernel';
import { lib } from './lib';
import source from './softmax.wgsl?raw';
import { Params, type Recorder } from '../runtime/recorder';
import type { Tensor } from '../runtime/tensor';
import { expectActivation, expectDistinct, expectShape, rowsOf } from './checks';

const kernel = defineKernel({ name: 'softmax', source, libs: [lib.common] });

/** out = softmax(x) over the last dimension of x (rows, D), max-subtracted; out x's shape and dtype, not aliasing x. */
export function softmax(rec: Recorder, x: Tensor, out: Tensor): void {
  const op = 'softmax';
  const type = expectActivation(op, 'x', x);
  const [rows, dim] = rowsOf(op, 'x', x);
  expectShape(op, 'out', out, x.shape, x.dtype);
  expectDistinct(op, ['out', out], ['x', x]);
  const params = new Params(2).u32(rows).u32(dim).buffer;
  kernel.dispatch(rec, { type, overrides: { WG: 256 } }, [x, out], params, grid(rows, rec.gpu.device.limits.maxComputeWorkgroupsPerDimension));
}
