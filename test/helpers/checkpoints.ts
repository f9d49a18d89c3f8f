// Small fixture checkpoints with exactly the Hugging Face tensor names and
// config keys, random weights, real safetensors bytes and a real
// tokenizer.json. Nothing is downloaded.

import { roundBf16, writeSafetensors } from './fixtures';
import { roundF16 } from '../../src/runtime/f16';
import { byteLevelTokenizer } from './tokenizer';
import { randn, randu } from './random';
import { parseTransformerConfig, type TransformerConfig } from '../../src/models/transformer/config';
import { transformerTensorShapes } from '../../src/models/transformer/weights';
import { parseMambaConfig, type MambaConfig } from '../../src/models/mamba/config';
import { mambaTensorShapes } from '../../src/models/mamba/weights';

export interface Checkpoint {
  /** File name -> bytes, as loadModel takes them (or written to a folder). */
  files: Record<string, Uint8Array>;
  config: TransformerConfig;
  /** float32 weights by Hugging Face name, for the reference model. */
  weights: Map<string, Float32Array>;
}

export interface TinyTransformerOptions {
  modelType?: 'llama' | 'qwen2' | 'mistral';
  hidden?: number;
  layers?: number;
  heads?: number;
  kvHeads?: number;
  intermediate?: number;
  tie?: boolean;
  maxPositions?: number;
  seed?: number;
  dtype?: 'F32' | 'F16' | 'BF16';
  ropeScaling?: Record<string, unknown>;
  extra?: Record<string, unknown>;
}

const enc = new TextEncoder();

/** The files of a checkpoint folder: config.json, the weights as safetensors, the fixture tokenizer. */
export function checkpointFiles(raw: Record<string, unknown>, weights: Map<string, Float32Array>, shapes: Map<string, number[]>, dtype: 'F32' | 'F16' | 'BF16'): Record<string, Uint8Array> {
  const tok = byteLevelTokenizer();
  return {
    'config.json': enc.encode(JSON.stringify(raw, null, 2)),
    'model.safetensors': writeSafetensors(Object.fromEntries([...weights].map(([name, data]) => [name, { dtype, shape: shapes.get(name)!, data }])), { format: 'pt' }),
    'tokenizer.json': enc.encode(JSON.stringify(tok.tokenizerJson)),
    'tokenizer_config.json': enc.encode(JSON.stringify(tok.tokenizerConfig)),
  };
}

/** A tiny Llama-family checkpoint (GQA 4 heads over 2 KV heads by default). */
export function tinyTransformer(o: TinyTransformerOptions = {}): Checkpoint {
  const tok = byteLevelTokenizer();
  const modelType = o.modelType ?? 'llama';
  const raw: Record<string, unknown> = {
    architectures: [{ llama: 'LlamaForCausalLM', qwen2: 'Qwen2ForCausalLM', mistral: 'MistralForCausalLM' }[modelType]],
    model_type: modelType,
    hidden_size: o.hidden ?? 64,
    intermediate_size: o.intermediate ?? 96,
    num_hidden_layers: o.layers ?? 2,
    num_attention_heads: o.heads ?? 4,
    num_key_value_heads: o.kvHeads ?? 2,
    hidden_act: 'silu',
    max_position_embeddings: o.maxPositions ?? 512,
    rms_norm_eps: 1e-5,
    rope_theta: 10000,
    rope_scaling: o.ropeScaling ?? null,
    tie_word_embeddings: o.tie ?? true,
    vocab_size: tok.vocabSize,
    bos_token_id: tok.vocabSize - 3,
    eos_token_id: tok.eosId,
    torch_dtype: 'float32',
    ...o.extra,
  };
  const config = parseTransformerConfig(raw);
  const weights = new Map<string, Float32Array>();
  let seed = o.seed ?? 1;
  for (const [name, shape] of transformerTensorShapes(config)) {
    const n = shape.reduce((a, b) => a * b, 1);
    // Norm weights near 1, biases small, matrices scaled by 1/sqrt(fan-in) (plus a
    // larger embedding) so activations stay O(1) and logits spread out.
    const w = name.endsWith('norm.weight')
      ? Float32Array.from(randn(seed++, n, 0.1), (v) => 1 + v)
      : randn(seed++, n, name.endsWith('.bias') ? 0.1 : name.includes('embed') || name.startsWith('lm_head') ? 1 : 1 / Math.sqrt(shape[shape.length - 1]));
    weights.set(name, w);
  }
  const dtype = o.dtype ?? 'F32';
  // The reference sees what the file holds: values rounded to the stored dtype.
  if (dtype !== 'F32') for (const w of weights.values()) w.forEach((v, i) => (w[i] = dtype === 'BF16' ? roundBf16(v) : roundF16(v)));
  return { config, weights, files: checkpointFiles(raw, weights, transformerTensorShapes(config), dtype) };
}

