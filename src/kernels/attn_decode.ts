import { defineKernel } from './kernel';
import { lib } from './lib';
import source from './attn_decode.wgsl?raw';
import combineSource from './attn_decode_combine.wgsl?raw';
import { Params, type Recorder } from '../runtime/recorder';
import { fmtShape, type Tensor } from '../runtime/tensor';
import { expectActivation, expectShape, expectCaches } from './checks';
import { attnDecodeThreadPasses, type DecodeStep } from './attn_decode_threads';
import { attentionForm } from './tunings';

// Two passes of one op: the split-K pass, and the merge of its partials.
const kernel = defineKernel({ name: 'attn_decode', source, libs: [lib.attentionTile] });
const combine = defineKernel({ name: 'attn_decode_combine', source: combineSource });

const WG = 128;
const COMBINE_WG = 64;
/**
 * Keys per chunk of the split-K pass. 128 keeps a long context busy
 * (32k keys × 8 KV heads = 2048 workgroups) while the partials stay small
 * next to the cache (Dh + 2 floats per head and chunk, vs 2 × 128 × Dh for its keys).
 */
export const ATTN_DECODE_CHUNK = 128;
/** Largest head dim supported (the tile must fit in workgroup memory). */
export const ATTN_DECODE_MAX_HEAD_DIM = 256;
const ROWS_PER_THREAD_MAX = 8; // RPT_MAX, RS_MAX in the shader
const HEADS_PER_GROUP_MAX = 16;
const KEY_TILES = [32, 16, 8]; // each divides ATTN_DECODE_CHUNK and WG

export interface AttnDecodeOptions {
  /** Valid keys in the cache, including the new one: the query sees keys 0 .. len-1. */
  len: number;
  /** Score scale; default 1 / sqrt(Dh). */
  scale?: number;
}

/** Floats per record of the partials workspace: o (Dh), m, l, then the thread form's scores of the chunk's keys. */
const recordFloats = (Dh: number) => Dh + 2 + ATTN_DECODE_CHUNK;

/**
 * Shape of the f32 partials workspace attnDecode needs for a cache of maxT
 * rows: (H, chunks, Dh + 2 + ATTN_DECODE_CHUNK), a record [o, m, l, scores]
 * per head and chunk. The model allocates it once (it can serve every layer);
 * a decode step allocates nothing.
 */
export function attnDecodeScratchShape(maxT: number, H: number, Dh: number): [number, number, number] {
  return [H, Math.ceil(maxT / ATTN_DECODE_CHUNK), recordFloats(Dh)];
}

/** Throws for a head dim attn_decode does not support (both forms: the thread form could take more, but a model must run on every adapter). */
function expectHeadDim(Dh: number): void {
  if (!(Number.isInteger(Dh) && Dh > 0 && Dh % 4 === 0 && Dh <= ATTN_DECODE_MAX_HEAD_DIM)) {
    throw new Error(`attn_decode: head dim Dh = ${Dh} is not supported: it must be a multiple of 4, at most ${ATTN_DECODE_MAX_HEAD_DIM}`);
  }
}

/** Workgroup memory of a configuration (bytes), as the shader declares it. */
function tileBytes(GB: number, BK: number, Dh: number): number {
  const DH4 = Dh / 4;
  return 16 * (GB * DH4 + Math.max(BK * (DH4 + 1), WG)) + 4 * (GB * BK + 2 * GB);
}

/**
 * How attn_decode splits the work for G query heads per KV head: GB heads per
 * workgroup (in `groups` workgroups per KV head) and BK keys per tile. Heads
 * first (each group re-reads the cache), then the largest key tile that fits
 * the workgroup memory limit (bytes). Throws for an unsupported Dh.
 */
export function attnDecodeConfig(G: number, Dh: number, workgroupBytes: number): { GB: number; groups: number; BK: number } {
  expectHeadDim(Dh);
  const DH4 = Dh / 4;
  for (let cap = Math.min(G, HEADS_PER_GROUP_MAX); cap >= 1; cap--) {
    const groups = Math.ceil(G / cap);
    const GB = Math.ceil(G / groups); // balance the groups: 18 heads go 9 + 9, not 16 + 2
    const TR = Math.min(GB, Math.floor(WG / DH4));
    for (const BK of KEY_TILES) {
      const fits = Math.ceil(GB / TR) <= ROWS_PER_THREAD_MAX && Math.ceil(GB / (WG / BK)) <= ROWS_PER_THREAD_MAX;
      if (fits && tileBytes(GB, BK, Dh) <= workgroupBytes) return { GB, groups, BK };
    }
  }
  throw new Error(`attn_decode: no tile for head dim Dh = ${Dh} fits in ${workgroupBytes} bytes of workgroup memory`);
}

/**
 * Attention of one new query per head against the KV cache, split-K over
 * chunks of ATTN_DECODE_CHUNK keys (flash-decoding), then an exact
 * log-sum-exp merge (a second dispatch, skipped when len fits one chunk).
 * q (1, H, Dh) or (H, Dh); kCache, vCache (maxT, Hkv, Dh) with rows
 * 0 .. len-1 written; out shaped as q; scratch f32 of
 * attnDecodeScratchShape(maxT, H, Dh) (or more chunks), owned by the caller.
 * Query head h reads KV head floor(h / (H / Hkv)). Dh: a multiple of 4, at most 256.
 * Each chunk is reduced by a workgroup (attnDecodeWorkgroups) or by threads
 * with no barrier (attnDecodeThreads), as tunings.ts chooses for the adapter.
 */
