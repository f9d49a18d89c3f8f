// The bundled tiny models (models/<name>/, trained by tools/train) against the
// goldens PyTorch wrote beside them, through the public API on the real
// checkpoint folders: f32 logits at every position of a validation window,
// the 64-token greedy continuation of a prompt, and the loss cost of the
// default 4-bit load.

import { expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { loadModel, BUNDLED_MODELS, bundledModelUrl } from '../../src/node';
import { describeGpu } from '../helpers/gpu';

// Per position: max |ours - golden| over the row / max |golden| over the row.
const REL = 1e-3;
// The default 4-bit load may raise the window's mean loss by this much, relative.
const Q4_RISE = 0.05;

interface Greedy { prompt: string; prompt_ids: number[]; new_tokens: number; ids: number[]; text: string; min_top2_gap: number }
interface Golden {
  window: {
    split: string; start: number; length: number; ids: number[]; loss: number; logits: number[][];
    /** MoE only: PyTorch with the experts through Tessera's 4-bit format (q4.ts, ported), everything else f32. */
    logits_experts_q4?: number[][];
  };
  greedy: Greedy;
  greedy_experts_q4?: Greedy;
}

const folder = (name: string) => fileURLToPath(new URL(`../../models/${name}/`, import.meta.url));
const golden = (name: string): Golden => JSON.parse(readFileSync(folder(name) + 'golden.json', 'utf8'));

/** Mean NLL (nats per token) of ids[1..] from logits (T, V), in float64. */
function meanLoss(logits: Float32Array, ids: number[], V: number): number {
  let nll = 0;
  for (let t = 0; t + 1 < ids.length; t++) {
    const row = logits.subarray(t * V, (t + 1) * V);
    let m = -Infinity;
    for (const v of row) m = Math.max(m, v);
    let z = 0;
    for (const v of row) z += Math.exp(v - m);
    nll += Math.log(z) + m - row[ids[t + 1]];
  }
  return nll / (ids.length - 1);
}

describeGpu('bundled models against their PyTorch goldens', () => {
  it.each(BUNDLED_MODELS)('%s, f32: logits over the golden window and the greedy continuation', async (name) => {
    const g = golden(name);
    const lm = await loadModel(folder(name), { weights: 'f32', embeddings: 'f32' });
    try {
      const V = lm.info.vocabSize;
      const trained = JSON.parse(readFileSync(folder(name) + 'training.json', 'utf8'));
      expect(lm.info.params).toEqual({ total: trained.params_total, activePerToken: trained.params_active });
      // A mixture's experts are 4-bit in every load mode (WeightUploader.experts), so its f32
      // load is held to the golden PyTorch computed with exactly those 4-bit experts.
      const moe = lm.info.ffn === 'moe';
      const wantLogits = moe ? g.window.logits_experts_q4! : g.window.logits;
      const greedy = moe ? g.greedy_experts_q4! : g.greedy;
      expect(wantLogits).toBeDefined();
      const got = await lm.logits(g.window.ids);
      let worst = 0;
      let worstAt = -1;
      wantLogits.forEach((want, t) => {
        let err = 0;
        let scale = 0;
        for (let v = 0; v < V; v++) {
          err = Math.max(err, Math.abs(got[t * V + v] - want[v]));
          scale = Math.max(scale, Math.abs(want[v]));
        }
        if (err / scale > worst) [worst, worstAt] = [err / scale, t];
      });
      console.log(`${name} f32${moe ? ' (experts 4-bit)' : ''}: worst per-position relative logit error ${worst.toExponential(2)} (position ${worstAt}; bound ${REL})`);
      expect(wantLogits.length).toBe(g.window.ids.length);
      expect(worst).toBeLessThan(REL);
      if (moe) {
        // For information: the distance of those 4-bit experts from PyTorch's all-f32 golden.
        let err = 0;
        let scale = 0;
        g.window.logits.forEach((want, t) => want.forEach((w, v) => ((err = Math.max(err, Math.abs(got[t * V + v] - w))), (scale = Math.max(scale, Math.abs(w))))));
        console.log(`${name} f32 load vs the all-f32 golden (experts are 4-bit in every mode): max relative logit difference ${(err / scale).toExponential(2)}`);
      }

      let text = '';
      for await (const piece of lm.generate(greedy.prompt, { maxNewTokens: greedy.new_tokens, temperature: 0 })) text += piece;
      expect(lm.tokenizer!.encode(greedy.prompt)).toEqual(Int32Array.from(greedy.prompt_ids));
      expect(Array.from(lm.tokenizer!.encode(text))).toEqual(greedy.ids);
      expect(text).toBe(greedy.text);
    } finally {
      lm.dispose();
    }
  });

  it.each(BUNDLED_MODELS)('%s, default 4-bit load: the window loss rises by less than 5 percent', async (name) => {
    const g = golden(name);
    const lm = await loadModel(`bundled:${name}`); // by name, as users open them
    try {
      expect(lm.info.weights).toBe('q4');
      const q4 = meanLoss(await lm.logits(g.window.ids), g.window.ids, lm.info.vocabSize);
      const rise = q4 / g.window.loss - 1;
      console.log(`${name} q4: window loss ${q4.toFixed(4)} vs f32 ${g.window.loss.toFixed(4)} nats/char (${(100 * rise).toFixed(2)}%; bound ${100 * Q4_RISE}%)`);
      expect(rise).toBeLessThan(Q4_RISE);
    } finally {
      lm.dispose();
    }
  });

  it('a bundled name that is not one of them is an Error listing them, before anything is read; the URL of one is beside the package code', async () => {
    for (const bad of ['gpt2', '', '../models/transformer', 'Transformer']) {
      await expect(loadModel(`bundled:${bad}`)).rejects.toThrow(`unknown bundled model ${JSON.stringify(bad)}: the bundled models are transformer, mamba, retnet, moe`);
    }
    expect(bundledModelUrl('mamba').href).toMatch(/\/models\/mamba\/$/);
    expect(() => bundledModelUrl('nope')).toThrow(/unknown bundled model "nope"/);
  });
});
