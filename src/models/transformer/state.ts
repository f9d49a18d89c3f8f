// The transformer's per-sequence state: a KV cache on the GPU, sized once for
// the requested context and counted in the ledger as 'cache'. reset() keeps
// its contents: later tokens overwrite them.

import type { Gpu } from '../../runtime/gpu';
import type { Tensor } from '../../runtime/tensor';
import { attnDecodeScratchShape } from '../../kernels/attn_decode';
import { SequenceState } from '../blocks/sequence_state';
import type { TransformerConfig } from './config';
import { TesseraError } from '../../runtime/errors';

export class TransformerState extends SequenceState {
  /** Per layer, keys and values after rotary embedding: (capacity, Hkv, Dh). */
  readonly k: Tensor[];
  readonly v: Tensor[];
  /** Partial results of split decode attention, sized for the capacity. */
  readonly decodeScratch: Tensor;

  constructor(gpu: Gpu, cfg: TransformerConfig, capacity: number) {
    super(capacity);
    const type = gpu.activationType;
    const shape = [capacity, cfg.nKvHeads, cfg.headDim];
    TransformerState.checkFits(gpu, cfg, capacity);
    // All or nothing: a layer's cache that cannot be made frees the ones before it.
    [this.k, this.v, this.decodeScratch] = gpu.allOrNothing(() => [
      Array.from({ length: cfg.nLayers }, (_, l) => gpu.empty(shape, type, `kv.L${l}.k`, 'cache')),
      Array.from({ length: cfg.nLayers }, (_, l) => gpu.empty(shape, type, `kv.L${l}.v`, 'cache')),
      gpu.empty(attnDecodeScratchShape(capacity, cfg.nHeads, cfg.headDim), 'f32', 'kv.decode_scratch', 'cache'),
    ] as const);
  }

  /** Throws before anything is allocated (or loaded) if one layer's cache exceeds a device buffer. */
  /** Bytes of K (or of V) for one layer at `capacity` tokens, in elements of `elementBytes`. */
  static bytesPerLayer(cfg: TransformerConfig, capacity: number, elementBytes: number): number {
    return capacity * cfg.nKvHeads * cfg.headDim * elementBytes;
  }

  static checkFits(gpu: Gpu, cfg: TransformerConfig, capacity: number): void {
    const perLayer = TransformerState.bytesPerLayer(cfg, capacity, gpu.activationType === 'f16' ? 2 : 4);
    const limit = Math.min(gpu.maxBinding, gpu.device.limits.maxBufferSize);
    if (perLayer > limit) {
      throw new TesseraError('WILL_NOT_FIT', `KV cache: ${capacity} tokens need ${perLayer} bytes per layer for K (and as much for V), over this device's limit of ${limit} bytes per buffer; pass a smaller maxContext`);
    }
  }

  protected get buffers(): readonly Tensor[] {
    return [...this.k, ...this.v, this.decodeScratch];
  }
}
