import { defineKernel, grid } from './kernel';
import { lib } from './lib';
import source from './binary.wgsl?raw';
import { Params, type Recorder } from '../runtime/recorder';
import { fmtShape, type Tensor } from '../runtime/tensor';
import { expectActivation, expectDistinct, expectShape } from './checks';

const kernel = defineKernel({ name: 'binary', source, libs: [lib.common] });
const WG = 256;

/** The OP code of each operation in binary.wgsl. */
const OPS = { add: 0, mul: 1 } as const;
export type BinaryOp = keyof typeof OPS;

/**
 * out = a + b or a * b elementwise. b has a's shape, or is a vector of a's last
 * dim broadcast over its rows; a, b and out share one activation dtype, and out
 * (a's shape) aliases neither input.
 */
export function binary(rec: Recorder, op: BinaryOp, a: Tensor, b: Tensor, out: Tensor): void {
  const name = 'binary';
  if (!Object.hasOwn(OPS, op)) throw new Error(`${name}: unknown op '${op}' (use ${Object.keys(OPS).join(', ')})`);
  const type = expectActivation(name, 'a', a);
  b.assertAlive(name);
  const dim = a.shape[a.shape.length - 1];
  const sameShape = b.shape.length === a.shape.length && b.shape.every((d, i) => d === a.shape[i]);
  const row = b.shape.length === 1 && b.shape[0] === dim;
  if (!sameShape && !row) throw new Error(`${name}: b '${b.label}' has shape ${fmtShape(b.shape)}, expected ${fmtShape(a.shape)} like a '${a.label}' or a row (${dim})`);
  if (b.dtype !== a.dtype) throw new Error(`${name}: b '${b.label}' ${fmtShape(b.shape)} must be ${a.dtype} like a '${a.label}', got ${b.dtype}`);
  expectShape(name, 'out', out, a.shape, a.dtype);
  expectDistinct(name, ['out', out], ['a', a], ['b', b]);
  const params = new Params(2).u32(a.numel).u32(b.numel).buffer;
  kernel.dispatch(rec, { type, overrides: { WG, OP: OPS[op] } }, [a, b, out], params, grid(Math.ceil(a.numel / WG), rec.gpu.device.limits.maxComputeWorkgroupsPerDimension));
}
