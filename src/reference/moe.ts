// Float64 reference of the four mixture-of-experts decoders Hugging Face
// transformers runs, as plain loops. Files followed (huggingface/transformers,
// src/transformers/models/...; the 4.4x per-expert modules and the 5.x modular
// files with fused experts compute the same thing):
//   mixtral/modeling_mixtral.py     MixtralSparseMoeBlock.forward (4.x), MixtralTopKRouter.forward +
//                                   MixtralExperts.forward (5.x), MixtralDecoderLayer, MixtralForCausalLM
//   olmoe/modeling_olmoe.py         OlmoeAttention.forward (q_norm/k_norm, clip_qkv), OlmoeSparseMoeBlock
//   qwen2_moe/modular_qwen2_moe.py  Qwen2MoeTopKRouter, Qwen2MoeSparseMoeBlock (shared expert and its
//                                   sigmoid gate), Qwen2MoeDecoderLayer.__init__ (which layers are sparse)
//   granitemoe/modeling_granitemoe.py  GraniteMoeTopKGating (top-k of logits, then softmax over K),
//                                   GraniteMoeParallelExperts, GraniteMoeMoE, GraniteMoeDecoderLayer
//                                   (residual_multiplier), GraniteMoeModel (embedding_multiplier),
//                                   GraniteMoeForCausalLM (logits / logits_scaling), attention scaling
//                                   = attention_multiplier
// The attention block is Llama's (see reference/transformer.ts); rotary angles
// and cos/sin are rounded to float32 where torch computes them in float32;
// everything else is float64.
//
// Ties in top-k: torch.topk does not promise which of equal values it returns
// (its docs: tied indices "are not guaranteed to be stable"; the CPU kernel,
// aten/src/ATen/native/cpu/TopKImpl.h, runs std::partial_sort / nth_element
// comparing values only, and pytorch issue #88184 shows topk([-1,-1,-1,-1], 1)
// giving index 2). This reference fixes the rule: among equal values the
// LOWEST expert index wins (a stable descending sort), as ONNX TopK and
// tf.math.top_k specify. The GPU kernel must follow the same rule.
//
// Glossary: T tokens, D hidden, H heads, Hkv KV heads, Dh head dim, E experts,
// K experts per token (top-k), I expert width, Is shared-expert width, Id the
// dense MLP width of non-sparse layers, V vocab.

import type { Vec } from './ops';
import { rmsnorm } from './ops';
import { linear } from './linear';
import { attention } from './attention';

/** Weights by Hugging Face tensor name, as float32 (or float64) arrays. */
export type RefWeights = (name: string) => ArrayLike<number>;

export type MoeLayout = 'mixtral' | 'olmoe' | 'qwen2_moe' | 'granitemoe';

/**
 * softmax-then-topk: p = softmax(logits) over all E, keep the K largest p (Mixtral, OLMoE, Qwen2-MoE).
 * topk-then-softmax: keep the K largest logits, softmax over those K only (Granite).
 */
export type RouterMode = 'softmax-then-topk' | 'topk-then-softmax';

