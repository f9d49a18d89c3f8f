import { defineKernel } from './kernel';
import source from './argmax.wgsl?raw';
import { Params, type Recorder } from '../runtime/recorder';
import type { Tensor } from '../runtime/tensor';
import { expectTokenOut, logitsRow } from './checks';

const kernel = defineKernel({ name: 'argmax', source });

/**
 * out[outIndex] = the index of the largest logit in row `row` of logits (rows, V)
 * or (V), as torch.argmax: the first index among equal maxima; NaN counts as
 * the largest value (the first NaN wins); -0 equals +0. out is a (n) u32 tensor,
 * so a submit can record several selections into different slots.
 */
export function argmax(rec: Recorder, logits: Tensor, out: Tensor, row?: number, outIndex = 0): void {
  const op = 'argmax';
  const { type, dim, binding, base } = logitsRow(op, rec, logits, row);
  expectTokenOut(op, out, outIndex);
  const params = new Params(3).u32(dim).u32(base).u32(outIndex).buffer;
  kernel.dispatch(rec, { type, overrides: { WG: 256 } }, [binding, out], params, [1]);
}
