// The GPU context: device, memory ledger, pipeline cache, and the few ways a
// buffer comes into being (empty, upload, 4-bit upload). Everything that
// allocates device memory goes through here, so the ledger sees it all.

import { requestDevice, type DeviceOptions, type DeviceReport } from './device';
import { toF16Array } from './f16';
import { MemoryLedger, type MemoryCategory } from './ledger';
import { checkQ4Shape, q4GroupsPerRow, type Q4Weights } from './q4';
import { checkQ8Shape, type Q8Weights } from './q8';
import { Recorder } from './recorder';
import { DeviceBuffer, DTYPE_BYTES, fmtShape, isQuantized, Tensor, type DenseDType } from './tensor';

export type HostArray = Float32Array | Int32Array | Uint32Array;

const STORAGE = () => GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST;
const align = (n: number, a: number) => Math.ceil(n / a) * a;

export class Gpu {
  readonly ledger = new MemoryLedger();
  private readonly pipelineCache = new Map<string, GPUComputePipeline>();
  private readonly moduleCache = new Map<string, GPUShaderModule>();
  /** Shader compile / pipeline validation results not yet checked (see takePipelineErrors). */
  private pendingPipelineErrors: Promise<GPUError | null>[] = [];
  /** Uniform parameters of the dispatches of one submit (recorder.ts); grows by doubling. */
  private ring: DeviceBuffer | null = null;

  private constructor(readonly device: GPUDevice, readonly report: DeviceReport) {}

  /** Opens the device (see requestDevice) and wraps it. */
  static async create(options: DeviceOptions = {}): Promise<Gpu> {
    const { device, report } = await requestDevice(options);
    return new Gpu(device, report);
  }

  /** Wraps a device the caller already has (its limits are whatever it was created with). */
  static fromDevice(device: GPUDevice, report: DeviceReport): Gpu {
    return new Gpu(device, report);
  }

  /** Element type of activations on this device: f32, or f16 where chosen and supported. */
  get activationType(): 'f32' | 'f16' {
    return this.report.precision;
  }

  /** Most bytes one binding may hold: the device's limit, or the lower cap it was opened with (maxBindingBytes). */
  get maxBinding(): number {
    return this.report.limits.maxStorageBufferBindingSize;
  }

  /** A new counted buffer. Sizes are rounded up to 4 bytes (WebGPU's copy granularity). */
  createBuffer(label: string, size: number, category: MemoryCategory, usage = STORAGE()): DeviceBuffer {
    const bytes = align(Math.max(size, 4), 4);
    if (bytes > this.device.limits.maxBufferSize) {
      throw new Error(`createBuffer '${label}': ${bytes} bytes exceed this device's maxBufferSize (${this.device.limits.maxBufferSize})`);
    }
    const gpuBuffer = this.device.createBuffer({ label, size: bytes, usage });
    return new DeviceBuffer(gpuBuffer, label, bytes, category, this.ledger);
  }

  /** An uninitialised (zeroed) tensor that owns its buffer. */
  empty(shape: readonly number[], dtype: DenseDType, label: string, category: MemoryCategory = 'activations'): Tensor {
    checkShape('empty', label, shape);
    const bytes = shape.reduce((a, b) => a * b, 1) * DTYPE_BYTES[dtype];
    return new Tensor(this.createBuffer(label, bytes, category), shape, dtype, label);
  }

  /** Uploads host data; f32 data becomes f16 on the device when dtype is 'f16'. */
  upload(data: HostArray, shape: readonly number[], opts: { label: string; dtype?: DenseDType; category?: MemoryCategory }): Tensor {
    const dtype = opts.dtype ?? (data instanceof Float32Array ? 'f32' : data instanceof Int32Array ? 'i32' : 'u32');
    checkShape('upload', opts.label, shape);
    const numel = shape.reduce((a, b) => a * b, 1);
    if (numel !== data.length) throw new Error(`upload '${opts.label}': ${data.length} values do not fill shape ${fmtShape(shape)} (${numel})`);
    const hostOk = dtype === 'f32' || dtype === 'f16' ? data instanceof Float32Array : dtype === 'i32' ? data instanceof Int32Array || data instanceof Uint32Array : data instanceof Uint32Array || data instanceof Int32Array;
    if (!hostOk) throw new Error(`upload '${opts.label}': a ${data.constructor.name} cannot be uploaded as ${dtype}`);
    const t = this.empty(shape, dtype, opts.label, opts.category);
    this.write(t, data);
    return t;
  }

  /** Uploads 4-bit weights (q4.ts) as one q4 tensor: codes, then scales at a 256-byte aligned offset. */
  uploadQ4(q: Q4Weights, label: string, category: MemoryCategory = 'weights'): Tensor {
    checkQ4Shape(`uploadQ4 '${label}'`, q.rows, q.cols, q.groupSize);
    return this.uploadQuantized('q4', q, q.cols / 8, label, category);
  }

  /** Uploads 8-bit weights (q8.ts) as one q8 tensor, laid out as q4. */
  uploadQ8(q: Q8Weights, label: string, category: MemoryCategory = 'weights'): Tensor {
    checkQ8Shape(`uploadQ8 '${label}'`, q.rows, q.cols, q.groupSize);
    return this.uploadQuantized('q8', q, q.cols / 4, label, category);
  }