export interface RefMoeConfig {
  layout: MoeLayout;
  vocabSize: number;
  hiddenSize: number;                 // D
  nLayers: number;
  nHeads: number;                     // H
  nKvHeads: number;                   // Hkv
  headDim: number;                    // Dh
  rmsNormEps: number;                 // every RMSNorm, OLMoE's q/k norms included
  ropeTheta: number;
  tieWordEmbeddings: boolean;
  /** Biases on q, k, v (Qwen2-MoE qkv_bias, default true; OLMoE/Granite attention_bias). */
  qkvBias: boolean;
  /** Bias on o_proj (OLMoE/Granite attention_bias; never Qwen2-MoE or Mixtral). */
  oBias: boolean;
  /** OLMoE: RMSNorm over the whole q projection (H*Dh) and k projection (Hkv*Dh), before the head split and RoPE. */
  qkNorm: boolean;
  /** OLMoE clip_qkv: clamp q, k, v to [-c, c] after the q/k norms; null for none. */
  clipQkv: number | null;
  /** Sliding window of the attention, or null. The reference has none: it refuses positions past the window. */
  slidingWindow: number | null;
  nExperts: number;                   // E
  topK: number;                       // K
  /** Renormalise the K kept probabilities to sum 1 (Mixtral always; OLMoE/Qwen2-MoE norm_topk_prob). */
  normTopK: boolean;
  routerMode: RouterMode;
  expertIntermediateSize: number;     // I
  /** Qwen2-MoE shared expert width Is (0: no shared expert). */
  sharedExpertIntermediateSize: number;
  /** Qwen2-MoE: layer l is sparse iff l not in mlpOnlyLayers and nExperts > 0 and (l + 1) % decoderSparseStep == 0. */
  decoderSparseStep: number;
  mlpOnlyLayers: number[];
  /** Id, the width of the plain SwiGLU MLP of non-sparse layers (Qwen2-MoE intermediate_size); 0 if every layer is sparse. */
  denseIntermediateSize: number;
  /** Granite: x0 = embed * embeddingMultiplier. 1 elsewhere. */
  embeddingMultiplier: number;
  /** Granite: the attention score scale (replaces 1/sqrt(Dh)); null: 1/sqrt(Dh). */
  attentionMultiplier: number | null;
  /** Granite: x + branch * residualMultiplier, for both branches. 1 elsewhere. */
  residualMultiplier: number;
  /** Granite: logits / logitsScaling. 1 elsewhere. */
  logitsScaling: number;
}

/** Whether layer l uses the MoE block (Qwen2MoeDecoderLayer.__init__); true for every layer of the other layouts. */
export function isSparseLayer(cfg: RefMoeConfig, l: number): boolean {
  if (cfg.layout !== 'qwen2_moe') return true;
  return !cfg.mlpOnlyLayers.includes(l) && cfg.nExperts > 0 && (l + 1) % cfg.decoderSparseStep === 0;
}

/** The prefix of layer l's feed-forward tensors: Mixtral and Granite keep the 4.x module name block_sparse_moe. */
function ffnPrefix(cfg: RefMoeConfig, l: number): string {
  return `model.layers.${l}.` + (cfg.layout === 'mixtral' || cfg.layout === 'granitemoe' ? 'block_sparse_moe.' : 'mlp.');
}

