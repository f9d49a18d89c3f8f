// Float64 causal attention with grouped-query heads, as plain loops: the twin
// of kernels/attn_prefill and kernels/attn_decode. Semantics of Hugging Face
// modeling_llama.py (eager_attention_forward): scores q·k * scale, a causal
// mask, softmax, then the weighted sum of values; query head h reads KV head
// floor(h / (H / Hkv)) (repeat_kv).

import type { Vec } from './ops';

export interface AttentionShape {
  /** New queries (tokens). */
  T: number;
  /** Rows in k and v (the cache length, maxT); default pos0 + T. Rows >= pos0 + T are never read. */
  S?: number;
  /** Absolute position of query 0: query t sits at pos0 + t and sees keys 0 ..= pos0 + t. */
  pos0: number;
  /** Query heads. */
  H: number;
  /** Key/value heads; H must be a multiple of Hkv. */
  Hkv: number;
  /** Head dim. */
  Dh: number;
  /** Score scale, 1 / sqrt(Dh) for Llama. */
  scale: number;
}

/**
 * q: (T, H, Dh); k, v: (S, Hkv, Dh) row-major, rows 0 .. pos0+T-1 valid.
 * Returns out: (T, H, Dh).
 */
export function attention(q: Vec, k: Vec, v: Vec, shape: AttentionShape): Float64Array {
  const { T, pos0, H, Hkv, Dh, scale } = shape;
  const S = shape.S ?? pos0 + T;
  if (H % Hkv !== 0) throw new Error(`attention: H = ${H} is not a multiple of Hkv = ${Hkv}`);
  if (pos0 + T > S) throw new Error(`attention: pos0 + T = ${pos0 + T} exceeds the ${S} cached rows`);
  const G = H / Hkv; // query heads per KV head
  const out = new Float64Array(T * H * Dh);
  const p = new Float64Array(S);
  for (let t = 0; t < T; t++) {
    const last = pos0 + t; // the causal mask: key j is seen iff j <= pos0 + t
    for (let h = 0; h < H; h++) {
      const kvh = Math.floor(h / G);
      const qb = (t * H + h) * Dh;
      // scores of the visible keys, and their max (for a stable softmax)
      let max = -Infinity;
      for (let j = 0; j <= last; j++) {
        const kb = (j * Hkv + kvh) * Dh;
        let dot = 0;
        for (let d = 0; d < Dh; d++) dot += q[qb + d] * k[kb + d];
        p[j] = dot * scale;
        max = Math.max(max, p[j]);
      }
      // exponentiate and sum
      let sum = 0;
      for (let j = 0; j <= last; j++) {
        p[j] = Math.exp(p[j] - max);
        sum += p[j];
      }
      // weighted sum of values, normalised
      for (let j = 0; j <= last; j++) {
        const vb = (j * Hkv + kvh) * Dh;
        const w = p[j] / sum;
        for (let d = 0; d < Dh; d++) out[qb + d] += w * v[vb + d];
      }
    }
  }
  return out;
}
