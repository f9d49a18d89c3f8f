// The (V, D) vocabulary matrix: the token embedding, and the LM head that
// reads it (tied) or a matrix of the same shape. One binding holds at most
// maxStorageBufferBindingSize bytes (WebGPU's default, and many phones: 128
// MiB), less than a large vocabulary's table (Llama 3.2 1B: 164 MB at 4 bits,
// Qwen2.5 0.5B: 545 MB in f32), so the matrix is kept as consecutive row
// parts that each fit one binding: one part when the whole fits.

import type { Recorder } from '../../runtime/recorder';
import type { Tensor } from '../../runtime/tensor';
import { embed } from '../../kernels/embed';
import { embedQ4 } from '../../kernels/embed_q4';
import { embedQ8 } from '../../kernels/embed_q8';
import { Linear } from './linear';

/**
 * Row parts start on multiples of this: a part's logits begin at byte
 * 4 * first of the output, which must fall on the 256-byte binding grid
 * (128 keeps f16 outputs aligned too).
 */
export const VOCAB_PART_ALIGN = 128;

export class VocabMatrix {
  /** First vocabulary row of each part. */
  readonly firsts: readonly number[];
  readonly rows: number;
  readonly cols: number;
  private readonly linears: Linear[];

  /** `parts`: (rows_i, D) q8, q4 or f32 tensors, in vocabulary order; all but the last a multiple of VOCAB_PART_ALIGN rows. */
  constructor(readonly parts: readonly Tensor[]) {
    if (parts.length === 0) throw new Error('VocabMatrix: no parts');
    const firsts: number[] = [];
    let rows = 0;
    for (const p of parts) {
      if (p.dtype !== parts[0].dtype || p.shape[1] !== parts[0].shape[1]) throw new Error(`VocabMatrix: part '${p.label}' differs in dtype or width from '${parts[0].label}'`);
      if (rows % VOCAB_PART_ALIGN !== 0) throw new Error(`VocabMatrix: part '${p.label}' starts at row ${rows}, not a multiple of ${VOCAB_PART_ALIGN}`);
      firsts.push(rows);
      rows += p.shape[0];
    }
    this.firsts = firsts;
    this.rows = rows;
    this.cols = parts[0].shape[1];
    this.linears = parts.map((p) => new Linear(p));
  }

  get dtype(): Tensor['dtype'] {
    return this.parts[0].dtype;
  }

  /** out (T, D) = the rows of ids (T); an id outside [0, V) gives a NaN row (written by the last part). */
  lookup(rec: Recorder, ids: Tensor, out: Tensor): void {
    this.parts.forEach((p, i) => {
      const part = { first: this.firsts[i], total: this.rows };
      if (p.dtype === 'q4') embedQ4(rec, p, ids, out, part);
      else if (p.dtype === 'q8') embedQ8(rec, p, ids, out, part);
      else embed(rec, p, ids, out, part);
    });
  }

  /** y (T, V) = x (T, D) times the matrix transposed: each part writes its columns of the logits. */
  project(rec: Recorder, x: Tensor, y: Tensor): void {
    if (this.linears.length === 1) return this.linears[0].forward(rec, x, y);
    this.linears.forEach((l, i) => l.forward(rec, x, y, this.firsts[i]));
  }
}