/** Every tensor the published checkpoints hold, with its shape (out, in), in module order. */
export function moeRefTensorShapes(cfg: RefMoeConfig): Map<string, number[]> {
  const { hiddenSize: D, nHeads: H, nKvHeads: Hkv, headDim: Dh, nExperts: E, expertIntermediateSize: I, vocabSize: V } = cfg;
  const m = new Map<string, number[]>();
  m.set('model.embed_tokens.weight', [V, D]);
  for (let l = 0; l < cfg.nLayers; l++) {
    const p = `model.layers.${l}.`;
    m.set(p + 'input_layernorm.weight', [D]);
    m.set(p + 'self_attn.q_proj.weight', [H * Dh, D]);
    if (cfg.qkvBias) m.set(p + 'self_attn.q_proj.bias', [H * Dh]);
    m.set(p + 'self_attn.k_proj.weight', [Hkv * Dh, D]);
    if (cfg.qkvBias) m.set(p + 'self_attn.k_proj.bias', [Hkv * Dh]);
    m.set(p + 'self_attn.v_proj.weight', [Hkv * Dh, D]);
    if (cfg.qkvBias) m.set(p + 'self_attn.v_proj.bias', [Hkv * Dh]);
    m.set(p + 'self_attn.o_proj.weight', [D, H * Dh]);
    if (cfg.oBias) m.set(p + 'self_attn.o_proj.bias', [D]);
    if (cfg.qkNorm) {
      m.set(p + 'self_attn.q_norm.weight', [H * Dh]);
      m.set(p + 'self_attn.k_norm.weight', [Hkv * Dh]);
    }
    m.set(p + 'post_attention_layernorm.weight', [D]);
    const f = ffnPrefix(cfg, l);
    if (!isSparseLayer(cfg, l)) {
      const Id = cfg.denseIntermediateSize;
      m.set(f + 'gate_proj.weight', [Id, D]);
      m.set(f + 'up_proj.weight', [Id, D]);
      m.set(f + 'down_proj.weight', [D, Id]);
    } else if (cfg.layout === 'mixtral') {
      m.set(f + 'gate.weight', [E, D]);
      for (let e = 0; e < E; e++) {
        m.set(f + `experts.${e}.w1.weight`, [I, D]);
        m.set(f + `experts.${e}.w2.weight`, [D, I]);
        m.set(f + `experts.${e}.w3.weight`, [I, D]);
      }
    } else if (cfg.layout === 'granitemoe') {
      m.set(f + 'input_linear.weight', [E, 2 * I, D]);
      m.set(f + 'output_linear.weight', [E, D, I]);
      m.set(f + 'router.layer.weight', [E, D]);
    } else {
      m.set(f + 'gate.weight', [E, D]);
      for (let e = 0; e < E; e++) {
        m.set(f + `experts.${e}.gate_proj.weight`, [I, D]);
        m.set(f + `experts.${e}.up_proj.weight`, [I, D]);
        m.set(f + `experts.${e}.down_proj.weight`, [D, I]);
      }
      if (cfg.layout === 'qwen2_moe' && cfg.sharedExpertIntermediateSize > 0) {
        const Is = cfg.sharedExpertIntermediateSize;
        m.set(f + 'shared_expert.gate_proj.weight', [Is, D]);
        m.set(f + 'shared_expert.up_proj.weight', [Is, D]);
        m.set(f + 'shared_expert.down_proj.weight', [D, Is]);
        m.set(f + 'shared_expert_gate.weight', [1, D]);
      }
    }
  }
  m.set('model.norm.weight', [D]);
  if (!cfg.tieWordEmbeddings) m.set('lm_head.weight', [V, D]);
  return m;
}

// ---------------------------------------------------------------------------
// Router

export interface RefRouting {
  /** (T, K) expert ids per token, best first; among equal values the lower index first. */
  ids: Int32Array;
  /** (T, K) the weight each chosen expert's output is multiplied by. */
  weights: Float64Array;
}

/**
 * Picks K experts per token from router logits (T, E) flattened.
 *   softmax-then-topk (MixtralSparseMoeBlock / OlmoeSparseMoeBlock / Qwen2MoeTopKRouter):
 *     p = softmax(logits); keep the K largest p; weights = p, divided by their sum when normTopK.
 *   topk-then-softmax (GraniteMoeTopKGating.forward): keep the K largest logits; weights =
 *     softmax over those K (normalised by construction, so normTopK is ignored).
 * Both keep the same experts (softmax is increasing), and with normTopK the same weights.
 * Ranking is on the logits in both modes (HF ranks float32 probabilities in the first: the same
 * order, except where float32 rounding makes two distinct probabilities equal).
 * Ties: the lower expert index first (see the file header; torch.topk leaves ties unspecified).
 */
