// config.json -> TransformerConfig for the Llama family (Llama, Qwen2,
// Mistral) and its mixture-of-experts relatives (Mixtral, OLMoE, Qwen2-MoE,
// GraniteMoE): the keys the Hugging Face configuration classes read, with
// their defaults, and a clear Error for anything we cannot run.

import { configReader, type Json } from '../config_reader';

export interface RopeScaling {
  /** Llama 3.x frequency-dependent scaling (Hugging Face `_compute_llama3_parameters`). */
  type: 'llama3';
  factor: number;
  lowFreqFactor: number;
  highFreqFactor: number;
  originalMaxPositionEmbeddings: number;
}

export type TransformerType = 'llama' | 'qwen2' | 'mistral' | MoeLayout;
export type MoeLayout = 'mixtral' | 'olmoe' | 'qwen2_moe' | 'granitemoe';

/** The sparse feed-forward of the MoE layouts (../shared/references.md, "Mixture of experts"). */
export interface MoeConfig {
  layout: MoeLayout;
  nExperts: number;          // E
  topK: number;              // k experts per token
  /** Softmax over E then the top k (renormalised when normTopK), or Granite's top k of the logits then softmax over them. */
  router: 'softmax-topk' | 'topk-softmax';
  normTopK: boolean;
  expertSize: number;        // I of each expert
  /** Qwen2-MoE's shared expert width (0: none), gated per token by sigmoid(shared_expert_gate · x). */
  sharedExpertSize: number;
  /** Per layer: the sparse block, or the dense MLP of intermediateSize (Qwen2-MoE's decoder_sparse_step, mlp_only_layers). */
  sparse: boolean[];
}

export interface TransformerConfig {
  modelType: TransformerType;
  vocabSize: number;
  hiddenSize: number;        // D
  intermediateSize: number;  // MLP width
  nLayers: number;
  nHeads: number;            // H
  nKvHeads: number;          // Hkv (grouped-query attention)
  headDim: number;           // Dh
  rmsNormEps: number;
  ropeTheta: number;
  ropeScaling: RopeScaling | null;
  /** Longest context we run: max_position_embeddings, capped at a sliding window if the model has one. */
  maxPositionEmbeddings: number;
  tieWordEmbeddings: boolean;
  /** Biases on q, k, v (Qwen2 always; Llama when attention_bias). */
  qkvBias: boolean;
  /** Bias on o_proj (Llama attention_bias only). */
  oBias: boolean;
  /** Bias on the MLP projections (Llama mlp_bias). */
  mlpBias: boolean;
  hiddenAct: 'silu';
  bosTokenId: number | null;
  eosTokenIds: number[];
  /** The sparse feed-forward, or null for a dense model. */
  moe: MoeConfig | null;
  /** OLMoE: RMSNorm over the whole q and k rows (all heads) before rotary. */
  qkNorm: boolean;
  /**
   * GraniteMoE's multipliers (1 elsewhere): the embedding output is scaled by
   * `embedding`; attention scores by `attention` (null: 1/sqrt(Dh)); each
   * block's output by `residual`; the logits divided by `logits`.
   */
  multipliers: { embedding: number; attention: number | null; residual: number; logits: number };
}

// A Map: an architecture named "constructor" or "__proto__" must find nothing.
const ARCHITECTURES = new Map<string, TransformerConfig['modelType']>([
  ['LlamaForCausalLM', 'llama'],
  ['Qwen2ForCausalLM', 'qwen2'],
  ['MistralForCausalLM', 'mistral'],
  ['MixtralForCausalLM', 'mixtral'],
  ['OlmoeForCausalLM', 'olmoe'],
  ['Qwen2MoeForCausalLM', 'qwen2_moe'],
  ['GraniteMoeForCausalLM', 'granitemoe'],
]);
const TYPES: readonly string[] = [...new Set(ARCHITECTURES.values())];

export function isTransformerConfig(raw: Json): boolean {
  return typeof raw.model_type === 'string' && TYPES.includes(raw.model_type);
}

