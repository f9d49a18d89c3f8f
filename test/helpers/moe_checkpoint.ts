// Tiny mixture-of-experts checkpoints in the four Hugging Face layouts
// (Mixtral, OLMoE, Qwen2-MoE, GraniteMoe): a config.json with the keys the
// published checkpoints carry (mistralai/Mixtral-8x7B-v0.1,
// allenai/OLMoE-1B-7B-0924, Qwen/Qwen1.5-MoE-A2.7B,
// ibm-granite/granite-3.0-1b-a400m), model.safetensors with their tensor
// names (the 4.x per-expert names, which is what those files hold; see
// moeRefTensorShapes), seeded random weights and the fixture tokenizer.
// Nothing is downloaded.

import { roundBf16 } from './fixtures';
import { checkpointFiles } from './checkpoints';
import { roundF16 } from '../../src/runtime/f16';
import { dequantizeQ4, quantizeQ4 } from '../../src/runtime/q4';
import { dequantizeQ8, quantizeQ8 } from '../../src/runtime/q8';
import { byteLevelTokenizer } from './tokenizer';
import { randn } from './random';
import { moeRefTensorShapes, type MoeLayout, type RefMoeConfig } from '../../src/reference/moe';
import type { TensorSource } from '../../src/models/loader/weights';

export interface MoeCheckpoint {
  /** File name -> bytes, as loadModel takes them. */
  files: Record<string, Uint8Array>;
  /** The config.json object as written. */
  raw: Record<string, unknown>;
  config: RefMoeConfig;
  /** float32 weights by Hugging Face name (rounded to the stored dtype), for the reference. */
  weights: Map<string, Float32Array>;
}

export interface TinyMoeOptions {
  /** Routed experts E (default 4). */
  experts?: number;
  /** Experts per token K (default 2). */
  topK?: number;
  /** norm_topk_prob for OLMoE / Qwen2-MoE (default false, their published value). Mixtral and Granite always normalise: false is refused. */
  normTopK?: boolean;
  seed?: number;
  /** tie_word_embeddings (default: Granite true, the others false, as published). */
  tie?: boolean;
  /** num_hidden_layers (default 2). */
  layers?: number;
  dtype?: 'F32' | 'F16' | 'BF16';
  /** Overrides of config.json keys (applied last, before parsing). */
  extra?: Record<string, unknown>;
}

type Json = Record<string, unknown>;

const ARCH: Record<MoeLayout, string> = {
  mixtral: 'MixtralForCausalLM',
  olmoe: 'OlmoeForCausalLM',
  qwen2_moe: 'Qwen2MoeForCausalLM',
  granitemoe: 'GraniteMoeForCausalLM',
};

/**
 * The reference config from a config.json of one of the four layouts: the
 * keys each configuration_*.py reads, with its defaults, refusing what changes
 * the math and the reference does not implement. The GPU loader's parser
 * should agree with this one (the notes list every key).
 */
