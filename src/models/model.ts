// The contract every model family implements (transformer, Mamba, RetNet; MoE
// is a feed-forward block any of them can use). The high-level handle that
// loadModel() returns, the benchmark and the demo see only this.

import type { Gpu } from '../runtime/gpu';
import type { Tensor } from '../runtime/tensor';

export interface ModelInfo {
  family: 'transformer' | 'mamba' | 'retnet';
  ffn: 'dense' | 'moe';
  /** Hugging Face architecture / model_type it was loaded as, e.g. 'llama'. */
  modelType: string;
  vocabSize: number;
  nLayers: number;
  dModel: number;
  /** Longest context the state can hold; null when the state does not grow with tokens. */
  maxContext: number | null;
  params: { total: number; activePerToken: number };
  /** Bytes of weights on the device. */
  weightBytes: number;
  /** Format of the layers' linear weights. */
  weights: 'f32' | 'f16' | 'q4';
  /** Format of the embedding table and LM head. */
  embeddings: 'f32' | 'q8' | 'q4';
  /** Type of the activations, KV cache and conv state (accumulations, recurrent sums and logits stay f32). */
  activations: 'f32' | 'f16';
  /** Why: asked for or not, and whether the adapter has shader-f16. */
  activationsReason: string;
}

/** The activation fields of a model's info: the device's precision and why. */
export function activationInfo(gpu: Gpu): Pick<ModelInfo, 'activations' | 'activationsReason'> {
  return { activations: gpu.report.precision, activationsReason: gpu.report.precisionReason };
}

/** Per-sequence state: the KV cache, or a recurrent state. Owns its GPU buffers. */
export interface ModelState {
  /** Tokens consumed so far. */
  readonly position: number;
  /** Device bytes held by this state (constant for recurrent families, growing capacity for KV caches). */
  readonly bytes: number;
  /** Back to position 0 without freeing memory. */
  reset(): void;
  /**
   * Moves the position `n` tokens on without computing them: the cache rows
   * or the recurrent state keep whatever they hold, so what follows is not
   * meaningful text. For benchmarks, which reach a long context this way:
   * a step's cost depends on the length, not on the values. Throws the
   * context-overflow Error where `n` more tokens do not fit.
   */
  skip(n: number): void;
  dispose(): void;
}

export interface LanguageModel<S extends ModelState = ModelState> {
  readonly info: ModelInfo;
  readonly gpu: Gpu;
  /** Most tokens one prefill() call takes (its workspace size); callers split longer inputs. */
  readonly prefillChunk: number;
  /** Most tokens one prefill() with logits 'all' takes (at most prefillChunk): their (T, vocab) f32 logits fit one binding. */
  readonly logitsRows: number;
  /** A fresh state; maxTokens bounds a KV cache (ignored by recurrent families). */
  createState(opts?: { maxTokens?: number }): S;
  /**
   * Runs `tokens` through the parallel/chunked form, appending to `state`, and
   * records the work into `rec`, its inputs (token ids) included, so one
   * recorder may hold several steps. Returns logits: (1, vocab) for 'last', (T, vocab) for 'all'.
   * The tensor lives in the model's workspace: valid until the next call.
   */
  prefill(rec: import('../runtime/recorder').Recorder, state: S, tokens: Int32Array, opts?: { logits: 'last' | 'all' }): Tensor;
  /** One token through the recurrent/step form; returns (1, vocab) logits in the workspace. */
  decode(rec: import('../runtime/recorder').Recorder, state: S, token: number): Tensor;
  /** Records a copy of `from` into `to` (made by this model's createState, with room): snapshots and forks. */
  copyState(rec: import('../runtime/recorder').Recorder, from: S, to: S): void;
  /** Frees weights and workspace. States are disposed by their owners. */
  dispose(): void;
}

/** The check every family's decode() makes on its token: an integer id in the vocabulary, never coerced. */
export function checkDecodeToken(token: number, vocabSize: number): void {
  if (!(Number.isInteger(token) && token >= 0 && token < vocabSize)) throw new Error(`decode: token id ${token} is not an integer in the vocabulary (0..${vocabSize - 1})`);
}

/** The checks every family's prefill() makes on its tokens before recording anything. */
export function checkPrefillTokens(tokens: Int32Array, chunk: number, vocabSize: number): void {
  if (tokens.length === 0) throw new Error('prefill: no tokens');
  if (tokens.length > chunk) throw new Error(`prefill: ${tokens.length} tokens exceed the ${chunk} one call takes; split the prompt`);
  for (let i = 0; i < tokens.length; i++) {
    if (!(tokens[i] >= 0 && tokens[i] < vocabSize)) throw new Error(`prefill: token id ${tokens[i]} at position ${i} is outside the vocabulary (0..${vocabSize - 1})`);
  }
}
