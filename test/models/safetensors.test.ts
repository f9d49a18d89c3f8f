// The safetensors reader against files written the way the reference library
// writes them (helpers/fixtures.ts), every malformed input it must refuse with
// a clear Error, and a seeded fuzz of byte flips, truncations and header edits.

import { mkdtemp, mkdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openCheckpoint, openSafetensors, type SafetensorsFile } from '../../src/models/loader/safetensors';
import { fromMap, type CheckpointSource } from '../../src/models/loader/source';
import { fromPath } from '../../src/node/folder';
import { f16BitsToF32, roundF16 } from '../../src/runtime/f16';
import { assembleSafetensors, bf16ToF32, f32ToBf16, padHeader, roundBf16, shard, tensorBytes, writeSafetensors, type FixtureTensor } from '../helpers/fixtures';
import { randn, rng } from '../helpers/random';

const FILE = 'model.safetensors';
const open = (bytes: Uint8Array): Promise<SafetensorsFile> => openSafetensors(fromMap({ [FILE]: bytes }), FILE);
const text = (b: Uint8Array) => new TextDecoder().decode(b);
const headerLength = (b: Uint8Array) => Number(new DataView(b.buffer, b.byteOffset).getBigUint64(0, true));
/** Float32 bit patterns, so -0 vs 0 and NaN payloads compare exactly. */
const bitsOf = (a: Float32Array) => new Uint32Array(a.buffer, a.byteOffset, a.length);

/** A small checkpoint with every float dtype, a scalar, an empty tensor and an integer tensor. */
function sampleTensors(seed: number): Record<string, FixtureTensor> {
  return {
    'model.embed.weight': { dtype: 'F32', shape: [3, 5], data: randn(seed, 15) },
    'model.norm.weight': { dtype: 'BF16', shape: [7], data: randn(seed + 1, 7) },
    'lm_head.weight': { dtype: 'F16', shape: [2, 3], data: randn(seed + 2, 6) },
    'model.scale': { dtype: 'F32', shape: [], data: new Float32Array([0.125]) },
    'model.empty': { dtype: 'F16', shape: [0, 4], data: new Float32Array(0) },
    'model.ids': { dtype: 'I32', shape: [4], bytes: new Uint8Array(new Int32Array([1, -2, 3, 2 ** 31 - 1]).buffer) },
  };
}

/** What the reader must return for a float fixture tensor (F16/BF16 rounded to nearest even). */
function expected(t: FixtureTensor): Float32Array {
  if ('bytes' in t) throw new Error('not a float tensor');
  const round = t.dtype === 'F32' ? (x: number) => x : t.dtype === 'F16' ? roundF16 : roundBf16;
  return Float32Array.from(t.data, round);
}

describe('the fixture writer matches the reference library byte for byte', () => {
  it('writes the reference test vectors (tensor.rs test_serialization, forced alignment, empty)', () => {
    const data = new Float32Array([0, 1, 2, 3, 4, 5]);
    // Reference: N = 64, no padding needed, data [0, 24).
    const a = writeSafetensors({ 'attn.0': { dtype: 'F32', shape: [1, 2, 3], data } });
    expect(headerLength(a)).toBe(64);
    expect(text(a.subarray(8, 72))).toBe('{"attn.0":{"dtype":"F32","shape":[1,2,3],"data_offsets":[0,24]}}');
    expect(new Float32Array(a.slice(72).buffer)).toEqual(data);
    // Reference: a shorter name leaves the JSON at 65 bytes: 7 spaces pad it to 72.
    const b = writeSafetensors({ attn0: { dtype: 'F32', shape: [1, 1, 2, 3], data } });
    expect(headerLength(b)).toBe(72);
    expect(text(b.subarray(8, 80))).toBe('{"attn0":{"dtype":"F32","shape":[1,1,2,3],"data_offsets":[0,24]}}       ');
    // Reference: no tensors gives "{}" + 6 spaces; with metadata, "__metadata__" alone + 5 spaces.
    expect([...writeSafetensors({})]).toEqual([8, 0, 0, 0, 0, 0, 0, 0, 123, 125, 32, 32, 32, 32, 32, 32]);
    const m = writeSafetensors({}, { framework: 'pt' });
    expect(headerLength(m)).toBe(40);
    expect(text(m.subarray(8))).toBe('{"__metadata__":{"framework":"pt"}}     ');
  });

  it('orders tensors by dtype (descending enum order), then by name, with metadata first', () => {
    const f = (dtype: 'F32' | 'F16' | 'BF16') => ({ dtype, shape: [1], data: new Float32Array([1]) });
    const bytes = writeSafetensors({ a: f('F16'), d: f('F32'), c: f('BF16'), b: f('F32') }, { format: 'pt' });
    expect(text(bytes.subarray(8, 8 + headerLength(bytes))).trimEnd()).toBe(
      '{"__metadata__":{"format":"pt"},"b":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"d":{"dtype":"F32","shape":[1],"data_offsets":[4,8]},' +
        '"c":{"dtype":"BF16","shape":[1],"data_offsets":[8,10]},"a":{"dtype":"F16","shape":[1],"data_offsets":[10,12]}}',
    );
    expect(headerLength(bytes) % 8).toBe(0);
  });

  it('rounds to bfloat16 to nearest even, as torch does', () => {
    expect(f32ToBf16(1)).toBe(0x3f80);
    expect(roundBf16(1 + 2 ** -8)).toBe(1); // tie: down to the even mantissa
    expect(roundBf16(1 + 3 * 2 ** -8)).toBe(1 + 2 ** -6); // tie: up to the even mantissa
    expect(roundBf16(1 + 2 ** -8 + 2 ** -20)).toBe(1 + 2 ** -7); // above the tie
    expect(roundBf16((2 - 2 ** -8) * 2 ** 127)).toBe(Infinity); // tie between the largest bf16 (odd) and overflow
    expect(f32ToBf16(NaN)).toBe(0x7fc0);
    expect(bf16ToF32(0xc040)).toBe(-3);
  });
});

