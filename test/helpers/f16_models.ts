// The tiny models the f16 path is checked on (f16_models.test.ts, in Firefox
// on lavapipe), shared by the page that runs them and the Node side that
// checks them: one of each family, with f32 weights and with the default
// 4-bit layers, a transformer with biases (Qwen2) and one with a mixture of
// experts (Qwen2-MoE: router, grouped prefill, routed decode, shared expert). The reference is the
// float64 forward pass on the weights as the GPU holds them.

import { refForward } from '../../src/reference/transformer';
import { refMambaForward } from '../../src/reference/mamba';
import { transformerTensorShapes } from '../../src/models/transformer/weights';
import { mambaTensorShapes } from '../../src/models/mamba/weights';
import { refRetNetForward, retnetRefTensorShapes } from '../../src/reference/retnet';
import { tinyMamba, tinyTransformer } from './checkpoints';
import { tinyRetnet } from './retnet_checkpoint';
import { refMoeForward } from '../../src/reference/moe';
import { moeAsLoaded, tinyMoe } from './moe_checkpoint';
import { asLoaded, mambaQuantized } from './models';

/** 12 prompt tokens, through a prefill of chunks of 5 (5 + 5 + 2). */
export const PROMPT = [3, 60, 101, 7, 42, 88, 15, 230, 9, 64, 127, 31];
export const PREFILL_CHUNK = 5;
/** Greedy tokens compared between f16 and f32: one from the prefill, then decode steps. */
export const GREEDY_TOKENS = 24;

export interface F16ModelCase {
  name: string;
  weights: 'f32' | 'q4';
  /** Whether f16 shrinks the state: the KV cache and Mamba's conv state do; RetNet's S is all f32. */
  stateShrinks: boolean;
  checkpoint(): { files: Record<string, Uint8Array> };
  /** Float64 logits of every position of `ids`. */
  reference(ids: readonly number[]): Float64Array;
}

/** A case: the checkpoint made on demand (in the page and on the Node side alike), and its reference on the weights as loaded. */
function modelCase<C>(name: string, weights: 'f32' | 'q4', stateShrinks: boolean, make: () => C & { files: Record<string, Uint8Array> }, reference: (c: C, ids: readonly number[]) => Float64Array): F16ModelCase {
  return { name, weights, stateShrinks, checkpoint: make, reference: (ids) => reference(make(), ids) };
}

const transformerCase = (name: string, weights: 'f32' | 'q4', modelType: 'llama' | 'qwen2') =>
  modelCase(name, weights, true, () => tinyTransformer({ seed: 5, modelType }), (c, ids) => refForward(c.config, asLoaded(c.weights, transformerTensorShapes(c.config), weights), ids));
const mambaCase = (name: string, weights: 'f32' | 'q4') =>
  modelCase(name, weights, true, () => tinyMamba({ seed: 6 }), (c, ids) => refMambaForward(c.config, asLoaded(c.weights, mambaTensorShapes(c.config), weights, mambaQuantized), ids));
const retnetCase = (name: string, weights: 'f32' | 'q4') =>
  modelCase(name, weights, false, () => tinyRetnet({ seed: 8 }), (c, ids) => refRetNetForward(c.config, asLoaded(c.weights, retnetRefTensorShapes(c.config), weights), ids));
const moeCase = (name: string, weights: 'f32' | 'q4') =>
  modelCase(name, weights, true, () => tinyMoe('qwen2_moe', { seed: 12 }), (c, ids) => refMoeForward(c.config, moeAsLoaded(c, weights), ids));

export const F16_MODEL_CASES: readonly F16ModelCase[] = [
  transformerCase('llama f32 weights', 'f32', 'llama'),
  transformerCase('llama q4 weights', 'q4', 'llama'),
  transformerCase('qwen2 (biases) f32 weights', 'f32', 'qwen2'),
  mambaCase('mamba f32 weights', 'f32'),
  mambaCase('mamba q4 weights', 'q4'),
  retnetCase('retnet f32 weights', 'f32'),
  retnetCase('retnet q4 weights', 'q4'),
  moeCase('qwen2_moe (mixture of experts) q4 weights', 'q4'),
];
