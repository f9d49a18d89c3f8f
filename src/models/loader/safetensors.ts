// A safetensors reader, written from the format as huggingface/safetensors
// describes it (README.md, safetensors/src/tensor.rs):
//   bytes [0, 8)        N: u64, little-endian, the header length
//   bytes [8, 8 + N)    a UTF-8 JSON object {name: {dtype, shape, data_offsets: [begin, end]},
//                       "__metadata__"?: {string: string}}, padded with spaces
//   bytes [8 + N, end)  the data region; data_offsets are relative to its start
// Opening a file reads only its header; each tensor is then read on its own, so
// a checkpoint never has to be in memory whole.
//
// Validation follows the reference parser (SafeTensors::read_metadata and
// Metadata::validate): N <= 100,000,000 and inside the file; the header is
// UTF-8 JSON (leading whitespace allowed, like serde_json); each tensor's byte
// length is numel * dtype bits / 8; and the tensors, sorted by offsets, tile
// the data region exactly: the first starts at 0, each starts where the
// previous ended (no overlaps, no holes) and the last ends at the end of the
// file (no trailing bytes). Unknown fields inside a tensor entry are ignored,
// as serde does. Duplicate names cannot be seen through JSON.parse (the last
// wins, as with serde's map); the tiling check catches the hole the lost
// entry leaves unless both entries name the same bytes.

import { openSource, type CheckpointSource, type SourceInput } from './source';

/** The reference's largest accepted header (MAX_HEADER_SIZE). */
export const MAX_HEADER_BYTES = 100_000_000;

/** Bits per element of every dtype the format defines, in the reference's enum order. */
export const DTYPE_BITS = {
  BOOL: 8, F4: 4, F6_E2M3: 6, F6_E3M2: 6, U8: 8, I8: 8, F8_E5M2: 8, F8_E4M3: 8, F8_E8M0: 8,
  I16: 16, U16: 16, F16: 16, BF16: 16, I32: 32, U32: 32, F32: 32, C64: 64, F64: 64, I64: 64, U64: 64,
} as const;
export type Dtype = keyof typeof DTYPE_BITS;

export interface TensorInfo {
  dtype: Dtype;
  /** Row-major ('C' order) dimensions; [] is a scalar. */
  shape: readonly number[];
  byteLength: number;
  /** [begin, end) inside the data region, as in the header. */
  dataOffsets: readonly [number, number];
}

/** One opened .safetensors file: its header, and reads of single tensors. */
export interface SafetensorsFile {
  readonly fileName: string;
  readonly source: CheckpointSource;
  /** Tensor names in the order their data lies in the file. */
  readonly names: readonly string[];
  /** The header's "__metadata__" strings, or null when it has none. */
  readonly metadata: Readonly<Record<string, string>> | null;
  /** Byte offset of the data region in the file: 8 + N. */
  readonly dataStart: number;
  has(name: string): boolean;
  /** Throws naming the tensor and the file when it is not there. */
  info(name: string): TensorInfo;
  /** The tensor's raw little-endian bytes; reads only its byte range. */
  readBytes(name: string): Promise<Uint8Array>;
  /** The tensor as float32 (F32 as is, F16 and BF16 converted exactly); other dtypes throw. */
  readF32(name: string): Promise<Float32Array>;
}