describe('reading tensors back', () => {
  it('round-trips F32 exactly and exposes names, infos and metadata', async () => {
    const tensors = sampleTensors(11);
    const file = await open(writeSafetensors(tensors, { format: 'pt' }));
    expect(file.metadata).toEqual({ format: 'pt' });
    // Data order = the writer's order: F32 names first, then I32, BF16, F16.
    expect(file.names).toEqual(['model.embed.weight', 'model.scale', 'model.ids', 'model.norm.weight', 'lm_head.weight', 'model.empty']);
    expect(file.info('model.embed.weight')).toEqual({ dtype: 'F32', shape: [3, 5], byteLength: 60, dataOffsets: [0, 60] });
    expect(file.info('model.empty')).toEqual({ dtype: 'F16', shape: [0, 4], byteLength: 0, dataOffsets: [106, 106] });
    expect(bitsOf(await file.readF32('model.embed.weight'))).toEqual(bitsOf(expected(tensors['model.embed.weight'])));
    expect(await file.readF32('model.scale')).toEqual(new Float32Array([0.125]));
    expect(await file.readF32('model.empty')).toEqual(new Float32Array(0));
    expect(await file.readBytes('model.ids')).toEqual(tensorBytes('model.ids', tensors['model.ids']));
    expect((await open(writeSafetensors(tensors))).metadata).toBeNull();
  });

  it('reads F16 and BF16 values that are exactly representable without change', async () => {
    const f16 = [0, -0, 1, -2, 0.5, 65504, -65504, 2 ** -14, 2 ** -24, 3 * 2 ** -24, 1023 * 2 ** -24, 1 + 2 ** -10, Infinity, -Infinity];
    const bf16 = [0, -0, 1, -1.5, 3.140625, 2 ** -126, 2 ** -133, (2 - 2 ** -7) * 2 ** 127, -Infinity, 1 + 2 ** -7];
    const file = await open(
      writeSafetensors({
        h: { dtype: 'F16', shape: [f16.length], data: new Float32Array(f16) },
        b: { dtype: 'BF16', shape: [bf16.length], data: new Float32Array(bf16) },
        n: { dtype: 'F16', shape: [1], data: new Float32Array([NaN]) },
        m: { dtype: 'BF16', shape: [1], data: new Float32Array([NaN]) },
      }),
    );
    expect(bitsOf(await file.readF32('h'))).toEqual(bitsOf(new Float32Array(f16)));
    expect(bitsOf(await file.readF32('b'))).toEqual(bitsOf(new Float32Array(bf16)));
    expect((await file.readF32('n'))[0]).toBeNaN();
    expect((await file.readF32('m'))[0]).toBeNaN();
  });

  it('reads rounded F16 and BF16 values as the nearest-even value, within half an ulp', async () => {
    // Hand-checked ties and edges: binary16 has 11 significant bits, bfloat16 8.
    const f16In = [1 + 2 ** -11, 1 + 3 * 2 ** -11, 65520, 65519, 2 ** -25, 3 * 2 ** -26, -(1 + 2 ** -11 + 2 ** -20)];
    const f16Out = [1, 1 + 2 ** -9, Infinity, 65504, 0, 2 ** -24, -(1 + 2 ** -10)];
    const bfIn = [1 + 2 ** -8, 1 + 3 * 2 ** -8, -(1 + 2 ** -8 + 2 ** -20)];
    const bfOut = [1, 1 + 2 ** -6, -(1 + 2 ** -7)];
    const x = randn(21, 300, 3);
    const file = await open(
      writeSafetensors({
        h: { dtype: 'F16', shape: [f16In.length], data: new Float32Array(f16In) },
        b: { dtype: 'BF16', shape: [bfIn.length], data: new Float32Array(bfIn) },
        rh: { dtype: 'F16', shape: [10, 30], data: x },
        rb: { dtype: 'BF16', shape: [300], data: x },
      }),
    );
    expect(Array.from(await file.readF32('h'))).toEqual(f16Out);
    expect(Array.from(await file.readF32('b'))).toEqual(bfOut);
    const rh = await file.readF32('rh');
    const rb = await file.readF32('rb');
    for (let i = 0; i < x.length; i++) {
      // Relative error bound of round-to-nearest: 2^-11 for binary16 (normal range; |x| < 12 here), 2^-8 for bfloat16.
      expect(Math.abs(rh[i] - x[i])).toBeLessThanOrEqual(Math.max(Math.abs(x[i]) * 2 ** -11, 2 ** -25));
      expect(Math.abs(rb[i] - x[i])).toBeLessThanOrEqual(Math.abs(x[i]) * 2 ** -8);
    }
    expect(rh).toEqual(Float32Array.from(x, roundF16));
    expect(rb).toEqual(Float32Array.from(x, roundBf16));
  });

  it('converts every one of the 65536 F16 and BF16 bit patterns exactly', async () => {
    const all = Uint16Array.from({ length: 65536 }, (_, i) => i);
    const bytes = new Uint8Array(all.buffer);
    const file = await open(writeSafetensors({ h: { dtype: 'F16', shape: [65536], bytes }, b: { dtype: 'BF16', shape: [256, 256], bytes } }));
    const h = await file.readF32('h');
    const b = bitsOf(await file.readF32('b'));
    for (let i = 0; i < 65536; i++) {
      const want = f16BitsToF32(i); // src/runtime/f16.ts: an independent arithmetic decoder
      if (Number.isNaN(want)) expect(h[i], `f16 ${i}`).toBeNaN();
      else if (!Object.is(h[i], want)) expect(h[i], `f16 0x${i.toString(16)}`).toBe(want);
      if (b[i] !== (i << 16) >>> 0) expect(b[i], `bf16 0x${i.toString(16)}`).toBe((i << 16) >>> 0); // bf16 is the top half of f32
    }
    expect(bitsOf(h.subarray(0x7c01, 0x7c02))[0]).toBe(0x7f802000); // NaN payloads are kept, as hardware does
  });

  it('parses integer dtypes but refuses to convert them', async () => {
    const ids = new Uint8Array(new BigInt64Array([1n, -5n]).buffer);
    const file = await open(
      writeSafetensors({
        ids: { dtype: 'I64', shape: [2], bytes: ids },
        mask: { dtype: 'BOOL', shape: [3], bytes: new Uint8Array([1, 0, 1]) },
        q: { dtype: 'F4', shape: [2, 2], bytes: new Uint8Array([0x12, 0x34]) },
      }),
    );
    expect(file.info('ids')).toMatchObject({ dtype: 'I64', shape: [2], byteLength: 16 });
    expect(file.info('q').byteLength).toBe(2);
    expect(await file.readBytes('ids')).toEqual(ids);
    await expect(file.readF32('ids')).rejects.toThrow(/unsupported dtype I64 for tensor "ids" in file "model\.safetensors"/);
    await expect(file.readF32('mask')).rejects.toThrow(/unsupported dtype BOOL for tensor "mask"/);
    expect(() => file.info('nope')).toThrow(/no tensor "nope" in safetensors file "model\.safetensors"/);
  });

  it('reads only the header on open, and only the tensor\'s byte range on readF32', async () => {
    const tensors = sampleTensors(31);
    const bytes = writeSafetensors(tensors, { format: 'pt' });
    const reads: [number, number][] = [];
    const inner = fromMap({ [FILE]: bytes });
    const counting: CheckpointSource = { ...inner, read: (name, s, e) => (reads.push([s, e]), inner.read(name, s, e)) };
    const file = await openSafetensors(counting, FILE);
    const n = headerLength(bytes);
    expect(reads).toEqual([[0, 8], [8, 8 + n]]);
    reads.length = 0;
    const [begin, end] = file.info('model.norm.weight').dataOffsets;
    expect(bitsOf(await file.readF32('model.norm.weight'))).toEqual(bitsOf(expected(tensors['model.norm.weight'])));
    expect(reads).toEqual([[8 + n + begin, 8 + n + end]]);
    expect(end - begin).toBe(14);
  });
});

