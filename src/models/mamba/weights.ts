// Mamba-1 weights: Hugging Face names (and the original state-spaces ones),
// shapes, and the GPU tensors they become. in_proj, x_proj and out_proj are
// 4-bit (or f32), the embedding and LM head per the embeddings mode (8-bit by
// default); fused projections are split by rows at load so each part is
// a contiguous output. dt_proj stays f32: its input rank R (ceil(D/16)) is
// small and not always a multiple of 8, it is ~3% of a layer, and its output
// goes through softplus into an exponential, where errors compound.

import type { Gpu } from '../../runtime/gpu';
import type { Tensor } from '../../runtime/tensor';
import { Linear } from '../blocks/linear';
import type { VocabMatrix } from '../blocks/vocab';
import { checkTensors, WeightUploader, type TensorSource, type UploadOptions } from '../loader/weights';
import type { MambaConfig } from './config';

export interface MambaLayerWeights {
  norm: Tensor;       // (D) f32
  inX: Linear;        // (Di, D): rows 0..Di of in_proj, the SSM input u
  inZ: Linear;        // (Di, D): rows Di..2Di, the gate z
  convW: Tensor;      // (Di, Kc) f32
  convB: Tensor | null; // (Di) f32
  xDt: Linear;        // (R, Di): x_proj rows for dt
  xB: Linear;         // (N, Di): x_proj rows for B
  xC: Linear;         // (N, Di): x_proj rows for C
  dtProj: Linear;     // (Di, R) f32, with a bias (Di) of the activation type
  A: Tensor;          // (Di, N) f32, A = -exp(A_log)
  D: Tensor;          // (Di) f32
  out: Linear;        // (D, Di)
}

export interface MambaWeights {
  embed: VocabMatrix; // (V, D), in row parts when large
  layers: MambaLayerWeights[];
  normF: Tensor;      // (D) f32
  lmHead: VocabMatrix; // (V, D): the embedding when tied
  all: Tensor[];
}

const embedName = (cfg: MambaConfig) => (cfg.layout === 'hf' ? 'backbone.embeddings.weight' : 'backbone.embedding.weight');

export function mambaTensorShapes(cfg: MambaConfig): Map<string, number[]> {
  const { hiddenSize: D, intermediateSize: Di, stateSize: N, convKernel: Kc, timeStepRank: R, vocabSize: V } = cfg;
  const m = new Map<string, number[]>();
  m.set(embedName(cfg), [V, D]);
  for (let l = 0; l < cfg.nLayers; l++) {
    const p = `backbone.layers.${l}.`;
    m.set(p + 'norm.weight', [D]);
    m.set(p + 'mixer.in_proj.weight', [2 * Di, D]);
    if (cfg.useBias) m.set(p + 'mixer.in_proj.bias', [2 * Di]);
    m.set(p + 'mixer.conv1d.weight', [Di, 1, Kc]);
    if (cfg.useConvBias) m.set(p + 'mixer.conv1d.bias', [Di]);
    m.set(p + 'mixer.x_proj.weight', [R + 2 * N, Di]);
    m.set(p + 'mixer.dt_proj.weight', [Di, R]);
    m.set(p + 'mixer.dt_proj.bias', [Di]);
    m.set(p + 'mixer.A_log', [Di, N]);
    m.set(p + 'mixer.D', [Di]);
    m.set(p + 'mixer.out_proj.weight', [D, Di]);
    if (cfg.useBias) m.set(p + 'mixer.out_proj.bias', [D]);
  }
  m.set('backbone.norm_f.weight', [D]);
  if (!cfg.tieWordEmbeddings) m.set('lm_head.weight', [V, D]);
  return m;
}

/** Throws, listing them, unless the checkpoint holds exactly the tensors `cfg` implies; returns their shapes. */
export function checkMambaCheckpoint(src: TensorSource, cfg: MambaConfig): Map<string, number[]> {
  const shapes = mambaTensorShapes(cfg);
  checkStateSize(src, cfg);
  checkTensors(src, shapes, cfg.tieWordEmbeddings ? [/^lm_head\.weight$/] : [], 'mamba checkpoint');
  return shapes;
}