/** Reads and validates the header of `fileName` in `source` (and nothing else). */
export async function openSafetensors(source: CheckpointSource, fileName: string): Promise<SafetensorsFile> {
  const fail = (msg: string) => new Error(`safetensors file "${fileName}" in ${source.describe}: ${msg}`);
  const size = await source.size(fileName);
  if (size < 8) throw fail(`the file is ${size} bytes, too short to hold the 8-byte header length`);

  const head = await source.read(fileName, 0, 8);
  if (head.length !== 8) throw fail(`the source returned ${head.length} bytes for the 8-byte header length`);
  const n64 = new DataView(head.buffer, head.byteOffset, 8).getBigUint64(0, true);
  if (n64 > BigInt(MAX_HEADER_BYTES)) throw fail(`header length ${n64} exceeds the ${MAX_HEADER_BYTES}-byte limit`);
  const n = Number(n64);
  if (n > size - 8) throw fail(`header length ${n} runs past the end of the file (${size} bytes)`);

  // Read outside the try: a failed read (a network error, a cancelled load) must keep its own message.
  const headerBytes = await source.read(fileName, 8, 8 + n);
  if (headerBytes.length !== n) throw fail(`the source returned ${headerBytes.length} bytes for the ${n}-byte header`);
  let text: string;
  try {
    // ignoreBOM keeps a byte-order mark in the text, so JSON.parse rejects it as serde_json does.
    text = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true }).decode(headerBytes);
  } catch {
    throw fail('the header is not valid UTF-8');
  }
  let header: unknown;
  try {
    header = JSON.parse(text);
  } catch (e) {
    throw fail(`the header is not valid JSON (${(e as Error).message})`);
  }
  if (typeof header !== 'object' || header === null || Array.isArray(header)) throw fail(`the header must be a JSON object, got ${kind(header)}`);

  const dataSize = size - 8 - n;
  let metadata: Record<string, string> | null = null;
  const entries: { name: string; info: TensorInfo }[] = [];
  for (const [name, value] of Object.entries(header)) {
    if (name === '__metadata__') {
      metadata = parseMetadata(value, fail);
      continue;
    }
    entries.push({ name, info: parseEntry(name, value, dataSize, fail) });
  }

  // Tile the data region, like the reference: sorted by offsets, each tensor begins where the last ended.
  entries.sort((a, b) => a.info.dataOffsets[0] - b.info.dataOffsets[0] || a.info.dataOffsets[1] - b.info.dataOffsets[1]);
  let pos = 0;
  let prev: (typeof entries)[number] | undefined;
  for (const e of entries) {
    const [begin, end] = e.info.dataOffsets;
    if (begin < pos) throw fail(`tensors "${prev!.name}" [${prev!.info.dataOffsets.join(', ')}) and "${e.name}" [${begin}, ${end}) overlap`);
    if (begin > pos) throw fail(`bytes [${pos}, ${begin}) of the data region, ${prev ? `after tensor "${prev.name}"` : 'at its start'}, belong to no tensor (before "${e.name}")`);
    pos = end;
    prev = e;
  }
  if (pos !== dataSize) throw fail(`the data region is ${dataSize} bytes but its tensors end at byte ${pos}: ${dataSize - pos} trailing bytes belong to no tensor`);

  return new SafetensorsReader(source, fileName, 8 + n, metadata, new Map(entries.map((e) => [e.name, e.info])));
}

type Fail = (msg: string) => Error;

function kind(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'an array';
  return typeof v === 'object' ? 'an object' : `${typeof v} ${JSON.stringify(v)?.slice(0, 40)}`;
}

function parseMetadata(value: unknown, fail: Fail): Record<string, string> | null {
  if (value === null) return null; // serde reads null as "no metadata"
  if (typeof value !== 'object' || Array.isArray(value)) throw fail(`"__metadata__" must be an object of strings, got ${kind(value)}`);
  for (const [k, v] of Object.entries(value)) {
    if (typeof v !== 'string') throw fail(`"__metadata__" must be an object of strings, but "${k}" is ${kind(v)}`);
  }
  return value as Record<string, string>;
}

function parseEntry(name: string, value: unknown, dataSize: number, fail: Fail): TensorInfo {
  const t = `tensor "${name}"`;
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw fail(`the entry of ${t} must be an object, got ${kind(value)}`);
  const { dtype, shape, data_offsets: offsets } = value as Record<string, unknown>;
  if (typeof dtype !== 'string' || !Object.hasOwn(DTYPE_BITS, dtype)) throw fail(`unknown dtype ${JSON.stringify(dtype) ?? 'undefined'} for ${t}`);
  const isCount = (d: unknown): d is number => typeof d === 'number' && Number.isSafeInteger(d) && d >= 0;
  if (!Array.isArray(shape) || !shape.every(isCount)) throw fail(`the shape of ${t} must be an array of non-negative integers, got ${JSON.stringify(shape)?.slice(0, 80)}`);
  if (!Array.isArray(offsets) || offsets.length !== 2 || !offsets.every(isCount)) {
    throw fail(`data_offsets of ${t} must be two non-negative integers [begin, end], got ${JSON.stringify(offsets)?.slice(0, 80)}`);
  }
  const [begin, end] = offsets as [number, number];
  if (begin > end) throw fail(`data_offsets of ${t} begin after they end: [${begin}, ${end}]`);
  if (end > dataSize) throw fail(`data_offsets of ${t} [${begin}, ${end}] run past the data region (${dataSize} bytes)`);
  let numel = 1;
  for (const d of shape) {
    numel *= d;
    if (!Number.isSafeInteger(numel)) throw fail(`the shape of ${t} [${shape.join(', ')}] has too many elements`);
  }
  const bits = numel * DTYPE_BITS[dtype as Dtype];
  if (!Number.isSafeInteger(bits) || bits % 8 !== 0) throw fail(`${t} (${dtype} [${shape.join(', ')}]) does not fill a whole number of bytes`);
  if (end - begin !== bits / 8) {
    throw fail(`${t} is ${dtype} [${shape.join(', ')}], which takes ${bits / 8} bytes, but its data_offsets [${begin}, ${end}] span ${end - begin}`);
  }
  return { dtype: dtype as Dtype, shape: shape as number[], byteLength: end - begin, dataOffsets: [begin, end] };
}

