// The architectures the harness compares, at matched sizes, as data: for
// each preset and architecture either a config.json of random weights (made
// by random_checkpoint.ts, with the initialisation the family needs to stay
// finite) or a bundled model. `135m`: the SmolLM2-135M, mamba-130m and ~130M
// RetNet shapes, and a Mixtral-style MoE whose active parameters match
// SmolLM2 (its 2 of 8 experts each half SmolLM2's MLP width); `tiny`: the
// bundled models, trained ones, about 1M parameters each.

import type { Init } from './random_checkpoint';
import { defaultInit } from './random_checkpoint';

export const ARCHS = ['transformer', 'mamba', 'retnet', 'moe'] as const;
export type Arch = (typeof ARCHS)[number];

export type PresetEntry =
  | { kind: 'random'; what: string; config: Record<string, unknown>; init?: Init }
  | { kind: 'bundled'; what: string; name: string };

/** Mamba's A_log = log(1..N) per state, D = 1 and a small dt (softplus(-4 + u) ≈ 0.007..0.05), as trained models have them. */
const mambaInit: Init = (name, shape) => {
  if (name.endsWith('A_log')) return (_u, i) => Math.log(1 + (i % shape[shape.length - 1]));
  if (name.endsWith('mixer.D')) return () => 1;
  if (name.endsWith('dt_proj.bias')) return (u) => -4 + u;
  return defaultInit(name, shape);
};

const SMOLLM2_135M = {
  model_type: 'llama', hidden_size: 576, intermediate_size: 1536, num_hidden_layers: 30, num_attention_heads: 9,
  num_key_value_heads: 3, vocab_size: 49152, rms_norm_eps: 1e-5, rope_theta: 100000, tie_word_embeddings: true,
  max_position_embeddings: 65536, // room for the longest decode context (the real model has 8192)
};

export const PRESETS: Record<string, Record<Arch, PresetEntry>> = {
  '135m': {
    transformer: { kind: 'random', what: 'SmolLM2-135M shape (Llama)', config: SMOLLM2_135M },
    mamba: {
      kind: 'random', what: 'mamba-130m shape', init: mambaInit,
      config: { model_type: 'mamba', hidden_size: 768, state_size: 16, num_hidden_layers: 24, expand: 2, conv_kernel: 4, time_step_rank: 'auto', vocab_size: 50280, layer_norm_epsilon: 1e-5, tie_word_embeddings: true },
    },
    retnet: {
      kind: 'random', what: '~130M RetNet (fla, hidden 768, 12 layers)',
      config: { model_type: 'retnet', hidden_size: 768, num_hidden_layers: 12, num_heads: 8, expand_k: 1, expand_v: 2, hidden_ratio: 2, intermediate_size: null, vocab_size: 49152, norm_eps: 1e-6, tie_word_embeddings: true },
    },
    moe: {
      kind: 'random', what: 'Mixtral-style, SmolLM2-135M attention, 8 experts of width 768, 2 per token',
      config: { ...SMOLLM2_135M, model_type: 'mixtral', intermediate_size: 768, num_local_experts: 8, num_experts_per_tok: 2, sliding_window: null },
    },
  },
  tiny: {
    transformer: { kind: 'bundled', what: 'bundled transformer (Llama)', name: 'transformer' },
    mamba: { kind: 'bundled', what: 'bundled Mamba', name: 'mamba' },
    retnet: { kind: 'bundled', what: 'bundled RetNet', name: 'retnet' },
    moe: { kind: 'bundled', what: 'bundled MoE (Mixtral)', name: 'moe' },
  },
};

/**
 * A random preset's config cut to `layers` layers, or to a fraction `depth` of
 * its own (rounded, at least 1: the architectures keep their depths' ratio,
 * 30 : 24 : 12 at 135m, which comparing their times to first token needs),
 * for slow adapters; unchanged otherwise.
 */
export function withLayers(entry: PresetEntry, layers: number | undefined, depth?: number): PresetEntry {
  if (entry.kind !== 'random' || (layers === undefined && depth === undefined)) return entry;
  const n = layers ?? Math.max(1, Math.round(depth! * (entry.config.num_hidden_layers as number)));
  return { ...entry, config: { ...entry.config, num_hidden_layers: n }, what: `${entry.what}, cut to ${n} layers` };
}