export function refRouter(logits: Vec, E: number, K: number, normTopK: boolean, mode: RouterMode): RefRouting {
  if (!(E > 0) || logits.length % E !== 0) throw new Error(`refRouter: ${logits.length} logits are not rows of E = ${E}`);
  if (!(Number.isInteger(K) && K >= 1 && K <= E)) throw new Error(`refRouter: top-k ${K} outside 1..${E}`);
  const T = logits.length / E;
  const ids = new Int32Array(T * K);
  const weights = new Float64Array(T * K);
  const order = Array.from({ length: E }, (_, e) => e);
  for (let t = 0; t < T; t++) {
    const row = Float64Array.from({ length: E }, (_, e) => logits[t * E + e]);
    for (const v of row) if (!Number.isFinite(v)) throw new Error(`refRouter: token ${t} has a non-finite router logit ${v}`);
    // rank the logits: the order of the exact probabilities too (softmax is increasing), without
    // the ties exp() underflow would make; a stable descending sort, equal logits in ascending index
    const ranked = order.slice().sort((a, b) => (row[b] - row[a]) || (a - b));
    for (let j = 0; j < K; j++) ids[t * K + j] = ranked[j];
    if (mode === 'softmax-then-topk') {
      // p = softmax over all E (max-subtracted), then the kept p, renormalised when asked
      const max = row[ranked[0]];
      let sum = 0;
      for (let e = 0; e < E; e++) sum += Math.exp(row[e] - max);
      let kept = 0;
      for (let j = 0; j < K; j++) kept += (weights[t * K + j] = Math.exp(row[ranked[j]] - max) / sum);
      if (normTopK) for (let j = 0; j < K; j++) weights[t * K + j] /= kept;
    } else {
      // softmax over the K kept logits (ranked[0] holds the largest)
      const top = row[ranked[0]];
      let sum = 0;
      for (let j = 0; j < K; j++) sum += (weights[t * K + j] = Math.exp(row[ranked[j]] - top));
      for (let j = 0; j < K; j++) weights[t * K + j] /= sum;
    }
  }
  return { ids, weights };
}

// ---------------------------------------------------------------------------
// The MoE feed-forward block

/** One SwiGLU MLP: gate, up (width, D) and down (D, width). */
export interface RefSwiglu { gate: Vec; up: Vec; down: Vec }

export interface RefMoeBlockWeights {
  /** Router (E, D): Mixtral/OLMoE/Qwen2-MoE gate.weight, Granite router.layer.weight. */
  router: Vec;
  /** Expert e's SwiGLU MLP of width I. */
  expert: (e: number) => RefSwiglu;
  /** Qwen2-MoE: the shared expert (width Is) and its gate (1, D); absent elsewhere. */
  shared?: (RefSwiglu & { size: number; gateWeight: Vec }) | null;
}

export interface RefMoeBlockShape {
  T: number;
  D: number;
  E: number;
  K: number;
  I: number;
  normTopK: boolean;
  mode: RouterMode;
}

export interface RefMoeBlockResult extends RefRouting {
  /** (T, D) the block's output (added to the residual by the caller). */
  out: Float64Array;
  /** (T, E) the router logits. */
  routerLogits: Float64Array;
}

/** down(silu(gate x) * up x) for one row x (D): expert_layer.forward / Qwen2MoeMLP.forward / the fused Granite experts. */
export function refSwiglu(x: Vec, m: RefSwiglu, D: number, width: number): Float64Array {
  const g = linear(x, m.gate, 1, D, width);
  const u = linear(x, m.up, 1, D, width);
  const a = g.map((gv, i) => (gv / (1 + Math.exp(-gv))) * u[i]);
  return linear(a, m.down, 1, width, D);
}

/**
 * One layer's MoE feed-forward on x (T, D), the input already normed by post_attention_layernorm:
 *   logits = x W_router^T; (ids, w) = router(logits);
 *   out_t = sum_j w_tj * Expert_{ids_tj}(x_t)
 *         + [Qwen2-MoE] sigmoid(x_t . w_sgate) * SharedExpert(x_t)
 * Every token's K experts run; none is dropped (all four are dropless).
 */
