// The output head every family ends with: the final RMSNorm, then the LM head
// (often the embedding matrix itself), for the last position only (generation)
// or for every position (scoring). Owns its small output buffers. Logits of
// every position are (T, V) f32 in one binding: T is capped so they fit.
// The head runs in f32 whatever the activation type: with f16 activations
// the final norm writes f32 (one rounding fewer), so the logits, which
// sampling compares to one another, are never rounded to f16.

import type { Gpu } from '../../runtime/gpu';
import type { Recorder } from '../../runtime/recorder';
import type { Tensor } from '../../runtime/tensor';
import { rmsnorm } from '../../kernels/rmsnorm';
import type { VocabMatrix } from './vocab';
import { TesseraError } from '../../runtime/errors';

export class LmHead {
  /** Most positions one 'all' call takes: their (T, V) f32 logits fit one binding and one buffer. */
  readonly allRows: number;
  private readonly last: Tensor;    // (1, D) the last position's hidden state
  private readonly normed: Tensor;  // (1, D) f32
  private readonly logits: Tensor;  // (1, V) f32
  private logitsAll: Tensor | null = null; // (C, V) f32, made on the first 'all' request
  private normedAll: Tensor | null = null; // (C, D) f32, made on the first 'all' request with f16 activations

  /** Bytes of the buffers a head keeps from the start (last, normed, logits), with `act`-byte activations. */
  static bytes(D: number, V: number, act: number): number {
    return D * act + D * 4 + V * 4;
  }

  constructor(
    private readonly gpu: Gpu,
    /** (D) f32 final norm weight. */
    private readonly norm: Tensor,
    /** (V, D) q8, q4 or f32, in row parts when large. */
    private readonly head: VocabMatrix,
    private readonly eps: number,
    /** Most positions one call handles (the model's prefill chunk). */
    chunk: number,
    private readonly label: string,
  ) {
    const [V, D] = [head.rows, head.cols];
    const rowBytes = 4 * V;
    this.allRows = Math.min(chunk, Math.floor(Math.min(gpu.maxBinding, gpu.device.limits.maxBufferSize) / rowBytes));
    if (this.allRows < 1) throw new TesseraError('WILL_NOT_FIT', `${label}: one row of ${V} logits (${rowBytes} bytes) exceeds this device's ${gpu.maxBinding}-byte binding`);
    const t = gpu.activationType;
    // A row is copied out at byte (T-1) * D * 2 in f16: copies need 4-byte offsets.
    if (t === 'f16' && D % 2 !== 0) throw new Error(`${label}: f16 activations need an even hidden size, got ${D}; load with f32 activations`);
    this.last = gpu.empty([1, D], t, `${label}.head.last`, 'activations');
    this.normed = gpu.empty([1, D], 'f32', `${label}.head.normed`, 'activations');
    this.logits = gpu.empty([1, V], 'f32', `${label}.head.logits`, 'activations');
  }

  /**
   * Logits of x (T, D): (1, V) of the last position, or (T, V) of all.
   * `scratch` (T, D) receives the normed states in the 'all' case (f32 activations).
   * The result lives here until the next call.
   */
  forward(rec: Recorder, x: Tensor, scratch: Tensor, which: 'last' | 'all'): Tensor {
    const [T, D] = x.shape;
    if (which === 'all') {
      const V = this.head.rows;
      if (T > this.allRows) {
        throw new Error(`prefill: logits 'all' for ${T} tokens × ${V} would exceed one binding of this device (${this.gpu.maxBinding} bytes); pass at most ${this.allRows} tokens per call`);
      }
      this.logitsAll ??= this.gpu.empty([this.allRows, V], 'f32', `${this.label}.head.logits_all`, 'activations');
      const logits = this.logitsAll.view([T, V]);
      let normed = scratch;
      if (x.dtype !== 'f32') {
        this.normedAll ??= this.gpu.empty([this.allRows, D], 'f32', `${this.label}.head.normed_all`, 'activations');
        normed = this.normedAll.view([T, D]);
      }
      rmsnorm(rec, x, this.norm, normed, this.eps);
      this.head.project(rec, normed, logits);
      return logits;
    }
    // Copy the last row out: a binding offset must be 256-byte aligned, a copy only 4-byte.
    rec.copy(x.view([1, D], (T - 1) * D), this.last);
    rmsnorm(rec, this.last, this.norm, this.normed, this.eps);
    this.head.project(rec, this.normed, this.logits);
    return this.logits;
  }

  dispose(): void {
    for (const t of [this.last, this.normed, this.logits, this.logitsAll, this.normedAll]) t?.dispose();
  }
}
