// Llama-family weights: the Hugging Face tensor names, their shapes, and the
// GPU tensors they become. Linear weights are 4-bit or f32 per the load mode,
// the embedding (which the LM head shares when tied) 8-bit, 4-bit or f32 per
// the embeddings mode; norms stay f32, biases are of the activation type.

import type { Gpu } from '../../runtime/gpu';
import type { Tensor } from '../../runtime/tensor';
import { Linear } from '../blocks/linear';
import { DenseFeedForward, type FeedForward, type FeedForwardSpec } from '../blocks/feed_forward';
import { MoeFeedForward, moePrefix } from '../blocks/moe';
import type { VocabMatrix } from '../blocks/vocab';
import { checkTensors, WeightUploader, type TensorSource, type UploadOptions } from '../loader/weights';
import type { TransformerConfig } from './config';

export interface LayerWeights {
  inputNorm: Tensor;    // (D) f32
  q: Linear;            // (H*Dh, D)
  k: Linear;            // (Hkv*Dh, D)
  v: Linear;            // (Hkv*Dh, D)
  o: Linear;            // (D, H*Dh)
  postNorm: Tensor;     // (D) f32
  ffn: FeedForward;     // under mlp. (or the MoE layout's prefix)
  /** OLMoE: RMSNorm weights over the whole q (H*Dh) and k (Hkv*Dh) rows. */
  qNorm: Tensor | null;
  kNorm: Tensor | null;
}

export interface TransformerWeights {
  embed: VocabMatrix;   // (V, D) q8, q4 or f32, in row parts when large
  layers: LayerWeights[];
  norm: Tensor;         // (D) f32
  lmHead: VocabMatrix;  // (V, D): the embedding itself when tied
  /** Every tensor, once (the tied head is not repeated), for dispose(). */
  all: Tensor[];
}

/** Tensors a checkpoint may carry that the model does not need. */
const IGNORED = [/\.rotary_emb\.inv_freq$/];

/**
 * The feed-forward block of layer l and its prefix: the gated MLP under
 * 'mlp.', or the mixture of experts of an MoE layout's sparse layers
 * (GraniteMoE's residual multiplier folded into the down projections).
 */
export function transformerFeedForward(cfg: TransformerConfig, layer: number): { spec: FeedForwardSpec; prefix: string } {
  const r = cfg.multipliers.residual;
  if (cfg.moe?.sparse[layer]) return { spec: new MoeFeedForward(cfg.hiddenSize, cfg.moe, r), prefix: moePrefix(cfg.moe.layout) };
  return { spec: new DenseFeedForward(cfg.hiddenSize, cfg.intermediateSize, { bias: cfg.mlpBias }), prefix: 'mlp.' };
}

/** Every tensor name the config implies, with its (out, in) shape. */
export function transformerTensorShapes(cfg: TransformerConfig): Map<string, number[]> {
  const { hiddenSize: D, nHeads: H, nKvHeads: Hkv, headDim: Dh, vocabSize: V } = cfg;
  const m = new Map<string, number[]>();
  m.set('model.embed_tokens.weight', [V, D]);
  for (let l = 0; l < cfg.nLayers; l++) {
    const p = `model.layers.${l}.`;
    m.set(p + 'input_layernorm.weight', [D]);
    m.set(p + 'self_attn.q_proj.weight', [H * Dh, D]);
    m.set(p + 'self_attn.k_proj.weight', [Hkv * Dh, D]);
    m.set(p + 'self_attn.v_proj.weight', [Hkv * Dh, D]);
    m.set(p + 'self_attn.o_proj.weight', [D, H * Dh]);
    if (cfg.qkvBias) {
      m.set(p + 'self_attn.q_proj.bias', [H * Dh]);
      m.set(p + 'self_attn.k_proj.bias', [Hkv * Dh]);
      m.set(p + 'self_attn.v_proj.bias', [Hkv * Dh]);
    }
    if (cfg.oBias) m.set(p + 'self_attn.o_proj.bias', [D]);
    m.set(p + 'post_attention_layernorm.weight', [D]);
    if (cfg.qkNorm) {
      m.set(p + 'self_attn.q_norm.weight', [H * Dh]);
      m.set(p + 'self_attn.k_norm.weight', [Hkv * Dh]);
    }
    const ffn = transformerFeedForward(cfg, l);
    for (const [name, shape] of ffn.spec.shapes(p + ffn.prefix)) m.set(name, shape);
  }
  m.set('model.norm.weight', [D]);
  if (!cfg.tieWordEmbeddings) m.set('lm_head.weight', [V, D]);
  return m;
}

