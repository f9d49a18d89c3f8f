// The gated MLP block the Llama family and RetNet share, with its residual:
//   x += down_proj(silu(gate_proj(m)) * up_proj(m)),  m = RMSNorm(x)
// (Hugging Face LlamaMLP, fla's GatedMLP).

import type { Recorder } from '../../runtime/recorder';
import type { Tensor } from '../../runtime/tensor';
import { rmsnorm } from '../../kernels/rmsnorm';
import { swiglu } from '../../kernels/swiglu';
import { addInplace } from '../../kernels/add_inplace';
import type { Linear } from './linear';

export interface GatedMlpWeights {
  /** (D) f32 weight of the norm before the block. */
  norm: Tensor;
  gate: Linear; // (I, D)
  up: Linear;   // (I, D)
  down: Linear; // (D, I)
}

/** Records the block on x (T, D) in place; n (T, D) and gate, up, act (T, I) are scratch. */
export function gatedMlp(rec: Recorder, x: Tensor, w: GatedMlpWeights, eps: number, s: { n: Tensor; gate: Tensor; up: Tensor; act: Tensor }): void {
  rmsnorm(rec, x, w.norm, s.n, eps);
  w.gate.forward(rec, s.n, s.gate);
  w.up.forward(rec, s.n, s.up);
  swiglu(rec, s.gate, s.up, s.act);
  w.down.forward(rec, s.act, s.n);
  addInplace(rec, x, s.n);
}
