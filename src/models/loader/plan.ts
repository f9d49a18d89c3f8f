// What a checkpoint's weights will take on the device, from the tensor
// shapes alone (before any byte of weight is read): each tensor in the format
// the loader (weights.ts) gives it. The vocabulary matrices take the
// embeddings format; linear weights the weights format; the experts are
// 4-bit whatever the mode; vectors, routers, Mamba's dt_proj, A_log, D and
// conv1d stay f32. The tests hold this against the ledger after real loads.

import type { EmbeddingMode, WeightMode } from './weights';

const Q_GROUP = 32;
/** Where a quantized matrix's scales start: WebGPU's binding-offset alignment. */
const ALIGN = 256;

/** Vocabulary matrices (embedding, LM head) in each family's naming. */
const VOCAB = /(^|\.)(embed_tokens|embeddings|embedding|lm_head)\.weight$/;
/** Kept in f32 by the loader though two-dimensional: routers and the shared-expert gate, Mamba's dt_proj, A_log, conv1d. */
const F32 = /(\.gate|\.router\.layer|\.shared_expert_gate|\.dt_proj)\.weight$|\.A_log$|\.conv1d\.weight$/;
/** Experts: per-expert tensors, or fused stacks (E, rows, cols). */
const EXPERT = /\.experts\.\d+\./;

function matrixBytes(rows: number, cols: number, format: WeightMode | EmbeddingMode): number {
  if (format === 'f32') return rows * cols * 4;
  const codes = format === 'q4' ? (rows * cols) / 2 : rows * cols;
  const scales = rows * Math.ceil(cols / Q_GROUP) * 4;
  return Math.ceil(codes / ALIGN) * ALIGN + scales;
}

export interface WeightPlan {
  /** Bytes of every weight but the experts. */
  weights: number;
  /** Bytes of the 4-bit expert stacks (0 for a dense model). */
  experts: number;
}

export function planWeights(shapes: ReadonlyMap<string, readonly number[]>, weights: WeightMode, embeddings: EmbeddingMode): WeightPlan {
  const plan: WeightPlan = { weights: 0, experts: 0 };
  for (const [name, shape] of shapes) {
    const n = shape.reduce((a, b) => a * b, 1);
    if (VOCAB.test(name)) plan.weights += matrixBytes(shape[0], shape[1], embeddings);
    else if (shape.length === 1 || F32.test(name)) plan.weights += n * 4;
    else if (EXPERT.test(name) || shape.length === 3) plan.experts += matrixBytes(n / shape[shape.length - 1], shape[shape.length - 1], 'q4');
    else plan.weights += matrixBytes(shape[0], shape[1], weights);
  }
  return plan;
}
