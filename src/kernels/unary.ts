import { defineKernel, grid } from './kernel';
import { lib } from './lib';
import source from './unary.wgsl?raw';
import { Params, type Recorder } from '../runtime/recorder';
import type { Tensor } from '../runtime/tensor';
import { expectActivation, expectDistinct, expectShape } from './checks';

const kernel = defineKernel({ name: 'unary', source, libs: [lib.common] });
const WG = 256;

/** Activation functions by their Hugging Face names ("gelu_tanh" is "gelu_pytorch_tanh" / "gelu_new"), and their OP code in unary.wgsl. */
const OPS = { silu: 0, gelu: 1, gelu_tanh: 2 } as const;
export type UnaryOp = keyof typeof OPS;

/** out = f(x) elementwise, out the same shape and dtype as x and not aliasing it (x is bound read, out read_write). */
export function unary(rec: Recorder, op: UnaryOp, x: Tensor, out: Tensor): void {
  const name = 'unary';
  if (!Object.hasOwn(OPS, op)) throw new Error(`${name}: unknown op '${op}' (use ${Object.keys(OPS).join(', ')})`);
  const type = expectActivation(name, 'x', x);
  expectShape(name, 'out', out, x.shape, x.dtype);
  expectDistinct(name, ['out', out], ['x', x]);
  const n = x.numel;
  kernel.dispatch(rec, { type, overrides: { WG, OP: OPS[op] } }, [x, out], new Params(1).u32(n).buffer, grid(Math.ceil(n / WG), rec.gpu.device.limits.maxComputeWorkgroupsPerDimension));
}