describe('checkpoints: one file or shards, in memory and on disk', () => {
  const tensors = sampleTensors(41);
  const floatNames = Object.keys(tensors).filter((k) => !('bytes' in tensors[k]));
  let dir = '';

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'tessera-safetensors-'));
    await mkdir(join(dir, 'single'));
    await writeFile(join(dir, 'single', FILE), writeSafetensors(tensors, { format: 'pt' }));
    await writeFile(join(dir, 'single', 'config.json'), '{}');
    await mkdir(join(dir, 'sharded'));
    for (const [name, data] of Object.entries(shard(tensors, 3).files)) await writeFile(join(dir, 'sharded', name), data);
  });
  afterAll(async () => {
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  async function checkAll(ckpt: Awaited<ReturnType<typeof openCheckpoint>>) {
    expect([...ckpt.names].sort()).toEqual(Object.keys(tensors).sort());
    for (const name of floatNames) expect(bitsOf(await ckpt.readF32(name)), name).toEqual(bitsOf(expected(tensors[name])));
    expect(await ckpt.readBytes('model.ids')).toEqual(tensorBytes('model.ids', tensors['model.ids']));
    expect(ckpt.has('model.ids')).toBe(true);
    expect(ckpt.has('nope')).toBe(false);
    expect(() => ckpt.info('nope')).toThrow(/no tensor "nope" in the checkpoint/);
  }

  it('opens a single file from a map and from a path', async () => {
    const mem = await openCheckpoint({ [FILE]: writeSafetensors(tensors), 'config.json': new Uint8Array(2) });
    expect(mem.files).toEqual([FILE]);
    await checkAll(mem);
    const disk = await openCheckpoint(join(dir, 'single'));
    expect(disk.source.describe).toContain('single');
    await checkAll(disk);
  });

  it('opens shards through the index, from a map and from a path', async () => {
    const { files, index } = shard(tensors, 3);
    const names = ['model-00001-of-00003.safetensors', 'model-00002-of-00003.safetensors', 'model-00003-of-00003.safetensors'];
    expect(Object.keys(files).sort()).toEqual([...names, 'model.safetensors.index.json']);
    const mem = await openCheckpoint(files);
    expect(mem.files).toEqual(names);
    for (const name of Object.keys(tensors)) expect(mem.info(name).file).toBe(index.weight_map[name]);
    await checkAll(mem);
    const disk = await openCheckpoint(join(dir, 'sharded'));
    expect(disk.files).toEqual(names);
    await checkAll(disk);
  });

  it('prefers model.safetensors when both it and an index exist (as transformers does)', async () => {
    const ckpt = await openCheckpoint({ ...shard(tensors, 2).files, [FILE]: writeSafetensors(tensors) });
    expect(ckpt.files).toEqual([FILE]);
  });

  const enc = (x: unknown) => new TextEncoder().encode(JSON.stringify(x));
  const one = (v: number) => ({ dtype: 'F32' as const, shape: [1], data: new Float32Array([v]) });

  it('refuses inconsistent shard indexes with clear errors', async () => {
    const a = writeSafetensors({ x: one(1), y: one(2) });
    const b = writeSafetensors({ z: one(3) });
    const files = { 'model-00001-of-00002.safetensors': a, 'model-00002-of-00002.safetensors': b };
    const good = { 'x': 'model-00001-of-00002.safetensors', 'y': 'model-00001-of-00002.safetensors', 'z': 'model-00002-of-00002.safetensors' };
    const withIndex = (weight_map: unknown, extra: Record<string, Uint8Array> = {}) =>
      openCheckpoint({ ...files, ...extra, 'model.safetensors.index.json': enc({ metadata: {}, weight_map }) });
    expect((await withIndex(good)).names).toEqual(['x', 'y', 'z']);
    await expect(withIndex({ ...good, ghost: 'model-00002-of-00002.safetensors' })).rejects.toThrow(/maps tensor "ghost" to shard "model-00002-of-00002\.safetensors", but no shard holds it/);
    await expect(withIndex({ ...good, y: 'model-00002-of-00002.safetensors' })).rejects.toThrow(/maps tensor "y" to shard "model-00002-of-00002\.safetensors", but it is in "model-00001-of-00002\.safetensors"/);
    await expect(withIndex({ x: good.x, z: good.z })).rejects.toThrow(/shard "model-00001-of-00002\.safetensors" holds tensor "y", which model\.safetensors\.index\.json in in-memory files does not list/);
    await expect(withIndex({ x: good.x, y: good.y })).rejects.toThrow(/model\.safetensors\.index\.json in in-memory files does not reference shard "model-00002-of-00002\.safetensors", which is in that folder/);
    await expect(withIndex({ ...good, w: 'model-00003-of-00003.safetensors' })).rejects.toThrow(/maps tensors \(e\.g\. "w"\) to shard "model-00003-of-00003\.safetensors", which is not in in-memory files/);
    const twice = writeSafetensors({ y: one(5) });
    await expect(withIndex({ ...good, q: 'model-00003-of-00003.safetensors' }, { 'model-00003-of-00003.safetensors': twice })).rejects.toThrow(/tensor "y" is in two shards, "model-00001-of-00002\.safetensors" and "model-00003-of-00003\.safetensors"/);
    await expect(withIndex({ x: '../model-00001-of-00002.safetensors' })).rejects.toThrow(/maps tensor "x" to "\.\.\/model-00001-of-00002\.safetensors", which is not a \.safetensors file name/);
    await expect(withIndex({ x: 7 })).rejects.toThrow(/maps tensor "x" to 7/);
    await expect(openCheckpoint({ ...files, 'model.safetensors.index.json': enc({ metadata: {} }) })).rejects.toThrow(/model\.safetensors\.index\.json in in-memory files has no "weight_map" object/);
    await expect(openCheckpoint({ ...files, 'model.safetensors.index.json': new TextEncoder().encode('{"weight_map": ') })).rejects.toThrow(/model\.safetensors\.index\.json in in-memory files is not valid JSON/);
    // A broken shard is reported with its own name.
    const broken = { ...files, 'model-00002-of-00002.safetensors': b.subarray(0, b.length - 1) };
    await expect(openCheckpoint({ ...broken, 'model.safetensors.index.json': enc({ weight_map: good }) })).rejects.toThrow(/safetensors file "model-00002-of-00002\.safetensors" in in-memory files: data_offsets of tensor "z" \[0, 4\] run past the data region \(3 bytes\)/);
  });

  it('says what the folder holds when it has no safetensors checkpoint', async () => {
    await expect(openCheckpoint({ 'config.json': new Uint8Array(2), 'tokenizer.json': new Uint8Array(4) })).rejects.toThrow(
      /no model\.safetensors or model\.safetensors\.index\.json in in-memory files \(it holds: config\.json, tokenizer\.json\)/,
    );
    await expect(openCheckpoint({ 'config.json': new Uint8Array(2), 'pytorch_model.bin': new Uint8Array(4) })).rejects.toThrow(
      /in-memory files holds pytorch_model\.bin \(PyTorch pickle\), which Tessera does not read: convert it to model\.safetensors/,
    );
    await expect(openCheckpoint(join(dir, 'does-not-exist'))).rejects.toThrow(/folder ".*does-not-exist" does not exist/);
  });
});

