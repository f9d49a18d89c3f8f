// A Llama-family checkpoint (config.json + safetensors, read by Tessera's own
// loader) as an ONNX decoder for onnxruntime-web: the peer the bench runs the
// same weights through.
//
// The graph is laid out as onnxruntime-genai's model builder lays out its
// decoders (src/python/py/models/builder.py), which is also what
// transformers.js feeds:
//   inputs   input_ids        int64 (batch_size, sequence_length)
//            attention_mask   int64 (batch_size, total_sequence_length)   all ones, past + new
//            position_ids     int64 (batch_size, sequence_length)         past .. past + S - 1
//            past_key_values.{l}.key / .value   f32 (batch_size, Hkv, past_sequence_length, Dh)
//   outputs  logits           f32 (batch_size, sequence_length, V)
//            present.{l}.key / .value           f32 (batch_size, Hkv, total_sequence_length, Dh)
//
// One layer, with the fused ops onnxruntime's WebGPU EP accelerates (each also
// has a CPU kernel, which the WASM EP runs):
//   n     = SkipSimplifiedLayerNormalization(x_prev, residual, input_layernorm)   (Simplified... on layer 0)
//   q,k,v = MatMul | MatMulNBits (n)  (+ bias for Qwen2)
//   q,k   = com.microsoft.RotaryEmbedding(q|k, position_ids, cos_cache, sin_cache)   rotate_half (not interleaved)
//   a     = com.microsoft.GroupQueryAttention(q, k, v, past k, past v, seqlens_k, total_sequence_length)
//   o     = o_proj(a)
//   n2    = SkipSimplifiedLayerNormalization(o, residual, post_attention_layernorm)
//   y     = down_proj(silu(gate_proj(n2)) * up_proj(n2))           silu = x * Sigmoid(x)
// and logits = lm_head(SkipSimplifiedLayerNormalization(y_last, residual, model.norm)).
// seqlens_k = ReduceSum(attention_mask) - 1 and total_sequence_length =
// attention_mask's second dimension, as the builder computes them.
// This is what Hugging Face LlamaForCausalLM computes: RMSNorm(x) = x / sqrt(mean(x²) + eps) * w,
// RoPE with inv_freq = 1 / theta^(2i / Dh) (Llama 3 scaling applied to it when configured),
// GQA with scale 1 / sqrt(Dh) and H / Hkv query heads per KV head, SwiGLU, tied or untied head.

import { openSource, type SourceInput } from '../../src/models/loader/source';
import { openCheckpoint } from '../../src/models/loader/safetensors';
import { checkTensors } from '../../src/models/loader/weights';
import { parseTransformerConfig, type TransformerConfig } from '../../src/models/transformer/config';
import { transformerTensorShapes } from '../../src/models/transformer/weights';
import { llama3InvFreq } from '../../src/models/transformer/rope_scaling';
import { ropeInvFreq, ropeTable } from '../../src/kernels/rope';
import { GraphBuilder } from './onnx_graph';
import { NBITS_BLOCK, toMatMulNBits, type ZeroPointMode } from './matmul_nbits';

export interface OnnxExportOptions {
  /** 'f32': MatMul on f32 weights. 'q4': com.microsoft MatMulNBits, 4 bits, block 32. */
  weights: 'f32' | 'q4';
  /** q4 only: 'uint8' (default; every EP) or 'float' (Tessera's exact 4-bit weights; WASM EP only). See matmul_nbits.ts. */
  zeroPoints?: ZeroPointMode;
  /** The LM head's format (the embedding stays an f32 Gather); default: as `weights`. */
  lmHead?: 'f32' | 'q4';
  /** MatMulNBits accuracy_level: 0 (default) computes in the activation type; 4 lets the CPU quantize activations to int8. */
  accuracyLevel?: 0 | 1 | 2 | 3 | 4;
  /** Rows of the rotary cos/sin cache, the longest context the graph runs (default: the config's max_position_embeddings). */
  maxPositions?: number;
}

/** The exported decoder and what a runner needs to feed it. */
export interface OnnxDecoder {
  bytes: Uint8Array;
  config: TransformerConfig;
  nLayers: number;
  nKvHeads: number;
  headDim: number;
  vocabSize: number;
  maxPositions: number;
  weights: 'f32' | 'q4';
  zeroPoints: ZeroPointMode | null;
  /** Node count per op type ('com.microsoft.GroupQueryAttention': 2, ...). */
  ops: Record<string, number>;
  /** Bytes of constant data (weights and tables) in the model. */
  initializerBytes: number;
}

const IGNORED = [/\.rotary_emb\.inv_freq$/];

