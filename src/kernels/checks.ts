// Argument checks shared by the kernels' dispatch functions: every bad shape
// or dtype becomes an Error that names the op, the argument and the shapes,
// before anything reaches WebGPU.

import { DTYPE_BYTES, fmtShape, type DenseDType, type DType, type Tensor } from '../runtime/tensor';
import type { Binding, Recorder } from '../runtime/recorder';
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

/**
 * An output may not share a buffer with any input of the same dispatch:
 * WebGPU forbids one buffer bound both read and read_write, even as disjoint views.
 */
export function expectDistinct(op: string, out: [string, Tensor], ...inputs: [string, Tensor][]): void {
  const [outName, o] = out;
  for (const [name, t] of inputs) {
    if (o.buffer === t.buffer) {
      throw new Error(`${op}: ${outName} '${o.label}' shares a buffer with ${name} '${t.label}': WebGPU forbids one buffer bound both read and read_write in a dispatch, even as disjoint views`);
    }
  }
}

/** Token ids: a vector of i32 or u32. Returns their count. */
export function expectIds(op: string, ids: Tensor): number {
  ids.assertAlive(op);
  if ((ids.dtype !== 'i32' && ids.dtype !== 'u32') || ids.shape.length !== 1) {
    throw new Error(`${op}: ids '${ids.label}' ${fmtShape(ids.shape)} ${ids.dtype} must be a vector of i32 or u32`);
  }
  return ids.shape[0];
}

/** Checks a K and V cache pair against q's heads and head dim: (maxT, Hkv, Dh), q's dtype, H % Hkv == 0. */
export function expectCaches(op: string, q: Tensor, H: number, Dh: number, kCache: Tensor, vCache: Tensor): { maxT: number; Hkv: number } {
  kCache.assertAlive(op);
  vCache.assertAlive(op);
  if (kCache.shape.length !== 3) throw new Error(`${op}: kCache '${kCache.label}' has shape ${fmtShape(kCache.shape)}, expected (maxT, Hkv, Dh)`);
  const [maxT, Hkv, kDh] = kCache.shape;
  if (kDh !== Dh) throw new Error(`${op}: kCache '${kCache.label}' ${fmtShape(kCache.shape)} has head dim ${kDh}, but q '${q.label}' ${fmtShape(q.shape)} has Dh = ${Dh}`);
  if (H % Hkv !== 0) throw new Error(`${op}: q '${q.label}' has H = ${H} heads, not a multiple of the cache's Hkv = ${Hkv} KV heads`);
  expectShape(op, 'kCache', kCache, [maxT, Hkv, Dh], q.dtype);
  expectShape(op, 'vCache', vCache, [maxT, Hkv, Dh], q.dtype);
  return { maxT, Hkv };
}

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

/** Where a table that is one row part of a vocabulary sits: rows [first, first + rows) of `total`. */
export interface VocabPart { first: number; total: number }

/** The part a (rows, D) table covers, by default the whole vocabulary; one that does not fit is an error. */
export function expectPart(op: string, table: Tensor, part?: VocabPart): VocabPart {
  const rows = table.shape[0];
  const { first, total } = part ?? { first: 0, total: rows };
  if (!(Number.isInteger(first) && Number.isInteger(total) && first >= 0 && first + rows <= total && total < 2 ** 31)) {
    throw new Error(`${op}: table '${table.label}' ${fmtShape(table.shape)} cannot be rows [${first}, ${first + rows}) of a ${total}-row vocabulary`);
  }
  return { first, total };
}

/**
 * A matmul output: y (T, N) exactly, or, when yColumn is given, columns
 * [yColumn, yColumn + N) of a wider y (T, ldy) (one row part of the LM head
 * writing its slice of the logits). The binding starts at the first column,
 * so it must fall on the device's binding alignment (256 bytes: yColumn a
 * multiple of 64 for f32).
 */