describe('malformed files are refused with an Error naming the file and the problem', () => {
  const data16 = new Uint8Array(16);
  /** A file whose header is `header` (an object is JSON-encoded and padded), followed by `data`. */
  const file = (header: unknown, data = data16, declared?: number | bigint) =>
    assembleSafetensors(typeof header === 'string' ? header : padHeader(JSON.stringify(header)), data, declared);
  const refuse = (bytes: Uint8Array, message: RegExp) => expect(open(bytes)).rejects.toThrow(message);
  const f32 = (shape: unknown, offsets: unknown) => ({ dtype: 'F32', shape, data_offsets: offsets });

  it('checks the 8-byte length and the header bounds', async () => {
    await refuse(new Uint8Array(5), /safetensors file "model\.safetensors" in in-memory files: the file is 5 bytes, too short/);
    await refuse(new Uint8Array(0), /the file is 0 bytes, too short/);
    await refuse(file('{}', data16, 1000), /header length 1000 runs past the end of the file \(26 bytes\)/);
    await refuse(file('{}', data16, 2n ** 63n), /header length 9223372036854775808 exceeds the 100000000-byte limit/);
    await refuse(file('{}', data16, 100_000_001), /exceeds the 100000000-byte limit/);
    await refuse(file('', new Uint8Array(0)), /the header is not valid JSON/); // N = 0
    await expect(openSafetensors(fromMap({}), 'model-00001-of-00002.safetensors')).rejects.toThrow(/file "model-00001-of-00002\.safetensors" not found in in-memory files/);
  });

  it('checks that the header is a UTF-8 JSON object', async () => {
    const withHeader = (h: number[]) => {
      const out = new Uint8Array(8 + h.length);
      new DataView(out.buffer).setBigUint64(0, BigInt(h.length), true);
      out.set(h, 8);
      return out;
    };
    await refuse(withHeader([0x7b, 0x22, 0xff, 0x22, 0x3a, 0x31, 0x7d]), /the header is not valid UTF-8/);
    await refuse(withHeader([0xef, 0xbb, 0xbf, 0x7b, 0x7d, 0x20, 0x20, 0x20]), /not valid JSON/); // a leading BOM is refused, as serde_json does
    await refuse(file('{"w": {"dtype": "F32",'), /the header is not valid JSON/);
    await refuse(file('[]      '), /the header must be a JSON object, got an array/);
    await refuse(file('null    '), /must be a JSON object, got null/);
    await refuse(file('"x"     '), /must be a JSON object, got string "x"/);
    await refuse(file({ w: 3 }), /the entry of tensor "w" must be an object, got number 3/);
    await refuse(file({ __metadata__: { format: 1 } }, new Uint8Array(0)), /"__metadata__" must be an object of strings, but "format" is number 1/);
    await refuse(file({ __metadata__: 'pt' }, new Uint8Array(0)), /"__metadata__" must be an object of strings, got string/);
  });

  it('accepts what the reference accepts: whitespace around the JSON, null metadata, unknown entry fields', async () => {
    const ok = await open(file(' \n{"w": {"dtype": "F32", "shape": [4], "data_offsets": [0, 16], "extra": 1}, "__metadata__": null}\t\r\n '));
    expect(ok.names).toEqual(['w']);
    expect(ok.metadata).toBeNull();
    expect((await open(file({}, new Uint8Array(0)))).names).toEqual([]);
  });

  it('checks dtypes and shapes', async () => {
    await refuse(file({ w: { dtype: 'F31', shape: [4], data_offsets: [0, 16] } }), /unknown dtype "F31" for tensor "w"/);
    await refuse(file({ w: { dtype: 'f32', shape: [4], data_offsets: [0, 16] } }), /unknown dtype "f32" for tensor "w"/);
    await refuse(file({ w: { dtype: 'toString', shape: [4], data_offsets: [0, 16] } }), /unknown dtype "toString"/);
    await refuse(file({ w: { shape: [4], data_offsets: [0, 16] } }), /unknown dtype undefined for tensor "w"/);
    for (const shape of [[-4], [1.5, 2], ['4'], 4, null, [4, null]]) {
      await refuse(file({ w: f32(shape, [0, 16]) }), /the shape of tensor "w" must be an array of non-negative integers/);
    }
    await refuse(file({ w: f32([2 ** 40, 2 ** 40], [0, 16]) }), /the shape of tensor "w" \[1099511627776, 1099511627776\] has too many elements/);
    await refuse(file({ w: { dtype: 'F4', shape: [3], data_offsets: [0, 16] } }), /tensor "w" \(F4 \[3\]\) does not fill a whole number of bytes/);
  });

  it('checks data offsets against the data region, the shape and each other', async () => {
    await refuse(file({ w: f32([100], [0, 400]) }), /data_offsets of tensor "w" \[0, 400\] run past the data region \(16 bytes\)/);
    await refuse(file({ w: f32([1], [8, 4]) }), /data_offsets of tensor "w" begin after they end: \[8, 4\]/);
    for (const offsets of [[0], [0, 16, 16], [-4, 12], [0, 1e20], [0.5, 16], '0,16', undefined]) {
      await refuse(file({ w: f32([4], offsets) }), /data_offsets of tensor "w" must be two non-negative integers/);
    }
    await refuse(file({ w: f32([3], [0, 16]) }), /tensor "w" is F32 \[3\], which takes 12 bytes, but its data_offsets \[0, 16\] span 16/);
    await refuse(file({ w: { dtype: 'BF16', shape: [2, 2], data_offsets: [0, 16] } }), /tensor "w" is BF16 \[2, 2\], which takes 8 bytes/);
    const d24 = new Uint8Array(24);
    await refuse(file({ a: f32([4], [0, 16]), b: f32([4], [8, 24]) }, d24), /tensors "a" \[0, 16\) and "b" \[8, 24\) overlap/);
    await refuse(file({ a: f32([4], [0, 16]), b: f32([4], [0, 16]) }, data16), /tensors "a" \[0, 16\) and "b" \[0, 16\) overlap/);
    await refuse(file({ a: f32([2], [0, 8]), b: f32([3], [12, 24]) }, d24), /bytes \[8, 12\) of the data region, after tensor "a", belong to no tensor \(before "b"\)/);
    await refuse(file({ b: f32([2], [8, 16]) }), /bytes \[0, 8\) of the data region, at its start, belong to no tensor/);
    await refuse(file({ a: f32([4], [0, 16]) }, new Uint8Array(20)), /the data region is 20 bytes but its tensors end at byte 16: 4 trailing bytes belong to no tensor/);
    await refuse(file({}, new Uint8Array(3)), /3 trailing bytes belong to no tensor/);
  });

  it('says which file failed when a source returns a short read', async () => {
    const inner = fromMap({ [FILE]: writeSafetensors(sampleTensors(3)) });
    const f = await openSafetensors({ ...inner, read: async (n, s, e) => (s === 0 || s === 8 ? inner.read(n, s, e) : new Uint8Array(1)) }, FILE);
    await expect(f.readF32('model.embed.weight')).rejects.toThrow(/reading tensor "model\.embed\.weight" in safetensors file "model\.safetensors" \(in-memory files\): got 1 bytes, expected 60/);
  });
});

