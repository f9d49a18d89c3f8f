// Argument checks shared by the kernels' dispatch functions: every bad shape
// or dtype becomes an Error that names the op, the argument and the shapes,
// before anything reaches WebGPU.

import { fmtShape, type DType, type Tensor } from '../runtime/tensor';
import type { ElementType } from './kernel';

/** The element type of an activation tensor (f32 or f16); anything else is an error. */
export function expectActivation(op: string, name: string, t: Tensor): ElementType {
  t.assertAlive(op);
  if (t.dtype !== 'f32' && t.dtype !== 'f16') throw new Error(`${op}: ${name} '${t.label}' ${fmtShape(t.shape)} must be f32 or f16, got ${t.dtype}`);
  return t.dtype;
}

/** Checks shape (and dtype when given) exactly. */
export function expectShape(op: string, name: string, t: Tensor, shape: readonly number[], dtype?: DType): void {
  t.assertAlive(op);
  if (dtype && t.dtype !== dtype) throw new Error(`${op}: ${name} '${t.label}' ${fmtShape(t.shape)} must be ${dtype}, got ${t.dtype}`);
  if (t.shape.length !== shape.length || t.shape.some((d, i) => d !== shape[i])) {
    throw new Error(`${op}: ${name} '${t.label}' has shape ${fmtShape(t.shape)}, expected ${fmtShape(shape)}`);
  }
}

/** Views a tensor of rank >= 1 as (rows, last dim). */
export function rowsOf(op: string, name: string, t: Tensor): [number, number] {
  t.assertAlive(op);
  const dim = t.shape[t.shape.length - 1];
  return [t.numel / dim, dim];
}

/** Same element count and dtype (elementwise ops). */
export function expectSameSize(op: string, name: string, t: Tensor, like: Tensor): void {
  t.assertAlive(op);
  if (t.numel !== like.numel || t.dtype !== like.dtype) {
    throw new Error(`${op}: ${name} '${t.label}' ${fmtShape(t.shape)} ${t.dtype} does not match '${like.label}' ${fmtShape(like.shape)} ${like.dtype}`);
  }
}
