import { defineKernel, type ElementType } from './kernel';
import scoresSource from './attn_decode_scores.wgsl?raw';
import valuesSource from './attn_decode_values.wgsl?raw';
import { Params, type Recorder } from '../runtime/recorder';
import type { Tensor } from '../runtime/tensor';

// attn_decode's thread form: two barrier-free passes, for adapters where a
// workgroup barrier is dear (software adapters: tunings.ts chooses).
const scores = defineKernel({ name: 'attn_decode_scores', source: scoresSource });
const values = defineKernel({ name: 'attn_decode_values', source: valuesSource });
const WG = 64;

/** What attnDecode has checked and sized for a step: the two passes take it as is. */
export interface DecodeStep {
  type: ElementType;
  q: Tensor;
  kCache: Tensor;
  vCache: Tensor;
  scratch: Tensor;
  out: Tensor;
  H: number;
  Hkv: number;
  Dh: number;
  len: number;
  /** Keys per chunk (record). */
  chunk: number;
  nchunks: number;
  slots: number;
  /** Floats per record of the scratch. */
  stride: number;
  /** Score scale times log2(e). */
  scale2: number;
}

/**
 * Records the thread form's two passes: a thread per (head, 4 keys) writes
 * the scores into the chunk records, then a thread per (head, chunk, 16 dims
 * of Dh) reduces its chunk to the partial [o, m, l], or to the output when
 * one chunk holds every key. The caller merges the partials (attn_decode_combine).
 */
export function attnDecodeThreadPasses(rec: Recorder, s: DecodeStep): void {
  const G = s.H / s.Hkv;
  const overrides = { WG, DH: s.Dh, CHUNK: s.chunk };
  const sparams = new Params(6).u32(s.Hkv).u32(G).u32(s.len).u32(s.slots).u32(s.stride).f32(s.scale2).buffer;
  scores.dispatch(rec, { type: s.type, overrides }, [s.q, s.kCache, s.scratch], sparams, [Math.ceil(s.len / 4 / WG), s.H]);
  const vparams = new Params(6).u32(s.Hkv).u32(G).u32(s.len).u32(s.nchunks).u32(s.slots).u32(s.stride).buffer;
  values.dispatch(rec, { type: s.type, overrides }, [s.scratch, s.vCache, s.out], vparams, [Math.ceil((s.nchunks * Math.ceil(s.Dh / 16)) / WG), s.H]);
}