export function refMoeBlock(x: Vec, s: RefMoeBlockShape, w: RefMoeBlockWeights): RefMoeBlockResult {
  const { T, D, E, K, I } = s;
  if (x.length !== T * D) throw new Error(`refMoeBlock: x has ${x.length} values for (${T}, ${D})`);
  const routerLogits = linear(x, w.router, T, D, E);
  const { ids, weights } = refRouter(routerLogits, E, K, s.normTopK, s.mode);
  const out = new Float64Array(T * D);
  for (let t = 0; t < T; t++) {
    const xt = sliceOf(x, t * D, D);
    for (let j = 0; j < K; j++) {
      const y = refSwiglu(xt, w.expert(ids[t * K + j]), D, I);
      const g = weights[t * K + j];
      for (let i = 0; i < D; i++) out[t * D + i] += g * y[i];
    }
    if (w.shared) {
      // Qwen2MoeSparseMoeBlock.forward: F.sigmoid(shared_expert_gate(x)) * shared_expert(x), added
      const y = refSwiglu(xt, w.shared, D, w.shared.size);
      let z = 0;
      for (let i = 0; i < D; i++) z += xt[i] * w.shared.gateWeight[i];
      const gate = 1 / (1 + Math.exp(-z));
      for (let i = 0; i < D; i++) out[t * D + i] += gate * y[i];
    }
  }
  return { out, ids, weights, routerLogits };
}

/** The block's weights of sparse layer l, by the published tensor names. */
export function refMoeBlockWeights(cfg: RefMoeConfig, w: RefWeights, l: number): RefMoeBlockWeights {
  const f = ffnPrefix(cfg, l);
  const { hiddenSize: D, expertIntermediateSize: I } = cfg;
  if (cfg.layout === 'granitemoe') {
    // GraniteMoeParallelExperts: input_linear (E, 2I, D), chunk(2) of its output: gate rows first, then up;
    // output_linear (E, D, I)
    const inp = w(f + 'input_linear.weight');
    const outp = w(f + 'output_linear.weight');
    return {
      router: w(f + 'router.layer.weight'),
      expert: (e) => ({ gate: sliceOf(inp, e * 2 * I * D, I * D), up: sliceOf(inp, (e * 2 + 1) * I * D, I * D), down: sliceOf(outp, e * D * I, D * I) }),
    };
  }
  const [g, u, d] = cfg.layout === 'mixtral' ? ['w1', 'w3', 'w2'] : ['gate_proj', 'up_proj', 'down_proj'];
  const shared = cfg.layout === 'qwen2_moe' && cfg.sharedExpertIntermediateSize > 0
    ? {
        gate: w(f + 'shared_expert.gate_proj.weight'), up: w(f + 'shared_expert.up_proj.weight'), down: w(f + 'shared_expert.down_proj.weight'),
        gateWeight: w(f + 'shared_expert_gate.weight'), size: cfg.sharedExpertIntermediateSize,
      }
    : null;
  return {
    router: w(f + 'gate.weight'),
    expert: (e) => ({ gate: w(f + `experts.${e}.${g}.weight`), up: w(f + `experts.${e}.${u}.weight`), down: w(f + `experts.${e}.${d}.weight`) }),
    shared,
  };
}

// ---------------------------------------------------------------------------
// The whole model

/** Keys and values of every position so far, per layer: (pos, Hkv, Dh) flattened, after RoPE. */
export interface RefMoeCache { k: number[][]; v: number[][]; position: number }

export function createRefMoeCache(cfg: RefMoeConfig): RefMoeCache {
  return { k: Array.from({ length: cfg.nLayers }, () => []), v: Array.from({ length: cfg.nLayers }, () => []), position: 0 };
}

/** inv_freq as the default rotary embedding computes it, each step in float32 (compute_default_rope_parameters). */
export function moeInvFreq(headDim: number, theta: number): Float64Array {
  return Float64Array.from({ length: headDim / 2 }, (_, i) => {
    const expo = Math.fround(Math.fround(2 * i) / headDim);
    return Math.fround(1 / Math.fround(Math.pow(theta, expo)));
  });
}

