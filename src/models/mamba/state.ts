// Mamba's per-sequence state: per layer the last Kc-1 conv inputs and the SSM
// state h, allocated once, the same size at any context length. The conv
// inputs are of the activation type (copies of activations: exact in f16);
// h stays f32 in every precision, as mamba_ssm's selective-scan kernels keep
// it: it is a running sum over the whole sequence, and f16 rounding at each
// of thousands of steps would accumulate.

import type { Gpu } from '../../runtime/gpu';
import type { Tensor } from '../../runtime/tensor';
import { SequenceState } from '../blocks/sequence_state';
import type { MambaConfig } from './config';

export class MambaState extends SequenceState {
  /** Per layer (Di, Kc-1) of the activation type: the last conv inputs, oldest first. */
  readonly conv: Tensor[];
  /** Per layer (Di, N) f32: the SSM state h. */
  readonly ssm: Tensor[];

  constructor(private readonly gpu: Gpu, cfg: MambaConfig) {
    super(null);
    const { intermediateSize: Di, convKernel: Kc, stateSize: N, nLayers: L } = cfg;
    // All or nothing: a layer's state that cannot be made frees the ones before it.
    [this.conv, this.ssm] = gpu.allOrNothing(() => [
      Array.from({ length: L }, (_, l) => gpu.empty([Di, Math.max(1, Kc - 1)], gpu.activationType, `mamba.state.L${l}.conv`, 'cache')),
      Array.from({ length: L }, (_, l) => gpu.empty([Di, N], 'f32', `mamba.state.L${l}.ssm`, 'cache')),
    ] as const);
  }

  protected get buffers(): readonly Tensor[] {
    return [...this.conv, ...this.ssm];
  }

  /** A new sequence: zero conv inputs and h. */
  protected override clear(): void {
    for (const t of this.buffers) this.gpu.write(t, new Float32Array(t.numel));
  }
}