export interface MambaCheckpoint {
  files: Record<string, Uint8Array>;
  config: MambaConfig;
  weights: Map<string, Float32Array>;
}

export interface TinyMambaOptions {
  hidden?: number;
  layers?: number;
  state?: number;
  expand?: number;
  conv?: number;
  tie?: boolean;
  seed?: number;
  /** 'state-spaces' writes the original repository's config keys and embedding name. */
  layout?: 'hf' | 'state-spaces';
  extra?: Record<string, unknown>;
}

/** A tiny Mamba-1 checkpoint initialised like the real ones: A_log = log(1..N), D = 1, dt in [0.001, 0.1]. */
export function tinyMamba(o: TinyMambaOptions = {}): MambaCheckpoint {
  const tok = byteLevelTokenizer();
  const hidden = o.hidden ?? 64;
  const layout = o.layout ?? 'hf';
  const raw: Record<string, unknown> = layout === 'hf'
    ? {
        architectures: ['MambaForCausalLM'], model_type: 'mamba', hidden_size: hidden, state_size: o.state ?? 16,
        num_hidden_layers: o.layers ?? 2, expand: o.expand ?? 2, conv_kernel: o.conv ?? 4, time_step_rank: 'auto',
        intermediate_size: (o.expand ?? 2) * hidden, layer_norm_epsilon: 1e-5, use_bias: false, use_conv_bias: true,
        vocab_size: tok.vocabSize, tie_word_embeddings: o.tie ?? true, eos_token_id: tok.eosId, hidden_act: 'silu', ...o.extra,
      }
    : {
        d_model: hidden, n_layer: o.layers ?? 2, vocab_size: tok.vocabSize, pad_vocab_size_multiple: 1,
        ssm_cfg: { d_state: o.state ?? 16, d_conv: o.conv ?? 4, expand: o.expand ?? 2 }, rms_norm: true, residual_in_fp32: true, fused_add_norm: true, tie_embeddings: o.tie ?? true, ...o.extra,
      };
  const config = parseMambaConfig(raw);
  const N = config.stateSize;
  const weights = new Map<string, Float32Array>();
  let seed = o.seed ?? 1;
  for (const [name, shape] of mambaTensorShapes(config)) {
    const n = shape.reduce((a, b) => a * b, 1);
    let w: Float32Array;
    if (name.endsWith('A_log')) w = Float32Array.from({ length: n }, (_, i) => Math.log(1 + (i % N)));
    else if (name.endsWith('mixer.D')) w = new Float32Array(n).fill(1);
    else if (name.endsWith('dt_proj.bias')) {
      // inverse softplus of dt drawn log-uniformly in [0.001, 0.1], as the real initialisation
      const u = randu(seed++, n, 0, 1);
      w = Float32Array.from(u, (v) => { const dt = Math.exp(Math.log(0.001) + v * (Math.log(0.1) - Math.log(0.001))); return dt + Math.log(-Math.expm1(-dt)); });
    } else if (name.endsWith('norm.weight') || name.endsWith('norm_f.weight')) w = Float32Array.from(randn(seed++, n, 0.1), (v) => 1 + v);
    else w = randn(seed++, n, name.includes('embed') || name.startsWith('lm_head') ? 1 : name.endsWith('.bias') ? 0.1 : 1 / Math.sqrt(shape[shape.length - 1]));
    weights.set(name, w);
  }
  return { config, weights, files: checkpointFiles(raw, weights, mambaTensorShapes(config), 'F32') };
}
