// The GPU context: device, memory ledger, pipeline cache, and the few ways a
// buffer comes into being (empty, upload, 4-bit upload). Everything that
// allocates device memory goes through here, so the ledger sees it all.
// It also watches the device: once it is lost (destroyed, driver reset), every
// later call fails with a DeviceLostError that says so, instead of WebGPU's
// empty AbortError, and out-of-memory at buffer creation is caught with an
// error scope and reported with the sizes at the next check.

import { requestDevice, type DeviceOptions, type DeviceReport } from './device';
import { toF16Array } from './f16';
import { MemoryLedger, type MemoryCategory } from './ledger';
import { checkQ4Shape, q4GroupsPerRow, type Q4Weights } from './q4';
import { checkQ8Shape, type Q8Weights } from './q8';
import { Recorder } from './recorder';
import { DeviceLostError, TesseraError } from './errors';
import { DeviceBuffer, DTYPE_BYTES, fmtShape, isQuantized, Tensor, type DenseDType } from './tensor';

export type HostArray = Float32Array | Int32Array | Uint32Array;

const STORAGE = () => GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST;
const align = (n: number, a: number) => Math.ceil(n / a) * a;
/** Readbacks up to this many bytes share kept buffers (Gpu.takeReadback). */
const SMALL_READBACK = 256;

export class Gpu {
  readonly ledger = new MemoryLedger();
  private readonly pipelineCache = new Map<string, GPUComputePipeline>();
  private readonly moduleCache = new Map<string, GPUShaderModule>();
  /** Shader compile, pipeline validation and out-of-memory results not yet checked (see checkErrors). */
  private pendingErrors: Promise<Error | null>[] = [];
  /** Uniform parameters and step inputs of one submit (recorder.ts); grows by doubling. */
  private ring: DeviceBuffer | null = null;
  /** Small readback buffers kept for the next step (takeReadback). */
  private readonly readbacks: DeviceBuffer[] = [];
  /** Buffers made inside allOrNothing() calls, innermost last. */
  private readonly scopes: DeviceBuffer[][] = [];
  private lostInfo: { reason: string; message: string } | null = null;

  private constructor(readonly device: GPUDevice, readonly report: DeviceReport) {
    // Resolves once, when the device is destroyed or lost; from then on every call says so.
    Promise.resolve(device.lost).then(
      (info) => { this.lostInfo = { reason: String(info?.reason ?? 'unknown'), message: String(info?.message ?? '') }; },
      () => {},
    );
  }

  /** Opens the device (see requestDevice) and wraps it. */
  static async create(options: DeviceOptions = {}): Promise<Gpu> {
    const { device, report } = await requestDevice(options);
    return new Gpu(device, report);
  }

