// The two timings every model measurement is made of, over the model
// contract alone (LanguageModel, ModelState): a prompt through to its first
// token back on the host, and a decode step at a context reached with
// ModelState.skip. Shared by the comparison (runner.ts) and the moe suite.

import type { LanguageModel, ModelState } from '../../src/models/model';
import type { Tensor } from '../../src/runtime/tensor';
import { Recorder } from '../../src/runtime/recorder';
import { argmax } from '../../src/kernels/argmax';

/**
 * Seconds to prefill `n` tokens into a fresh state (made before the clock
 * starts) in parts of the model's prefillChunk, to the first token read back
 * through `token` ((1) u32, the caller's).
 */
export async function timePrefill(model: LanguageModel, token: Tensor, n: number): Promise<number> {
  const state = model.createState({ maxTokens: model.info.maxContext === null ? undefined : n });
  try {
    const ids = Int32Array.from({ length: n }, (_, i) => (i * 7919 + 11) % model.info.vocabSize);
    const t0 = performance.now();
    for (let i = 0; i < n; i += model.prefillChunk) {
      const rec = new Recorder(model.gpu, 'bench.prefill');
      const logits = model.prefill(rec, state, ids.subarray(i, Math.min(n, i + model.prefillChunk)));
      if (i + model.prefillChunk >= n) {
        argmax(rec, logits, token);
        await rec.submitAndRead(token); // the first token, back on the host
      } else await rec.submit();
    }
    return (performance.now() - t0) / 1000;
  } finally {
    state.dispose();
  }
}

/**
 * Seconds per decode step at context `ctx`: the state is reset and moved to
 * ctx - 1 with skip (a step's cost depends on the length, not on the values),
 * then `steps` greedy steps, each reading its token back.
 */
export async function timeDecode(model: LanguageModel, state: ModelState, token: Tensor, ctx: number, steps: number): Promise<number> {
  state.reset();
  state.skip(ctx - 1);
  let tok = 1;
  const t0 = performance.now();
  for (let s = 0; s < steps; s++) {
    const rec = new Recorder(model.gpu, 'bench.decode');
    argmax(rec, model.decode(rec, state, tok), token);
    tok = (await rec.submitAndRead(token))[0] % model.info.vocabSize;
  }
  return (performance.now() - t0) / 1000 / steps;
}
