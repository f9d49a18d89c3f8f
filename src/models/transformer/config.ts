// config.json -> TransformerConfig for the Llama family (Llama, Qwen2,
// Mistral): the keys Hugging Face's LlamaConfig / Qwen2Config / MistralConfig
// read, with their defaults, and a clear Error for anything we cannot run.

import { configReader, type Json } from '../config_reader';

export interface RopeScaling {
  /** Llama 3.x frequency-dependent scaling (Hugging Face `_compute_llama3_parameters`). */
  type: 'llama3';
  factor: number;
  lowFreqFactor: number;
  highFreqFactor: number;
  originalMaxPositionEmbeddings: number;
}

export interface TransformerConfig {
  modelType: 'llama' | 'qwen2' | 'mistral';
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
}

// A Map: an architecture named "constructor" or "__proto__" must find nothing.
const ARCHITECTURES = new Map<string, TransformerConfig['modelType']>([
  ['LlamaForCausalLM', 'llama'],
  ['Qwen2ForCausalLM', 'qwen2'],
  ['MistralForCausalLM', 'mistral'],
]);

export function isTransformerConfig(raw: Json): boolean {
  return typeof raw.model_type === 'string' && ['llama', 'qwen2', 'mistral'].includes(raw.model_type);
}

export function parseTransformerConfig(raw: Json, file = 'config.json'): TransformerConfig {
  const { int, num, positive, bool, ids, where } = configReader(raw, file);
  const archs = Array.isArray(raw.architectures) ? (raw.architectures as unknown[]) : [];
  const fromArch = archs.map((a) => ARCHITECTURES.get(String(a))).find(Boolean);
  const modelType = raw.model_type;
  if (typeof modelType !== 'string' || !['llama', 'qwen2', 'mistral'].includes(modelType)) {
    throw new Error(`${where('model_type')}: ${JSON.stringify(modelType)} is not a transformer Tessera runs (llama, qwen2, mistral)`);
  }
  if (fromArch && fromArch !== modelType) {
    throw new Error(`${file}: architectures ${JSON.stringify(archs)} disagree with model_type '${modelType}'`);
  }

  const hiddenSize = int('hidden_size');
  const nHeads = int('num_attention_heads');
  const nKvHeads = int('num_key_value_heads', nHeads);
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
  const slidingWindow = (modelType === 'mistral' || (qwenType(modelType) && raw.use_sliding_window === true)) && typeof window === 'number' && window > 0 ? window : null;

  const qwen = qwenType(modelType);
  const attentionBias = bool('attention_bias', false);

  return {
    modelType: modelType as TransformerConfig['modelType'],
    vocabSize: int('vocab_size'),
    hiddenSize,
    intermediateSize: int('intermediate_size'),
    nLayers: int('num_hidden_layers'),
    nHeads,
    nKvHeads,
    headDim,
    rmsNormEps: num('rms_norm_eps', 1e-6),
    ropeTheta: positive('rope_theta', 10000),
    ropeScaling: parseRopeScaling(raw.rope_scaling, file),
    maxPositionEmbeddings: Math.min(int('max_position_embeddings', 2048), slidingWindow ?? Infinity),
    tieWordEmbeddings: bool('tie_word_embeddings', false),
    qkvBias: qwen ? true : attentionBias,
    oBias: qwen ? false : attentionBias,
    mlpBias: qwen ? false : bool('mlp_bias', false),
    hiddenAct: 'silu',
    bosTokenId: typeof raw.bos_token_id === 'number' ? raw.bos_token_id : null,
    eosTokenIds: ids('eos_token_id'),
  };
}

const qwenType = (t: string) => t === 'qwen2';

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
