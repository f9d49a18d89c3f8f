// A tiny RetNet checkpoint in fla's layout (fla-org/flash-linear-attention,
// fla/models/retnet/configuration_retnet.py and modeling_retnet.py): a
// config.json with RetNetConfig's keys and defaults, model.safetensors with
// fla's tensor names, random weights, and the fixture byte-level tokenizer.
// Nothing is downloaded.

import { roundBf16 } from './fixtures';
import { checkpointFiles } from './checkpoints';
import { roundF16 } from '../../src/runtime/f16';
import { byteLevelTokenizer } from './tokenizer';
import { randn } from './random';
import { retnetRefTensorShapes, type RetNetRefConfig } from '../../src/reference/retnet';

export interface RetNetCheckpoint {
  /** File name -> bytes, as loadModel takes them. */
  files: Record<string, Uint8Array>;
  config: RetNetRefConfig;
  /** The config.json object as written. */
  raw: Record<string, unknown>;
  /** float32 weights by fla name (rounded to the stored dtype), for the reference. */
  weights: Map<string, Float32Array>;
}

export interface TinyRetNetOptions {
  layers?: number;
  hidden?: number;
  heads?: number;
  kvHeads?: number | null;
  expandK?: number;
  expandV?: number;
  /** MLP width; null (the fla default) derives it from hidden_ratio. */
  intermediate?: number | null;
  hiddenRatio?: number | null;
  /** 'split' (fla since 2025-02-09): gate_proj + up_proj; 'fused': one gate_proj of 2I rows. */
  mlpLayout?: 'split' | 'fused';
  tie?: boolean;
  seed?: number;
  dtype?: 'F32' | 'F16' | 'BF16';
  /** Overrides of config.json keys (applied last). */
  extra?: Record<string, unknown>;
}

/** GatedMLP's width when intermediate_size is null (fla/modules/mlp.py GatedMLP.__init__). */
export function flaIntermediateSize(hidden: number, hiddenRatio: number | null | undefined): number {
  const ratio = hiddenRatio ?? 4; // GatedMLP's own default; RetNetConfig's default is 2
  const i = Math.trunc((hidden * ratio * 2) / 3);
  return 256 * Math.ceil(i / 256);
}

/**
 * The reference config from an fla RetNet config.json, refusing what changes
 * the math and the reference does not implement. The GPU loader's parser
 * (src/models/retnet/config.ts) should agree with this one.
 */
export function retnetRefConfigFromFla(raw: Record<string, unknown>, mlpLayout: 'split' | 'fused' = 'split'): RetNetRefConfig {
  const get = <T>(key: string, dflt: T): T => (raw[key] === undefined ? dflt : (raw[key] as T));
  const refuse = (why: string) => { throw new Error(`retnet config: ${why}`); };
  if (get('use_short_conv', false)) refuse('use_short_conv true is not supported');
  if (get<unknown>('feature_map', null) != null) refuse(`feature_map ${String(raw.feature_map)} is not supported`);
  if (get<unknown>('attn', null) != null) refuse('hybrid attention layers (attn) are not supported');
  if (get<unknown>('attnres_block_size', null) != null) refuse('attnres_block_size is not supported');
  if (get('hidden_act', 'swish') !== 'swish') refuse(`hidden_act ${String(raw.hidden_act)} is not supported`);
  const D = get('hidden_size', 2048);
  const H = get('num_heads', 8);
  const Hkv = get<number | null>('num_kv_heads', null) ?? H;
  const keyDim = Math.trunc(D * get('expand_k', 1));
  const valueDim = Math.trunc(D * get('expand_v', 2));
  if (keyDim % H || valueDim % H) refuse(`key dim ${keyDim} / value dim ${valueDim} not divisible by ${H} heads`);
  if (H % Hkv) refuse(`${H} heads not divisible by ${Hkv} KV heads`);
  return {
    hiddenSize: D,
    nLayers: get('num_hidden_layers', 24),
    nHeads: H,
    nKvHeads: Hkv,
    keyDim: keyDim / H,
    valueDim: valueDim / H,
    intermediateSize: get<number | null>('intermediate_size', null) ?? flaIntermediateSize(D, get<number | null>('hidden_ratio', 2)),
    normEps: get<number | undefined>('norm_eps', undefined) ?? get('rms_norm_eps', 1e-6),
    vocabSize: get('vocab_size', 32000),
    tieWordEmbeddings: get('tie_word_embeddings', false),
    mlpLayout,
    useOutputGate: get('use_output_gate', true),
    fuseNorm: get('fuse_norm', true),
    elementwiseAffine: !!get<boolean | null>('elementwise_affine', true),
    ropeTheta: 10000,
  };
}


/** A tiny fla RetNet: hidden 64, 2 layers, 2 heads, Dk 32, Dv 64, MLP 256 (from hidden_ratio 2), untied. */
export function tinyRetnet(o: TinyRetNetOptions = {}): RetNetCheckpoint {
  const tok = byteLevelTokenizer();
  // RetNetConfig's keys in its own order, with its defaults except the sizes
  const raw: Record<string, unknown> = {
    architectures: ['RetNetForCausalLM'],
    model_type: 'retnet',
    attn_mode: 'chunk',
    hidden_size: o.hidden ?? 64,
    expand_k: o.expandK ?? 1,
    expand_v: o.expandV ?? 2,
    hidden_ratio: o.hiddenRatio === undefined ? 2 : o.hiddenRatio,
    intermediate_size: o.intermediate ?? null,
    num_hidden_layers: o.layers ?? 2,
    num_heads: o.heads ?? 2,
    num_kv_heads: o.kvHeads ?? null,
    feature_map: null,
    hidden_act: 'swish',
    use_short_conv: false,
    conv_size: 4,
    use_output_gate: true,
    max_position_embeddings: 2048,
    elementwise_affine: true,
    norm_eps: 1e-6,
    attn: null,
    use_cache: true,
    pad_token_id: null,
    bos_token_id: tok.vocabSize - 3,
    eos_token_id: tok.eosId,
    tie_word_embeddings: o.tie ?? false,
    initializer_range: 0.02,
    fuse_norm: true,
    fuse_swiglu: true,
    fuse_cross_entropy: true,
    fuse_linear_cross_entropy: false,
    use_l2warp: false,
    vocab_size: tok.vocabSize,
    torch_dtype: 'float32',
    ...o.extra,
  };
  const config = retnetRefConfigFromFla(raw, o.mlpLayout ?? 'split');
  const shapes = retnetRefTensorShapes(config);
  const weights = new Map<string, Float32Array>();
  let seed = o.seed ?? 1;
  for (const [name, shape] of shapes) {
    const n = shape.reduce((a, b) => a * b, 1);
    // As tinyTransformer: norm weights near 1, matrices scaled by 1/sqrt(fan-in),
    // embeddings and the head at 1, so activations stay O(1) and logits spread out.
    const w = shape.length === 1
      ? Float32Array.from(randn(seed++, n, 0.1), (v) => 1 + v)
      : randn(seed++, n, name.includes('embeddings') || name.startsWith('lm_head') ? 1 : 1 / Math.sqrt(shape[shape.length - 1]));
    weights.set(name, w);
  }
  const dtype = o.dtype ?? 'F32';
  // The reference sees what the file holds: values rounded to the stored dtype.
  if (dtype !== 'F32') for (const w of weights.values()) w.forEach((v, i) => (w[i] = dtype === 'BF16' ? roundBf16(v) : roundF16(v)));
  const files = checkpointFiles(raw, weights, shapes, dtype);
  return { files, config, raw, weights };
}