/** rotate_half RoPE in place on x (T, heads, Dh) at positions pos0 + t; angle, cos and sin rounded to float32 as torch. */
function ropeInPlace(x: Float64Array, T: number, heads: number, Dh: number, pos0: number, invFreq: Float64Array): void {
  const half = Dh / 2;
  for (let t = 0; t < T; t++) {
    for (let i = 0; i < half; i++) {
      const angle = Math.fround((pos0 + t) * invFreq[i]);
      const c = Math.fround(Math.cos(angle));
      const s = Math.fround(Math.sin(angle));
      for (let h = 0; h < heads; h++) {
        const b = (t * heads + h) * Dh;
        const a0 = x[b + i];
        const a1 = x[b + i + half];
        x[b + i] = a0 * c - a1 * s;
        x[b + i + half] = a1 * c + a0 * s;
      }
    }
  }
}

function sliceOf(a: Vec, start: number, len: number): Vec {
  const sub = (a as { subarray?: (s: number, e: number) => Vec }).subarray;
  return sub ? sub.call(a, start, start + len) : Array.prototype.slice.call(a, start, start + len);
}

/** y (T, N) = x W^T + b. */
function linearBias(x: Vec, w: Vec, T: number, K: number, N: number, b: Vec | null): Float64Array {
  const y = linear(x, w, T, K, N);
  if (b) for (let t = 0; t < T; t++) for (let n = 0; n < N; n++) y[t * N + n] += b[n];
  return y;
}

/**
 * Runs `tokens` after the cache's positions; returns the logits (T, V)
 * flattened and appends the keys and values to the cache. Per layer, over all T
 * tokens at once (causal, so the same as token by token):
 *   x0 = embed(tokens) * embeddingMultiplier
 *   q, k, v = proj(RMSNorm_in(x)) (+ biases); [OLMoE] q = RMSNorm_q(q), k = RMSNorm_k(k) over the whole
 *     projection; [OLMoE clip_qkv] clamp q, k, v; RoPE on q, k
 *   h = x + residualMultiplier * o_proj(softmax(q k^T * scale) v)    scale = attentionMultiplier ?? 1/sqrt(Dh)
 *   x' = h + residualMultiplier * FFN(RMSNorm_post(h))               FFN = refMoeBlock, or the dense SwiGLU MLP
 *   logits = lm_head(RMSNorm_final(x)) / logitsScaling
 */
