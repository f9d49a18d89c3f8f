// RetNet weights under flash-linear-attention's names, their shapes, and the
// GPU tensors they become. Linear weights are 4-bit or f32 per the load mode,
// the embedding and LM head per the embeddings mode, norms f32. Two layouts
// are read from the file, not the config: the gated MLP as separate
// gate_proj / up_proj (fla since 2025-02) or one gate_proj of 2I rows, gate
// rows first (older checkpoints); and the per-head norm's weight as
// g_norm_swish_gate (fuse_norm) or g_norm (the same math).

import type { Gpu } from '../../runtime/gpu';
import type { Tensor } from '../../runtime/tensor';
import { Linear } from '../blocks/linear';
import { DenseFeedForward, type FeedForward, type FeedForwardSpec } from '../blocks/feed_forward';
import type { VocabMatrix } from '../blocks/vocab';
import { checkTensors, WeightUploader, type TensorSource, type UploadOptions } from '../loader/weights';
import type { RetNetConfig } from './config';

export interface RetNetLayout {
  mlp: 'split' | 'fused';
  gateNorm: 'g_norm_swish_gate' | 'g_norm';
}

export interface RetNetLayerWeights {
  attnNorm: Tensor;     // (D) f32
  q: Linear;            // (H*Dk, D)
  k: Linear;            // (H*Dk, D)
  v: Linear;            // (H*Dv, D)
  g: Linear;            // (H*Dv, D): the output gate
  gateNorm: Tensor;     // (Dv) f32, shared by the heads
  o: Linear;            // (D, H*Dv)
  mlpNorm: Tensor;      // (D) f32
  ffn: FeedForward;     // under mlp.: the gated MLP
}

export interface RetNetWeights {
  embed: VocabMatrix;   // (V, D), in row parts when large
  layers: RetNetLayerWeights[];
  norm: Tensor;         // (D) f32
  lmHead: VocabMatrix;  // (V, D): the embedding itself when tied
  all: Tensor[];
}

/** The layout a checkpoint's names show (split MLP and the fused-norm name when nothing says otherwise). */
export function retnetLayoutOf(names: readonly string[]): RetNetLayout {
  const fused = !names.some((n) => n.endsWith('.mlp.up_proj.weight')) && names.some((n) => n.endsWith('.mlp.gate_proj.weight'));
  return { mlp: fused ? 'fused' : 'split', gateNorm: names.some((n) => n.endsWith('.attn.g_norm.weight')) ? 'g_norm' : 'g_norm_swish_gate' };
}

/** The gated MLP under 'mlp.', in the checkpoint's layout. */
export function retnetFeedForward(cfg: RetNetConfig, layout: RetNetLayout): FeedForwardSpec {
  return new DenseFeedForward(cfg.hiddenSize, cfg.intermediateSize, { fusedGateUp: layout.mlp === 'fused' });
}

export function retnetTensorShapes(cfg: RetNetConfig, layout: RetNetLayout = { mlp: 'split', gateNorm: 'g_norm_swish_gate' }): Map<string, number[]> {
  const { hiddenSize: D, nHeads: H, keyDim: Dk, valueDim: Dv, vocabSize: V } = cfg;
  const m = new Map<string, number[]>();
  m.set('model.embeddings.weight', [V, D]);
  for (let l = 0; l < cfg.nLayers; l++) {
    const p = `model.layers.${l}.`;
    m.set(p + 'attn_norm.weight', [D]);
    m.set(p + 'attn.q_proj.weight', [H * Dk, D]);
    m.set(p + 'attn.k_proj.weight', [H * Dk, D]);
    m.set(p + 'attn.v_proj.weight', [H * Dv, D]);
    m.set(p + 'attn.g_proj.weight', [H * Dv, D]);
    m.set(p + 'attn.o_proj.weight', [D, H * Dv]);
    m.set(p + `attn.${layout.gateNorm}.weight`, [Dv]);
    m.set(p + 'mlp_norm.weight', [D]);
    for (const [name, shape] of retnetFeedForward(cfg, layout).shapes(p + 'mlp.')) m.set(name, shape);
  }
  m.set('model.norm.weight', [D]);
  if (!cfg.tieWordEmbeddings) m.set('lm_head.weight', [V, D]);
  return m;
}

/** Throws, listing them, unless the checkpoint holds exactly the tensors `cfg` implies in the layout its names show. */
export function checkRetNetCheckpoint(src: TensorSource, cfg: RetNetConfig): { shapes: Map<string, number[]>; layout: RetNetLayout } {
  const layout = retnetLayoutOf(src.names);
  const shapes = retnetTensorShapes(cfg, layout);
  checkTensors(src, shapes, cfg.tieWordEmbeddings ? [/^lm_head\.weight$/] : [], 'retnet checkpoint');
  return { shapes, layout };
}

export async function loadRetNetWeights(gpu: Gpu, src: TensorSource, cfg: RetNetConfig, opts: UploadOptions, checked = checkRetNetCheckpoint(src, cfg)): Promise<RetNetWeights> {
  const { shapes, layout } = checked;
  const total = [...shapes.keys()].reduce((s, n) => s + src.info(n).byteLength, 0);
  const up = new WeightUploader(gpu, src, total, opts);
  try {
    const embed = await up.vocab('model.embeddings.weight', 'retnet.embed');
    const layers: RetNetLayerWeights[] = [];
    const ffn = retnetFeedForward(cfg, layout);
    for (let l = 0; l < cfg.nLayers; l++) {
      const p = `model.layers.${l}.`;
      const lbl = `retnet.L${l}.`;
      const linear = async (name: string) => new Linear(await up.matrix(`${p}${name}.weight`, lbl + name));
      const attnNorm = await up.f32(p + 'attn_norm.weight', lbl + 'attn_norm');
      const [q, k, v, g] = [await linear('attn.q_proj'), await linear('attn.k_proj'), await linear('attn.v_proj'), await linear('attn.g_proj')];
      const gateNorm = await up.f32(p + `attn.${layout.gateNorm}.weight`, lbl + 'attn.gate_norm');
      const o = await linear('attn.o_proj');
      const mlpNorm = await up.f32(p + 'mlp_norm.weight', lbl + 'mlp_norm');
      layers.push({ attnNorm, q, k, v, g, gateNorm, o, mlpNorm, ffn: await ffn.load(up, p + 'mlp.', lbl + 'mlp.') });
    }
    const norm = await up.f32('model.norm.weight', 'retnet.norm');
    const lmHead = cfg.tieWordEmbeddings ? embed : await up.vocab('lm_head.weight', 'retnet.lm_head');
    return { embed, layers, norm, lmHead, all: [...up.tensors] };
  } catch (e) {
    up.disposeAll();
    throw e;
  }
}
