// The invariants every family passes through the model contract (design.md):
// prefill of N tokens equals decoding them one by one; reset() reproduces the
// same logits; state bytes are constant over position for recurrent families
// and fixed by the capacity for the KV cache.

import { expect, it } from 'vitest';
import { loadModel } from '../../src/lm';
import { Recorder } from '../../src/runtime/recorder';
import type { LanguageModel, ModelState } from '../../src/models/model';
import { describeGpu, useGpu } from '../helpers/gpu';
import { tinyMamba, tinyTransformer } from '../helpers/checkpoints';
import { tinyRetnet } from '../helpers/retnet_checkpoint';
import { tinyMoe } from '../helpers/moe_checkpoint';
import { randint } from '../helpers/random';
import { relMaxErr } from '../helpers/models';

const CHUNK = 8;
const FAMILIES = [
  ['transformer', () => tinyTransformer({ seed: 41 }).files],
  ['mamba', () => tinyMamba({ seed: 42 }).files],
  ['retnet', () => tinyRetnet({ seed: 43 }).files],
  ['transformer with mixture of experts (Qwen2-MoE)', () => tinyMoe('qwen2_moe', { seed: 44 }).files],
] as const;

async function prefillAll(model: LanguageModel, state: ModelState, ids: Int32Array): Promise<Float32Array> {
  let last: Float32Array = new Float32Array(0);
  for (let i = 0; i < ids.length; i += model.prefillChunk) {
    const rec = new Recorder(model.gpu);
    last = (await rec.submitAndRead(model.prefill(rec, state, ids.subarray(i, i + model.prefillChunk)))) as Float32Array;
  }
  return last;
}

async function decodeEach(model: LanguageModel, state: ModelState, ids: Int32Array): Promise<Float32Array> {
  let last: Float32Array = new Float32Array(0);
  for (const id of ids) {
    const rec = new Recorder(model.gpu);
    last = (await rec.submitAndRead(model.decode(rec, state, id))) as Float32Array;
  }
  return last;
}

describeGpu('the model contract, for every family', () => {
  const gpu = useGpu();

  it.each(FAMILIES)('%s: prefill(N) equals N single decode steps, N = 1, chunk-1, chunk, chunk+1, 3*chunk+5', async (_name, files) => {
    const lm = await loadModel(files(), { weights: 'q4', device: gpu(), maxContext: 64, prefillChunk: CHUNK });
    try {
      for (const n of [1, CHUNK - 1, CHUNK, CHUNK + 1, 3 * CHUNK + 5]) {
        const ids = randint(900 + n, n, lm.info.vocabSize);
        const a = lm.model.createState();
        const b = lm.model.createState();
        const parallel = await prefillAll(lm.model, a, ids);
        const stepped = await decodeEach(lm.model, b, ids);
        // Same weights, different kernels (tiled matmul vs matvec, chunked scan vs step): f32 rounding only.
        expect(relMaxErr(stepped, parallel), `n = ${n}`).toBeLessThan(1e-4);
        expect(a.position).toBe(n);
        expect(b.position).toBe(n);
        a.dispose();
        b.dispose();
      }
    } finally {
      lm.dispose();
    }
  });

  it.each(FAMILIES)('%s: reset() reproduces the same logits; state bytes do not grow with position; skip() moves the position only', async (name, files) => {
    const lm = await loadModel(files(), { weights: 'q4', device: gpu(), maxContext: 64, prefillChunk: CHUNK });
    try {
      const state = lm.model.createState();
      const bytes0 = state.bytes;
      const ids = randint(77, 20, lm.info.vocabSize);
      const first = await prefillAll(lm.model, state, ids);
      expect(state.bytes).toBe(bytes0);
      state.reset();
      expect(state.position).toBe(0);
      const again = await prefillAll(lm.model, state, ids);
      expect(Array.from(again)).toEqual(Array.from(first));
      // The KV cache is allocated for its capacity up front; a recurrent state is one fixed size.
      if (name === 'transformer') {
        const small = lm.model.createState({ maxTokens: 32 });
        expect(small.bytes).toBeLessThan(bytes0);
        small.dispose();
      }
      // skip(): the position moves on without computing anything; past a KV cache's room it is the
      // context-overflow Error, and a count that is not a whole number of tokens is refused.
      state.reset();
      state.skip(40);
      expect(state.position).toBe(40);
      expect(state.bytes).toBe(bytes0);
      if (name === 'transformer') expect(() => state.skip(25)).toThrow(/context overflow: 40 tokens so far \+ 25 new/);
      for (const bad of [-1, 1.5, NaN]) expect(() => state.skip(bad)).toThrow(/skip: .* is not a whole number of tokens/);
      expect(state.position).toBe(40);
      state.dispose();
    } finally {
      lm.dispose();
    }
  });

  it.each(FAMILIES)('%s: one recorder holding several prefill steps gives what they give submitted one by one', async (_name, files) => {
    const lm = await loadModel(files(), { weights: 'q4', device: gpu(), maxContext: 64, prefillChunk: CHUNK });
    try {
      const ids = randint(78, 3 * CHUNK - 2, lm.info.vocabSize);
      const apart = lm.model.createState();
      const expected = await prefillAll(lm.model, apart, ids);
      const together = lm.model.createState();
      const rec = new Recorder(lm.model.gpu);
      let logits = null;
      for (let i = 0; i < ids.length; i += CHUNK) logits = lm.model.prefill(rec, together, ids.subarray(i, i + CHUNK));
      expect(Array.from(await rec.submitAndRead(logits!))).toEqual(Array.from(expected));
      apart.dispose();
      together.dispose();
    } finally {
      lm.dispose();
    }
  });
});
