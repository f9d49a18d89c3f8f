// The recorder: a forward step's dispatches go into one command encoder and
// one queue submit. Each dispatch's uniform parameters take a 256-byte slot
// of one ring buffer, and the step's inputs (token ids, rotary table) are
// staged in the same ring and copied into place as recorded commands, so the
// order of writes and dispatches is the order of recording and a recorder can
// hold several steps. Encoding is deferred to submit(), so nothing recorded
// can end up pointing at a ring that was grown.

import { hostBytes, type Gpu, type HostArray } from './gpu';
import { fmtShape, isQuantized, type Tensor } from './tensor';
import { f16BitsToF32 } from './f16';

/** One binding of a dispatch: a whole tensor, or an explicit byte range of its buffer (q4 parts). */
export type Binding = Tensor | { tensor: Tensor; offset: number; size: number };

interface DispatchCmd { kind: 'dispatch'; label: string; pipeline: GPUComputePipeline; bindings: GPUBufferBinding[]; paramsSlot: number; groups: [number, number, number] }
interface CopyCmd { kind: 'copy'; src: GPUBuffer; srcOffset: number; dst: GPUBuffer; dstOffset: number; size: number }
/** A host upload: bytes staged in the ring after the params, copied to dst when the command is reached. */
interface WriteCmd { kind: 'write'; data: Uint8Array; dst: GPUBuffer; dstOffset: number }

export const SLOT = 256; // minUniformBufferOffsetAlignment on every adapter we know

export class Recorder {
  private cmds: (DispatchCmd | CopyCmd | WriteCmd)[] = [];
  private params: ArrayBuffer[] = [];
  private submitted = false;

  constructor(readonly gpu: Gpu, readonly label = 'step') {}

  /**
   * Records a dispatch. `bindings` follow the uniform Params at binding 0, in
   * order 1, 2, ...; `params` is the packed Params struct (or null if none).
   */
  dispatch(op: string, pipeline: GPUComputePipeline, bindings: readonly Binding[], params: ArrayBuffer | null, groups: readonly number[]): void {
    this.assertOpen(op);
    const maxBinding = this.gpu.maxBinding;
    const align = this.gpu.device.limits.minStorageBufferOffsetAlignment;
    const entries = bindings.map((b): GPUBufferBinding => {
      const t = 'tensor' in b ? b.tensor : b;
      t.assertAlive(op);
      const offset = 'tensor' in b ? t.offset + b.offset : t.offset;
      const size = 'tensor' in b ? b.size : t.byteLength;
      if (size > maxBinding) {
        throw new Error(`${op}: '${t.label}' ${fmtShape(t.shape)} needs ${size} bytes in one binding, over this device's limit of ${maxBinding}; split the tensor`);
      }
      if (offset % align !== 0) throw new Error(`${op}: '${t.label}' starts at byte ${offset}, not a multiple of ${align} (WebGPU's binding alignment)`);
      return { buffer: t.buffer.gpuBuffer, offset, size: Math.ceil(size / 4) * 4 };
    });
    const maxGroups = this.gpu.device.limits.maxComputeWorkgroupsPerDimension;
    const g: [number, number, number] = [groups[0] ?? 1, groups[1] ?? 1, groups[2] ?? 1];
    if (g.some((n) => n > maxGroups || n < 0 || !Number.isInteger(n))) throw new Error(`${op}: workgroup grid ${g.join('×')} exceeds ${maxGroups} per dimension`);
    if (g.some((n) => n === 0)) return; // nothing to do (an empty shape)
    let paramsSlot = -1;
    if (params) {
      if (params.byteLength > SLOT) throw new Error(`${op}: params of ${params.byteLength} bytes exceed a ${SLOT}-byte slot`);
      paramsSlot = this.params.length;
      this.params.push(params);
    }
    this.cmds.push({ kind: 'dispatch', label: op, pipeline, bindings: entries, paramsSlot, groups: g });
  }

  /** Records a buffer copy of `src` into `dst` (same byte length). */
  copy(src: Tensor, dst: Tensor): void {
    this.assertOpen('copy');
    src.assertAlive('copy');
    dst.assertAlive('copy');
    if (src.byteLength !== dst.byteLength) throw new Error(`copy: '${src.label}' ${fmtShape(src.shape)} and '${dst.label}' ${fmtShape(dst.shape)} differ in size`);
    this.cmds.push({ kind: 'copy', src: src.buffer.gpuBuffer, srcOffset: src.offset, dst: dst.buffer.gpuBuffer, dstOffset: dst.offset, size: Math.ceil(src.byteLength / 4) * 4 });
  }

