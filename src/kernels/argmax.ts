import { defineKernel } from './kernel';
import source from './argmax.wgsl?raw';
import { Params, type Binding, type Recorder } from '../runtime/recorder';
import { DTYPE_BYTES, fmtShape, type Tensor } from '../runtime/tensor';
import { expectActivation } from './checks';

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

// Shared with sample.ts (they belong in checks.ts once it is free to edit).

/**
 * Validates logits (rows, V) or (V) and a row (default the last), and binds
 * just that row: from the binding-aligned byte at or before it, so a decode
 * step binds V values however many rows the tensor has; `base` is the row's
 * first element within the binding.
 */
export function logitsRow(op: string, rec: Recorder, logits: Tensor, row?: number): { type: 'f32' | 'f16'; dim: number; binding: Binding; base: number } {
  const type = expectActivation(op, 'logits', logits);
  if (logits.shape.length < 1 || logits.shape.length > 2) {
    throw new Error(`${op}: logits '${logits.label}' has shape ${fmtShape(logits.shape)}, expected (V) or (rows, V)`);
  }
  const dim = logits.shape[logits.shape.length - 1];
  const rows = logits.shape.length === 2 ? logits.shape[0] : 1;
  const r = row ?? rows - 1;
  if (!Number.isInteger(r) || r < 0 || r >= rows) {
    throw new Error(`${op}: row ${r} is out of range for logits '${logits.label}' ${fmtShape(logits.shape)} (${rows} rows)`);
  }
  const bytes = DTYPE_BYTES[type];
  const align = rec.gpu.device.limits.minStorageBufferOffsetAlignment;
  const start = logits.offset + r * dim * bytes; // byte of the row in the buffer
  const aligned = Math.floor(start / align) * align;
  const binding = { tensor: logits, offset: aligned - logits.offset, size: start - aligned + dim * bytes };
  return { type, dim, binding, base: (start - aligned) / bytes };
}

/** out must be a (n) u32 tensor and outIndex one of its elements. */
export function expectTokenOut(op: string, out: Tensor, outIndex: number): void {
  out.assertAlive(op);
  if (out.dtype !== 'u32' || out.shape.length !== 1) {
    throw new Error(`${op}: out '${out.label}' ${fmtShape(out.shape)} ${out.dtype} must be a (n) u32 tensor`);
  }
  if (!Number.isInteger(outIndex) || outIndex < 0 || outIndex >= out.shape[0]) {
    throw new Error(`${op}: outIndex ${outIndex} is out of range for out '${out.label}' ${fmtShape(out.shape)}`);
  }
}
