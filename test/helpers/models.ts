// Helpers for model tests: the reference on the same (possibly quantized)
// weights the GPU uses, and greedy decoding through the model contract.

import { dequantizeQ4, quantizeQ4 } from '../../src/runtime/q4';
import { dequantizeQ8, quantizeQ8 } from '../../src/runtime/q8';
import { Recorder } from '../../src/runtime/recorder';
import { argmax } from '../../src/kernels/argmax';
import type { LanguageModel, ModelState } from '../../src/models/model';

/** Checkpoint names of the vocabulary matrices (embedding, LM head) of every family. */
const VOCAB = /^(model\.embed_tokens|model\.embeddings|backbone\.embeddings?|lm_head)\.weight$/;

/**
 * The weights as the GPU holds them: for 'q4', the matrices the loader
 * quantizes (every 2-D tensor unless `quantized` says otherwise) through
 * quantize -> dequantize (group 32): 4-bit, except the vocabulary matrices,
 * which take `embeddings` (8-bit by default, as loadModel); unchanged for 'f32'.
 */
export function asLoaded(
  weights: Map<string, Float32Array>, shapes: Map<string, number[]>, mode: 'q4' | 'f32',
  quantized: (name: string, shape: number[]) => boolean = (_n, shape) => shape.length === 2,
  embeddings: 'q8' | 'q4' | 'f32' = mode === 'q4' ? 'q8' : 'f32',
): (name: string) => ArrayLike<number> {
  const out = new Map<string, ArrayLike<number>>();
  for (const [name, w] of weights) {
    const shape = shapes.get(name)!;
    const format = VOCAB.test(name) ? embeddings : mode === 'q4' && quantized(name, shape) ? 'q4' : 'f32';
    out.set(name, format === 'q4' ? dequantizeQ4(quantizeQ4(w, shape[0], shape[1], 32)) : format === 'q8' ? dequantizeQ8(quantizeQ8(w, shape[0], shape[1], 32)) : w);
  }
  return (name) => {
    const w = out.get(name);
    if (!w) throw new Error(`no weight ${name}`);
    return w;
  };
}

/** Greedy decoding on the GPU through prefill/decode + argmax: the token ids. */
export async function greedyGpu(model: LanguageModel, state: ModelState, prompt: Int32Array, n: number): Promise<number[]> {
  const out = model.gpu.empty([1], 'u32', 'test.token');
  try {
    const ids: number[] = [];
    let token = -1;
    for (let i = 0; i < prompt.length; i += model.prefillChunk) {
      const rec = new Recorder(model.gpu);
      const logits = model.prefill(rec, state, prompt.subarray(i, i + model.prefillChunk));
      argmax(rec, logits, out);
      token = (await rec.submitAndRead(out))[0];
    }
    ids.push(token);
    while (ids.length < n) {
      const rec = new Recorder(model.gpu);
      argmax(rec, model.decode(rec, state, token), out);
      token = (await rec.submitAndRead(out))[0];
      ids.push(token);
    }
    return ids;
  } finally {
    out.dispose();
  }
}

/** Index of the largest value (first on ties), as torch.argmax. */
export function argmaxOf(row: ArrayLike<number>): number {
  let best = 0;
  for (let i = 1; i < row.length; i++) if (row[i] > row[best]) best = i;
  return best;
}

/**
 * max |a - b| / max |b|: the error relative to the scale of the logits.
 * (Per-element relative error is meaningless for logits near zero.) NaN gives Infinity.
 */
export function relMaxErr(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let err = 0;
  let scale = 0;
  for (let i = 0; i < b.length; i++) {
    const e = Math.abs(a[i] - b[i]);
    err = Math.max(err, Number.isNaN(e) ? Infinity : e);
    scale = Math.max(scale, Math.abs(b[i]));
  }
  return err / scale;
}

/** The Mamba tensors the loader quantizes: in_proj, x_proj, out_proj, embedding, LM head (dt_proj stays f32). */
export const mambaQuantized = (name: string, shape: number[]) => shape.length === 2 && !name.endsWith('dt_proj.weight') && !name.endsWith('A_log');