export function attnDecode(rec: Recorder, q: Tensor, kCache: Tensor, vCache: Tensor, out: Tensor, opts: AttnDecodeOptions, scratch: Tensor): void {
  if (attentionForm(rec.gpu.report) === 'thread') attnDecodeThreads(rec, q, kCache, vCache, out, opts, scratch);
  else attnDecodeWorkgroups(rec, q, kCache, vCache, out, opts, scratch);
}

/** attnDecode with a workgroup per chunk and group of query heads: keys in tiles through workgroup memory (attn_decode.wgsl). */
export function attnDecodeWorkgroups(rec: Recorder, q: Tensor, kCache: Tensor, vCache: Tensor, out: Tensor, opts: AttnDecodeOptions, scratch: Tensor): void {
  const s = checkStep(kernel.name, q, kCache, vCache, out, opts, scratch);
  const G = s.H / s.Hkv;
  const { GB, groups, BK } = attnDecodeConfig(G, s.Dh, rec.gpu.device.limits.maxComputeWorkgroupStorageSize);
  const params = new Params(10).u32(s.H).u32(s.Hkv).u32(G).u32(groups).u32(s.len).u32(s.chunk).u32(s.nchunks).u32(s.slots).u32(s.stride).f32(s.scale2).buffer;
  kernel.dispatch(rec, { type: s.type, overrides: { WG, GB, BK, DH: s.Dh } }, [q, kCache, vCache, scratch, out], params, [s.nchunks, s.Hkv * groups]);
  combinePartials(rec, s);
}

/** attnDecode in two barrier-free passes, a thread per score and per 4 output lanes of a chunk (attn_decode_threads.ts). */
export function attnDecodeThreads(rec: Recorder, q: Tensor, kCache: Tensor, vCache: Tensor, out: Tensor, opts: AttnDecodeOptions, scratch: Tensor): void {
  const s = checkStep('attn_decode', q, kCache, vCache, out, opts, scratch);
  attnDecodeThreadPasses(rec, s);
  combinePartials(rec, s);
}

/** The merge of the chunks' partials into out, when there is more than one chunk. */
function combinePartials(rec: Recorder, s: DecodeStep): void {
  if (s.nchunks === 1) return;
  const params = new Params(4).u32(s.Dh).u32(s.nchunks).u32(s.slots).u32(s.stride).buffer;
  combine.dispatch(rec, { type: s.type, overrides: { WG: COMBINE_WG } }, [s.scratch, s.out], params, [s.H]);
}

/** Checks a decode step's arguments (naming the one at fault) and sizes its split. */
function checkStep(op: string, q: Tensor, kCache: Tensor, vCache: Tensor, out: Tensor, opts: AttnDecodeOptions, scratch: Tensor): DecodeStep {
  const type = expectActivation(op, 'q', q);
  if (!(q.shape.length === 2 || (q.shape.length === 3 && q.shape[0] === 1))) {
    throw new Error(`${op}: q '${q.label}' has shape ${fmtShape(q.shape)}, expected (1, H, Dh) or (H, Dh)`);
  }
  const [H, Dh] = q.shape.slice(-2);
  const { maxT, Hkv } = expectCaches(op, q, H, Dh, kCache, vCache);
  expectShape(op, 'out', out, q.shape, q.dtype);
  for (const t of [q, kCache, vCache, scratch]) {
    if (out.buffer === t.buffer) throw new Error(`${op}: out '${out.label}' shares a buffer with '${t.label}'; an input bound read and an output bound read_write cannot alias`);
  }
  const { len } = opts;
  if (!(Number.isInteger(len) && len >= 1)) throw new Error(`${op}: len must be a positive integer (valid keys, including the new one), got ${len}`);
  if (len > maxT) throw new Error(`${op}: len = ${len} keys exceed the cache's context of ${maxT} (kCache '${kCache.label}' ${fmtShape(kCache.shape)})`);
  const scale = opts.scale ?? 1 / Math.sqrt(Dh);
  if (!(Number.isFinite(scale) && scale > 0)) throw new Error(`${op}: scale must be a positive finite number, got ${scale}`);
  expectHeadDim(Dh);
  const nchunks = Math.ceil(len / ATTN_DECODE_CHUNK);
  const slots = expectScratch(op, scratch, H, Dh, nchunks, len);
  for (const t of [q, kCache, vCache]) {
    if (scratch.buffer === t.buffer) throw new Error(`${op}: scratch '${scratch.label}' shares a buffer with '${t.label}', which is bound read`);
  }
  return { type, q, kCache, vCache, scratch, out, H, Hkv, Dh, len, chunk: ATTN_DECODE_CHUNK, nchunks, slots, stride: recordFloats(Dh), scale2: scale * Math.LOG2E };
}

/** Checks the partials workspace: f32 (H, slots, Dh + 2 + chunk) with slots >= the chunks len needs; returns slots. */
function expectScratch(op: string, scratch: Tensor, H: number, Dh: number, nchunks: number, len: number): number {
  scratch.assertAlive(op);
  const [sh, slots, rec] = scratch.shape;
  if (scratch.dtype !== 'f32' || scratch.shape.length !== 3 || sh !== H || rec !== recordFloats(Dh) || !(slots >= nchunks)) {
    throw new Error(
      `${op}: scratch '${scratch.label}' ${fmtShape(scratch.shape)} ${scratch.dtype} must be f32 (H, chunks, Dh + 2 + ${ATTN_DECODE_CHUNK}) = ${fmtShape([H, nchunks, recordFloats(Dh)])} or more chunks ` +
        `for len = ${len}; size it with attnDecodeScratchShape(maxT, H, Dh)`,
    );
  }
  return slots;
}
