// Checkpoint tensors -> GPU weights. A family names every tensor it expects
// with its shape; everything is checked before a single weight is read (a
// silently ignored tensor is the most common loader bug), then tensors are
// read, converted and uploaded one at a time, so loading never needs the
// whole checkpoint in host memory.

import type { Gpu } from '../../runtime/gpu';
import { abortError, TesseraError } from '../../runtime/errors';
import { quantizeQ4, type Q4GroupSize } from '../../runtime/q4';
import { quantizeQ8 } from '../../runtime/q8';
import { fmtShape, type Tensor } from '../../runtime/tensor';
import { VOCAB_PART_ALIGN, VocabMatrix } from '../blocks/vocab';

/** What the loader needs of a checkpoint (safetensors.ts implements it). */
export interface TensorSource {
  readonly names: readonly string[];
  info(name: string): { dtype: string; shape: readonly number[]; byteLength: number };
  readF32(name: string): Promise<Float32Array>;
}

export type WeightMode = 'q4' | 'f32';
/** Format of the vocabulary matrices (embedding, LM head): 8 bits by default beside 4-bit layers, f32 beside f32 ones. */
export type EmbeddingMode = 'q8' | 'q4' | 'f32';

/** Trained weights are far below this; a larger one is a corrupt file. */
export const MAX_WEIGHT = 1e8;

/** Bytes of checkpoint tensor data read so far, of the total the model needs. */
/** How far a load is: files fetched into the offline cache ('download'), then weights placed on the device ('weights'). */
export type LoadProgress =
  | { phase: 'download'; loadedBytes: number; totalBytes: number; file: string }
  | { phase: 'weights'; loadedBytes: number; totalBytes: number; tensor: string };

/** How the weights of a load are read and stored. */
export interface UploadOptions {
  weights: WeightMode;
  /** Default: q8 beside q4 weights, f32 beside f32. */
  embeddings?: EmbeddingMode;
  onProgress?: (p: LoadProgress) => void;
  /** Checked before each tensor: an aborted load stops and frees what it made. */
  signal?: AbortSignal;
}

/**
 * Checks that the checkpoint holds exactly the expected tensors with the
 * expected shapes (tensors matching `ignore` may be present and are skipped).
 * Throws one Error listing every missing, unexpected and mis-shaped tensor.
 */
export function checkTensors(src: TensorSource, expected: ReadonlyMap<string, readonly number[]>, ignore: readonly RegExp[], where: string): void {
  const present = new Set(src.names);
  const missing = [...expected.keys()].filter((n) => !present.has(n));
  const unexpected = src.names.filter((n) => !expected.has(n) && !ignore.some((r) => r.test(n)));
  const misshaped: string[] = [];
  for (const [name, shape] of expected) {
    if (!present.has(name)) continue;
    const got = src.info(name).shape;
    if (got.length !== shape.length || got.some((d, i) => d !== shape[i])) misshaped.push(`${name} is ${fmtShape(got)}, expected ${fmtShape(shape)}`);
  }
  const problems = [
    missing.length ? `missing tensors: ${list(missing)}` : '',
    unexpected.length ? `tensors this model does not use: ${list(unexpected)}` : '',
    misshaped.length ? `wrong shapes: ${list(misshaped)}` : '',
  ].filter(Boolean);
  if (problems.length) throw new Error(`${where}: the checkpoint does not match its config: ${problems.join('; ')}`);
}

/** data times s (a copy; the same array when s is 1). */
function scaled(data: Float32Array, s: number): Float32Array {
  return s === 1 ? data : data.map((v) => v * s);
}

function list(items: string[]): string {
  return items.length > 8 ? `${items.slice(0, 8).join(', ')} and ${items.length - 8} more` : items.join(', ');
}

/** Reads tensors one at a time and uploads them; tracks what it made so a failed load frees it all. */
export class WeightUploader {
  readonly tensors: Tensor[] = [];
  private loadedBytes = 0;

  private readonly mode: WeightMode;
  private readonly embeddings: EmbeddingMode;