  /** Records a host upload into `t` (same element count), done in order with the dispatches around it. */
  write(t: Tensor, data: HostArray): void {
    this.assertOpen('write');
    const bytes = hostBytes('write', t, data);
    this.cmds.push({ kind: 'write', data: new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength).slice(), dst: t.buffer.gpuBuffer, dstOffset: t.offset });
  }

  /** Encodes everything recorded into one command buffer and submits it once. */
  async submit(): Promise<void> {
    this.encodeAndSubmit();
    await this.gpu.checkErrors(`submit '${this.label}'`);
  }

  /** Submits, then reads `t` back in the same command buffer: the one readback of a step. */
  async submitAndRead(t: Tensor): Promise<HostArray> {
    t.assertAlive('read');
    if (isQuantized(t.dtype)) throw new Error(`read: ${t.dtype} tensor '${t.label}' cannot be read back`);
    const bytes = Math.ceil(t.byteLength / 4) * 4;
    // Counted in the ledger; small ones are kept by the Gpu for the next step.
    const staging = this.gpu.takeReadback(`${this.label}.readback`, bytes);
    let served = false;
    try {
      this.encodeAndSubmit((enc) => enc.copyBufferToBuffer(t.buffer.gpuBuffer, t.offset, staging.gpuBuffer, 0, bytes));
      await this.gpu.checkErrors(`submit '${this.label}'`);
      try {
        await staging.gpuBuffer.mapAsync(GPUMapMode.READ);
      } catch (e) {
        // A lost device rejects the map with an empty AbortError: say what happened instead.
        await new Promise((r) => setTimeout(r, 0));
        this.gpu.assertAlive(`read '${t.label}'`);
        throw new Error(`read '${t.label}': mapping the readback buffer failed (${(e as Error).name}: ${(e as Error).message || 'no message'})`);
      }
      const copy = staging.gpuBuffer.getMappedRange(0, bytes).slice(0);
      staging.gpuBuffer.unmap();
      served = true;
      switch (t.dtype) {
        case 'f32': return new Float32Array(copy, 0, t.numel);
        case 'i32': return new Int32Array(copy, 0, t.numel);
        case 'u32': return new Uint32Array(copy, 0, t.numel);
        case 'f16': return Float32Array.from(new Uint16Array(copy, 0, t.numel), f16BitsToF32);
      }
    } finally {
      this.gpu.returnReadback(staging, served);
    }
  }

  /** Number of dispatches recorded (tests check a decode step's count). */
  get dispatchCount(): number {
    return this.cmds.filter((c) => c.kind === 'dispatch').length;
  }

  private assertOpen(op: string): void {
    if (this.submitted) throw new Error(`${op}: recorder '${this.label}' was already submitted; start a new one`);
    this.gpu.assertAlive(`${op} (recorder '${this.label}')`);
  }

  private encodeAndSubmit(tail?: (enc: GPUCommandEncoder) => void): void {
    this.gpu.device.queue.submit(this.encode({ tail }).buffers);
  }

  /**
   * Submits what was recorded, timing each dispatch on the GPU (for profiling,
   * never on a model's path): with timestamp-query, each dispatch runs in its
   * own pass whose start and end the GPU writes to a query set; without it,
   * each dispatch is submitted alone and timed on the host around a wait for
   * the queue, which adds the submit's own cost. Resolves to each dispatch's
   * op and milliseconds, in order, and how they were measured (`method`
   * asks for the host's way even where timestamps are there).
   */
  async submitProfiled(opts: { method?: 'timestamps' | 'host' } = {}): Promise<{ method: 'timestamps' | 'host'; times: { op: string; ms: number }[] }> {
    this.assertOpen('submitProfiled');
    const gpu = this.gpu;
    const device = gpu.device;
    const n = this.dispatchCount;
    if (!gpu.report.features.timestampQuery || n === 0 || opts.method === 'host') {
      const { buffers, ops } = this.encode({ split: true });
      const times: { op: string; ms: number }[] = [];
      for (const [i, b] of buffers.entries()) {
        const t0 = performance.now();
        device.queue.submit([b]);
        await device.queue.onSubmittedWorkDone();
        if (i < ops.length) times.push({ op: ops[i], ms: performance.now() - t0 });
      }
      await gpu.checkErrors(`submit '${this.label}'`);
      return { method: 'host', times };
    }
    // WebGPU caps a query set at 4096 queries: two per dispatch.
    if (2 * n > 4096) throw new Error(`submitProfiled: ${n} dispatches need ${2 * n} timestamps, over WebGPU's 4096 per query set; profile a shorter step`);
    const querySet = device.createQuerySet({ type: 'timestamp', count: 2 * n, label: `${this.label}.timestamps` });
    const resolve = gpu.createBuffer(`${this.label}.timestamps.resolve`, 16 * n, 'scratch', GPUBufferUsage.QUERY_RESOLVE | GPUBufferUsage.COPY_SRC);
    const read = gpu.createBuffer(`${this.label}.timestamps.read`, 16 * n, 'scratch', GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST);
    try {
      const { buffers, ops } = this.encode({
        timestamps: querySet,
        tail: (enc) => {
          enc.resolveQuerySet(querySet, 0, 2 * n, resolve.gpuBuffer, 0);
          enc.copyBufferToBuffer(resolve.gpuBuffer, 0, read.gpuBuffer, 0, 16 * n);
        },
      });
      device.queue.submit(buffers);
      await gpu.checkErrors(`submit '${this.label}'`);
      await read.gpuBuffer.mapAsync(GPUMapMode.READ);
      const ticks = new BigUint64Array(read.gpuBuffer.getMappedRange().slice(0));
      read.gpuBuffer.unmap();
      return { method: 'timestamps', times: ops.map((op, i) => ({ op, ms: Number(ticks[2 * i + 1] - ticks[2 * i]) / 1e6 })) };
    } finally {
      querySet.destroy();
      resolve.destroy();
      read.destroy();
    }
  }

  /**
   * Encodes everything recorded: one command buffer, or (split) one per
   * dispatch, the copies before it included; with `timestamps`, each dispatch
   * in its own pass writing its start and end to the query set.
   */
  private encode(opts: { tail?: (enc: GPUCommandEncoder) => void; split?: boolean; timestamps?: GPUQuerySet }): { buffers: GPUCommandBuffer[]; ops: string[] } {
    this.assertOpen('submit');
    this.submitted = true;
    const device = this.gpu.device;
    // The ring: params slots, then the staged writes, each at a 4-byte aligned offset.
    const writes = this.cmds.filter((c): c is WriteCmd => c.kind === 'write');
    const writeAt: number[] = [];
    let ringBytes = this.params.length * SLOT;
    for (const w of writes) {
      writeAt.push(ringBytes);
      ringBytes += Math.ceil(w.data.length / 4) * 4;
    }
    const ring = ringBytes ? this.gpu.uniformRing(ringBytes) : null;
    if (ring) {
      const host = new Uint8Array(ringBytes);
      this.params.forEach((p, i) => host.set(new Uint8Array(p), i * SLOT));
      writes.forEach((w, i) => host.set(w.data, writeAt[i]));
      device.queue.writeBuffer(ring, 0, host);
    }
    const buffers: GPUCommandBuffer[] = [];
    const ops: string[] = [];
    const alone = opts.split || opts.timestamps !== undefined;
    let enc = device.createCommandEncoder({ label: this.label });
    let pass: GPUComputePassEncoder | null = null;
    let nextWrite = 0;
    for (const cmd of this.cmds) {
      if (cmd.kind === 'copy' || cmd.kind === 'write') {
        pass?.end();
        pass = null;
        if (cmd.kind === 'copy') enc.copyBufferToBuffer(cmd.src, cmd.srcOffset, cmd.dst, cmd.dstOffset, cmd.size);
        else enc.copyBufferToBuffer(ring!, writeAt[nextWrite++], cmd.dst, cmd.dstOffset, Math.ceil(cmd.data.length / 4) * 4);
        continue;
      }
      // Dispatches in one pass are ordered: each sees the writes of the ones before.
      const k = ops.length;
      pass ??= enc.beginComputePass({
        label: this.label,
        ...(opts.timestamps && { timestampWrites: { querySet: opts.timestamps, beginningOfPassWriteIndex: 2 * k, endOfPassWriteIndex: 2 * k + 1 } }),
      });
      const entries: GPUBindGroupEntry[] = cmd.bindings.map((resource, i) => ({ binding: i + 1, resource }));
      if (cmd.paramsSlot >= 0) entries.unshift({ binding: 0, resource: { buffer: ring!, offset: cmd.paramsSlot * SLOT, size: SLOT } });
      const group = device.createBindGroup({ label: cmd.label, layout: cmd.pipeline.getBindGroupLayout(0), entries });
      pass.setPipeline(cmd.pipeline);
      pass.setBindGroup(0, group);
      pass.dispatchWorkgroups(...cmd.groups);
      ops.push(cmd.label);
      if (alone) {
        pass.end();
        pass = null;
      }
      if (opts.split) {
        buffers.push(enc.finish());
        enc = device.createCommandEncoder({ label: this.label });
      }
    }
    pass?.end();
    opts.tail?.(enc);
    buffers.push(enc.finish());
    this.cmds = [];
    this.params = [];
    return { buffers, ops };
  }
}

/** Packs a WGSL Params struct of 4-byte scalars, in declaration order. */
export class Params {
  private readonly view: DataView;
  private offset = 0;
  constructor(fields: number) {
    this.view = new DataView(new ArrayBuffer(Math.ceil(fields / 4) * 16));
  }
  u32(v: number): this { this.view.setUint32(this.offset, v >>> 0, true); this.offset += 4; return this; }
  i32(v: number): this { this.view.setInt32(this.offset, v | 0, true); this.offset += 4; return this; }
  f32(v: number): this { this.view.setFloat32(this.offset, v, true); this.offset += 4; return this; }
  get buffer(): ArrayBuffer { return this.view.buffer as ArrayBuffer; }
}