/** Uploads the checkpoint's weights; `shapes` is what checkMambaCheckpoint returned, when the caller has already checked. */
export async function loadMambaWeights(gpu: Gpu, src: TensorSource, cfg: MambaConfig, opts: UploadOptions, shapes = checkMambaCheckpoint(src, cfg)): Promise<MambaWeights> {
  const total = [...shapes.keys()].reduce((s, n) => s + src.info(n).byteLength, 0);
  const up = new WeightUploader(gpu, src, total, opts);
  const { intermediateSize: Di, stateSize: N, convKernel: Kc, timeStepRank: R } = cfg;
  try {
    const embed = await up.vocab(embedName(cfg), 'mamba.embed');
    const layers: MambaLayerWeights[] = [];
    for (let l = 0; l < cfg.nLayers; l++) {
      const p = `backbone.layers.${l}.mixer.`;
      const lbl = `mamba.L${l}.`;
      const [inX, inZ] = await up.rowSplit(p + 'in_proj.weight', [{ label: lbl + 'in_proj.x', rows: Di }, { label: lbl + 'in_proj.z', rows: Di }]);
      const [inXb, inZb] = cfg.useBias ? await up.biasSplit(p + 'in_proj.bias', [{ label: lbl + 'in_proj.bias.x', length: Di }, { label: lbl + 'in_proj.bias.z', length: Di }]) : [null, null];
      const [xDt, xB, xC] = await up.rowSplit(p + 'x_proj.weight', [{ label: lbl + 'x_proj.dt', rows: R }, { label: lbl + 'x_proj.B', rows: N }, { label: lbl + 'x_proj.C', rows: N }]);
      layers.push({
        norm: await up.f32(`backbone.layers.${l}.norm.weight`, lbl + 'norm'),
        inX: new Linear(inX, inXb),
        inZ: new Linear(inZ, inZb),
        convW: await up.f32As(p + 'conv1d.weight', lbl + 'conv1d.weight', [Di, Kc]),
        convB: cfg.useConvBias ? await up.f32(p + 'conv1d.bias', lbl + 'conv1d.bias') : null,
        xDt: new Linear(xDt),
        xB: new Linear(xB),
        xC: new Linear(xC),
        dtProj: new Linear(await up.f32(p + 'dt_proj.weight', lbl + 'dt_proj'), await up.bias(p + 'dt_proj.bias', lbl + 'dt_proj.bias')),
        // A = -exp(A_log), in float32 as Hugging Face computes it.
        A: await up.f32As(p + 'A_log', lbl + 'A', [Di, N], (v) => -Math.fround(Math.exp(v))),
        D: await up.f32(p + 'D', lbl + 'D'),
        out: new Linear(await up.matrix(p + 'out_proj.weight', lbl + 'out_proj'), cfg.useBias ? await up.bias(p + 'out_proj.bias', lbl + 'out_proj.bias') : null),
      });
    }
    const normF = await up.f32('backbone.norm_f.weight', 'mamba.norm_f');
    const lmHead = cfg.tieWordEmbeddings ? embed : await up.vocab('lm_head.weight', 'mamba.lm_head');
    return { embed, layers, normF, lmHead, all: [...up.tensors] };
  } catch (e) {
    up.disposeAll();
    throw e;
  }
}

/** A state_size that disagrees with A_log is the config's fault: say so plainly. */
function checkStateSize(src: TensorSource, cfg: MambaConfig): void {
  const name = 'backbone.layers.0.mixer.A_log';
  if (!src.names.includes(name)) return;
  const shape = src.info(name).shape;
  if (shape[1] !== cfg.stateSize) {
    throw new Error(`mamba checkpoint: ${name} has ${shape[1]} state columns but config.json state_size is ${cfg.stateSize}`);
  }
}
