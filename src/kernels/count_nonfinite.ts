import { defineKernel } from './kernel';
import source from './count_nonfinite.wgsl?raw';
import { Params, type Recorder } from '../runtime/recorder';
import type { Tensor } from '../runtime/tensor';
import { expectTokenOut, logitsRow } from './checks';

const kernel = defineKernel({ name: 'count_nonfinite', source });

/**
 * out[outIndex] = the number of NaN and ±inf values in row `row` (default the
 * last) of logits (rows, V) or (V). out is a (n) u32 tensor, so the count can
 * sit beside the token argmax() or sample() chose in the same 8-byte readback.
 */
export function countNonfinite(rec: Recorder, logits: Tensor, out: Tensor, row?: number, outIndex = 0): void {
  const op = 'count_nonfinite';
  const { type, dim, binding, base } = logitsRow(op, rec, logits, row);
  expectTokenOut(op, out, outIndex);
  const params = new Params(3).u32(dim).u32(base).u32(outIndex).buffer;
  kernel.dispatch(rec, { type, overrides: { WG: 256 } }, [binding, out], params, [1]);
}