export function refMoeConfigFromHf(raw: Json): RefMoeConfig {
  const layout = raw.model_type as MoeLayout;
  if (!(layout in ARCH)) throw new Error(`moe config: model_type ${JSON.stringify(raw.model_type)} is not mixtral, olmoe, qwen2_moe or granitemoe`);
  const archs = Array.isArray(raw.architectures) ? raw.architectures : [];
  if (archs.length && !archs.includes(ARCH[layout])) throw new Error(`moe config: architectures ${JSON.stringify(archs)} disagree with model_type ${layout}`);
  const refuse = (why: string): never => { throw new Error(`moe config (${layout}): ${why}`); };
  const get = <T>(key: string, dflt: T): T => (raw[key] === undefined || raw[key] === null ? dflt : (raw[key] as T));

  // defaults of MixtralConfig / OlmoeConfig / Qwen2MoeConfig / GraniteMoeConfig
  const dflt = {
    mixtral: { V: 32000, D: 4096, I: 14336, L: 32, H: 32, eps: 1e-5, theta: 1e6, E: 8, K: 2 },
    olmoe: { V: 50304, D: 2048, I: 2048, L: 16, H: 16, eps: 1e-5, theta: 1e4, E: 64, K: 8 },
    qwen2_moe: { V: 151936, D: 2048, I: 5632, L: 24, H: 16, eps: 1e-6, theta: 1e4, E: 60, K: 4 },
    granitemoe: { V: 32000, D: 4096, I: 11008, L: 32, H: 32, eps: 1e-6, theta: 1e4, E: 8, K: 2 },
  }[layout];

  if (get('hidden_act', 'silu') !== 'silu') refuse(`hidden_act ${String(raw.hidden_act)} is not supported (silu only)`);
  const rs = (raw.rope_scaling ?? null) as Json | null;
  const rp = (raw.rope_parameters ?? null) as Json | null; // transformers 5.x writes rope_theta inside rope_parameters
  for (const r of [rs, rp]) {
    const type = r ? r.rope_type ?? r.type ?? 'default' : 'default';
    if (type !== 'default') refuse(`rope type ${String(type)} is not implemented`);
  }
  const D = get('hidden_size', dflt.D);
  const H = get('num_attention_heads', dflt.H);
  // OLMoE's and Qwen2-MoE's configs default num_key_value_heads to the head count (Qwen2MoeConfig to 16); Mixtral's to 8
  const Hkv = get('num_key_value_heads', layout === 'mixtral' ? 8 : layout === 'qwen2_moe' ? 16 : H);
  const headDim = get<number | null>('head_dim', null) ?? D / H;
  if (!Number.isInteger(headDim)) refuse(`hidden_size ${D} not divisible by ${H} heads`);
  if (H % Hkv) refuse(`${H} heads not divisible by ${Hkv} KV heads`);
  // OlmoeAttention sizes q_norm by hidden_size, so the q projection must be hidden_size wide
  if (layout === 'olmoe' && headDim * H !== D) refuse(`head_dim ${headDim} * ${H} heads != hidden_size ${D} (q_norm is hidden_size wide)`);

  const nExperts = get(layout === 'mixtral' || layout === 'granitemoe' ? 'num_local_experts' : 'num_experts', dflt.E);
  const topK = get('num_experts_per_tok', dflt.K);

  let slidingWindow: number | null = null;
  if (layout === 'mixtral') slidingWindow = get<number | null>('sliding_window', null);
  if (layout === 'qwen2_moe' && get('use_sliding_window', false)) refuse('use_sliding_window true is not implemented');

  const attentionBias = get('attention_bias', false);
  const clipQkv = layout === 'olmoe' ? get<number | null>('clip_qkv', null) : null;
  const granite = layout === 'granitemoe';
  return {
    layout,
    vocabSize: get('vocab_size', dflt.V),
    hiddenSize: D,
    nLayers: get('num_hidden_layers', dflt.L),
    nHeads: H,
    nKvHeads: Hkv,
    headDim,
    rmsNormEps: get('rms_norm_eps', dflt.eps),
    ropeTheta: (rp?.rope_theta as number | undefined) ?? get('rope_theta', dflt.theta),
    tieWordEmbeddings: get('tie_word_embeddings', false),
    // Mixtral: no attention biases at all; Qwen2-MoE: qkv_bias (default true), never on o_proj
    qkvBias: layout === 'qwen2_moe' ? get('qkv_bias', true) : layout === 'mixtral' ? false : attentionBias,
    oBias: layout === 'olmoe' || granite ? attentionBias : false,
    qkNorm: layout === 'olmoe',
    clipQkv,
    slidingWindow,
    nExperts,
    topK,
    // Mixtral always renormalises the K weights; Granite's softmax over K is normalised by construction
    normTopK: layout === 'mixtral' || granite ? true : get('norm_topk_prob', false),
    routerMode: granite ? 'topk-then-softmax' : 'softmax-then-topk',
    expertIntermediateSize: layout === 'qwen2_moe' ? get('moe_intermediate_size', 1408) : get('intermediate_size', dflt.I),
    sharedExpertIntermediateSize: layout === 'qwen2_moe' ? get('shared_expert_intermediate_size', 5632) : 0,
    decoderSparseStep: layout === 'qwen2_moe' ? get('decoder_sparse_step', 1) : 1,
    mlpOnlyLayers: layout === 'qwen2_moe' ? get<number[]>('mlp_only_layers', []) : [],
    denseIntermediateSize: layout === 'qwen2_moe' ? get('intermediate_size', dflt.I) : 0,
    embeddingMultiplier: granite ? get('embedding_multiplier', 1) : 1,
    // GraniteMoeConfig's default attention_multiplier is 1.0 (not 1/sqrt(Dh))
    attentionMultiplier: granite ? get('attention_multiplier', 1) : null,
    residualMultiplier: granite ? get('residual_multiplier', 1) : 1,
    logitsScaling: granite ? get('logits_scaling', 1) : 1,
  };
}

