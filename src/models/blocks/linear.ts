// A linear layer y = x W^T (+ b) over 4-bit, 8-bit or f32 weights, choosing
// the kernel by shape: one token takes a matvec (decode), several the tiled
// matmul (prefill).

import type { Recorder } from '../../runtime/recorder';
import type { Tensor } from '../../runtime/tensor';
import { matvecQ4 } from '../../kernels/matvec_q4';
import { matmulQ4 } from '../../kernels/matmul_q4';
import { matvecQ8 } from '../../kernels/matvec_q8';
import { matmulQ8 } from '../../kernels/matmul_q8';
import { matmul } from '../../kernels/matmul';
import { matvec } from '../../kernels/matvec';
import { addInplace } from '../../kernels/add_inplace';

export class Linear {
  constructor(
    /** (N, K) = (out, in), q4, q8 or f32. */
    readonly weight: Tensor,
    /** (N) f32, or null. */
    readonly bias: Tensor | null = null,
  ) {}

  get outFeatures(): number {
    return this.weight.shape[0];
  }

  get inFeatures(): number {
    return this.weight.shape[1];
  }

  /**
   * y (T, N) = x (T, K) W^T + b, or, with yColumn, columns [yColumn,
   * yColumn + N) of a wider y (a row part of a split vocabulary; no bias).
   */
  forward(rec: Recorder, x: Tensor, y: Tensor, yColumn?: number): void {
    if (yColumn !== undefined && this.bias) throw new Error(`linear '${this.weight.label}': a column slice of y takes no bias`);
    const one = x.shape[0] === 1;
    // A single token writes a view of its columns (its offset must meet the binding alignment).
    const yv = one && yColumn !== undefined ? y.view([1, this.outFeatures], yColumn) : y;
    if (this.weight.dtype === 'q4') {
      if (one) matvecQ4(rec, this.weight, x, yv);
      else matmulQ4(rec, x, this.weight, y, yColumn);
    } else if (this.weight.dtype === 'q8') {
      if (one) matvecQ8(rec, this.weight, x, yv);
      else matmulQ8(rec, x, this.weight, y, yColumn);
    } else if (one) {
      matvec(rec, this.weight, x, yv);
    } else {
      matmul(rec, x, this.weight, y, yColumn);
    }
    if (this.bias) addInplace(rec, y, this.bias);
  }
}