describe('fuzz: corrupted files either open consistently or throw a clear Error', () => {
  const BITS: Record<string, number> = { F32: 32, F16: 16, BF16: 16, I32: 32, I64: 64, U8: 8, BOOL: 8, F64: 64, F4: 4, I8: 8, U16: 16 };
  const tensors = sampleTensors(51);
  const original = writeSafetensors(tensors, { format: 'pt' });
  const n0 = headerLength(original);
  const start0 = 8 + n0;

  /** Independent checks of an accepted file against its own bytes. */
  async function checkAccepted(bytes: Uint8Array, f: SafetensorsFile): Promise<void> {
    const n = headerLength(bytes);
    expect(f.dataStart).toBe(8 + n);
    const header = JSON.parse(text(bytes.subarray(8, 8 + n)));
    expect([...f.names].sort()).toEqual(Object.keys(header).filter((k) => k !== '__metadata__').sort());
    const infos = f.names.map((name) => ({ name, ...f.info(name) })).sort((a, b) => a.dataOffsets[0] - b.dataOffsets[0] || a.dataOffsets[1] - b.dataOffsets[1]);
    let pos = 0;
    for (const t of infos) {
      expect(t.dataOffsets[0], `${t.name} starts where the previous ended`).toBe(pos);
      pos = t.dataOffsets[1];
      const numel = t.shape.reduce((a, b) => a * b, 1);
      expect(t.byteLength).toBe(pos - t.dataOffsets[0]);
      if (BITS[t.dtype] !== undefined) expect(t.byteLength * 8).toBe(numel * BITS[t.dtype]);
      const raw = bytes.subarray(8 + n + t.dataOffsets[0], 8 + n + pos);
      expect(await f.readBytes(t.name)).toEqual(raw);
      if (t.dtype === 'F32' || t.dtype === 'F16' || t.dtype === 'BF16') {
        const got = await f.readF32(t.name);
        expect(got.length).toBe(numel);
        const dv = new DataView(raw.buffer, raw.byteOffset, raw.byteLength);
        for (let i = 0; i < numel; i++) {
          const want = t.dtype === 'F32' ? dv.getFloat32(4 * i, true) : t.dtype === 'F16' ? f16BitsToF32(dv.getUint16(2 * i, true)) : bf16ToF32(dv.getUint16(2 * i, true));
          if (!(Object.is(got[i], want) || (Number.isNaN(got[i]) && Number.isNaN(want)))) expect(got[i], `${t.name}[${i}]`).toBe(want);
        }
      } else {
        await expect(f.readF32(t.name)).rejects.toThrow(/unsupported dtype/);
      }
    }
    expect(pos, 'the tensors cover the data region').toBe(bytes.length - 8 - n);
  }

  type Mutation = { bytes: Uint8Array; kind: string; mustFail: boolean; dataOnly: boolean };

  function mutate(seed: number): Mutation {
    const u = rng(seed);
    const int = (k: number) => Math.floor(u() * k);
    const bytes = original.slice();
    const choice = int(7);
    if (choice === 0 || choice === 1) {
      // Flip one byte: half the time in the length + header, else anywhere.
      const p = choice === 0 ? int(start0) : int(bytes.length);
      bytes[p] ^= 1 + int(255);
      return { bytes, kind: `flip byte ${p}`, mustFail: p < 8, dataOnly: p >= start0 }; // any other N misplaces the data region
    }
    if (choice === 2) {
      const len = int(bytes.length);
      return { bytes: bytes.slice(0, len), kind: `truncate to ${len}`, mustFail: true, dataOnly: false };
    }
    if (choice === 3) {
      const extra = Uint8Array.from({ length: 1 + int(16) }, () => int(256));
      const out = new Uint8Array(bytes.length + extra.length);
      out.set(bytes);
      out.set(extra, bytes.length);
      return { bytes: out, kind: `append ${extra.length}`, mustFail: true, dataOnly: false };
    }
    if (choice === 4) {
      const delta = int(2) ? 1 + int(24) : -(1 + int(24));
      new DataView(bytes.buffer).setBigUint64(0, BigInt(n0 + delta), true);
      return { bytes, kind: `header length ${delta > 0 ? '+' : ''}${delta}`, mustFail: true, dataOnly: false };
    }
    if (choice === 5) {
      // Replace one header character with a JSON-significant one.
      const chars = '{}[]":, 0123456789-.eE\\ntruefalsnul';
      const p = 8 + int(n0);
      bytes[p] = chars.charCodeAt(int(chars.length));
      return { bytes, kind: `header char ${p}`, mustFail: false, dataOnly: false };
    }
    // Edit the parsed header, re-serialize (padded or not), keep the data.
    const header = JSON.parse(text(original.subarray(8, start0)));
    const names = Object.keys(header).filter((k) => k !== '__metadata__');
    const name = names[int(names.length)];
    const entry = header[name];
    const values: unknown[] = [-1, 0, 1, 2, 3, 4, 7, 8, 16, 1.5, '2', null, [], 2 ** 53, 1e300];
    const pick = <T>(xs: T[]): T => xs[int(xs.length)];
    const edit = int(9);
    if (edit === 0) entry.dtype = pick(['F32', 'F16', 'BF16', 'I32', 'I64', 'U8', 'BOOL', 'F64', 'F4', 'f32', 'Q4', '', 3]);
    else if (edit === 1 && entry.shape.length) entry.shape[int(entry.shape.length)] = pick(values);
    else if (edit === 2) entry.shape = int(2) ? [...entry.shape, pick([1, 2, 0])] : entry.shape.slice(1);
    else if (edit === 3) entry.data_offsets[int(2)] += pick([-8, -4, -2, -1, 1, 2, 4, 8]);
    else if (edit === 4) entry.data_offsets = pick([[entry.data_offsets[1], entry.data_offsets[0]], [entry.data_offsets[0]], pick(values)]);
    else if (edit === 5) delete header[name];
    else if (edit === 6) header[`${name}.copy`] = { ...entry };
    else if (edit === 7) header.__metadata__ = pick([{ format: 1 }, 'pt', null, { a: 'b' }, []]);
    else header[name] = pick(values);
    const json = JSON.stringify(header);
    const out = assembleSafetensors(int(2) ? padHeader(json) : json, original.subarray(start0));
    return { bytes: out, kind: `header edit ${edit} on ${name}`, mustFail: false, dataOnly: false };
  }

  it('600 seeded cases', async () => {
    const outcomes = { accepted: 0, acceptedHeaderChanges: 0, rejected: 0 };
    for (let seed = 1; seed <= 600; seed++) {
      const m = mutate(seed * 7919);
      const what = `case ${seed} (${m.kind})`;
      let f: SafetensorsFile | undefined;
      try {
        f = await open(m.bytes);
      } catch (e) {
        outcomes.rejected++;
        // A clear Error of ours: never a TypeError/RangeError/SyntaxError escaping from inside.
        expect((e as Error).constructor, `${what}: ${(e as Error).stack}`).toBe(Error);
        expect((e as Error).message, what).toContain('"model.safetensors"');
        expect(m.dataOnly, `${what} touched only data, yet: ${(e as Error).message}`).toBe(false);
        continue;
      }
      outcomes.accepted++;
      if (!m.dataOnly && m.bytes.length === original.length && m.bytes.some((b, i) => b !== original[i])) outcomes.acceptedHeaderChanges++;
      expect(m.mustFail, `${what} was accepted`).toBe(false);
      await checkAccepted(m.bytes, f);
      if (m.dataOnly) {
        // The header is untouched: same tensors, and every tensor away from the flip reads back exactly.
        expect(f.names).toEqual((await open(original)).names);
        const flipped = m.bytes.findIndex((b, i) => b !== original[i]) - start0;
        for (const name of f.names) {
          const t = tensors[name];
          const [begin, end] = f.info(name).dataOffsets;
          if ('bytes' in t || (flipped >= begin && flipped < end)) continue;
          expect(bitsOf(await f.readF32(name)), `${what}: ${name}`).toEqual(bitsOf(expected(t)));
        }
      }
    }
    // Both outcomes must occur, or the fuzz is not exercising anything.
    expect(outcomes.accepted).toBeGreaterThan(40);
    expect(outcomes.acceptedHeaderChanges).toBeGreaterThan(10); // edits that keep a valid header (renames, same-size dtypes)
    expect(outcomes.rejected).toBeGreaterThan(200);
  });
});
