import { defineKernel, grid } from './kernel';
import { lib } from './lib';
import source from './swiglu.wgsl?raw';
import { Params, type Recorder } from '../runtime/recorder';
import type { Tensor } from '../runtime/tensor';
import { expectActivation, expectDistinct, expectShape } from './checks';

const kernel = defineKernel({ name: 'swiglu', source, libs: [lib.common] });
const WG = 256;

/** out = silu(gate) * up elementwise (the Llama MLP); all three one shape and activation dtype, out aliasing neither input. */
export function swiglu(rec: Recorder, gate: Tensor, up: Tensor, out: Tensor): void {
  const op = 'swiglu';
  const type = expectActivation(op, 'gate', gate);
  expectShape(op, 'up', up, gate.shape, gate.dtype);
  expectShape(op, 'out', out, gate.shape, gate.dtype);
  expectDistinct(op, ['out', out], ['gate', gate], ['up', up]);
  const n = gate.numel;
  kernel.dispatch(rec, { type, overrides: { WG } }, [gate, up, out], new Params(1).u32(n).buffer, grid(Math.ceil(n / WG), rec.gpu.device.limits.maxComputeWorkgroupsPerDimension));
}
