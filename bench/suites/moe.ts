// Mixture-of-experts suite: random weights (4-bit layers and experts, 8-bit
// embedding) in the granite-3.0-1b-a400m shape (24 layers, D 1024, 16 heads
// over 8 KV heads, 32 experts of width 512, 8 per token, vocab 49155), timed
// through the model contract beside two dense Llama models in the same run:
// one whose MLP width gives it the MoE's active parameters per token (width
// k·I, 4096) and one of the MoE's total size (width E·I, 16384). All three
// share the attention, embedding and layer count (--quick and --layers cut
// them alike), are loaded at once and timed in turn at each size, so the
// ratios compare them under the same load. Prefill tokens/s at several
// prompt lengths, decode tokens/s at several context lengths, the weight
// bytes, and an estimate of the bytes one decoded token reads.
// Everything goes through the public contract: random checkpoints
// (compare/random_checkpoint.ts) through loadModel, LanguageModel and its
// states, the ledger, and the comparison's timings (compare/timing.ts).
// Nothing is verified here: the model tests check GraniteMoE (and the other
// MoE layouts) against the float64 reference.

import type { Gpu } from '../../src/runtime/gpu';
import type { LanguageModel } from '../../src/models/model';
import { loadModel } from '../../src/load';
import { defaultInit, randomCheckpoint, type Init } from '../compare/random_checkpoint';
import { timeDecode, timePrefill } from '../compare/timing';
import { logged, printTable, type BenchOptions, type Row } from '../harness';

const GRANITE_1B_A400M = {
  model_type: 'granitemoe', hidden_size: 1024, intermediate_size: 512, num_hidden_layers: 24, num_attention_heads: 16,
  num_key_value_heads: 8, num_local_experts: 32, num_experts_per_tok: 8, vocab_size: 49155,
  embedding_multiplier: 12, attention_multiplier: 0.015625, residual_multiplier: 0.22, logits_scaling: 6,
  rms_norm_eps: 1e-6, rope_theta: 10000, max_position_embeddings: 4096, tie_word_embeddings: true,
};

/**
 * random_checkpoint's default (matrices u / sqrt(fan-in), norms near 1), with
 * the embedding and the residual branches' output matrices (o_proj and the
 * down projections: GraniteMoE's experts' output_linear) drawn at
 * 1/multiplier, so GraniteMoE's activations are O(1) like the dense models'
 * (its trained weights absorb the multipliers the loader folds in).
 */
function multiplierInit(config: Record<string, unknown>): Init {
  const mEmb = Number(config.embedding_multiplier ?? 1);
  const mRes = Number(config.residual_multiplier ?? 1);
  return (name, shape) => {
    const value = defaultInit(name, shape);
    let scale = 1;
    if (name === 'model.embed_tokens.weight') scale /= mEmb;
    if (/(o_proj|down_proj|output_linear)\.weight$/.test(name)) scale /= mRes;
    return scale === 1 ? value : (u, i) => value(u, i) * scale;
  };
}

interface Bench {
  name: string;
  what: string;
  /** The MLP as the models table shows it. */
  mlp: string;
  model: LanguageModel;
  dispose(): void;
  /** Ledger 'experts' bytes of this model (0 for a dense one). */
  expertBytes: number;
  /** Fraction of the expert bytes one token reads (k / E); 0 for a dense model. */
  expertFraction: number;
  /** Bytes of K and V per cached token, all layers: 2 · layers · KV heads · head dim · element. */
  kvBytesPerToken: number;
}

/** An estimate of the weight and KV-cache bytes one decode step reads at context `ctx`. */
function bytesPerToken(b: Bench, ctx: number): number {
  // Non-expert weights all (the tied embedding once, as the LM head); of the experts, k of E per layer.
  return b.model.info.weightBytes - b.expertBytes + b.expertBytes * b.expertFraction + b.kvBytesPerToken * ctx;
}

