// GPU buffers with one owner each, and Tensors: typed views over them.
//
// A DeviceBuffer is created through Gpu (which counts it in the memory
// ledger) and destroyed exactly once. A Tensor is a view: buffer, byte
// offset, shape, dtype. The Tensor returned by Gpu.upload/empty owns its
// buffer, so its dispose() frees it; views made with view() own nothing.

import type { MemoryCategory, MemoryLedger } from './ledger';

export type DType = 'f32' | 'f16' | 'i32' | 'u32' | 'q4' | 'q8';
/** Element types with a fixed size per element (not the quantized weight formats). */
export type DenseDType = Exclude<DType, 'q4' | 'q8'>;

/** Whether a dtype is a quantized weight format (q4.ts, q8.ts): sized by its layout, never viewed, read or written. */
export const isQuantized = (d: DType): d is 'q4' | 'q8' => d === 'q4' || d === 'q8';

/** Bytes per element; quantized tensors are sized by their layout instead. */
export const DTYPE_BYTES: Record<DenseDType, number> = { f32: 4, f16: 2, i32: 4, u32: 4 };

export class DeviceBuffer {
  private destroyedFlag = false;

  constructor(
    readonly gpuBuffer: GPUBuffer,
    readonly label: string,
    readonly size: number,
    readonly category: MemoryCategory,
    private readonly ledger: MemoryLedger,
  ) {
    ledger.add(this, label, size, category);
  }

  get destroyed(): boolean {
    return this.destroyedFlag;
  }

  /** Frees the buffer. Work already submitted that uses it still completes (WebGPU keeps it alive until then). */
  destroy(): void {
    if (this.destroyedFlag) return;
    this.destroyedFlag = true;
    this.ledger.remove(this);
    this.gpuBuffer.destroy();
  }
}

/**
 * Where the parts of a quantized tensor (q4.ts, q8.ts) sit in its buffer: the
 * packed codes at byte 0, then the f16 (scale, min) pairs at `scalesOffset`.
 */
export interface QuantLayout {
  groupSize: number;
  packedBytes: number;
  scalesOffset: number;
  scalesBytes: number;
}

export class Tensor {
  constructor(
    readonly buffer: DeviceBuffer,
    /** Row-major dimensions; for quantized weights (N, K) = (out, in). */
    readonly shape: readonly number[],
    readonly dtype: DType,
    readonly label: string,
    /** Byte offset of element 0 in the buffer. */
    readonly offset = 0,
    private readonly owner = true,
    readonly quant?: QuantLayout,
  ) {}

  get numel(): number {
    return this.shape.reduce((a, b) => a * b, 1);
  }

  /** Bytes this tensor covers (quantized: codes, padding and scales). */
  get byteLength(): number {
    if (isQuantized(this.dtype)) return this.quant!.scalesOffset + this.quant!.scalesBytes;
    return this.numel * DTYPE_BYTES[this.dtype];
  }

  get disposed(): boolean {
    return this.buffer.destroyed;
  }

  /** Throws if the tensor's buffer was freed: using it would read garbage or fail deep in WebGPU. */
  assertAlive(op: string): void {
    if (this.buffer.destroyed) throw new Error(`${op}: tensor '${this.label}' ${fmtShape(this.shape)} was disposed and cannot be used`);
  }

  /** A non-owning view of `shape` starting `elementOffset` elements in (same dtype). */
  view(shape: readonly number[], elementOffset = 0, label = this.label): Tensor {
    if (isQuantized(this.dtype)) throw new Error(`view: ${this.dtype} tensor '${this.label}' cannot be viewed`);
    const bytes = DTYPE_BYTES[this.dtype];
    const numel = shape.reduce((a, b) => a * b, 1);
    if (elementOffset < 0 || elementOffset + numel > this.numel) {
      throw new Error(`view: ${fmtShape(shape)} at element ${elementOffset} does not fit in '${this.label}' ${fmtShape(this.shape)}`);
    }
    return new Tensor(this.buffer, shape, this.dtype, label, this.offset + elementOffset * bytes, false);
  }

  /** Frees the buffer if this tensor owns it; disposing twice or disposing a view does nothing. */
  dispose(): void {
    if (this.owner) this.buffer.destroy();
  }
}

export function fmtShape(shape: readonly number[]): string {
  return `(${shape.join(', ')})`;
}