/** Throws, listing them, unless the checkpoint holds exactly the tensors `cfg` implies; returns their shapes. */
export function checkTransformerCheckpoint(src: TensorSource, cfg: TransformerConfig): Map<string, number[]> {
  const shapes = transformerTensorShapes(cfg);
  // A tied checkpoint that still stores lm_head.weight: Hugging Face ties over it, so do we.
  const ignore = cfg.tieWordEmbeddings ? [...IGNORED, /^lm_head\.weight$/] : IGNORED;
  checkTensors(src, shapes, ignore, 'transformer checkpoint');
  return shapes;
}

/** Uploads the checkpoint's weights; `shapes` is what checkTransformerCheckpoint returned, when the caller has already checked. */
export async function loadTransformerWeights(
  gpu: Gpu, src: TensorSource, cfg: TransformerConfig, opts: UploadOptions, shapes = checkTransformerCheckpoint(src, cfg),
): Promise<TransformerWeights> {
  const total = [...shapes.keys()].reduce((s, n) => s + src.info(n).byteLength, 0);
  const up = new WeightUploader(gpu, src, total, opts);
  try {
    // GraniteMoE's multipliers, folded into the weights: the embedding output's
    // into the table, the residual's into o_proj and the down projections,
    // 1 / logits_scaling (and 1 / the embedding's, when the head is that same
    // scaled table) into the final norm.
    const { embedding: mEmb, residual: mRes, logits: mLogits } = cfg.multipliers;
    const embed = await up.vocab('model.embed_tokens.weight', 'transformer.embed', mEmb);
    const layers: LayerWeights[] = [];
    for (let l = 0; l < cfg.nLayers; l++) {
      const p = `model.layers.${l}.`;
      const lbl = `transformer.L${l}.`;
      const linear = async (name: string, hasBias: boolean, scale = 1) =>
        new Linear(await up.matrix(`${p}${name}.weight`, lbl + name, scale), hasBias ? await up.bias(`${p}${name}.bias`, `${lbl}${name}.bias`, scale) : null);
      const ffn = transformerFeedForward(cfg, l);
      layers.push({
        inputNorm: await up.f32(p + 'input_layernorm.weight', lbl + 'input_layernorm'),
        q: await linear('self_attn.q_proj', cfg.qkvBias),
        k: await linear('self_attn.k_proj', cfg.qkvBias),
        v: await linear('self_attn.v_proj', cfg.qkvBias),
        o: await linear('self_attn.o_proj', cfg.oBias, mRes),
        qNorm: cfg.qkNorm ? await up.f32(p + 'self_attn.q_norm.weight', lbl + 'q_norm') : null,
        kNorm: cfg.qkNorm ? await up.f32(p + 'self_attn.k_norm.weight', lbl + 'k_norm') : null,
        postNorm: await up.f32(p + 'post_attention_layernorm.weight', lbl + 'post_attention_layernorm'),
        ffn: await ffn.spec.load(up, p + ffn.prefix, lbl + ffn.prefix),
      });
    }
    const norm = await up.f32('model.norm.weight', 'transformer.norm', 1 / (mLogits * (cfg.tieWordEmbeddings ? mEmb : 1)));
    const lmHead = cfg.tieWordEmbeddings ? embed : await up.vocab('lm_head.weight', 'transformer.lm_head');
    return { embed, layers, norm, lmHead, all: [...up.tensors] };
  } catch (e) {
    up.disposeAll(); // a failed load leaves nothing behind on the device
    throw e;
  }
}