  constructor(
    private readonly gpu: Gpu,
    private readonly src: TensorSource,
    private readonly totalBytes: number,
    private readonly opts: UploadOptions,
    private readonly groupSize: Q4GroupSize = 32,
  ) {
    this.mode = opts.weights;
    this.embeddings = opts.embeddings ?? (opts.weights === 'q4' ? 'q8' : 'f32');
  }

  /**
   * A (rows, cols) matrix used as a linear weight: q4 or f32 per the mode;
   * `scale` multiplies it first (a multiplier of the config folded in).
   */
  async matrix(name: string, label: string, scale = 1): Promise<Tensor> {
    const [rows, cols] = this.src.info(name).shape;
    return this.upload(scaled(await this.read(name), scale), rows, cols, label, this.mode);
  }

  /**
   * The experts of one projection stacked as one 4-bit (E * rows, cols)
   * matrix, expert e's rows from `rows` rows of tensor pieces[e].name starting
   * at row pieces[e].row (a per-expert tensor, or a slice of a fused one);
   * each tensor is read once. 4-bit whatever the mode (the experts are most
   * of a sparse model's bytes), counted in the ledger as 'experts'.
   */
  async experts(label: string, rows: number, cols: number, pieces: readonly { name: string; row: number }[], scale = 1): Promise<Tensor> {
    const stacked = new Float32Array(pieces.length * rows * cols);
    const read = new Map<string, Float32Array>();
    for (const [e, p] of pieces.entries()) {
      let data = read.get(p.name);
      if (!data) read.set(p.name, (data = await this.read(p.name)));
      stacked.set(data.subarray(p.row * cols, (p.row + rows) * cols), e * rows * cols);
    }
    const t = this.gpu.uploadQ4(quantizeQ4(scaled(stacked, scale), pieces.length * rows, cols, this.groupSize), label, 'experts');
    this.tensors.push(t);
    return t;
  }

  /**
   * A (V, D) vocabulary matrix (embedding, LM head) in the embeddings format,
   * in row parts that each fit one binding of this device (one part when the
   * whole matrix fits), read once.
   */
  async vocab(name: string, label: string, scale = 1): Promise<VocabMatrix> {
    const [rows, cols] = this.src.info(name).shape;
    const format = this.embeddings;
    // Bytes per row as bound: codes and scales when quantized (plus up to 256 bytes of gap before the scales).
    const codeBytes = { q4: cols / 2, q8: cols, f32: cols * 4 }[format];
    const rowBytes = codeBytes + (format === 'f32' ? 0 : Math.ceil(cols / this.groupSize) * 4);
    const perPart = Math.floor((this.gpu.maxBinding - (format === 'f32' ? 0 : 256)) / rowBytes / VOCAB_PART_ALIGN) * VOCAB_PART_ALIGN;
    if (perPart === 0) throw new TesseraError('WILL_NOT_FIT', `tensor '${name}' ${fmtShape([rows, cols])}: ${VOCAB_PART_ALIGN} rows (${VOCAB_PART_ALIGN * rowBytes} bytes) exceed this device's ${this.gpu.maxBinding}-byte binding`);
    const data = scaled(await this.read(name), scale);
    const parts: Tensor[] = [];
    for (let r = 0; r < rows; r += perPart) {
      const n = Math.min(perPart, rows - r);
      const partLabel = perPart >= rows ? label : `${label}.part${parts.length}`;
      parts.push(this.upload(data.subarray(r * cols, (r + n) * cols), n, cols, partLabel, format));
    }
    return new VocabMatrix(parts);
  }

  /**
   * Consecutive row ranges of one (rows, cols) matrix as separate weights,
   * read once: a fused projection (in_proj, x_proj) split into its parts.
   */
  async rowSplit(name: string, parts: readonly { label: string; rows: number }[]): Promise<Tensor[]> {
    const [rows, cols] = this.src.info(name).shape;
    if (parts.reduce((s, p) => s + p.rows, 0) !== rows) throw new Error(`tensor '${name}': ${rows} rows do not split into ${parts.map((p) => p.rows).join(' + ')}`);
    const data = await this.read(name);
    let r0 = 0;
    return parts.map(({ label, rows: n }) => {
      const slice = data.subarray(r0 * cols, (r0 + n) * cols);
      r0 += n;
      return this.upload(slice, n, cols, label, this.mode);
    });
  }