/** Reads a checkpoint and writes it as an ONNX decoder with a past/present KV cache. */
export async function exportOnnxDecoder(source: SourceInput, options: OnnxExportOptions): Promise<OnnxDecoder> {
  const opts = checkOptions(options);
  const src = openSource(source);
  if (!(await src.has('config.json'))) throw new Error(`exportOnnxDecoder: source: ${src.describe} has no config.json`);
  let raw: Record<string, unknown>;
  try {
    raw = JSON.parse(await src.text('config.json'));
  } catch (e) {
    throw new Error(`exportOnnxDecoder: source: ${src.describe}: config.json is not valid JSON (${(e as Error).message})`);
  }
  const cfg = llamaConfig(raw, src.describe);
  const maxPositions = opts.maxPositions ?? cfg.maxPositionEmbeddings;
  const ck = await openCheckpoint(src);
  checkTensors(ck, transformerTensorShapes(cfg), IGNORED, `exportOnnxDecoder: ${src.describe}`);
  const read = (name: string) => ck.readF32(name);
  return buildDecoder(cfg, read, { ...opts, maxPositions });
}

function checkOptions(o: OnnxExportOptions): OnnxExportOptions {
  if (!o || typeof o !== 'object') throw new Error(`exportOnnxDecoder: options must be an object like { weights: 'f32' }, got ${JSON.stringify(o)}`);
  if (o.weights !== 'f32' && o.weights !== 'q4') throw new Error(`exportOnnxDecoder: options.weights must be 'f32' or 'q4', got ${JSON.stringify(o.weights)}`);
  if (o.zeroPoints !== undefined && o.zeroPoints !== 'uint8' && o.zeroPoints !== 'float') throw new Error(`exportOnnxDecoder: options.zeroPoints must be 'uint8' or 'float', got ${JSON.stringify(o.zeroPoints)}`);
  if (o.zeroPoints !== undefined && o.weights !== 'q4' && o.lmHead !== 'q4') throw new Error(`exportOnnxDecoder: options.zeroPoints applies to 4-bit weights only (weights is '${o.weights}')`);
  if (o.lmHead !== undefined && o.lmHead !== 'f32' && o.lmHead !== 'q4') throw new Error(`exportOnnxDecoder: options.lmHead must be 'f32' or 'q4', got ${JSON.stringify(o.lmHead)}`);
  if (o.accuracyLevel !== undefined && ![0, 1, 2, 3, 4].includes(o.accuracyLevel)) throw new Error(`exportOnnxDecoder: options.accuracyLevel must be 0..4, got ${JSON.stringify(o.accuracyLevel)}`);
  if (o.maxPositions !== undefined && !(Number.isInteger(o.maxPositions) && o.maxPositions > 0)) throw new Error(`exportOnnxDecoder: options.maxPositions must be a positive integer, got ${JSON.stringify(o.maxPositions)}`);
  return o;
}

/** The config as Tessera parses it, refused unless it is a dense Llama-family decoder. */
function llamaConfig(raw: Record<string, unknown>, where: string): TransformerConfig {
  let cfg: TransformerConfig;
  try {
    cfg = parseTransformerConfig(raw);
  } catch (e) {
    throw new Error(`exportOnnxDecoder: source: ${where}: not a Llama-family checkpoint: ${(e as Error).message}`);
  }
  if (cfg.moe) throw new Error(`exportOnnxDecoder: source: ${where}: config.json model_type '${cfg.modelType}' is a mixture of experts; the ONNX peer exports dense Llama-family decoders (llama, qwen2, mistral) only`);
  if (cfg.qkNorm || cfg.multipliers.embedding !== 1 || cfg.multipliers.residual !== 1 || cfg.multipliers.logits !== 1 || cfg.multipliers.attention !== null) {
    throw new Error(`exportOnnxDecoder: source: ${where}: model_type '${cfg.modelType}' has q/k norms or multipliers the exported graph does not compute`);
  }
  return cfg;
}

interface BuildOptions extends OnnxExportOptions { maxPositions: number }

