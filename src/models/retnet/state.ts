// RetNet's per-sequence state: per layer one S (Dk × Dv) per head, f32 in
// every precision (a running sum over the whole sequence, as fla's kernels
// keep it), the same bytes at any context length; plus the position, which
// the rotary embedding continues from.

import type { Gpu } from '../../runtime/gpu';
import type { Tensor } from '../../runtime/tensor';
import { SequenceState } from '../blocks/sequence_state';
import type { RetNetConfig } from './config';

export class RetNetState extends SequenceState {
  /** Per layer (H, Dk, Dv) f32: S of each head. */
  readonly S: Tensor[];

  constructor(private readonly gpu: Gpu, cfg: RetNetConfig) {
    super(null);
    // All or nothing: a layer's state that cannot be made frees the ones before it.
    this.S = gpu.allOrNothing(() => Array.from({ length: cfg.nLayers }, (_, l) => gpu.empty([cfg.nHeads, cfg.keyDim, cfg.valueDim], 'f32', `retnet.state.L${l}.S`, 'cache')));
  }

  protected get buffers(): readonly Tensor[] {
    return this.S;
  }

  /** A new sequence: S = 0. */
  protected override clear(): void {
    for (const t of this.S) this.gpu.write(t, new Float32Array(t.numel));
  }
}