export function refMoeForward(
  cfg: RefMoeConfig,
  w: RefWeights,
  tokens: ArrayLike<number>,
  cache = createRefMoeCache(cfg),
  /** Sees each sparse layer's routing (the tests poison the experts no token chose). */
  onRouting?: (layer: number, routing: RefRouting) => void,
): Float64Array {
  const { hiddenSize: D, nHeads: H, nKvHeads: Hkv, headDim: Dh, vocabSize: V, rmsNormEps: eps } = cfg;
  const T = tokens.length;
  if (H % Hkv !== 0) throw new Error(`refMoeForward: ${H} heads over ${Hkv} KV heads`);
  if (Dh % 2 !== 0) throw new Error(`refMoeForward: rotary needs an even head dim, got ${Dh}`);
  const pos0 = cache.position;
  if (cfg.slidingWindow != null && pos0 + T > cfg.slidingWindow) {
    throw new Error(`refMoeForward: position ${pos0 + T} is past the sliding window ${cfg.slidingWindow}, which the reference does not implement`);
  }
  const invFreq = moeInvFreq(Dh, cfg.ropeTheta);
  const emb = w('model.embed_tokens.weight');
  const head = cfg.tieWordEmbeddings ? emb : w('lm_head.weight');
  const scale = cfg.attentionMultiplier ?? 1 / Math.sqrt(Dh);
  const rm = cfg.residualMultiplier;

  // embedding lookup, times Granite's embedding_multiplier
  let x = new Float64Array(T * D);
  for (let t = 0; t < T; t++) {
    const id = tokens[t];
    if (!(Number.isInteger(id) && id >= 0 && id < V)) throw new Error(`refMoeForward: token ${id} outside the vocabulary (${V})`);
    for (let i = 0; i < D; i++) x[t * D + i] = emb[id * D + i] * cfg.embeddingMultiplier;
  }

  for (let l = 0; l < cfg.nLayers; l++) {
    const p = `model.layers.${l}.self_attn.`;
    const bias = (name: string, has: boolean) => (has ? w(p + name) : null);
    // 1. input_layernorm and the projections
    const xn = rmsnorm(x, w(`model.layers.${l}.input_layernorm.weight`), T, D, eps);
    let q = linearBias(xn, w(p + 'q_proj.weight'), T, D, H * Dh, bias('q_proj.bias', cfg.qkvBias));
    let k = linearBias(xn, w(p + 'k_proj.weight'), T, D, Hkv * Dh, bias('k_proj.bias', cfg.qkvBias));
    const v = linearBias(xn, w(p + 'v_proj.weight'), T, D, Hkv * Dh, bias('v_proj.bias', cfg.qkvBias));
    // 2. OLMoE: RMSNorm over the full projection width (not per head), before the head split
    if (cfg.qkNorm) {
      q = rmsnorm(q, w(p + 'q_norm.weight'), T, H * Dh, eps);
      k = rmsnorm(k, w(p + 'k_norm.weight'), T, Hkv * Dh, eps);
    }
    if (cfg.clipQkv != null) {
      const c = cfg.clipQkv;
      for (const a of [q, k, v]) for (let i = 0; i < a.length; i++) a[i] = Math.min(c, Math.max(-c, a[i]));
    }
    // 3. RoPE at the absolute positions, then the cache
    ropeInPlace(q, T, H, Dh, pos0, invFreq);
    ropeInPlace(k, T, Hkv, Dh, pos0, invFreq);
    for (const val of k) cache.k[l].push(val);
    for (const val of v) cache.v[l].push(val);
    // 4. causal attention over every cached position
    const o = attention(q, cache.k[l], cache.v[l], { T, pos0, H, Hkv, Dh, scale });
    const attn = linearBias(o, w(p + 'o_proj.weight'), T, H * Dh, D, bias('o_proj.bias', cfg.oBias));
    const h1 = Float64Array.from(x, (xv, i) => xv + rm * attn[i]);
    // 5. post_attention_layernorm and the feed-forward block
    const hn = rmsnorm(h1, w(`model.layers.${l}.post_attention_layernorm.weight`), T, D, eps);
    let ffn: Float64Array;
    if (isSparseLayer(cfg, l)) {
      const shape = { T, D, E: cfg.nExperts, K: cfg.topK, I: cfg.expertIntermediateSize, normTopK: cfg.normTopK, mode: cfg.routerMode };
      const block = refMoeBlock(hn, shape, refMoeBlockWeights(cfg, w, l));
      onRouting?.(l, block);
      ffn = block.out;
    } else {
      // Qwen2MoeMLP(config, intermediate_size=config.intermediate_size)
      const f = ffnPrefix(cfg, l);
      const mlp = { gate: w(f + 'gate_proj.weight'), up: w(f + 'up_proj.weight'), down: w(f + 'down_proj.weight') };
      ffn = new Float64Array(T * D);
      for (let t = 0; t < T; t++) ffn.set(refSwiglu(sliceOf(hn, t * D, D), mlp, D, cfg.denseIntermediateSize), t * D);
    }
    x = Float64Array.from(h1, (hv, i) => hv + rm * ffn[i]);
  }

  // final norm, the LM head, Granite's logits_scaling
  const xf = rmsnorm(x, w('model.norm.weight'), T, D, eps);
  const logits = linear(xf, head, T, D, V);
  if (cfg.logitsScaling !== 1) for (let i = 0; i < logits.length; i++) logits[i] /= cfg.logitsScaling;
  cache.position += T;
  return logits;
}
