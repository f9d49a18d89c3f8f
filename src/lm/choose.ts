// Choosing the next token on the device, in the submit that computed the
// logits: greedy (argmax) or sampled (temperature, top-k, top-p, from a
// seeded counter stream), beside a count of the non-finite logits, so an
// overflowed forward pass is an Error rather than a token chosen among NaNs.
// One 8-byte read comes back per token.

import type { Recorder } from '../runtime/recorder';
import type { Tensor } from '../runtime/tensor';
import { TesseraError } from '../runtime/errors';
import { argmax } from '../kernels/argmax';
import { countNonfinite } from '../kernels/count_nonfinite';
import { sample } from '../kernels/sample';

export interface Sampling {
  /** 0 decodes greedily. */
  temperature: number;
  topK: number;
  topP: number;
}

/**
 * Records the choice after the forward pass into `out` (u32 [token, non-finite
 * count]), submits `rec` and returns the token of sampling step `step` of the
 * stream `seed`.
 */
export async function chooseToken(rec: Recorder, logits: Tensor, out: Tensor, s: Sampling, seed: number, step: number, vocabSize: number): Promise<number> {
  if (s.temperature === 0) argmax(rec, logits, out, undefined, 0);
  else sample(rec, logits, out, { temperature: s.temperature, topK: s.topK, topP: s.topP, seed, step }, undefined, 0);
  countNonfinite(rec, logits, out, undefined, 1);
  const [token, nonfinite] = await rec.submitAndRead(out);
  if (nonfinite > 0) {
    throw new TesseraError('NON_FINITE', `generate: the forward pass produced ${nonfinite} non-finite logits (NaN or infinity) at step ${step}; weights or activations overflow float32, so no token was chosen`);
  }
  if (token >= vocabSize) throw new Error(`generate: no token could be chosen at step ${step}`);
  return token;
}