  /** Wraps a device the caller already has (its limits are whatever it was created with). */
  static fromDevice(device: GPUDevice, report: DeviceReport): Gpu {
    if (report.precision === 'f16' && !device.features.has('shader-f16')) {
      throw new Error("Gpu.fromDevice: the report's precision is f16, but the device was created without the shader-f16 feature");
    }
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

  /** Why the device was lost ('destroyed', 'unknown', and the driver's message), or null while it works. */
  get lost(): { reason: string; message: string } | null {
    return this.lostInfo;
  }

  /** Throws a DeviceLostError naming `op` once the device is lost. */
  assertAlive(op: string): void {
    if (this.lostInfo) throw new DeviceLostError(op, this.lostInfo.reason, this.lostInfo.message);
  }

  /**
   * A new counted buffer. Sizes are rounded up to 4 bytes (WebGPU's copy
   * granularity). Running out of device memory does not throw here (WebGPU
   * reports it later): it is caught in an error scope and thrown by the next
   * checkErrors(), that is at the next submit or at the end of a load.
   */
  createBuffer(label: string, size: number, category: MemoryCategory, usage = STORAGE()): DeviceBuffer {
    this.assertAlive(`createBuffer '${label}'`);
    const bytes = align(Math.max(size, 4), 4);
    if (bytes > this.device.limits.maxBufferSize) {
      throw new TesseraError('WILL_NOT_FIT', `createBuffer '${label}': ${bytes} bytes exceed this device's maxBufferSize (${this.device.limits.maxBufferSize})`);
    }
    this.device.pushErrorScope('out-of-memory');
    let gpuBuffer: GPUBuffer;
    try {
      gpuBuffer = this.device.createBuffer({ label, size: bytes, usage });
    } finally {
      const held = this.ledger.report().total;
      this.track(this.device.popErrorScope().then((e) => e && new Error(
        `createBuffer '${label}': the device ran out of memory for ${bytes} bytes, with ${held} bytes already allocated (${e.message || 'out of memory'})`,
      )));
    }
    const buffer = new DeviceBuffer(gpuBuffer, label, bytes, category, this.ledger);
    for (const made of this.scopes) made.push(buffer);
    return buffer;
  }

  /**
   * Runs `make` (synchronous: a constructor that allocates several buffers)
   * and, if it throws, destroys every buffer it had created, so a failure
   * part-way leaves nothing behind in the ledger or on the device.
   */
  allOrNothing<T>(make: () => T): T {
    const made: DeviceBuffer[] = [];
    this.scopes.push(made);
    try {
      const out = make();
      if (out instanceof Promise) throw new Error('allOrNothing: make() must be synchronous');
      return out;
    } catch (e) {
      for (const b of made) b.destroy();
      throw e;
    } finally {
      this.scopes.pop();
    }
  }

  /**
   * A MAP_READ buffer for reading back `bytes`. A step reads back a few bytes
   * (the chosen token), so small ones are kept and reused rather than made,
   * error-scoped and destroyed on every step; give each back with returnReadback().
   */
  takeReadback(label: string, bytes: number): DeviceBuffer {
    const kept = bytes <= SMALL_READBACK ? this.readbacks.findIndex((b) => b.size >= bytes) : -1;
    if (kept >= 0) return this.readbacks.splice(kept, 1)[0];
    return this.createBuffer(label, bytes, 'scratch', GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST);
  }

  /** Takes back a buffer from takeReadback(), unmapped: a small one that served is kept, any other destroyed. */
  returnReadback(buffer: DeviceBuffer, served: boolean): void {
    if (served && buffer.size <= SMALL_READBACK && this.readbacks.length < 8 && !this.lostInfo) this.readbacks.push(buffer);
    else buffer.destroy();
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
    return this.allOrNothing(() => {
      const t = this.empty(shape, dtype, opts.label, opts.category);
      this.write(t, data);
      return t;
    });
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
    const src = hostBytes('write', t, data);
    this.assertAlive(`write '${t.label}'`);
    this.device.queue.writeBuffer(t.buffer.gpuBuffer, t.offset, src.buffer, src.byteOffset, src.byteLength);
  }

  /** Reads a tensor back (f16 comes back as f32), after all work submitted before. */
  read(t: Tensor): Promise<HostArray> {
    return new Recorder(this, `read.${t.label}`).submitAndRead(t);
  }

  /** Shader modules and compute pipelines compiled so far on this device (each is compiled once, then cached). */
  get compiled(): { shaderModules: number; pipelines: number } {
    return { shaderModules: this.moduleCache.size, pipelines: this.pipelineCache.size };
  }

  /**
   * The cached compute pipeline for `key`, compiled from `code` on first use.
   * Compile and validation errors are collected and raised at the next submit.
   */
  pipeline(key: string, moduleKey: string, code: string, constants: Record<string, number>, locate: (line: number) => string = (line) => `line ${line}`): GPUComputePipeline {
    const hit = this.pipelineCache.get(key);
    if (hit) return hit;
    this.assertAlive(`pipeline '${key}'`);
    this.device.pushErrorScope('validation');
    let module = this.moduleCache.get(moduleKey);
    if (!module) {
      module = this.device.createShaderModule({ label: moduleKey, code });
      this.moduleCache.set(moduleKey, module);
    }
    const pipeline = this.device.createComputePipeline({ label: key, layout: 'auto', compute: { module, entryPoint: 'main', constants } });
    const built = module;
    this.track(this.device.popErrorScope().then(async (e) => e && new Error(`pipeline '${key}' failed to build: ${e.message.trim()}${await compilerMessages(built, locate)}`)));
    this.pipelineCache.set(key, pipeline);
    return pipeline;
  }

  /**
   * Throws the first error seen since the last call: a shader or pipeline
   * that failed to build, a buffer the device had no memory for, or the
   * device lost. Called at every submit and at the end of a load.
   */
  async checkErrors(op = 'checkErrors'): Promise<void> {
    const pending = this.pendingErrors;
    this.pendingErrors = [];
    const errors = await Promise.all(pending);
    this.assertAlive(op);
    const first = errors.find((e) => e !== null);
    if (first) throw first;
  }

  /** Keeps an error-scope result for checkErrors(); a scope that cannot be popped (device lost) counts as no error. */
  private track(result: Promise<Error | null>): void {
    this.pendingErrors.push(result.catch(() => null));
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
    this.ring = null;
    this.ring = this.createBuffer('uniform-ring', size, 'scratch', GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST | GPUBufferUsage.COPY_SRC);
    return this.ring.gpuBuffer;
  }

  /** Destroys the device. Buffers still counted in the ledger are reported as leaks by tests. */
  destroy(): void {
    this.ring?.destroy();
    this.ring = null;
    for (const b of this.readbacks.splice(0)) b.destroy();
    this.device.destroy();
  }
}

/**
 * The compiler's own messages with where they point ('; error at
 * attention_tile.wgsl:12:5: ...'): some implementations' error scopes say
 * only "Parsing error".
 */
async function compilerMessages(module: GPUShaderModule, locate: (line: number) => string): Promise<string> {
  const info = await module.getCompilationInfo().catch(() => null);
  const messages = info?.messages.filter((m) => m.type === 'error') ?? [];
  return messages.map((m) => `; ${m.type} at ${locate(m.lineNum)}:${m.linePos}: ${m.message.trim().split('\n')[0]}`).join('');
}

function checkShape(op: string, label: string, shape: readonly number[]): void {
  if (shape.length === 0 || !shape.every((d) => Number.isInteger(d) && d > 0)) {
    throw new Error(`${op} '${label}': shape ${fmtShape(shape)} must be non-empty positive integers`);
  }
}

/**
 * The bytes a write of `data` into `t` puts on the device (f16 tensors take
 * f32 data), checked: WebGPU writes and copies whole 4-byte words, so an
 * odd-length f16 write is padded, which is only safe where the padding is
 * the buffer's own rounding.
 */
export function hostBytes(op: string, t: Tensor, data: HostArray): ArrayBufferView<ArrayBuffer> {
  t.assertAlive(op);
  if (isQuantized(t.dtype)) throw new Error(`${op}: ${t.dtype} tensor '${t.label}' is written only by uploadQ4/uploadQ8`);
  if (data.length !== t.numel) throw new Error(`${op} '${t.label}': ${data.length} values for shape ${fmtShape(t.shape)}`);
  if (t.offset % 4 !== 0) throw new Error(`${op} '${t.label}': a view starting at byte ${t.offset} cannot be written (WebGPU writes whole 4-byte words)`);
  const bytes = t.dtype === 'f16' ? toF16Array(data) : data;
  if (bytes.byteLength % 4 === 0) return bytes as ArrayBufferView<ArrayBuffer>;
  if (t.offset + t.byteLength !== t.buffer.size - 2) {
    throw new Error(`${op} '${t.label}': an odd-length f16 view inside a larger buffer cannot be written (WebGPU writes whole 4-byte words)`);
  }
  return padTo4(bytes as Uint16Array);
}

function padTo4(a: Uint16Array): Uint16Array<ArrayBuffer> {
  const out = new Uint16Array(a.length + 1);
  out.set(a);
  return out;
}