export function parseTransformerConfig(raw: Json, file = 'config.json'): TransformerConfig {
  const { int, num, positive, bool, ids, where } = configReader(raw, file);
  const archs = Array.isArray(raw.architectures) ? (raw.architectures as unknown[]) : [];
  const fromArch = archs.map((a) => ARCHITECTURES.get(String(a))).find(Boolean);
  const modelType = raw.model_type;
  if (typeof modelType !== 'string' || !TYPES.includes(modelType)) {
    throw new Error(`${where('model_type')}: ${JSON.stringify(modelType)} is not a transformer Tessera runs (${TYPES.join(', ')})`);
  }
  const type = modelType as TransformerType;
  if (fromArch && fromArch !== modelType) {
    throw new Error(`${file}: architectures ${JSON.stringify(archs)} disagree with model_type '${modelType}'`);
  }

  const hiddenSize = int('hidden_size');
  const nHeads = int('num_attention_heads');
  const nKvHeads = int('num_key_value_heads', type === 'qwen2_moe' ? 16 : type === 'mixtral' ? 8 : nHeads); // the classes' own defaults
  const headDim = raw.head_dim == null ? hiddenSize / nHeads : int('head_dim');
  if (!Number.isInteger(headDim)) throw new Error(`${file}: hidden_size ${hiddenSize} is not divisible by num_attention_heads ${nHeads} and head_dim is not given`);
  if (headDim % 2 !== 0) throw new Error(`${where('head_dim')}: rotary embedding needs an even head dimension, got ${headDim}`);
  if (nHeads % nKvHeads !== 0) throw new Error(`${file}: num_attention_heads ${nHeads} is not a multiple of num_key_value_heads ${nKvHeads}`);

  const act = raw.hidden_act ?? 'silu';
  if (act !== 'silu') throw new Error(`${where('hidden_act')}: '${String(act)}' is not supported (silu only)`);
  // Sliding-window attention (Mistral; Qwen2 when use_sliding_window) changes
  // results only past the window, so the context is capped at the window
  // instead of computing something else beyond it.
  const window = raw.sliding_window;
  if (type === 'qwen2_moe' && raw.use_sliding_window === true) throw new Error(`${where('use_sliding_window')}: sliding-window layers of Qwen2-MoE are not supported`);
  const slidingWindow = (type === 'mistral' || type === 'mixtral' || (type === 'qwen2' && raw.use_sliding_window === true)) && typeof window === 'number' && window > 0 ? window : null;
  if (type === 'olmoe') {
    if (raw.clip_qkv != null) throw new Error(`${where('clip_qkv')} = ${JSON.stringify(raw.clip_qkv)} (clamping q, k and v) is not supported`);
    if (nHeads * headDim !== hiddenSize) throw new Error(`${file}: OLMoE's q_norm is sized by hidden_size ${hiddenSize}, but num_attention_heads ${nHeads} × head_dim ${headDim} differ`);
  }

  const qwen = type === 'qwen2' || type === 'qwen2_moe';
  // OLMoE and GraniteMoE put attention_bias on o_proj too; Mixtral has no biases.
  const attentionBias = type === 'mixtral' ? false : bool('attention_bias', false);

  return {
    modelType: modelType as TransformerConfig['modelType'],
    vocabSize: int('vocab_size'),
    hiddenSize,
    intermediateSize: type === 'qwen2_moe' ? int('intermediate_size', 5632) : int('intermediate_size'),
    nLayers: int('num_hidden_layers'),
    nHeads,
    nKvHeads,
    headDim,
    rmsNormEps: num('rms_norm_eps', 1e-6),
    ropeTheta: ropeTheta(raw, type, positive),
    ropeScaling: parseRopeScaling(raw.rope_scaling, file),
    maxPositionEmbeddings: Math.min(int('max_position_embeddings', 2048), slidingWindow ?? Infinity),
    tieWordEmbeddings: bool('tie_word_embeddings', false),
    qkvBias: qwen ? true : attentionBias,
    oBias: qwen ? false : attentionBias,
    mlpBias: qwen || type !== 'llama' ? false : bool('mlp_bias', false),
    hiddenAct: 'silu',
    bosTokenId: typeof raw.bos_token_id === 'number' ? raw.bos_token_id : null,
    eosTokenIds: ids('eos_token_id'),
    moe: parseMoe(raw, type, file),
    qkNorm: type === 'olmoe',
    multipliers: type === 'granitemoe'
      ? { embedding: positive('embedding_multiplier', 1), attention: positive('attention_multiplier', 1), residual: positive('residual_multiplier', 1), logits: positive('logits_scaling', 1) }
      : { embedding: 1, attention: null, residual: 1, logits: 1 },
  };
}

