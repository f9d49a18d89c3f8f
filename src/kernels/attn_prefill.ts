import { defineKernel } from './kernel';
import { lib } from './lib';
import source from './attn_prefill.wgsl?raw';
import threadsSource from './attn_prefill_threads.wgsl?raw';
import { Params, type Recorder } from '../runtime/recorder';
import { fmtShape, type Tensor } from '../runtime/tensor';
import { expectActivation, expectShape, expectCaches } from './checks';
import { attentionForm } from './tunings';

const kernel = defineKernel({ name: 'attn_prefill', source, libs: [lib.attentionTile] });
const threads = defineKernel({ name: 'attn_prefill_threads', source: threadsSource });
const THREADS_WG = 64;

const WG = 128;
/** Largest head dim supported (the tile must fit in workgroup memory). */
export const ATTN_PREFILL_MAX_HEAD_DIM = 256;
// Register arrays in the shader hold at most this many rows per thread (RPT_MAX, RS_MAX).
const ROWS_PER_THREAD_MAX = 8;
// Tile candidates, best first: a larger BQ reads the cache fewer times, a larger BK needs fewer barriers.
const TILES: readonly (readonly [number, number])[] = [[32, 32], [32, 16], [16, 32], [16, 16], [16, 8], [8, 8], [8, 4]];

export interface AttnPrefillOptions {
  /** Absolute position of the first new query; the cache holds keys 0 .. pos0+T-1. */
  pos0: number;
  /** Score scale; default 1 / sqrt(Dh). */
  scale?: number;
}

/** Workgroup memory of a tile (bytes), as the shader declares it. */
function tileBytes(BQ: number, BK: number, Dh: number): number {
  const DH4 = Dh / 4;
  return 16 * (BQ * DH4 + Math.max(BK * (DH4 + 1), WG)) + 4 * (BQ * BK + 2 * BQ);
}

/**
 * The tile attn_prefill uses for head dim Dh (BQ query rows × BK keys) under a workgroup
 * memory limit (bytes): the first candidate that fits. Throws for an
 * unsupported Dh.
 */
export function attnPrefillTile(Dh: number, workgroupBytes: number): { BQ: number; BK: number } {
  if (!(Number.isInteger(Dh) && Dh > 0 && Dh % 4 === 0 && Dh <= ATTN_PREFILL_MAX_HEAD_DIM)) {
    throw new Error(`attn_prefill: head dim Dh = ${Dh} is not supported: it must be a multiple of 4, at most ${ATTN_PREFILL_MAX_HEAD_DIM}`);
  }
  const DH4 = Dh / 4;
  for (const [BQ, BK] of TILES) {
    const TR = Math.min(BQ, Math.floor(WG / DH4));
    const fits = Math.ceil(BQ / TR) <= ROWS_PER_THREAD_MAX && Math.ceil(BQ / (WG / BK)) <= ROWS_PER_THREAD_MAX;
    if (fits && tileBytes(BQ, BK, Dh) <= workgroupBytes) return { BQ, BK };
  }
  throw new Error(`attn_prefill: no tile for head dim Dh = ${Dh} fits in ${workgroupBytes} bytes of workgroup memory`);
}

/**
 * Causal attention of T new queries against the KV cache, online softmax in
 * f32. q (T, H, Dh); kCache, vCache (maxT, Hkv, Dh) with rows 0 .. pos0+T-1
 * written; out (T, H, Dh). Query t sees keys 0 ..= pos0 + t; query head h
 * reads KV head floor(h / (H / Hkv)). Dh: a multiple of 4, at most 256.
 * By workgroup tiles (attnPrefillWorkgroups) or by barrier-free threads
 * (attnPrefillThreads), as tunings.ts chooses for the adapter.
 */
export function attnPrefill(rec: Recorder, q: Tensor, kCache: Tensor, vCache: Tensor, out: Tensor, opts: AttnPrefillOptions): void {
  if (attentionForm(rec.gpu.report) === 'thread') attnPrefillThreads(rec, q, kCache, vCache, out, opts);
  else attnPrefillWorkgroups(rec, q, kCache, vCache, out, opts);
}

/** attnPrefill by FlashAttention-style tiles: BQ query rows × BK keys in workgroup memory (attn_prefill.wgsl). */
export function attnPrefillWorkgroups(rec: Recorder, q: Tensor, kCache: Tensor, vCache: Tensor, out: Tensor, opts: AttnPrefillOptions): void {
  const c = checkCall(rec, q, kCache, vCache, out, opts);
  const { BQ, BK } = attnPrefillTile(c.Dh, rec.gpu.device.limits.maxComputeWorkgroupStorageSize);
  kernel.dispatch(rec, { type: c.type, overrides: { WG, BQ, BK, DH: c.Dh } }, [q, kCache, vCache, out], c.params, [Math.ceil((c.T * c.H) / c.Hkv / BQ), c.Hkv]);
}

/** attnPrefill by a thread per query row and 16 dims, with no workgroup memory and no barrier (attn_prefill_threads.wgsl). */
export function attnPrefillThreads(rec: Recorder, q: Tensor, kCache: Tensor, vCache: Tensor, out: Tensor, opts: AttnPrefillOptions): void {
  const c = checkCall(rec, q, kCache, vCache, out, opts);
  const blocks = Math.ceil(c.Dh / 64);
  threads.dispatch(rec, { type: c.type, overrides: { WG: THREADS_WG, DH: c.Dh } }, [q, kCache, vCache, out], c.params, [Math.ceil(((c.T * c.H) / c.Hkv) * blocks / THREADS_WG), c.Hkv]);
}

/** Checks a call's arguments (naming the one at fault); returns its sizes and uniform params. */
function checkCall(rec: Recorder, q: Tensor, kCache: Tensor, vCache: Tensor, out: Tensor, opts: AttnPrefillOptions) {
  const op = 'attn_prefill';
  const type = expectActivation(op, 'q', q);
  if (q.shape.length !== 3) throw new Error(`${op}: q '${q.label}' has shape ${fmtShape(q.shape)}, expected (T, H, Dh)`);
  const [T, H, Dh] = q.shape;
  const { maxT, Hkv } = expectCaches(op, q, H, Dh, kCache, vCache);
  expectShape(op, 'out', out, q.shape, q.dtype);
  for (const t of [q, kCache, vCache]) {
    if (out.buffer === t.buffer) throw new Error(`${op}: out '${out.label}' shares a buffer with '${t.label}'; an input bound read and an output bound read_write cannot alias`);
  }
  const { pos0 } = opts;
  if (!(Number.isInteger(pos0) && pos0 >= 0)) throw new Error(`${op}: pos0 must be a non-negative integer, got ${pos0}`);
  if (pos0 + T > maxT) {
    throw new Error(`${op}: pos0 + T = ${pos0} + ${T} = ${pos0 + T} positions exceed the cache's context of ${maxT} (kCache '${kCache.label}' ${fmtShape(kCache.shape)})`);
  }
  const scale = opts.scale ?? 1 / Math.sqrt(Dh);
  if (!(Number.isFinite(scale) && scale > 0)) throw new Error(`${op}: scale must be a positive finite number, got ${scale}`);
  attnPrefillTile(Dh, rec.gpu.device.limits.maxComputeWorkgroupStorageSize); // throws for an unsupported Dh, on either form
  const params = new Params(6).u32(T).u32(H).u32(Hkv).u32(H / Hkv).u32(pos0).f32(scale * Math.LOG2E).buffer;
  return { type, T, H, Hkv, Dh, params };
}
