// config.json -> MambaConfig for Mamba-1 checkpoints: Hugging Face
// MambaForCausalLM (model_type "mamba", state-spaces/mamba-*-hf), and the
// original state-spaces layout (d_model, n_layer, ssm_cfg; no model_type).

import { configReader, type Json } from '../config_reader';

export interface MambaConfig {
  /** Which naming the checkpoint uses: 'hf' (backbone.embeddings) or 'state-spaces' (backbone.embedding). */
  layout: 'hf' | 'state-spaces';
  vocabSize: number;      // V
  hiddenSize: number;     // D
  stateSize: number;      // N
  expand: number;
  intermediateSize: number; // Di = expand * D
  convKernel: number;     // Kc
  timeStepRank: number;   // R
  nLayers: number;
  eps: number;
  useBias: boolean;       // in_proj / out_proj biases
  useConvBias: boolean;
  tieWordEmbeddings: boolean;
  eosTokenIds: number[];
}


/** True for a state-spaces/mamba config.json (no model_type, d_model + n_layer). */
export function isStateSpacesMamba(raw: Json): boolean {
  return raw.model_type == null && typeof raw.d_model === 'number' && typeof raw.n_layer === 'number';
}

export function parseMambaConfig(raw: Json, file = 'config.json'): MambaConfig {
  const cfg = isStateSpacesMamba(raw) ? parseStateSpaces(raw, file) : parseHf(raw, file);
  if (cfg.convKernel < 2) throw new Error(`${file}: the conv kernel must be at least 2, got ${cfg.convKernel}`);
  return cfg;
}

function parseHf(raw: Json, file: string): MambaConfig {
  if (raw.model_type !== 'mamba') throw new Error(`${file}: model_type ${JSON.stringify(raw.model_type)} is not 'mamba'`);
  const r = reader(raw, file);
  const hiddenSize = r.int('hidden_size');
  const expand = r.int('expand', 2);
  const intermediateSize = r.int('intermediate_size', expand * hiddenSize);
  if (intermediateSize !== expand * hiddenSize) {
    throw new Error(`${file}: intermediate_size ${intermediateSize} is not expand ${expand} × hidden_size ${hiddenSize}`);
  }
  if (raw.hidden_act != null && raw.hidden_act !== 'silu') throw new Error(`${file}: 'hidden_act' ${JSON.stringify(raw.hidden_act)} is not supported (silu only)`);
  return {
    layout: 'hf',
    vocabSize: r.int('vocab_size'),
    hiddenSize,
    stateSize: r.int('state_size', 16),
    expand,
    intermediateSize,
    convKernel: r.int('conv_kernel', 4),
    timeStepRank: r.rank('time_step_rank', hiddenSize),
    nLayers: r.int('num_hidden_layers'),
    eps: r.num('layer_norm_epsilon', 1e-5),
    useBias: r.bool('use_bias', false),
    useConvBias: r.bool('use_conv_bias', true),
    tieWordEmbeddings: r.bool('tie_word_embeddings', true),
    eosTokenIds: r.ids('eos_token_id'),
  };
}

function parseStateSpaces(raw: Json, file: string): MambaConfig {
  const r = reader(raw, file);
  const ssm = (raw.ssm_cfg ?? {}) as Json;
  if (typeof ssm !== 'object' || Array.isArray(ssm)) throw new Error(`${file}: 'ssm_cfg' must be an object`);
  if (ssm.layer != null && ssm.layer !== 'Mamba1') throw new Error(`${file}: ssm_cfg.layer '${String(ssm.layer)}' is not supported (Mamba-1 only)`);
  for (const key of ['attn_layer_idx', 'd_intermediate']) {
    const v = raw[key];
    if (v != null && !(Array.isArray(v) ? v.length === 0 : v === 0)) throw new Error(`${file}: '${key}' (hybrid attention / MLP layers) is not supported`);
  }
  if (raw.rms_norm === false) throw new Error(`${file}: rms_norm false (LayerNorm Mamba) is not supported`);
  const s = reader(ssm, `${file} ssm_cfg`);
  const hiddenSize = r.int('d_model');
  const expand = s.int('expand', 2);
  // state-spaces pads the vocabulary to a multiple, as its embedding was built.
  const pad = r.int('pad_vocab_size_multiple', 8);
  const vocab = r.int('vocab_size');
  return {
    layout: 'state-spaces',
    vocabSize: Math.ceil(vocab / pad) * pad,
    hiddenSize,
    stateSize: s.int('d_state', 16),
    expand,
    intermediateSize: expand * hiddenSize,
    convKernel: s.int('d_conv', 4),
    timeStepRank: s.rank('dt_rank', hiddenSize),
    nLayers: r.int('n_layer'),
    eps: 1e-5,
    useBias: s.bool('bias', false),
    useConvBias: s.bool('conv_bias', true),
    tieWordEmbeddings: r.bool('tie_embeddings', true),
    eosTokenIds: [0],
  };
}

/** The shared readers, and a rank given as a number or "auto" = ceil(D / 16). */
function reader(raw: Json, file: string) {
  const r = configReader(raw, file);
  return { ...r, rank: (key: string, hidden: number) => ((raw[key] ?? 'auto') === 'auto' ? Math.ceil(hidden / 16) : r.int(key)) };
}
