import { defineKernel, grid } from './kernel';
import { lib } from './lib';
import source from './add_inplace.wgsl?raw';
import { Params, type Recorder } from '../runtime/recorder';
import { fmtShape, type Tensor } from '../runtime/tensor';
import { expectActivation, expectDistinct, rowsOf } from './checks';

const kernel = defineKernel({ name: 'add_inplace', source, libs: [lib.common] });
const WG = 256;

/** acc += x, where x has acc's shape or is one row of acc's last dimension (a bias). */
export function addInplace(rec: Recorder, acc: Tensor, x: Tensor): void {
  const op = 'add_inplace';
  const type = expectActivation(op, 'acc', acc);
  const [, cols] = rowsOf(op, 'acc', acc);
  x.assertAlive(op);
  const broadcast = x.numel === cols && x.numel !== acc.numel;
  if (x.dtype !== acc.dtype || (!broadcast && x.numel !== acc.numel)) {
    throw new Error(`${op}: x '${x.label}' ${fmtShape(x.shape)} ${x.dtype} must match acc '${acc.label}' ${fmtShape(acc.shape)} ${acc.dtype} or be one row of ${cols}`);
  }
  expectDistinct(op, ['acc', acc], ['x', x]);
  const params = new Params(3).u32(acc.numel).u32(cols).u32(broadcast ? 1 : 0).buffer;
  kernel.dispatch(rec, { type, overrides: { WG } }, [acc, x], params, grid(Math.ceil(acc.numel / WG), rec.gpu.device.limits.maxComputeWorkgroupsPerDimension));
}
