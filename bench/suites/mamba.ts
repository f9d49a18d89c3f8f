// Mamba suite: random weights (4-bit layers, 8-bit embedding) in the
// mamba-130m shape (24 layers, D 768, N 16, expand 2, conv 4, vocab 50280),
// timed through the model contract: prefill tokens/s at several prompt
// lengths, decode tokens/s at several context lengths (the per-token cost
// must stay flat), and the state bytes.
// A tiny model on the same code path is verified against the float64
// reference first.

import type { Gpu } from '../../src/runtime/gpu';
import { Recorder } from '../../src/runtime/recorder';
import { argmax } from '../../src/kernels/argmax';
import { parseMambaConfig, type MambaConfig } from '../../src/models/mamba/config';
import { loadMambaWeights, mambaTensorShapes } from '../../src/models/mamba/weights';
import { MambaModel } from '../../src/models/mamba/model';
import { refMambaForward } from '../../src/reference/mamba';
import { asLoaded, mambaQuantized } from '../../test/helpers/models';
import { bestOf, logged, printTable, randomWeights, verifyPrefill, type BenchOptions, type RandomSource, type Row } from '../harness';

const MAMBA_130M = {
  model_type: 'mamba', hidden_size: 768, state_size: 16, num_hidden_layers: 24, expand: 2, conv_kernel: 4,
  time_step_rank: 'auto', vocab_size: 50280, layer_norm_epsilon: 1e-5, tie_word_embeddings: true,
};

/** Random weights initialised like the real ones (A_log = log(1..N), D = 1, small dt). */
function randomSource(cfg: MambaConfig, seed: number): RandomSource {
  return randomWeights(mambaTensorShapes(cfg), seed, cfg.hiddenSize <= 128, (n, shape, rnd) => {
    const len = shape.reduce((a, b) => a * b, 1);
    if (n.endsWith('A_log')) return Float32Array.from({ length: len }, (_, i) => Math.log(1 + (i % cfg.stateSize)));
    if (n.endsWith('mixer.D')) return new Float32Array(len).fill(1);
    if (n.endsWith('dt_proj.bias')) return Float32Array.from({ length: len }, () => -4 + rnd()); // softplus -> dt ≈ 0.007..0.05
    if (shape.length === 1) return Float32Array.from({ length: len }, () => 1 + 0.1 * rnd());
    return Float32Array.from({ length: len }, () => rnd() / Math.sqrt(shape[shape.length - 1]));
  });
}

async function verifyTiny(gpu: Gpu): Promise<void> {
  const cfg = parseMambaConfig({ ...MAMBA_130M, hidden_size: 64, num_hidden_layers: 2, vocab_size: 300 });
  const src = randomSource(cfg, 3);
  const model = new MambaModel(gpu, cfg, await loadMambaWeights(gpu, src, cfg, { weights: 'q4' }));
  const ids = Int32Array.from({ length: 37 }, (_, i) => (i * 41) % 300);
  await verifyPrefill('mamba', model, ids, () => refMambaForward(cfg, asLoaded(src.dense!, mambaTensorShapes(cfg), 'q4', mambaQuantized), ids).subarray(36 * 300));
}

export async function mambaSuite(gpu: Gpu, opts: BenchOptions): Promise<void> {
  await verifyTiny(gpu);
  const layers = opts.layers ?? (opts.quick ? 4 : undefined);
  const cfg = parseMambaConfig({ ...MAMBA_130M, ...(layers && { num_hidden_layers: layers }), ...(opts.vocab && { vocab_size: opts.vocab }) });
  const prompts = opts.prompts ?? (opts.quick ? [128, 512] : [128, 512, 2048, 8192]);
  const contexts = opts.contexts ?? (opts.quick ? [128, 2048] : [128, 2048, 8192, 32768]);
  const chunk = 1024;
  const steps = opts.quick || opts.repeats === 1 ? 8 : 32;
  const t0 = performance.now();
  const model = new MambaModel(gpu, cfg, await loadMambaWeights(gpu, randomSource(cfg, 1), cfg, { weights: 'q4' }), { prefillChunk: chunk });
  console.log(`Model: mamba-130m shape${layers ? ` cut to ${cfg.nLayers} layers` : ''}${opts.vocab ? ` and a ${cfg.vocabSize}-token vocabulary` : ''}, random weights, ${model.info.weights} layers and ${model.info.embeddings} embedding (${(model.info.weightBytes / 2 ** 20).toFixed(1)} MiB), loaded in ${((performance.now() - t0) / 1000).toFixed(1)} s\n`);
  const token = gpu.empty([1], 'u32', 'bench.token');
  const rows: Row[] = [];
  const state = model.createState();
  const feed = async (n: number, pick: boolean) => {
    const ids = Int32Array.from({ length: n }, (_, i) => (i * 7919) % cfg.vocabSize);
    for (let i = 0; i < n; i += chunk) {
      const rec = new Recorder(gpu, 'prefill');
      const logits = model.prefill(rec, state, ids.subarray(i, i + chunk));
      if (pick && i + chunk >= n) {
        argmax(rec, logits, token);
        await rec.submitAndRead(token);
      } else await rec.submit();
    }
  };
  try {
    for (const n of prompts) {
      const run = async () => {
        state.reset();
        const start = performance.now();
        await feed(n, true);
        return (performance.now() - start) / 1000;
      };
      if (n === prompts[0]) await run(); // warm-up: pipelines compile on first use
      const secs = await bestOf(opts.repeats ?? 2, run);
      rows.push(logged({ phase: 'prefill', tokens: n, 'tokens/s': n / secs, ms: secs * 1000, 'state KiB': state.bytes / 1024 }));
    }
    const perToken: number[] = [];
    for (const ctx of contexts) {
      // The state really holds about ctx tokens: the recurrence has no shortcut,
      // and its size (and the step's cost) must not depend on ctx. Contexts
      // grow, so each one feeds only the tokens past the previous one.
      if (state.position > ctx - 1) state.reset();
      if (ctx - 1 > state.position) await feed(ctx - 1 - state.position, false);
      await gpu.device.queue.onSubmittedWorkDone(); // the feed is not part of the timing
      const time = async () => {
        let tok = 1;
        const start = performance.now();
        for (let i = 0; i < steps; i++) {
          const rec = new Recorder(gpu, 'decode');
          argmax(rec, model.decode(rec, state, tok), token);
          tok = (await rec.submitAndRead(token))[0];
        }
        return (performance.now() - start) / 1000 / steps;
      };
      if (ctx === contexts[0]) await time();
      const secs = await bestOf(opts.repeats ?? 2, time);
      perToken.push(secs);
      rows.push(logged({ phase: 'decode', tokens: ctx, 'tokens/s': 1 / secs, ms: secs * 1000, 'state KiB': state.bytes / 1024 }));
    }
    printTable(`mamba, ${cfg.nLayers} layers, 4-bit (tokens = prompt length for prefill, context for decode)`, rows);
    console.log(`Decode time per token at context ${contexts[contexts.length - 1]} vs ${contexts[0]}: ${(perToken[perToken.length - 1] / perToken[0]).toFixed(2)}× (flat is 1).`);
    console.log(`Weights: ${(model.info.weightBytes / 2 ** 20).toFixed(1)} MiB; state: ${(state.bytes / 1024).toFixed(1)} KiB at any context.`);
  } finally {
    state.dispose();
    token.dispose();
    model.dispose();
  }
}
