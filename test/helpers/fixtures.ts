// Test fixtures: real .safetensors bytes, written the way the reference
// library writes them (huggingface/safetensors, safetensors/src/tensor.rs,
// `prepare` + `serialize`), and transformers-style sharded checkpoints.
// Independent of src/models/loader on purpose: the reader is checked against
// this writer, so they must not share code.
//
// The reference writer:
// - orders tensors by dtype, descending in its Dtype enum order (F64 before
//   F32 before BF16 before F16 ...), then by name (byte-wise), and lays their
//   data out back to back in that order, with no gaps;
// - writes the header as compact JSON: "__metadata__" first when there is
//   metadata, then each tensor as {"dtype","shape","data_offsets"} in that
//   order; the metadata keys come out in Rust HashMap order, which is
//   unspecified, so with several keys any order is as faithful: we keep the
//   caller's order;
// - pads the header with spaces to a multiple of 8 bytes, so the data region
//   starts 8-aligned; N counts the padding.

import { f32ToF16Bits } from '../../src/runtime/f16';

/** The reference's Dtype enum, in its order (the order the writer sorts by), with bits per element. */
const DTYPE_ORDER: [string, number][] = [
  ['BOOL', 8], ['F4', 4], ['F6_E2M3', 6], ['F6_E3M2', 6], ['U8', 8], ['I8', 8], ['F8_E5M2', 8], ['F8_E4M3', 8], ['F8_E8M0', 8],
  ['I16', 16], ['U16', 16], ['F16', 16], ['BF16', 16], ['I32', 32], ['U32', 32], ['F32', 32], ['C64', 64], ['F64', 64], ['I64', 64], ['U64', 64],
];
const RANK = new Map(DTYPE_ORDER.map(([d], i) => [d, i]));
const BITS = new Map(DTYPE_ORDER);

/** A float tensor, converted to its dtype by the writer (F16/BF16 round to nearest even). */
export interface FloatTensor { dtype: 'F32' | 'F16' | 'BF16'; shape: number[]; data: Float32Array }
/** Any dtype, given as its raw little-endian bytes. */
export interface RawTensor { dtype: string; shape: number[]; bytes: Uint8Array }
export type FixtureTensor = FloatTensor | RawTensor;

/** float32 -> bfloat16 bits, round to nearest even, as torch does (NaN -> 0x7fc0). */
export function f32ToBf16(value: number): number {
  const u = new Uint32Array(new Float32Array([value]).buffer)[0];
  if (Number.isNaN(value)) return 0x7fc0;
  return ((u + 0x7fff + ((u >>> 16) & 1)) >>> 16) & 0xffff;
}

/** bfloat16 bits -> number (exact). */
export function bf16ToF32(bits: number): number {
  return new Float32Array(new Uint32Array([bits << 16]).buffer)[0];
}

/** The nearest bfloat16 value (ties to even). */
export function roundBf16(value: number): number {
  return bf16ToF32(f32ToBf16(value));
}

const numel = (shape: number[]) => shape.reduce((a, b) => a * b, 1);

/** The little-endian bytes a tensor occupies in the file. */
export function tensorBytes(name: string, t: FixtureTensor): Uint8Array {
  if ('bytes' in t) return t.bytes;
  if (t.data.length !== numel(t.shape)) throw new Error(`fixture tensor "${name}": ${t.data.length} values for shape [${t.shape}]`);
  const out = new Uint8Array(t.data.length * (t.dtype === 'F32' ? 4 : 2));
  const dv = new DataView(out.buffer);
  t.data.forEach((v, i) => {
    if (t.dtype === 'F32') dv.setFloat32(4 * i, v, true);
    else dv.setUint16(2 * i, t.dtype === 'F16' ? f32ToF16Bits(v) : f32ToBf16(v), true);
  });
  return out;
}

/** Byte-wise UTF-8 order, as Rust's String Ord (differs from JS's UTF-16 order above U+FFFF). */
function utf8Compare(a: string, b: string): number {
  const x = new TextEncoder().encode(a);
  const y = new TextEncoder().encode(b);
  for (let i = 0; i < Math.min(x.length, y.length); i++) if (x[i] !== y[i]) return x[i] - y[i];
  return x.length - y.length;
}

