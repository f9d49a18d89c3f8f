// The loss of a model on a text: what `tessera-llm score` prints and the bundled
// models' comparison reports. The tokens are cut into consecutive windows of
// `window` tokens, each scored from its own start (a fresh context): within a
// window every token after the first is predicted from those before it.

import type { LM } from './lm';

export interface Score {
  /** Mean negative log-likelihood of the predicted tokens, in nats per token. */
  loss: number;
  /** How many tokens were predicted. */
  count: number;
}

export async function scoreTokens(lm: LM, ids: Int32Array, window: number, signal?: AbortSignal): Promise<Score> {
  if (!(Number.isInteger(window) && window >= 2)) throw new Error(`scoreTokens: window must be an integer of at least 2 tokens, got ${window}`);
  const V = lm.info.vocabSize;
  let nll = 0;
  let count = 0;
  for (let start = 0; start + 1 < ids.length; start += window) {
    signal?.throwIfAborted();
    const part = ids.subarray(start, Math.min(ids.length, start + window));
    const logits = await lm.logits(part);
    for (let t = 0; t + 1 < part.length; t++) {
      const row = logits.subarray(t * V, (t + 1) * V);
      let m = -Infinity;
      for (const v of row) m = Math.max(m, v);
      let z = 0;
      for (const v of row) z += Math.exp(v - m);
      nll += Math.log(z) + m - row[part[t + 1]];
      count++;
    }
  }
  return { loss: count ? nll / count : NaN, count };
}
