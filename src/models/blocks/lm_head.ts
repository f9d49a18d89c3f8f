// The output head every family ends with: the final RMSNorm, then the LM head
// (often the embedding matrix itself), for the last position only (generation)
// or for every position (scoring). Owns its small output buffers.

import type { Gpu } from '../../runtime/gpu';
import type { Recorder } from '../../runtime/recorder';
import type { Tensor } from '../../runtime/tensor';
import { rmsnorm } from '../../kernels/rmsnorm';
import { Linear } from './linear';

export class LmHead {
  private readonly head: Linear;
  private readonly last: Tensor;    // (1, D) the last position's hidden state
  private readonly normed: Tensor;  // (1, D)
  private readonly logits: Tensor;  // (1, V)
  private logitsAll: Tensor | null = null; // (C, V), made on the first 'all' request

  constructor(
    private readonly gpu: Gpu,
    /** (D) f32 final norm weight. */
    private readonly norm: Tensor,
    /** (V, D) q4 or f32. */
    weight: Tensor,
    private readonly eps: number,
    /** Most positions one call handles (the model's prefill chunk). */
    private readonly chunk: number,
    private readonly label: string,
  ) {
    this.head = new Linear(weight);
    const [V, D] = weight.shape;
    const t = gpu.activationType;
    this.last = gpu.empty([1, D], t, `${label}.head.last`, 'activations');
    this.normed = gpu.empty([1, D], t, `${label}.head.normed`, 'activations');
    this.logits = gpu.empty([1, V], 'f32', `${label}.head.logits`, 'activations');
  }

  /**
   * Logits of x (T, D): (1, V) of the last position, or (T, V) of all.
   * `scratch` (T, D) receives the normed states in the 'all' case.
   * The result lives here until the next call.
   */
  forward(rec: Recorder, x: Tensor, scratch: Tensor, which: 'last' | 'all'): Tensor {
    const [T, D] = x.shape;
    if (which === 'all') {
      const V = this.head.outFeatures;
      this.logitsAll ??= this.gpu.empty([this.chunk, V], 'f32', `${this.label}.head.logits_all`, 'activations');
      const logits = this.logitsAll.view([T, V]);
      rmsnorm(rec, x, this.norm, scratch, this.eps);
      this.head.forward(rec, scratch, logits);
      return logits;
    }
    // Copy the last row out: a binding offset must be 256-byte aligned, a copy only 4-byte.
    rec.copy(x.view([1, D], (T - 1) * D), this.last);
    rmsnorm(rec, this.last, this.norm, this.normed, this.eps);
    this.head.forward(rec, this.normed, this.logits);
    return this.logits;
  }

  dispose(): void {
    for (const t of [this.last, this.normed, this.logits, this.logitsAll]) t?.dispose();
  }
}