/** 8-byte little-endian length, header, data: the file, with no checks (for building bad files). */
export function assembleSafetensors(header: string, data: Uint8Array, declaredLength?: number | bigint): Uint8Array {
  const h = new TextEncoder().encode(header);
  const out = new Uint8Array(8 + h.length + data.length);
  new DataView(out.buffer).setBigUint64(0, BigInt(declaredLength ?? h.length), true);
  out.set(h, 8);
  out.set(data, 8 + h.length);
  return out;
}

/** Pads a header with spaces to a multiple of 8 bytes (of UTF-8), as the reference writer does. */
export function padHeader(json: string): string {
  const len = new TextEncoder().encode(json).length;
  return json + ' '.repeat((8 - (len % 8)) % 8);
}

/** A .safetensors file holding `tensors`, byte for byte as the reference library writes it. */
export function writeSafetensors(tensors: Record<string, FixtureTensor>, metadata?: Record<string, string> | null): Uint8Array {
  const names = Object.keys(tensors);
  for (const name of names) {
    const t = tensors[name];
    const bits = BITS.get(t.dtype);
    if (bits === undefined) throw new Error(`fixture tensor "${name}": unknown dtype ${t.dtype}`);
    if ((numel(t.shape) * bits) / 8 !== tensorBytes(name, t).length) throw new Error(`fixture tensor "${name}": byte length does not match ${t.dtype} [${t.shape}]`);
  }
  names.sort((a, b) => RANK.get(tensors[b].dtype)! - RANK.get(tensors[a].dtype)! || utf8Compare(a, b));
  const parts = names.map((name) => tensorBytes(name, tensors[name]));
  let offset = 0;
  const entries = names.map((name, i) => {
    const t = tensors[name];
    const entry = `${JSON.stringify(name)}:{"dtype":${JSON.stringify(t.dtype)},"shape":[${t.shape.join(',')}],"data_offsets":[${offset},${offset + parts[i].length}]}`;
    offset += parts[i].length;
    return entry;
  });
  if (metadata) entries.unshift(`"__metadata__":${JSON.stringify(metadata)}`);
  const data = new Uint8Array(offset);
  let at = 0;
  for (const p of parts) {
    data.set(p, at);
    at += p.length;
  }
  return assembleSafetensors(padHeader(`{${entries.join(',')}}`), data);
}

export interface ShardedFixture {
  /** File name -> bytes, shards and model.safetensors.index.json together (ready for fromMap). */
  files: Record<string, Uint8Array>;
  /** The index as written: {metadata: {total_size}, weight_map}. */
  index: { metadata: { total_size: number }; weight_map: Record<string, string> };
}

/**
 * Splits tensors, in the given order, into `nShards` runs of near-equal count,
 * named and indexed as transformers' save_pretrained does:
 * model-00001-of-0000N.safetensors, and an index with sorted keys, indent 2.
 */
export function shard(tensors: Record<string, FixtureTensor>, nShards: number, metadata: Record<string, string> | null = { format: 'pt' }): ShardedFixture {
  const names = Object.keys(tensors);
  if (!(nShards >= 1 && nShards <= names.length)) throw new Error(`shard: cannot split ${names.length} tensors into ${nShards} non-empty shards`);
  const files: Record<string, Uint8Array> = {};
  const weightMap: Record<string, string> = {};
  let totalSize = 0;
  for (let s = 0; s < nShards; s++) {
    const file = `model-${String(s + 1).padStart(5, '0')}-of-${String(nShards).padStart(5, '0')}.safetensors`;
    const chunk = names.slice(Math.floor((s * names.length) / nShards), Math.floor(((s + 1) * names.length) / nShards));
    const part: Record<string, FixtureTensor> = {};
    for (const name of chunk) {
      part[name] = tensors[name];
      weightMap[name] = file;
      totalSize += tensorBytes(name, tensors[name]).length;
    }
    files[file] = writeSafetensors(part, metadata);
  }
  const sortedMap = Object.fromEntries(Object.keys(weightMap).sort().map((k) => [k, weightMap[k]]));
  const index = { metadata: { total_size: totalSize }, weight_map: sortedMap };
  files['model.safetensors.index.json'] = new TextEncoder().encode(`${JSON.stringify(index, null, 2)}\n`);
  return { files, index };
}
