// Transformer suite: random weights (4-bit layers, 8-bit embedding) in the
// SmolLM2-135M shape (30 layers, D 576, 9 heads over 3 KV heads, MLP 1536,
// vocab 49152), timed through the model contract: prefill tokens/s at several
// prompt lengths and decode tokens/s at several context lengths, with weight
// and KV-cache bytes.
// A tiny model with the same code path is verified against the float64
// reference first.

import type { Gpu } from '../../src/runtime/gpu';
import { Recorder } from '../../src/runtime/recorder';
import { argmax } from '../../src/kernels/argmax';
import { parseTransformerConfig, type TransformerConfig } from '../../src/models/transformer/config';
import { loadTransformerWeights, transformerTensorShapes } from '../../src/models/transformer/weights';
import { TransformerModel } from '../../src/models/transformer/model';
import { refForward } from '../../src/reference/transformer';
import { asLoaded } from '../../test/helpers/models';
import { bestOf, logged, printTable, randomWeights, verifyPrefill, type BenchOptions, type RandomSource, type Row } from '../harness';

const SMOLLM2_135M = {
  model_type: 'llama', hidden_size: 576, intermediate_size: 1536, num_hidden_layers: 30, num_attention_heads: 9,
  num_key_value_heads: 3, vocab_size: 49152,
  max_position_embeddings: 32768, // room to decode past 8192 (the real model has 8192)
  rms_norm_eps: 1e-5, rope_theta: 100000, tie_word_embeddings: true,
};

/** Random weights scaled by 1/sqrt(fan-in), norms near 1. */
function randomSource(cfg: TransformerConfig, seed: number): RandomSource {
  return randomWeights(transformerTensorShapes(cfg), seed, cfg.hiddenSize <= 128, (_n, shape, rnd) => {
    const scale = shape.length === 1 ? 0.1 : 1 / Math.sqrt(shape[1]);
    return Float32Array.from({ length: shape.reduce((a, b) => a * b, 1) }, () => (shape.length === 1 ? 1 : 0) + rnd() * scale);
  });
}

async function verifyTiny(gpu: Gpu): Promise<void> {
  const cfg = parseTransformerConfig({ ...SMOLLM2_135M, hidden_size: 64, intermediate_size: 96, num_hidden_layers: 2, num_attention_heads: 4, num_key_value_heads: 2, vocab_size: 300 });
  const src = randomSource(cfg, 5);
  const model = new TransformerModel(gpu, cfg, await loadTransformerWeights(gpu, src, cfg, { weights: 'q4' }), { maxContext: 64 });
  const ids = Int32Array.from({ length: 9 }, (_, i) => (i * 37) % 300);
  await verifyPrefill('transformer', model, ids, () => refForward(cfg, asLoaded(src.dense!, transformerTensorShapes(cfg), 'q4'), ids).subarray(8 * 300));
}

export async function transformerSuite(gpu: Gpu, opts: BenchOptions): Promise<void> {
  await verifyTiny(gpu);
  const layers = opts.layers ?? (opts.quick ? 4 : undefined);
  const cfg = parseTransformerConfig({ ...SMOLLM2_135M, ...(layers && { num_hidden_layers: layers }), ...(opts.vocab && { vocab_size: opts.vocab }) });
  const prompts = opts.prompts ?? (opts.quick ? [128, 512] : [128, 512, 2048]);
  const contexts = opts.contexts ?? (opts.quick ? [128, 2048] : [128, 2048, 8192]);
  // Decode steps timed per context: fewer where each step is slow (a software adapter).
  const steps = opts.quick || opts.repeats === 1 ? 8 : 32;
  const maxContext = Math.max(...contexts, ...prompts) + steps;
  const t0 = performance.now();
  const model = new TransformerModel(gpu, cfg, await loadTransformerWeights(gpu, randomSource(cfg, 1), cfg, { weights: 'q4' }), { maxContext, prefillChunk: 512 });
  console.log(`Model: SmolLM2-135M shape${layers ? ` cut to ${cfg.nLayers} layers` : ''}${opts.vocab ? ` and a ${cfg.vocabSize}-token vocabulary` : ''}, random weights, ${model.info.weights} layers and ${model.info.embeddings} embedding (${(model.info.weightBytes / 2 ** 20).toFixed(1)} MiB), loaded in ${((performance.now() - t0) / 1000).toFixed(1)} s\n`);
  const token = gpu.empty([1], 'u32', 'bench.token');
  const rows: Row[] = [];
  try {
    for (const n of prompts) {
      const state = model.createState({ maxTokens: maxContext });
      const ids = Int32Array.from({ length: n }, (_, i) => (i * 7919) % cfg.vocabSize);
      const run = async () => {
        state.reset();
        const start = performance.now();
        for (let i = 0; i < n; i += model.prefillChunk) {
          const rec = new Recorder(gpu, 'prefill');
          const logits = model.prefill(rec, state, ids.subarray(i, i + model.prefillChunk));
          if (i + model.prefillChunk >= n) {
            argmax(rec, logits, token);
            await rec.submitAndRead(token);
          } else await rec.submit();
        }
        return (performance.now() - start) / 1000;
      };
      if (n === prompts[0]) await run(); // warm-up: pipelines compile on first use
      const secs = await bestOf(opts.repeats ?? 2, run);
      rows.push(logged({ phase: 'prefill', tokens: n, 'tokens/s': n / secs, 'ms': secs * 1000, 'KV cache MiB': state.bytes / 2 ** 20 }));
      state.dispose();
    }
    for (const ctx of contexts) {
      const state = model.createState({ maxTokens: maxContext });
      // Decode cost depends on how many cache rows attention reads, not on
      // their values: start the state at ctx - 1 without computing the prefix.
      const time = async () => {
        state.reset();
        state.skip(ctx - 1);
        let tok = 1;
        const start = performance.now();
        for (let i = 0; i < steps; i++) {
          const rec = new Recorder(gpu, 'decode');
          argmax(rec, model.decode(rec, state, tok), token);
          tok = (await rec.submitAndRead(token))[0]; // one submit, 4 bytes back
        }
        return (performance.now() - start) / 1000 / steps;
      };
      if (ctx === contexts[0]) await time();
      const secs = await bestOf(opts.repeats ?? 2, time);
      rows.push(logged({ phase: 'decode', tokens: ctx, 'tokens/s': 1 / secs, 'ms': secs * 1000, 'KV cache MiB': state.bytes / 2 ** 20 }));
      state.dispose();
    }
  } finally {
    token.dispose();
    model.dispose();
  }
  printTable(`transformer, ${cfg.nLayers} layers, 4-bit (tokens = prompt length for prefill, context for decode)`, rows);
  console.log(`Weights: ${(model.info.weightBytes / 2 ** 20).toFixed(1)} MiB on the device; KV cache: ${((2 * cfg.nLayers * cfg.nKvHeads * cfg.headDim * 4) / 1024).toFixed(1)} KiB per token.`);
}
