// Float64 reference of the Llama-family decoder, as plain loops, following
// Hugging Face modeling_llama.py (LlamaForCausalLM; Qwen2 and Mistral differ
// only in which biases exist). Used by the tests and by the benchmark's
// verify step. Rotary angles are rounded to float32 exactly where Hugging
// Face computes them in float32, so the reference is the checkpoint's own
// arithmetic, not a smoother version of it.
//
// Glossary: T tokens, D hidden, H heads, Hkv KV heads, Dh head dim, I MLP width, V vocab.

import type { TransformerConfig } from '../models/transformer/config';

/** Weights by Hugging Face tensor name, as float32 (or float64) arrays. */
export type RefWeights = (name: string) => ArrayLike<number>;

/** Keys and values of every position so far, per layer: (pos, Hkv, Dh) flattened. */
export interface RefCache { k: number[][]; v: number[][]; position: number }

export function createRefCache(cfg: TransformerConfig): RefCache {
  return { k: Array.from({ length: cfg.nLayers }, () => []), v: Array.from({ length: cfg.nLayers }, () => []), position: 0 };
}

/** inv_freq as HF computes it in float32 (with llama3 scaling when configured). */
export function refInvFreq(cfg: TransformerConfig): Float64Array {
  const half = cfg.headDim / 2;
  const out = new Float64Array(half);
  for (let i = 0; i < half; i++) {
    // 1 / theta^(2i / Dh), each step in float32 as torch does
    const expo = Math.fround(Math.fround(2 * i) / cfg.headDim);
    out[i] = Math.fround(1 / Math.fround(Math.pow(cfg.ropeTheta, expo)));
  }
  const s = cfg.ropeScaling;
  if (s) {
    // HF _compute_llama3_parameters: long wavelengths slowed by `factor`,
    // short ones kept, a smooth blend in between.
    const lowWavelen = s.originalMaxPositionEmbeddings / s.lowFreqFactor;
    const highWavelen = s.originalMaxPositionEmbeddings / s.highFreqFactor;
    for (let i = 0; i < half; i++) {
      const wavelen = (2 * Math.PI) / out[i];
      let f = wavelen > lowWavelen ? out[i] / s.factor : out[i];
      if (!(wavelen < highWavelen) && !(wavelen > lowWavelen)) {
        const smooth = (s.originalMaxPositionEmbeddings / wavelen - s.lowFreqFactor) / (s.highFreqFactor - s.lowFreqFactor);
        f = (1 - smooth) * (f / s.factor) + smooth * f;
      }
      out[i] = Math.fround(f);
    }
  }
  return out;
}

function rmsnorm(x: Float64Array, w: ArrayLike<number>, eps: number): Float64Array {
  let ss = 0;
  for (let i = 0; i < x.length; i++) ss += x[i] * x[i];
  const inv = 1 / Math.sqrt(ss / x.length + eps);
  return Float64Array.from(x, (v, i) => v * inv * w[i]);
}

/** y = W x (+ b) for W (N, K) row-major. */
function linear(x: ArrayLike<number>, w: ArrayLike<number>, n: number, b?: ArrayLike<number>): Float64Array {
  const k = x.length;
  const y = new Float64Array(n);
  for (let r = 0; r < n; r++) {
    let acc = b ? b[r] : 0;
    for (let c = 0; c < k; c++) acc += w[r * k + c] * x[c];
    y[r] = acc;
  }
  return y;
}

/** Rotary embedding in the rotate_half layout, per head, at position `pos`. */
function rope(x: Float64Array, heads: number, dh: number, pos: number, invFreq: Float64Array): void {
  const half = dh / 2;
  for (let h = 0; h < heads; h++) {
    for (let i = 0; i < half; i++) {
      const angle = Math.fround(pos * invFreq[i]); // float32 product, as torch
      const c = Math.fround(Math.cos(angle));
      const s = Math.fround(Math.sin(angle));
      const a = x[h * dh + i];
      const b = x[h * dh + i + half];
      x[h * dh + i] = a * c - b * s;
      x[h * dh + i + half] = b * c + a * s;
    }
  }
}

const silu = (v: number) => v / (1 + Math.exp(-v));

/**
 * Runs `tokens` after the cache's positions; returns logits (T, V) flattened
 * and appends the keys/values to the cache.
 */
