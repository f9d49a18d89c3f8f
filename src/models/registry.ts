// model_type -> how to parse its config and load it. One entry per family;
// the architecture is read from config.json, never guessed from shapes.

import type { Gpu } from '../runtime/gpu';
import type { Tensor } from '../runtime/tensor';
import type { LanguageModel } from './model';
import type { EmbeddingMode, LoadProgress, TensorSource, WeightMode } from './loader/weights';
import { parseTransformerConfig } from './transformer/config';
import { loadTransformerWeights } from './transformer/weights';
import { TransformerModel } from './transformer/model';
import { TransformerState } from './transformer/state';
import { isStateSpacesMamba, parseMambaConfig } from './mamba/config';
import { loadMambaWeights } from './mamba/weights';
import { MambaModel } from './mamba/model';

export interface LoadOptions {
  weights: WeightMode;
  /** Format of the embedding and LM head (default: q8 beside q4 weights, f32 beside f32). */
  embeddings?: EmbeddingMode;
  /** Longest context to allocate for (KV cache families); defaults to the model's maximum. */
  maxContext?: number;
  onProgress?: (p: LoadProgress) => void;
  /** Most tokens one prefill call takes (default 256): bounds the workspace. */
  prefillChunk?: number;
}

export interface FamilyEntry {
  /**
   * Parses config.json; throws a clear Error naming the key for anything
   * unsupported. largestMatrix: the largest weight that is not the vocabulary
   * matrix (which is split to fit a binding), checked before any weight is read.
   */
  parse(raw: Record<string, unknown>): { eosTokenIds: number[]; largestMatrix: [number, number] };
  load(gpu: Gpu, raw: Record<string, unknown>, src: TensorSource, opts: LoadOptions): Promise<LanguageModel>;
}

const transformer: FamilyEntry = {
  parse(raw) {
    const cfg = parseTransformerConfig(raw);
    const D = cfg.hiddenSize;
    const wide = Math.max(cfg.intermediateSize, cfg.nHeads * cfg.headDim); // MLP or attention projection
    return { eosTokenIds: cfg.eosTokenIds, largestMatrix: [wide, D] };
  },
  async load(gpu, raw, src, opts) {
    const cfg = parseTransformerConfig(raw);
    const maxContext = opts.maxContext ?? cfg.maxPositionEmbeddings;
    if (!Number.isInteger(maxContext) || maxContext < 1) throw new Error(`loadModel: maxContext must be a positive integer, got ${opts.maxContext}`);
    if (maxContext > cfg.maxPositionEmbeddings) {
      throw new Error(`loadModel: maxContext ${maxContext} exceeds the model's ${cfg.maxPositionEmbeddings} positions (max_position_embeddings${cfg.maxPositionEmbeddings < (raw.max_position_embeddings as number) ? ', capped by its sliding window' : ''})`);
    }
    TransformerState.checkFits(gpu, cfg, maxContext); // before any weight is read
    const weights = await loadTransformerWeights(gpu, src, cfg, opts.weights, opts.onProgress, opts.embeddings);
    return buildOrFree(weights.all, () => new TransformerModel(gpu, cfg, weights, { maxContext, prefillChunk: opts.prefillChunk }));
  },
};

const mamba: FamilyEntry = {
  parse(raw) {
    const cfg = parseMambaConfig(raw);
    return { eosTokenIds: cfg.eosTokenIds, largestMatrix: [cfg.intermediateSize, cfg.hiddenSize] }; // a half of in_proj, or out_proj
  },
  async load(gpu, raw, src, opts) {
    const cfg = parseMambaConfig(raw);
    // maxContext does not apply: the state is the same size at any length.
    const weights = await loadMambaWeights(gpu, src, cfg, opts.weights, opts.onProgress, opts.embeddings);
    return buildOrFree(weights.all, () => new MambaModel(gpu, cfg, weights, { prefillChunk: opts.prefillChunk }));
  },
};

/** Builds a model from loaded weights; if that throws, the weights are freed. */
function buildOrFree(weights: readonly Tensor[], build: () => LanguageModel): LanguageModel {
  try {
    return build();
  } catch (e) {
    for (const t of weights) t.dispose();
    throw e;
  }
}

const FAMILIES: Record<string, FamilyEntry> = {
  llama: transformer,
  qwen2: transformer,
  mistral: transformer,
  mamba,
};

export function familyFor(raw: Record<string, unknown>, file = 'config.json'): FamilyEntry {
  if (isStateSpacesMamba(raw)) return mamba;
  const type = raw.model_type;
  const entry = typeof type === 'string' ? FAMILIES[type] : undefined;
  if (!entry) {
    throw new Error(`${file}: model_type ${JSON.stringify(type ?? null)} is not supported (supported: ${Object.keys(FAMILIES).join(', ')})`);
  }
  return entry;
}