/** The graph, from a config and a reader of its f32 weights by Hugging Face name. */
export async function buildDecoder(cfg: TransformerConfig, read: (name: string) => Promise<Float32Array>, o: BuildOptions): Promise<OnnxDecoder> {
  const { hiddenSize: D, nHeads: H, nKvHeads: Hkv, headDim: Dh, vocabSize: V, intermediateSize: I, nLayers: L } = cfg;
  const zeroPoints: ZeroPointMode = o.zeroPoints ?? 'uint8';
  const headMode = o.lmHead ?? o.weights;
  const g = new GraphBuilder('tessera_llama_decoder');
  const MS = 'com.microsoft';

  // ---- inputs ----
  g.input('input_ids', 'int64', ['batch_size', 'sequence_length']);
  g.input('attention_mask', 'int64', ['batch_size', 'total_sequence_length']);
  g.input('position_ids', 'int64', ['batch_size', 'sequence_length']);
  for (let l = 0; l < L; l++) {
    g.input(`past_key_values.${l}.key`, 'float', ['batch_size', Hkv, 'past_sequence_length', Dh]);
    g.input(`past_key_values.${l}.value`, 'float', ['batch_size', Hkv, 'past_sequence_length', Dh]);
  }

  // ---- what GroupQueryAttention takes instead of a mask ----
  g.int64s('/model/const/axis1', [1]);
  g.int64Scalar('/model/const/one', 1);
  g.node('ReduceSum', ['attention_mask', '/model/const/axis1'], ['/model/mask/sum'], { keepdims: 0 });
  g.node('Sub', ['/model/mask/sum', '/model/const/one'], ['/model/mask/seqlens_k_i64']);
  g.node('Cast', ['/model/mask/seqlens_k_i64'], ['/model/mask/seqlens_k'], { to: 6 });
  g.node('Shape', ['attention_mask'], ['/model/mask/shape']);
  g.node('Gather', ['/model/mask/shape', '/model/const/one'], ['/model/mask/total_i64'], { axis: 0 });
  g.node('Cast', ['/model/mask/total_i64'], ['/model/mask/total_seq_len'], { to: 6 });

  // ---- rotary tables: (maxPositions, Dh / 2) each, the same float32 angles Tessera uses ----
  const invFreq = cfg.ropeScaling ? llama3InvFreq(ropeInvFreq(Dh, cfg.ropeTheta), cfg.ropeScaling) : ropeInvFreq(Dh, cfg.ropeTheta);
  const table = ropeTable(invFreq, 0, o.maxPositions);
  const half = Dh / 2;
  const cos = new Float32Array(o.maxPositions * half);
  const sin = new Float32Array(o.maxPositions * half);
  for (let i = 0; i < cos.length; i++) {
    cos[i] = table[2 * i];
    sin[i] = table[2 * i + 1];
  }
  g.initializer('cos_cache', 'float', [o.maxPositions, half], cos);
  g.initializer('sin_cache', 'float', [o.maxPositions, half], sin);

  // y = x · Wᵀ (+ b) for a checkpoint weight W of shape (N, K).
  const linear = async (x: string, name: string, N: number, K: number, mode: 'f32' | 'q4', bias: boolean, weightName = `${name}.weight`): Promise<string> => {
    const w = await read(weightName);
    const out = `/${name}/MatMul`;
    if (mode === 'f32') {
      g.initializer(`${name}.weight.T`, 'float', [K, N], transpose(w, N, K)); // MatMul's B is (K, N)
      g.node('MatMul', [x, `${name}.weight.T`], [out]);
    } else {
      const q = toMatMulNBits(w, N, K, zeroPoints);
      g.initializer(`${name}.weight.q4`, 'uint8', [N, q.nBlocks, NBITS_BLOCK / 2], q.B);
      g.initializer(`${name}.weight.scales`, 'float', [q.scales.length], q.scales);
      if (q.zeroPoints instanceof Float32Array) g.initializer(`${name}.weight.zp`, 'float', [q.zeroPoints.length], q.zeroPoints);
      else g.initializer(`${name}.weight.zp`, 'uint8', [q.zeroPoints.length], q.zeroPoints);
      g.node('MatMulNBits', [x, `${name}.weight.q4`, `${name}.weight.scales`, `${name}.weight.zp`], [out],
        { K, N, bits: 4, block_size: NBITS_BLOCK, accuracy_level: o.accuracyLevel ?? 0 }, MS);
    }
    if (!bias) return out;
    g.initializer(`${name}.bias`, 'float', [N], await read(`${name}.bias`));
    return g.node('Add', [out, `${name}.bias`], [`/${name}/Add`])[0];
  };
  const norm = async (weightName: string): Promise<string> => g.initializer(weightName, 'float', [D], await read(weightName));
  const eps = { float: cfg.rmsNormEps };

  // ---- embedding ----
  const embed = await read('model.embed_tokens.weight');
  g.initializer('model.embed_tokens.weight', 'float', [V, D], embed);
  let x = g.node('Gather', ['model.embed_tokens.weight', 'input_ids'], ['/model/embed_tokens/Gather'], { axis: 0 })[0];
  let residual = '';

  for (let l = 0; l < L; l++) {
    const p = `model.layers.${l}`;
    // n = RMSNorm(x + residual); residual = x + residual
    let n: string;
    if (l === 0) {
      [n] = g.node('SimplifiedLayerNormalization', [x, await norm(`${p}.input_layernorm.weight`)], [`/${p}/input_layernorm/output_0`], { axis: -1, epsilon: eps, stash_type: 1 });
      residual = x;
    } else {
      const out = g.node('SkipSimplifiedLayerNormalization', [x, residual, await norm(`${p}.input_layernorm.weight`)],
        [`/${p}/input_layernorm/output_0`, '', '', `/${p}/input_layernorm/output_3`], { epsilon: eps }, MS);
      [n, residual] = [out[0], out[3]];
    }

    // attention
    const a = `${p}.self_attn`;
    const q = await linear(n, `${a}.q_proj`, H * Dh, D, o.weights, cfg.qkvBias);
    const k = await linear(n, `${a}.k_proj`, Hkv * Dh, D, o.weights, cfg.qkvBias);
    const v = await linear(n, `${a}.v_proj`, Hkv * Dh, D, o.weights, cfg.qkvBias);
    const [qr] = g.node('RotaryEmbedding', [q, 'position_ids', 'cos_cache', 'sin_cache'], [`/${a}/q_rotary/output_0`], { interleaved: 0 }, MS);
    const [kr] = g.node('RotaryEmbedding', [k, 'position_ids', 'cos_cache', 'sin_cache'], [`/${a}/k_rotary/output_0`], { interleaved: 0 }, MS);
    const [attn] = g.node('GroupQueryAttention',
      [qr, kr, v, `past_key_values.${l}.key`, `past_key_values.${l}.value`, '/model/mask/seqlens_k', '/model/mask/total_seq_len'],
      [`/${a}/GroupQueryAttention/output_0`, `present.${l}.key`, `present.${l}.value`],
      { num_heads: H, kv_num_heads: Hkv, scale: { float: 1 / Math.sqrt(Dh) }, local_window_size: -1, do_rotary: 0 }, MS);
    const o_ = await linear(attn, `${a}.o_proj`, D, H * Dh, o.weights, cfg.oBias);

    // n2 = RMSNorm(o + residual); residual = o + residual
    const out2 = g.node('SkipSimplifiedLayerNormalization', [o_, residual, await norm(`${p}.post_attention_layernorm.weight`)],
      [`/${p}/post_attention_layernorm/output_0`, '', '', `/${p}/post_attention_layernorm/output_3`], { epsilon: eps }, MS);
    const n2 = out2[0];
    residual = out2[3];

    // SwiGLU
    const m = `${p}.mlp`;
    const gate = await linear(n2, `${m}.gate_proj`, I, D, o.weights, cfg.mlpBias);
    const up = await linear(n2, `${m}.up_proj`, I, D, o.weights, cfg.mlpBias);
    const [sig] = g.node('Sigmoid', [gate], [`/${m}/act_fn/Sigmoid`]);
    const [silu] = g.node('Mul', [gate, sig], [`/${m}/act_fn/Mul`]);
    const [prod] = g.node('Mul', [silu, up], [`/${m}/Mul`]);
    x = await linear(prod, `${m}.down_proj`, D, I, o.weights, cfg.mlpBias);
  }

  const fin = g.node('SkipSimplifiedLayerNormalization', [x, residual, await norm('model.norm.weight')],
    ['/model/norm/output_0', '', '', '/model/norm/output_3'], { epsilon: eps }, MS);
  // The head: its own weight, or the embedding when tied (an f32 head keeps a transposed copy).
  const headName = cfg.tieWordEmbeddings ? 'model.embed_tokens' : 'lm_head';
  const head = await linear(fin[0], headName === 'lm_head' ? 'lm_head' : 'lm_head_tied', V, D, headMode, false, `${headName}.weight`);
  g.node('Identity', [head], ['logits']);

  g.output('logits', 'float', ['batch_size', 'sequence_length', V]);
  for (let l = 0; l < L; l++) {
    g.output(`present.${l}.key`, 'float', ['batch_size', Hkv, 'total_sequence_length', Dh]);
    g.output(`present.${l}.value`, 'float', ['batch_size', Hkv, 'total_sequence_length', Dh]);
  }

  const bytes = g.encode({ '': 17, [MS]: 1 }, 'tessera bench/peer/onnx_export.ts', {
    model_type: cfg.modelType,
    weights: o.weights,
    zero_points: o.weights === 'q4' || headMode === 'q4' ? zeroPoints : 'none',
  });
  return {
    bytes, config: cfg, nLayers: L, nKvHeads: Hkv, headDim: Dh, vocabSize: V, maxPositions: o.maxPositions,
    weights: o.weights, zeroPoints: o.weights === 'q4' || headMode === 'q4' ? zeroPoints : null,
    ops: Object.fromEntries(g.opCounts), initializerBytes: g.initializerBytes,
  };
}

/** (N, K) row-major -> (K, N) row-major. */
function transpose(w: Float32Array, N: number, K: number): Float32Array {
  const t = new Float32Array(N * K);
  for (let n = 0; n < N; n++) for (let k = 0; k < K; k++) t[k * N + n] = w[n * K + k];
  return t;
}