export async function moeSuite(gpu: Gpu, opts: BenchOptions): Promise<void> {
  const layers = opts.layers ?? (opts.quick ? 4 : undefined);
  // Prefill is compute-bound and the dense model of the MoE's total size is slow to prefill on a
  // software adapter: --quick times one prompt length.
  const prompts = opts.prompts ?? (opts.quick ? [128] : [128, 512]);
  const contexts = opts.contexts ?? [128, 1024];
  const steps = opts.quick || opts.repeats === 1 ? 8 : 32;
  const maxContext = Math.max(...contexts, ...prompts) + steps;
  const base = {
    ...GRANITE_1B_A400M,
    max_position_embeddings: Math.max(GRANITE_1B_A400M.max_position_embeddings, maxContext),
    ...(layers && { num_hidden_layers: layers }),
    ...(opts.vocab && { vocab_size: opts.vocab }),
  };
  const { num_local_experts: E, num_experts_per_tok: k, intermediate_size: I, hidden_size: D } = base;
  // Dense MLP widths (multiples of 32, the 4-bit group) whose 3·D·I_dense per layer equals the MoE's
  // active (router + k experts) and total (router + E experts) feed-forward parameters.
  const width = (params: number) => Math.max(32, Math.round(params / (3 * D) / 32) * 32);
  const dense = (intermediate: number) => ({
    model_type: 'llama', hidden_size: D, intermediate_size: intermediate, num_hidden_layers: base.num_hidden_layers,
    num_attention_heads: base.num_attention_heads, num_key_value_heads: base.num_key_value_heads, vocab_size: base.vocab_size,
    rms_norm_eps: base.rms_norm_eps, rope_theta: base.rope_theta, max_position_embeddings: base.max_position_embeddings,
    tie_word_embeddings: true,
  });
  const iActive = width(E * D + k * 3 * D * I);
  const iTotal = width(E * D + E * 3 * D * I);
  const specs: { name: string; what: string; mlp: string; config: Record<string, unknown>; experts: number }[] = [
    { name: 'moe', what: `GraniteMoE, ${E} experts of width ${I}, ${k} per token`, mlp: `${E} × ${I}, k ${k}`, config: base, experts: k / E },
    { name: 'dense-active', what: `Llama, MLP width ${iActive} (the MoE's active parameters)`, mlp: `${iActive}`, config: dense(iActive), experts: 0 },
    { name: 'dense-total', what: `Llama, MLP width ${iTotal} (the MoE's total parameters)`, mlp: `${iTotal}`, config: dense(iTotal), experts: 0 },
  ];
  console.log(`Models: granite-3.0-1b-a400m shape${layers ? ` cut to ${base.num_hidden_layers} of 24 layers` : ''}${opts.vocab ? ` and a ${base.vocab_size}-token vocabulary` : ''} (D ${D}, ${base.num_attention_heads} heads over ${base.num_key_value_heads} KV heads, tied ${base.vocab_size}-token embedding), and two dense Llama models with the same attention, embedding and layers; random weights, 4-bit layers and experts, 8-bit embedding.`);
  const kvElement = gpu.activationType === 'f16' ? 2 : 4;
  const kvBytesPerToken = 2 * base.num_hidden_layers * base.num_key_value_heads * (D / base.num_attention_heads) * kvElement;
  const benches: Bench[] = [];
  const token = gpu.empty([1], 'u32', 'bench.token', 'scratch');
  try {
    for (const [i, s] of specs.entries()) {
      const t0 = performance.now();
      const before = gpu.ledger.report().bytes.experts;
      const source = randomCheckpoint(s.config, 1 + i, multiplierInit(s.config));
      const lm = await loadModel(source, { device: gpu, maxContext, prefillChunk: 512 });
      const model = lm.model;
      const b: Bench = { ...s, model, dispose: () => lm.dispose(), expertBytes: gpu.ledger.report().bytes.experts - before, expertFraction: s.experts, kvBytesPerToken };
      benches.push(b);
      const p = model.info.params;
      console.log(`  ${s.name}: ${s.what}; ${(p.total / 1e6).toFixed(1)} M parameters, ${(p.activePerToken / 1e6).toFixed(1)} M active per token; ${(model.info.weightBytes / 2 ** 20).toFixed(1)} MiB of weights${b.expertBytes ? ` (experts ${(b.expertBytes / 2 ** 20).toFixed(1)} MiB)` : ''}; loaded in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
    }
    console.log('');
    /** Device bytes of a state for `n` tokens (the KV cache, and its decode attention's scratch), in MiB. */
    const stateMiB = (b: Bench, n: number) => {
      const st = b.model.createState({ maxTokens: n });
      const bytes = st.bytes;
      st.dispose();
      return bytes / 2 ** 20;
    };
    const rows: Row[] = [];
    // Each size is timed for the three models in turns, round after round, the best of each
    // model kept, so a change in the machine's load hits them alike. Decode (what the target
    // compares) takes at least two rounds; prefill, which is costly on a software adapter, the
    // repeats asked for.
    const prefill = new Map<string, number>();
    const decode = new Map<string, number>();
    const inTurns = async (label: string, rounds: number, time: (b: Bench, i: number) => Promise<number>): Promise<number[]> => {
      const best = benches.map(() => Infinity);
      for (let r = 0; r < rounds; r++) {
        const secs: number[] = [];
        for (const [i, b] of benches.entries()) secs.push(await time(b, i));
        secs.forEach((t, i) => (best[i] = Math.min(best[i], t)));
        if (rounds > 1) console.log(`  ${label}, round ${r + 1}: ${benches.map((b, i) => `${b.name} ${(secs[i] * 1000).toFixed(0)} ms`).join(', ')}`);
      }
      return best;
    };
    for (const n of prompts) {
      // Warm-up: pipelines compile on first use, buffers are first touched. One tile of the
      // matmuls (64 tokens) runs every kernel and, 8 experts a token, almost surely reaches them all.
      if (n === prompts[0]) for (const b of benches) await timePrefill(b.model, token, Math.min(n, 64));
      const best = await inTurns(`prefill ${n}`, opts.repeats ?? 2, (b) => timePrefill(b.model, token, n));
      for (const [i, b] of benches.entries()) {
        prefill.set(`${b.name}@${n}`, n / best[i]);
        rows.push(logged({ model: b.name, phase: 'prefill', tokens: n, 'tokens/s': n / best[i], ms: best[i] * 1000, 'KV cache MiB': stateMiB(b, n), 'est. MB read/token': '-' }));
      }
    }
    for (const ctx of contexts) {
      // Decode cost depends on how many cache rows attention reads, not on their values:
      // timeDecode starts the state at ctx - 1 without computing the prefix (ModelState.skip).
      const states = benches.map((b) => b.model.createState({ maxTokens: ctx + steps }));
      try {
        if (ctx === contexts[0]) for (const [i, b] of benches.entries()) await timeDecode(b.model, states[i], token, ctx, 1);
        const best = await inTurns(`decode ${ctx}`, Math.max(2, opts.repeats ?? 2), (b, i) => timeDecode(b.model, states[i], token, ctx, steps));
        for (const [i, b] of benches.entries()) {
          decode.set(`${b.name}@${ctx}`, 1 / best[i]);
          rows.push(logged({ model: b.name, phase: 'decode', tokens: ctx, 'tokens/s': 1 / best[i], ms: best[i] * 1000, 'KV cache MiB': states[i].bytes / 2 ** 20, 'est. MB read/token': bytesPerToken(b, ctx) / 1e6 }));
        }
      } finally {
        for (const st of states) st.dispose();
      }
    }
    console.log('');
    printTable(`moe vs dense, ${base.num_hidden_layers} layers, 4-bit (tokens = prompt length for prefill, context for decode)`, rows);

    const MiB = (x: number) => x / 2 ** 20;
    printTable('models', benches.map((b): Row => ({
      model: b.name,
      'MLP': b.mlp,
      'params M': b.model.info.params.total / 1e6,
      'active params M': b.model.info.params.activePerToken / 1e6,
      'weights MiB': MiB(b.model.info.weightBytes),
      'experts MiB': MiB(b.expertBytes),
      ...Object.fromEntries(contexts.map((c) => [`est. MB read/token @${c}`, bytesPerToken(b, c) / 1e6])),
    })));
    console.log(`Bytes read per decoded token: an estimate of weight and KV-cache traffic from the ledger and the shapes, not a measurement: every non-expert weight once (the tied embedding once, as the LM head; the f32 router included), ${k}/${E} of the expert bytes, and K and V of every cached position (${kvElement}-byte elements). Activations and scratch are left out.\n`);

    const ratio = (m: Map<string, number>, a: string, b: string, n: number) => m.get(`${a}@${n}`)! / m.get(`${b}@${n}`)!;
    const ratios: Row[] = [
      ...contexts.map((c): Row => ({ phase: 'decode', tokens: c, 'moe / dense-active': ratio(decode, 'moe', 'dense-active', c), 'moe / dense-total': ratio(decode, 'moe', 'dense-total', c) })),
      ...prompts.map((n): Row => ({ phase: 'prefill', tokens: n, 'moe / dense-active': ratio(prefill, 'moe', 'dense-active', n), 'moe / dense-total': ratio(prefill, 'moe', 'dense-total', n) })),
    ];
    printTable('tokens/s ratios', ratios);
    if (contexts.length === 0) return;
    const decodeActive = contexts.map((c) => ratio(decode, 'moe', 'dense-active', c));
    const decodeTotal = contexts.map((c) => ratio(decode, 'moe', 'dense-total', c));
    const worst = Math.min(...decodeActive);
    console.log(`Target: MoE decode ≥ 0.7× the active-matched dense model's tokens/s: ${decodeActive.map((r) => r.toFixed(2)).join(', ')} at contexts ${contexts.join(', ')}: ${worst >= 0.7 ? 'met' : 'NOT met'}.`);
    console.log(`MoE decode vs the dense model of its total size: ${decodeTotal.map((r) => r.toFixed(2)).join(', ')}× (${Math.min(...decodeTotal) > 1 ? 'above it at every context' : 'NOT above it at every context'}).`);
  } finally {
    token.dispose();
    for (const b of benches) b.dispose();
  }
}