const littleEndian = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;
let f16Table: Uint32Array | undefined;

/** binary16 bits -> binary32 bits, exact (NaN payloads kept, as a hardware conversion does). */
function f16ToF32Bits(h: number): number {
  const sign = (h & 0x8000) << 16;
  const exp = (h >> 10) & 0x1f;
  let mant = h & 0x3ff;
  if (exp === 0x1f) return sign | 0x7f800000 | (mant << 13);
  if (exp !== 0) return sign | ((exp + 112) << 23) | (mant << 13); // rebias 15 -> 127
  if (mant === 0) return sign;
  // Subnormal mant * 2^-24: shift the leading 1 up to bit 10, lowering the exponent each step.
  let e = 113;
  while (!(mant & 0x400)) {
    mant <<= 1;
    e--;
  }
  return sign | (e << 23) | ((mant & 0x3ff) << 13);
}

/** Little-endian F32 / F16 / BF16 bytes -> float32. */
function toF32(dtype: 'F32' | 'F16' | 'BF16', b: Uint8Array): Float32Array {
  if (dtype === 'F32') {
    const n = b.length >> 2;
    // The bytes are ours (a fresh read): view them in place when aligned, else copy once.
    if (littleEndian && b.byteOffset === 0 && b.byteLength === b.buffer.byteLength) return new Float32Array(b.buffer, 0, n);
    const out = new Float32Array(n);
    if (littleEndian) new Uint8Array(out.buffer).set(b.subarray(0, n * 4));
    else {
      const dv = new DataView(b.buffer, b.byteOffset, b.byteLength);
      for (let i = 0; i < n; i++) out[i] = dv.getFloat32(4 * i, true);
    }
    return out;
  }
  const n = b.length >> 1;
  const out = new Float32Array(n);
  const bits = new Uint32Array(out.buffer);
  if (dtype === 'BF16') {
    // bfloat16 is the top half of a float32.
    for (let i = 0; i < n; i++) bits[i] = (b[2 * i] | (b[2 * i + 1] << 8)) << 16;
  } else {
    if (!f16Table) {
      f16Table = new Uint32Array(65536);
      for (let h = 0; h < 65536; h++) f16Table[h] = f16ToF32Bits(h);
    }
    for (let i = 0; i < n; i++) bits[i] = f16Table[b[2 * i] | (b[2 * i + 1] << 8)];
  }
  return out;
}

class SafetensorsReader implements SafetensorsFile {
  readonly names: readonly string[];

  constructor(
    readonly source: CheckpointSource,
    readonly fileName: string,
    readonly dataStart: number,
    readonly metadata: Readonly<Record<string, string>> | null,
    private readonly tensors: ReadonlyMap<string, TensorInfo>,
  ) {
    this.names = [...tensors.keys()];
  }

  private where(name: string): string {
    return `tensor "${name}" in safetensors file "${this.fileName}" (${this.source.describe})`;
  }

  has(name: string): boolean {
    return this.tensors.has(name);
  }

  info(name: string): TensorInfo {
    const info = this.tensors.get(name);
    if (!info) throw new Error(`no tensor "${name}" in safetensors file "${this.fileName}" (${this.source.describe})`);
    return info;
  }

  async readBytes(name: string): Promise<Uint8Array> {
    const { dataOffsets: [begin, end] } = this.info(name);
    const bytes = await this.source.read(this.fileName, this.dataStart + begin, this.dataStart + end);
    if (bytes.length !== end - begin) throw new Error(`reading ${this.where(name)}: got ${bytes.length} bytes, expected ${end - begin}`);
    return bytes;
  }

  async readF32(name: string): Promise<Float32Array> {
    const { dtype } = this.info(name);
    if (dtype !== 'F32' && dtype !== 'F16' && dtype !== 'BF16') {
      throw new Error(`unsupported dtype ${dtype} for tensor "${name}" in file "${this.fileName}" (${this.source.describe}): readF32 converts F32, F16 and BF16`);
    }
    return toF32(dtype, await this.readBytes(name));
  }
}

// ---- checkpoints: one file or shards ----------------------------------------

export const SINGLE_FILE = 'model.safetensors';
export const SHARD_INDEX = 'model.safetensors.index.json';

/** Every tensor of a checkpoint, whichever file holds it. */
export interface Checkpoint {
  readonly source: CheckpointSource;
  /** The .safetensors files, in name order. */
  readonly files: readonly string[];
  /** Tensor names: file by file, each in data order. */
  readonly names: readonly string[];
  has(name: string): boolean;
  /** Throws naming the tensor and the source when it is not there. */
  info(name: string): TensorInfo & { file: string };
  readBytes(name: string): Promise<Uint8Array>;
  readF32(name: string): Promise<Float32Array>;
}

