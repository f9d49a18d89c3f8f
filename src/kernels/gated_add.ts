import { defineKernel, grid } from './kernel';
import { lib } from './lib';
import source from './gated_add.wgsl?raw';
import { Params, type Recorder } from '../runtime/recorder';
import { fmtShape, type Tensor } from '../runtime/tensor';
import { expectActivation, expectDistinct, expectSameSize } from './checks';

const kernel = defineKernel({ name: 'gated_add', source, libs: [lib.common] });
const WG = 256;

/** acc (R, C) += sigmoid(gate[r]) * x (R, C); gate (R) or (R, 1), all of one dtype. */
export function gatedAdd(rec: Recorder, acc: Tensor, gate: Tensor, x: Tensor): void {
  const op = 'gated_add';
  const type = expectActivation(op, 'acc', acc);
  if (acc.shape.length !== 2) throw new Error(`${op}: acc '${acc.label}' has shape ${fmtShape(acc.shape)}, expected (R, C)`);
  const [R, C] = acc.shape;
  expectSameSize(op, 'x', x, acc);
  gate.assertAlive(op);
  if (gate.dtype !== type || gate.numel !== R || gate.shape[0] !== R) throw new Error(`${op}: gate '${gate.label}' ${fmtShape(gate.shape)} ${gate.dtype} must be (${R}) or (${R}, 1) ${type}`);
  expectDistinct(op, ['acc', acc], ['gate', gate], ['x', x]);
  kernel.dispatch(rec, { type, overrides: { WG } }, [acc, gate, x], new Params(2).u32(R * C).u32(C).buffer, grid(Math.ceil((R * C) / WG), rec.gpu.device.limits.maxComputeWorkgroupsPerDimension));
}
