// The transformer's per-sequence state: a KV cache on the GPU, sized once for
// the requested context and counted in the ledger as 'cache'.

import type { Gpu } from '../../runtime/gpu';
import type { Tensor } from '../../runtime/tensor';
import { attnDecodeScratchShape } from '../../kernels/attn_decode';
import type { ModelState } from '../model';
import type { TransformerConfig } from './config';

export class TransformerState implements ModelState {
  private pos = 0;
  /** Per layer, keys and values after rotary embedding: (capacity, Hkv, Dh). */
  readonly k: Tensor[];
  readonly v: Tensor[];
  /** Partial results of split decode attention, sized for the capacity. */
  readonly decodeScratch: Tensor;

  constructor(gpu: Gpu, cfg: TransformerConfig, readonly capacity: number) {
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
  static checkFits(gpu: Gpu, cfg: TransformerConfig, capacity: number): void {
    const perLayer = capacity * cfg.nKvHeads * cfg.headDim * (gpu.activationType === 'f16' ? 2 : 4);
    const limit = Math.min(gpu.maxBinding, gpu.device.limits.maxBufferSize);
    if (perLayer > limit) {
      throw new Error(`KV cache: ${capacity} tokens need ${perLayer} bytes per layer for K (and as much for V), over this device's limit of ${limit} bytes per buffer; pass a smaller maxContext`);
    }
  }

  get position(): number {
    return this.pos;
  }

  get bytes(): number {
    return [...this.k, ...this.v, this.decodeScratch].reduce((s, t) => s + t.byteLength, 0);
  }

  /** Marks `n` more tokens as written; throws before a write would pass the capacity. */
  advance(n: number): void {
    this.pos += n;
  }

  /** Throws the context-overflow Error if `n` more tokens do not fit. */
  checkRoom(n: number): void {
    if (this.pos + n > this.capacity) {
      throw new Error(`context overflow: ${this.pos} tokens so far + ${n} new would exceed this state's capacity of ${this.capacity} tokens (raise maxContext, or reset())`);
    }
  }

  /** Rewinds to `position` (keeps the cache: later tokens are simply overwritten). */
  truncate(position: number): void {
    if (position < 0 || position > this.pos) throw new Error(`truncate: position ${position} is outside 0..${this.pos}`);
    this.pos = position;
  }

  reset(): void {
    this.pos = 0;
  }

  dispose(): void {
    for (const t of [...this.k, ...this.v, this.decodeScratch]) t.dispose();
  }
}