  /**
   * A linear layer's bias, in the activation type: it is added to the layer's
   * output in place (as f16 checkpoints hold it, in the f16 path).
   */
  async bias(name: string, label: string, scale = 1): Promise<Tensor> {
    const [t] = await this.biasSplit(name, [{ label, length: this.src.info(name).shape[0] }], scale);
    return t;
  }

  /** Consecutive ranges of one bias as separate tensors (the bias of a split projection), in the activation type. */
  async biasSplit(name: string, parts: readonly { label: string; length: number }[], scale = 1): Promise<Tensor[]> {
    const data = scaled(await this.read(name), scale);
    let i0 = 0;
    return parts.map(({ label, length }) => {
      const t = this.gpu.upload(data.slice(i0, (i0 += length)), [length], { label, category: 'weights', dtype: this.gpu.activationType });
      this.tensors.push(t);
      return t;
    });
  }

  /** A tensor kept in f32, reshaped to `shape` and optionally transformed (e.g. A = -exp(A_log)). */
  async f32As(name: string, label: string, shape: readonly number[], map?: (v: number) => number): Promise<Tensor> {
    const data = await this.read(name);
    const t = this.gpu.upload(map ? data.map(map) : data, shape, { label, category: 'weights' });
    this.tensors.push(t);
    return t;
  }

  /** A vector or small tensor kept in f32 (norm weights, the SSM's parameters), times `scale`. */
  async f32(name: string, label: string, scale = 1): Promise<Tensor> {
    const data = scaled(await this.read(name), scale);
    const t = this.gpu.upload(data, this.src.info(name).shape, { label, category: 'weights' });
    this.tensors.push(t);
    return t;
  }

  /** Uploads a (rows, cols) matrix in `format`, tracked for disposeAll(). */
  private upload(data: Float32Array, rows: number, cols: number, label: string, format: EmbeddingMode): Tensor {
    const t = format === 'q4' ? this.gpu.uploadQ4(quantizeQ4(data, rows, cols, this.groupSize), label)
      : format === 'q8' ? this.gpu.uploadQ8(quantizeQ8(data, rows, cols, this.groupSize), label)
      : this.gpu.upload(data, [rows, cols], { label, category: 'weights' });
    this.tensors.push(t);
    return t;
  }

  disposeAll(): void {
    for (const t of this.tensors) t.dispose();
    this.tensors.length = 0;
  }

  private async read(name: string): Promise<Float32Array> {
    const signal = this.opts.signal;
    if (signal?.aborted) throw abortError(`loadModel: cancelled before reading tensor '${name}'`, signal.reason);
    // A buffer the device had no memory for ends the load here, not after the whole checkpoint.
    await this.gpu.checkErrors(`loadModel (before tensor '${name}')`);
    const data = await this.src.readF32(name);
    if (signal?.aborted) throw abortError(`loadModel: cancelled after reading tensor '${name}'`, signal.reason);
    for (let i = 0; i < data.length; i++) {
      const v = data[i];
      if (!Number.isFinite(v)) throw new Error(`tensor '${name}': value ${v} at index ${i} is not finite`);
      // Such a weight overflows float32 activations (and shaders may turn the
      // overflow into zeros rather than Inf): refuse it instead of computing garbage.
      if (Math.abs(v) > MAX_WEIGHT) throw new Error(`tensor '${name}': value ${v} at index ${i} is too large to run in float32 (|w| > ${MAX_WEIGHT})`);
    }
    this.loadedBytes += this.src.info(name).byteLength;
    this.opts.onProgress?.({ phase: 'weights', loadedBytes: this.loadedBytes, totalBytes: this.totalBytes, tensor: name });
    return data;
  }
}