  private uploadQuantized(dtype: 'q4' | 'q8', q: Q4Weights | Q8Weights, wordsPerRow: number, label: string, category: MemoryCategory): Tensor {
    const op = dtype === 'q4' ? 'uploadQ4' : 'uploadQ8';
    const packedBytes = q.rows * wordsPerRow * 4;
    const scalesBytes = q.rows * q4GroupsPerRow(q.cols, q.groupSize) * 4;
    if (q.packed.length * 4 !== packedBytes || q.scales.length * 4 !== scalesBytes) {
      throw new Error(`${op} '${label}': packed/scales lengths do not match a (${q.rows}, ${q.cols}) weight with group ${q.groupSize}`);
    }
    const scalesOffset = align(packedBytes, this.device.limits.minStorageBufferOffsetAlignment);
    const buffer = this.createBuffer(label, scalesOffset + scalesBytes, category);
    this.device.queue.writeBuffer(buffer.gpuBuffer, 0, q.packed.buffer as ArrayBuffer, q.packed.byteOffset, q.packed.byteLength);
    this.device.queue.writeBuffer(buffer.gpuBuffer, scalesOffset, q.scales.buffer as ArrayBuffer, q.scales.byteOffset, q.scales.byteLength);
    return new Tensor(buffer, [q.rows, q.cols], dtype, label, 0, true, { groupSize: q.groupSize, packedBytes, scalesOffset, scalesBytes });
  }

  /** Overwrites a tensor's contents from host data (same element count). */
  write(t: Tensor, data: HostArray): void {
    t.assertAlive('write');
    if (isQuantized(t.dtype)) throw new Error(`write: ${t.dtype} tensor '${t.label}' is written only by uploadQ4/uploadQ8`);
    if (data.length !== t.numel) throw new Error(`write '${t.label}': ${data.length} values for shape ${fmtShape(t.shape)}`);
    const bytes = t.dtype === 'f16' ? toF16Array(data) : data;
    // writeBuffer needs a multiple of 4 bytes: pad an odd-length f16 write,
    // which is only safe where the padding is the buffer's own rounding.
    if (bytes.byteLength % 4 !== 0 && t.offset + t.byteLength !== t.buffer.size - 2) {
      throw new Error(`write '${t.label}': an odd-length f16 view inside a larger buffer cannot be written (WebGPU writes whole 4-byte words)`);
    }
    const src = bytes.byteLength % 4 === 0 ? bytes : padTo4(bytes as Uint16Array);
    this.device.queue.writeBuffer(t.buffer.gpuBuffer, t.offset, src.buffer, src.byteOffset, src.byteLength);
  }

  /** Reads a tensor back (f16 comes back as f32), after all work submitted before. */
  read(t: Tensor): Promise<HostArray> {
    return new Recorder(this, `read.${t.label}`).submitAndRead(t);
  }

  /**
   * The cached compute pipeline for `key`, compiled from `code` on first use.
   * Compile and validation errors are collected and raised at the next submit.
   */
  pipeline(key: string, moduleKey: string, code: string, constants: Record<string, number>): GPUComputePipeline {
    const hit = this.pipelineCache.get(key);
    if (hit) return hit;
    this.device.pushErrorScope('validation');
    let module = this.moduleCache.get(moduleKey);
    if (!module) {
      module = this.device.createShaderModule({ label: moduleKey, code });
      this.moduleCache.set(moduleKey, module);
    }
    const pipeline = this.device.createComputePipeline({ label: key, layout: 'auto', compute: { module, entryPoint: 'main', constants } });
    this.pendingPipelineErrors.push(this.device.popErrorScope().then((e) => (e ? Object.assign(e, { key }) : null)));
    this.pipelineCache.set(key, pipeline);
    return pipeline;
  }

  /** Throws the first shader/pipeline error seen since the last call, naming the pipeline. */
  async takePipelineErrors(): Promise<void> {
    if (this.pendingPipelineErrors.length === 0) return;
    const pending = this.pendingPipelineErrors;
    this.pendingPipelineErrors = [];
    for (const e of await Promise.all(pending)) {
      if (e) throw new Error(`pipeline '${(e as GPUError & { key: string }).key}' failed to build: ${e.message}`);
    }
  }

  /** Pipelines compiled so far (a benchmark reports it; a decode step should add none). */
  get pipelineCount(): number {
    return this.pipelineCache.size;
  }

  /**
   * The uniform ring the recorders write their Params into. One is enough:
   * queue.writeBuffer is ordered after earlier submits, so each submit sees
   * its own parameters. Growing destroys the old ring, which submits already
   * made still complete with.
   */
  uniformRing(bytes: number): GPUBuffer {
    if (this.ring && this.ring.size >= bytes) return this.ring.gpuBuffer;
    let size = this.ring ? this.ring.size : 1 << 16;
    while (size < bytes) size *= 2;
    this.ring?.destroy();
    this.ring = this.createBuffer('uniform-ring', size, 'scratch', GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST);
    return this.ring.gpuBuffer;
  }

  /** Destroys the device. Buffers still counted in the ledger are reported as leaks by tests. */
  destroy(): void {
    this.ring?.destroy();
    this.ring = null;
    this.device.destroy();
  }
}

function checkShape(op: string, label: string, shape: readonly number[]): void {
  if (shape.length === 0 || !shape.every((d) => Number.isInteger(d) && d > 0)) {
    throw new Error(`${op} '${label}': shape ${fmtShape(shape)} must be non-empty positive integers`);
  }
}

function padTo4(a: Uint16Array): Uint16Array {
  const out = new Uint16Array(a.length + 1);
  out.set(a);
  return out;
}