export function outputColumns(op: string, y: Tensor, T: number, N: number, dtype: DType, yColumn?: number): { binding: Binding; ldy: number } {
  y.assertAlive(op);
  if (y.dtype !== dtype) throw new Error(`${op}: y '${y.label}' ${fmtShape(y.shape)} must be ${dtype}, got ${y.dtype}`);
  const col = yColumn ?? 0;
  const ldy = yColumn === undefined ? N : y.shape[1];
  if (y.shape.length !== 2 || y.shape[0] !== T || y.shape[1] !== ldy || !(Number.isInteger(col) && col >= 0 && col + N <= ldy)) {
    const want = yColumn === undefined ? `(${T}, ${N})` : `(${T}, >= ${col + N}) for columns [${col}, ${col + N})`;
    throw new Error(`${op}: y '${y.label}' has shape ${fmtShape(y.shape)}, expected ${want}`);
  }
  const bytes = DTYPE_BYTES[dtype as DenseDType];
  return { binding: { tensor: y, offset: col * bytes, size: ((T - 1) * ldy + N) * bytes }, ldy };
}

/** (N, K) of a live quantized weight of `dtype`; anything else is an error naming the op and argument. */
export function expectQuantWeight(op: string, name: string, w: Tensor, dtype: 'q4' | 'q8'): [number, number] {
  w.assertAlive(op);
  const upload = dtype === 'q4' ? 'gpu.uploadQ4' : 'gpu.uploadQ8';
  if (w.dtype !== dtype || !w.quant) throw new Error(`${op}: ${name} '${w.label}' ${fmtShape(w.shape)} must be a ${dtype} weight (${upload}), got ${w.dtype}`);
  return [w.shape[0], w.shape[1]];
}

/** A vector of `len` elements of `dtype`, shaped (len) or (1, len). */
export function expectVectorOf(op: string, name: string, t: Tensor, len: number, dtype: DType): void {
  t.assertAlive(op);
  if (t.dtype !== dtype) throw new Error(`${op}: ${name} '${t.label}' ${fmtShape(t.shape)} must be ${dtype}, got ${t.dtype}`);
  const ok = (t.shape.length === 1 && t.shape[0] === len) || (t.shape.length === 2 && t.shape[0] === 1 && t.shape[1] === len);
  if (!ok) throw new Error(`${op}: ${name} '${t.label}' has shape ${fmtShape(t.shape)}, expected (${len}) or (1, ${len})`);
}

/**
 * The binding of a quantized weight's codes read as vec4<u32>: the packed
 * bytes rounded up to 16, which the 256-aligned scales offset leaves room for.
 */
export function vec4CodesBinding(op: string, w: Tensor): Binding {
  const q = w.quant!;
  const size = Math.min(Math.ceil(q.packedBytes / 16) * 16, q.scalesOffset);
  if (size % 16 !== 0) throw new Error(`${op}: w '${w.label}' ${fmtShape(w.shape)} has no room to read its codes 16 bytes at a time`);
  return { tensor: w, offset: 0, size };
}

/**
 * The arguments of a quantized matmul y = x W^T over T tokens, checked:
 * W (N, K) of `dtype`, x (T, K), y (T, N) or columns [yColumn, yColumn + N)
 * of a wider y, not sharing x's buffer.
 */
export function expectQuantMatmul(op: string, dtype: 'q4' | 'q8', x: Tensor, w: Tensor, y: Tensor, yColumn?: number): { N: number; K: number; T: number; type: ElementType; out: { binding: Binding; ldy: number } } {
  const [N, K] = expectQuantWeight(op, 'w', w, dtype);
  const type = expectActivation(op, 'x', x);
  if (x.shape.length !== 2 || x.shape[1] !== K) throw new Error(`${op}: x '${x.label}' has shape ${fmtShape(x.shape)}, expected (T, ${K}) to match w '${w.label}' ${fmtShape(w.shape)}`);
  const T = x.shape[0];
  const out = outputColumns(op, y, T, N, type, yColumn);
  if (y.buffer === x.buffer) throw new Error(`${op}: y '${y.label}' shares a buffer with x '${x.label}'; an input bound read and an output bound read_write cannot alias`);
  return { N, K, T, type, out };
}
