// config.json -> RetNetConfig for flash-linear-attention's RetNet
// (model_type "retnet", RetNetForCausalLM: fla-hub/retnet-*): the keys of
// fla/models/retnet/configuration_retnet.py with their defaults. Keys that
// change the math and are not supported are refused, naming the key.

import { configReader, type Json } from '../config_reader';

export interface RetNetConfig {
  vocabSize: number;        // V
  hiddenSize: number;       // D
  nLayers: number;
  nHeads: number;           // H
  keyDim: number;           // Dk per head = int(D * expand_k) / H
  valueDim: number;         // Dv per head = int(D * expand_v) / H
  intermediateSize: number; // I, the gated MLP's width
  /** eps of every RMSNorm, the per-head gate norm included. */
  normEps: number;
  tieWordEmbeddings: boolean;
  eosTokenIds: number[];
}

/** Keys whose non-default value changes the math, and what they would need. */
const REFUSED: [key: string, ok: (v: unknown) => boolean, what: string][] = [
  ['use_short_conv', (v) => v == null || v === false, 'short convolutions on q, k and v'],
  ['feature_map', (v) => v == null, 'a feature map on q and k'],
  ['attn', (v) => v == null, 'hybrid softmax-attention layers'],
  ['attnres_block_size', (v) => v == null, 'attention-residual mixing'],
  ['use_output_gate', (v) => v == null || v === true, 'retention without the output gate'],
  ['elementwise_affine', (v) => v == null || v === true, 'a head norm without its weight'],
  ['hidden_act', (v) => v == null || v === 'swish', "an activation other than 'swish'"],
];

/** fla's GatedMLP width when intermediate_size is null: 256 * ceil(int(D * ratio * 2/3) / 256). */
export function retnetIntermediateSize(hidden: number, hiddenRatio: number): number {
  return 256 * Math.ceil(Math.trunc((hidden * hiddenRatio * 2) / 3) / 256);
}

export function parseRetNetConfig(raw: Json, file = 'config.json'): RetNetConfig {
  if (raw.model_type !== 'retnet') throw new Error(`${file}: model_type ${JSON.stringify(raw.model_type)} is not 'retnet'`);
  const r = configReader(raw, file);
  for (const [key, ok, what] of REFUSED) {
    if (!ok(raw[key])) throw new Error(`${r.where(key)} = ${JSON.stringify(raw[key])} (${what}) is not supported`);
  }
  const D = r.int('hidden_size', 2048);
  const H = r.int('num_heads', 8);
  if (raw.num_kv_heads != null && raw.num_kv_heads !== H) {
    throw new Error(`${r.where('num_kv_heads')} = ${JSON.stringify(raw.num_kv_heads)} differs from num_heads ${H}: grouped key/value heads are not supported`);
  }
  const dims = (key: string, fallback: number, name: string) => {
    const total = Math.trunc(D * r.positive(key, fallback));
    if (total < 1 || total % H !== 0) throw new Error(`${file}: hidden_size ${D} × ${key} ${raw[key] ?? fallback} = ${total} is not a positive multiple of num_heads ${H} (the ${name} dimension per head)`);
    return total / H;
  };
  const keyDim = dims('expand_k', 1, 'key');
  const valueDim = dims('expand_v', 2, 'value');
  // Rotary pairs dimension i with i + Dk/2; the kernels read heads 4 values at a time.
  if (keyDim % 4 !== 0 || valueDim % 4 !== 0) throw new Error(`${file}: the key and value dimensions per head (${keyDim}, ${valueDim}) must be multiples of 4`);
  // hidden_ratio: RetNetConfig's default 2 when absent; null is GatedMLP's own default, 4.
  const ratio = !('hidden_ratio' in raw) ? 2 : raw.hidden_ratio === null ? 4 : r.positive('hidden_ratio', 2);
  const intermediateSize = raw.intermediate_size == null ? retnetIntermediateSize(D, ratio) : r.int('intermediate_size');
  // Configs before 2024-04 call the eps rms_norm_eps.
  const normEps = raw.norm_eps != null ? r.num('norm_eps', 1e-6) : r.num('rms_norm_eps', 1e-6);
  return {
    vocabSize: r.int('vocab_size', 32000),
    hiddenSize: D,
    nLayers: r.int('num_hidden_layers', 24),
    nHeads: H,
    keyDim,
    valueDim,
    intermediateSize,
    normEps,
    tieWordEmbeddings: r.bool('tie_word_embeddings', false),
    eosTokenIds: 'eos_token_id' in raw ? r.ids('eos_token_id') : [2], // RetNetConfig's default
  };
}