/**
 * A tiny checkpoint of `layout`: hidden 64, 4 heads over 2 KV heads (Dh 16),
 * E = 4 experts of width 32, K = 2, 2 layers. Qwen2-MoE: layer 1 dense through
 * mlp_only_layers [1] (width 96), shared expert of width 48. Granite: the
 * published multipliers (embedding 12, residual 0.22, logits 6) and
 * attention_multiplier 1/Dh (granite-3.0-1b-a400m has 0.015625 = 1/64 for Dh 64),
 * tied embeddings as published, and weights scaled to undo the multipliers (below).
 */
export function tinyMoe(layout: MoeLayout, o: TinyMoeOptions = {}): MoeCheckpoint {
  const tok = byteLevelTokenizer();
  const D = 64;
  const E = o.experts ?? 4;
  const K = o.topK ?? 2;
  const L = o.layers ?? 2;
  if ((layout === 'mixtral' || layout === 'granitemoe') && o.normTopK === false) {
    throw new Error(`tinyMoe: ${layout} always renormalises its top-k weights; normTopK false does not exist`);
  }
  const common = {
    hidden_act: 'silu',
    hidden_size: D,
    initializer_range: 0.02,
    max_position_embeddings: 512,
    num_attention_heads: 4,
    num_hidden_layers: L,
    num_key_value_heads: 2,
    output_router_logits: false,
    torch_dtype: 'float32',
    use_cache: true,
    vocab_size: tok.vocabSize,
  };
  // Each layout's keys, as its published config.json has them (values sized down)
  const byLayout: Record<MoeLayout, Json> = {
    mixtral: {
      architectures: [ARCH.mixtral], attention_dropout: 0.0, bos_token_id: tok.vocabSize - 3, eos_token_id: tok.eosId,
      intermediate_size: 32, model_type: 'mixtral', num_experts_per_tok: K, num_local_experts: E,
      rms_norm_eps: 1e-5, rope_theta: 1000000.0, router_aux_loss_coef: 0.02, sliding_window: null, tie_word_embeddings: o.tie ?? false,
    },
    olmoe: {
      architectures: [ARCH.olmoe], attention_bias: false, attention_dropout: 0.0, clip_qkv: null, eos_token_id: tok.eosId,
      intermediate_size: 32, model_type: 'olmoe', norm_topk_prob: o.normTopK ?? false, num_experts: E, num_experts_per_tok: K,
      pad_token_id: 1, rms_norm_eps: 1e-5, rope_scaling: null, rope_theta: 10000.0, router_aux_loss_coef: 0.01, tie_word_embeddings: o.tie ?? false,
    },
    qwen2_moe: {
      architectures: [ARCH.qwen2_moe], attention_dropout: 0.0, bos_token_id: tok.vocabSize - 3, eos_token_id: tok.eosId,
      decoder_sparse_step: 1, intermediate_size: 96, max_window_layers: L, mlp_only_layers: [1], model_type: 'qwen2_moe',
      moe_intermediate_size: 32, norm_topk_prob: o.normTopK ?? false, num_experts: E, num_experts_per_tok: K,
      rms_norm_eps: 1e-6, rope_theta: 1000000.0, router_aux_loss_coef: 0.001, shared_expert_intermediate_size: 48,
      sliding_window: 512, tie_word_embeddings: o.tie ?? false, use_sliding_window: false,
    },
    granitemoe: {
      architectures: [ARCH.granitemoe], attention_bias: false, attention_dropout: 0.0, attention_multiplier: 0.0625,
      bos_token_id: tok.vocabSize - 3, embedding_multiplier: 12.0, eos_token_id: tok.eosId, intermediate_size: 32,
      logits_scaling: 6.0, model_type: 'granitemoe', num_experts_per_tok: K, num_local_experts: E, pad_token_id: tok.eosId,
      residual_multiplier: 0.22, rms_norm_eps: 1e-6, rope_scaling: null, rope_theta: 10000.0, router_aux_loss_coef: 0.001,
      tie_word_embeddings: o.tie ?? true,
    },
  };
  const raw: Json = Object.fromEntries(Object.entries({ ...common, ...byLayout[layout], ...o.extra }).sort(([a], [b]) => (a < b ? -1 : 1)));
  const config = refMoeConfigFromHf(raw);
  const shapes = moeRefTensorShapes(config);
  const weights = new Map<string, Float32Array>();
  let seed = o.seed ?? 1;
  // Granite's multipliers, undone in the weights' scale (as its trained weights absorb them), so its
  // activations and branches are O(1) like the other layouts' and every layer moves the logits:
  // embeddings drawn at 1/embedding_multiplier, the residual branches' output matrices (o_proj,
  // output_linear) at 1/residual_multiplier times the usual 1/sqrt(fan-in).
  const granite = layout === 'granitemoe';
  const embedScale = granite ? 1 / (Number(raw.embedding_multiplier) || 1) : 1;
  const branchScale = (name: string) => (granite && /o_proj\.weight|output_linear\.weight/.test(name) ? 1 / (Number(raw.residual_multiplier) || 1) : 1);
  for (const [name, shape] of shapes) {
    const n = shape.reduce((a, b) => a * b, 1);
    // As tinyTransformer: norm weights near 1, biases small, matrices scaled by
    // 1/sqrt(fan-in) (the last dim; routers too, so router logits are O(1) and
    // top-k choices differ between tokens), embeddings and the head at 1 (Granite: above).
    const w = name.endsWith('norm.weight')
      ? Float32Array.from(randn(seed++, n, 0.1), (v) => 1 + v)
      : randn(seed++, n, name.endsWith('.bias') ? 0.1 : name.includes('embed') || name.startsWith('lm_head') ? embedScale : branchScale(name) / Math.sqrt(shape[shape.length - 1]));
    weights.set(name, w);
  }
  const dtype = o.dtype ?? 'F32';
  // the reference sees what the file holds: values rounded to the stored dtype
  if (dtype !== 'F32') for (const w of weights.values()) w.forEach((v, i) => (w[i] = dtype === 'BF16' ? roundBf16(v) : roundF16(v)));
  return { files: checkpointFiles(raw, weights, shapes, dtype), raw, config, weights };
}