/** rope_theta, or (transformers 5) rope_parameters.rope_theta; each class's own default. */
function ropeTheta(raw: Json, type: TransformerType, positive: (key: string, fallback: number) => number): number {
  const fallback = type === 'mixtral' ? 1e6 : 10000;
  const params = raw.rope_parameters;
  if (raw.rope_theta == null && params && typeof params === 'object' && (params as Json).rope_theta != null) {
    return configReader(params as Json, 'config.json rope_parameters').positive('rope_theta', fallback);
  }
  return positive('rope_theta', fallback);
}

/**
 * The sparse feed-forward of the MoE layouts, with each configuration
 * class's key names and defaults (MixtralConfig, OlmoeConfig,
 * Qwen2MoeConfig, GraniteMoeConfig).
 */
function parseMoe(raw: Json, type: TransformerType, file: string): MoeConfig | null {
  if (type === 'llama' || type === 'qwen2' || type === 'mistral') return null;
  const r = configReader(raw, file);
  const nLayers = r.int('num_hidden_layers');
  const nExperts = type === 'olmoe' || type === 'qwen2_moe' ? r.int('num_experts', type === 'olmoe' ? 64 : 60) : r.int('num_local_experts', 8);
  const topK = r.int('num_experts_per_tok', { mixtral: 2, olmoe: 8, qwen2_moe: 4, granitemoe: 2 }[type]);
  if (topK > nExperts) throw new Error(`${r.where('num_experts_per_tok')} = ${topK} exceeds the ${nExperts} experts`);
  let sparse = Array<boolean>(nLayers).fill(true);
  if (type === 'qwen2_moe') {
    const step = r.int('decoder_sparse_step', 1);
    const only = raw.mlp_only_layers ?? [];
    if (!Array.isArray(only) || !only.every((l) => Number.isInteger(l))) throw new Error(`${r.where('mlp_only_layers')} must be a list of layer indices`);
    sparse = sparse.map((_, l) => !only.includes(l) && (l + 1) % step === 0);
  }
  return {
    layout: type,
    nExperts,
    topK,
    router: type === 'granitemoe' ? 'topk-softmax' : 'softmax-topk',
    // Mixtral always renormalises; GraniteMoE's softmax over the k is normalised by construction.
    normTopK: type === 'mixtral' || type === 'granitemoe' ? true : r.bool('norm_topk_prob', false),
    expertSize: type === 'qwen2_moe' ? r.int('moe_intermediate_size', 1408) : r.int('intermediate_size'),
    sharedExpertSize: type === 'qwen2_moe' ? r.int('shared_expert_intermediate_size', 5632) : 0,
    sparse,
  };
}

function parseRopeScaling(v: unknown, file: string): RopeScaling | null {
  if (v == null) return null;
  if (typeof v !== 'object') throw new Error(`${file}: 'rope_scaling' must be an object or null`);
  const s = v as Json;
  const type = s.rope_type ?? s.type;
  if (type === 'default') return null;
  if (type !== 'llama3') {
    throw new Error(`${file}: rope_scaling type '${String(type)}' is not supported (only 'llama3' and 'default')`);
  }
  const n = (key: string) => {
    const x = s[key];
    if (typeof x !== 'number' || !(x > 0)) throw new Error(`${file}: rope_scaling.${key} must be a positive number, got ${JSON.stringify(x)}`);
    return x;
  };
  return {
    type: 'llama3',
    factor: n('factor'),
    lowFreqFactor: n('low_freq_factor'),
    highFreqFactor: n('high_freq_factor'),
    originalMaxPositionEmbeddings: n('original_max_position_embeddings'),
  };
}
