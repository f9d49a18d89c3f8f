// The bundled tiny models side by side (models/<name>/, trained by
// tools/train on Tiny Shakespeare for the same wall time): parameters, the
// trainer's loss on the whole held-out tenth of the text, the runtime's loss
// on its first 4096 characters (32 windows of the 128 characters they were
// trained on, as `tessera-llm score --window 128` computes it; the whole tenth
// takes about a quarter of an hour per model on a software adapter) in f32
// and with the default 4-bit formats, prefill and decode tokens/s through
// generate() as a user gets them, and the bytes a context of 1024 tokens
// holds (the KV cache of the transformers, the fixed state of Mamba and
// RetNet). Everything goes through the public API.

import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { Gpu } from '../../src/runtime/gpu';
import { loadModel } from '../../src/load';
import { BUNDLED_MODELS } from '../../src/bundled';
import { scoreTokens } from '../../src/score';
import { logged, printTable, type BenchOptions, type Row } from '../harness';

// bench/dist/run.js -> the project's models/ and data/
const root = new URL('../../', import.meta.url);
const WINDOW = 128;

export async function bundledSuite(gpu: Gpu, opts: BenchOptions): Promise<void> {
  const text = readFileSync(new URL('data/tinyshakespeare.txt', root), 'utf8');
  // The held-out split as the trainer cut it: the last 10% of the characters. --quick scores its first 1024.
  const heldOut = text.slice(Math.floor(text.length * 0.9));
  const scored = heldOut.slice(0, opts.quick ? 1024 : 4096);
  const promptLen = opts.prompts?.[0] ?? WINDOW;
  const decodeTokens = opts.quick ? 32 : 128;
  const rows: Row[] = [];
  console.log(`Scored: the first ${scored.length} characters of the held-out tenth, in windows of ${WINDOW}; prompts of ${promptLen} tokens, ${decodeTokens} decoded greedily.\n`);
  for (const name of BUNDLED_MODELS) {
    const dir = fileURLToPath(new URL(`models/${name}/`, root));
    const training = JSON.parse(readFileSync(`${dir}/training.json`, 'utf8')) as Record<string, unknown>;
    const losses: Record<string, number> = {};
    let row: Row = {};
    for (const weights of ['f32', 'q4'] as const) {
      const lm = await loadModel(dir, { device: gpu, weights, maxContext: name === 'transformer' || name === 'moe' ? 1024 : undefined });
      try {
        const ids = lm.tokenizer!.encode(scored);
        losses[weights] = (await scoreTokens(lm, ids, WINDOW)).loss;
        if (weights === 'q4') {
          const prompt = lm.tokenizer!.encode(heldOut.slice(0, promptLen * 4)).subarray(0, promptLen);
          // Warm-up (pipelines compile on first use), then the timed run.
          for await (const _ of lm.generate(prompt, { maxNewTokens: 4 })) void _;
          for await (const _ of lm.generate(prompt, { maxNewTokens: decodeTokens })) void _;
          const s = lm.stats()!;
          // The context's bytes at 1024 tokens: a state sized for them (the KV cache grows with it; a recurrent state does not).
          const state = lm.model.createState({ maxTokens: 1024 });
          const stateBytes = state.bytes;
          state.dispose();
          const p = lm.info.params;
          row = {
            model: name,
            type: lm.info.modelType,
            'params total': `${(p.total / 1e6).toFixed(2)}M`,
            'params active': `${(p.activePerToken / 1e6).toFixed(2)}M`,
            'steps': String(training.steps ?? '-'),
            'trainer loss (whole split)': Number(training.val_loss),
            'loss f32': losses.f32,
            'loss q4': losses.q4,
            'q4 rise %': (100 * (losses.q4 - losses.f32)) / losses.f32,
            'prefill tok/s': s.prefillTokensPerSecond,
            'decode tok/s': s.decodeTokensPerSecond,
            'KiB at 1k tokens': stateBytes / 1024,
          };
        }
      } finally {
        lm.dispose();
      }
    }
    rows.push(logged(row));
  }
  printTable('Bundled models', rows);
}