/**
 * Opens `model.safetensors`, or else the shards listed by
 * `model.safetensors.index.json` ({weight_map: {tensor: file}}), as
 * transformers does (the single file wins when both exist). The index must
 * agree with the shards exactly: every listed tensor in its shard, no tensor
 * in two shards, no shard tensor missing from the index.
 */
export async function openCheckpoint(input: SourceInput): Promise<Checkpoint> {
  const source = openSource(input);
  let shards: SafetensorsFile[];
  if (await source.has(SINGLE_FILE)) {
    shards = [await openSafetensors(source, SINGLE_FILE)];
  } else if (await source.has(SHARD_INDEX)) {
    shards = await openShards(source);
  } else if ((await source.has('pytorch_model.bin')) || (await source.has('pytorch_model.bin.index.json'))) {
    // Pickled PyTorch weights can run arbitrary code when loaded; we read safetensors only.
    throw new Error(
      `${source.describe} holds pytorch_model.bin (PyTorch pickle), which Tessera does not read: convert it to ${SINGLE_FILE} ` +
        `(in Python: model.save_pretrained(dir, safe_serialization=True), or safetensors.torch.save_file on the state dict)`,
    );
  } else {
    const files = await source.list();
    const found = files ? ` (it holds: ${files.length ? files.join(', ') : 'nothing'})` : '';
    throw new Error(`no ${SINGLE_FILE} or ${SHARD_INDEX} in ${source.describe}${found}`);
  }
  const owner = new Map<string, SafetensorsFile>();
  for (const f of shards) for (const name of f.names) owner.set(name, f);
  const get = (name: string): SafetensorsFile => {
    const f = owner.get(name);
    if (!f) throw new Error(`no tensor "${name}" in the checkpoint in ${source.describe}`);
    return f;
  };
  return {
    source,
    files: shards.map((f) => f.fileName),
    names: shards.flatMap((f) => f.names),
    has: (name) => owner.has(name),
    info: (name) => {
      const f = get(name);
      return { ...f.info(name), file: f.fileName };
    },
    readBytes: (name) => get(name).readBytes(name),
    readF32: (name) => get(name).readF32(name),
  };
}

async function openShards(source: CheckpointSource): Promise<SafetensorsFile[]> {
  const where = `${SHARD_INDEX} in ${source.describe}`;
  const indexText = await source.text(SHARD_INDEX);
  let index: unknown;
  try {
    index = JSON.parse(indexText);
  } catch (e) {
    throw new Error(`${where} is not valid JSON (${(e as Error).message})`);
  }
  const map = (index as { weight_map?: unknown } | null)?.weight_map;
  if (typeof map !== 'object' || map === null || Array.isArray(map)) throw new Error(`${where} has no "weight_map" object`);
  const weightMap = Object.entries(map);
  for (const [tensor, file] of weightMap) {
    if (typeof file !== 'string' || !/^[^/\\]+\.safetensors$/.test(file) || file.startsWith('.')) {
      throw new Error(`${where} maps tensor "${tensor}" to ${JSON.stringify(file)}, which is not a .safetensors file name in that folder`);
    }
  }
  const names = [...new Set(weightMap.map(([, file]) => file as string))].sort();
  // A shard the index leaves out would have its tensors silently ignored.
  const stray = (await source.list())?.find((f) => /^model-\d+-of-\d+\.safetensors$/.test(f) && !names.includes(f));
  if (stray) throw new Error(`${where} does not reference shard "${stray}", which is in that folder`);
  for (const file of names) {
    if (!(await source.has(file))) {
      const example = weightMap.find(([, f]) => f === file)![0];
      throw new Error(`${where} maps tensors (e.g. "${example}") to shard "${file}", which is not in ${source.describe}`);
    }
  }
  const shards = await Promise.all(names.map((file) => openSafetensors(source, file)));

  const owner = new Map<string, string>();
  for (const shard of shards) {
    for (const name of shard.names) {
      const other = owner.get(name);
      if (other !== undefined) throw new Error(`tensor "${name}" is in two shards, "${other}" and "${shard.fileName}" (${source.describe})`);
      owner.set(name, shard.fileName);
    }
  }
  const listed = new Map(weightMap as [string, string][]);
  for (const [tensor, file] of listed) {
    const actual = owner.get(tensor);
    if (actual === undefined) throw new Error(`${where} maps tensor "${tensor}" to shard "${file}", but no shard holds it`);
    if (actual !== file) throw new Error(`${where} maps tensor "${tensor}" to shard "${file}", but it is in "${actual}"`);
  }
  for (const [tensor, file] of owner) {
    if (!listed.has(tensor)) throw new Error(`shard "${file}" holds tensor "${tensor}", which ${where} does not list`);
  }
  return shards;
}