const EXPERTS = /(\.experts\.|input_linear|output_linear)/;
const ROUTERS = /(\.gate\.weight|router\.layer\.weight|shared_expert_gate\.weight)$/;

/**
 * The weights as the GPU holds them: experts 4-bit always, routers f32, the
 * rest per the mode (vocabulary 8-bit beside q4). GraniteMoE's multipliers
 * are folded into the embedding, o_proj and output_linear before they are
 * quantized: the reference gets those quantized weights divided back.
 */
export function moeAsLoaded(ck: MoeCheckpoint, mode: 'q4' | 'f32'): (name: string) => ArrayLike<number> {
  const shapes = moeRefTensorShapes(ck.config);
  const granite = ck.raw.model_type === 'granitemoe';
  const [mEmb, mRes] = [Number(ck.raw.embedding_multiplier ?? 1), Number(ck.raw.residual_multiplier ?? 1)];
  const out = new Map<string, ArrayLike<number>>();
  for (const [name, w] of ck.weights) {
    const shape = shapes.get(name)!;
    const cols = shape[shape.length - 1];
    const rows = w.length / cols;
    const vocab = /^(model\.embed_tokens|lm_head)\.weight$/.test(name);
    const q4 = EXPERTS.test(name) || (mode === 'q4' && shape.length === 2 && !vocab && !ROUTERS.test(name));
    const q8 = vocab && mode === 'q4';
    const s = !granite ? 1 : name === 'model.embed_tokens.weight' ? mEmb : /(o_proj|output_linear)\.weight$/.test(name) ? mRes : 1;
    const held = s === 1 ? w : Float32Array.from(w, (v) => v * s);
    const held2 = q4 ? dequantizeQ4(quantizeQ4(held, rows, cols, 32)) : q8 ? dequantizeQ8(quantizeQ8(held, rows, cols, 32)) : held;
    out.set(name, s === 1 ? held2 : Float64Array.from(held2, (v) => v / s));
  }
  return (name) => out.get(name) ?? (() => { throw new Error(`no weight ${name}`); })();
}

/** The fixture's weights served as a TensorSource (by their published names and shapes), for building a model from its parts. */
export function moeTensorSource(ck: MoeCheckpoint, shapes: Map<string, number[]>): TensorSource {
  return {
    names: [...ck.weights.keys()],
    info: (n) => ({ dtype: 'F32', shape: shapes.get(n)!, byteLength: ck.weights.get(n)!.length * 4 }),
    readF32: async (n) => Float32Array.from(ck.weights.get(n)!),
  };
}