export function refForward(cfg: TransformerConfig, w: RefWeights, tokens: ArrayLike<number>, cache = createRefCache(cfg)): Float64Array {
  const { hiddenSize: D, nHeads: H, nKvHeads: Hkv, headDim: Dh, intermediateSize: I, vocabSize: V } = cfg;
  const invFreq = refInvFreq(cfg);
  const emb = w('model.embed_tokens.weight');
  const head = cfg.tieWordEmbeddings ? emb : w('lm_head.weight');
  const logits = new Float64Array(tokens.length * V);
  const group = H / Hkv;
  const scale = 1 / Math.sqrt(Dh);

  for (let t = 0; t < tokens.length; t++) {
    const pos = cache.position + t;
    const id = tokens[t];
    if (!(id >= 0 && id < V)) throw new Error(`refForward: token ${id} outside the vocabulary (${V})`);
    let x = Float64Array.from({ length: D }, (_, i) => emb[id * D + i]);
    for (let l = 0; l < cfg.nLayers; l++) {
      const p = `model.layers.${l}.`;
      const bias = (name: string, has: boolean) => (has ? w(p + name) : undefined);
      // attention block: h = x + o_proj(attn(rope(q), rope(k), v))
      const xn = rmsnorm(x, w(p + 'input_layernorm.weight'), cfg.rmsNormEps);
      const q = linear(xn, w(p + 'self_attn.q_proj.weight'), H * Dh, bias('self_attn.q_proj.bias', cfg.qkvBias));
      const k = linear(xn, w(p + 'self_attn.k_proj.weight'), Hkv * Dh, bias('self_attn.k_proj.bias', cfg.qkvBias));
      const v = linear(xn, w(p + 'self_attn.v_proj.weight'), Hkv * Dh, bias('self_attn.v_proj.bias', cfg.qkvBias));
      rope(q, H, Dh, pos, invFreq);
      rope(k, Hkv, Dh, pos, invFreq);
      cache.k[l].push(...k);
      cache.v[l].push(...v);
      const keys = cache.k[l];
      const vals = cache.v[l];
      const n = pos + 1; // causal: positions 0..pos
      const o = new Float64Array(H * Dh);
      for (let h = 0; h < H; h++) {
        const kvh = Math.floor(h / group);
        // softmax(q . k / sqrt(Dh)) over the visible positions
        const scores = new Float64Array(n);
        let max = -Infinity;
        for (let j = 0; j < n; j++) {
          let s = 0;
          for (let d = 0; d < Dh; d++) s += q[h * Dh + d] * keys[(j * Hkv + kvh) * Dh + d];
          scores[j] = s * scale;
          max = Math.max(max, scores[j]);
        }
        let sum = 0;
        for (let j = 0; j < n; j++) sum += (scores[j] = Math.exp(scores[j] - max));
        for (let j = 0; j < n; j++) {
          for (let d = 0; d < Dh; d++) o[h * Dh + d] += (scores[j] / sum) * vals[(j * Hkv + kvh) * Dh + d];
        }
      }
      const attn = linear(o, w(p + 'self_attn.o_proj.weight'), D, bias('self_attn.o_proj.bias', cfg.oBias));
      const h1 = Float64Array.from(x, (xv, i) => xv + attn[i]);
      // MLP block: x' = h + down(silu(gate(hn)) * up(hn))
      const hn = rmsnorm(h1, w(p + 'post_attention_layernorm.weight'), cfg.rmsNormEps);
      const gate = linear(hn, w(p + 'mlp.gate_proj.weight'), I, bias('mlp.gate_proj.bias', cfg.mlpBias));
      const up = linear(hn, w(p + 'mlp.up_proj.weight'), I, bias('mlp.up_proj.bias', cfg.mlpBias));
      const act = Float64Array.from(gate, (g, i) => silu(g) * up[i]);
      const down = linear(act, w(p + 'mlp.down_proj.weight'), D, bias('mlp.down_proj.bias', cfg.mlpBias));
      x = Float64Array.from(h1, (hv, i) => hv + down[i]);
    }
    const xf = rmsnorm(x, w('model.norm.weight'), cfg.rmsNormEps);
    logits.set(linear(xf, head, V), t * V);
  }
  cache.position += tokens.length;
  return logits;
}
