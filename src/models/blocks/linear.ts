// A linear layer y = x W^T (+ b) over 4-bit or f32 weights, choosing the
// kernel by shape: one token takes a matvec (decode), several the tiled
// matmul (prefill).

import type { Recorder } from '../../runtime/recorder';
import type { Tensor } from '../../runtime/tensor';
import { matvecQ4 } from '../../kernels/matvec_q4';
import { matmulQ4 } from '../../kernels/matmul_q4';
import { matmul } from '../../kernels/matmul';
import { matvec } from '../../kernels/matvec';
import { addInplace } from '../../kernels/add_inplace';

export class Linear {
  constructor(
    /** (N, K) = (out, in), q4 or f32. */
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

  /** y (T, N) = x (T, K) W^T + b. */
  forward(rec: Recorder, x: Tensor, y: Tensor): void {
    if (this.weight.dtype === 'q4') {
      if (x.shape[0] === 1) matvecQ4(rec, this.weight, x, y);
      else matmulQ4(rec, x, this.weight, y);
    } else if (x.shape[0] === 1) {
      matvec(rec, this.weight, x, y);
    } else {
      matmul(rec, x, this.weight, y);
    }
    if (this.bias) addInplace(rec, y, this.bias);
  }
}
