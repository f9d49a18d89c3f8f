import { describe, expect, it } from 'vitest';
import {
  createRefMoeCache, isSparseLayer, refMoeBlock, refMoeBlockWeights, refMoeForward, refRouter, refSwiglu,
  type MoeLayout, type RefMoeBlockWeights, type RefMoeConfig, type RefWeights, type RouterMode,
} from '../../src/reference/moe';
import { refMoeConfigFromHf, tinyMoe, type MoeCheckpoint } from '../helpers/moe_checkpoint';
import { randint, randn } from '../helpers/random';

const LAYOUTS: MoeLayout[] = ['mixtral', 'olmoe', 'qwen2_moe', 'granitemoe'];

const rel = (got: ArrayLike<number>, want: ArrayLike<number>) => {
  expect(got.length).toBe(want.length);
  let num = 0;
  let den = 0;
  for (let i = 0; i < want.length; i++) {
    num = Math.max(num, Math.abs(got[i] - want[i]));
    den = Math.max(den, Math.abs(want[i]));
  }
  return num / den;
};
const weightsOf = (m: Map<string, ArrayLike<number>>): RefWeights => (name) => {
  const t = m.get(name);
  if (!t) throw new Error(`no tensor ${name}`);
  return t;
};
const e = Math.E;

describe('refRouter on hand-made logits', () => {
  it('softmax-then-topk: a tie inside the top-k, both kept, lower index first', () => {
    // p = (e, e^3, e^3, 1) / Z
    const Z = e + 2 * e ** 3 + 1;
    const raw = refRouter([1, 3, 3, 0], 4, 2, false, 'softmax-then-topk');
    expect([...raw.ids]).toEqual([1, 2]);
    expect(raw.weights[0]).toBeCloseTo(e ** 3 / Z, 15);
    expect(raw.weights[1]).toBeCloseTo(e ** 3 / Z, 15);
    const norm = refRouter([1, 3, 3, 0], 4, 2, true, 'softmax-then-topk');
    expect([...norm.ids]).toEqual([1, 2]);
    expect([...norm.weights]).toEqual([0.5, 0.5]);
  });

  it('a tie at the top-k boundary: the lowest index of the tied group wins', () => {
    // logits (2, 1, 1, 1): expert 0, then one of 1, 2, 3, all equal -> 1
    const Z = e ** 2 + 3 * e;
    const raw = refRouter([2, 1, 1, 1], 4, 2, false, 'softmax-then-topk');
    expect([...raw.ids]).toEqual([0, 1]);
    expect(raw.weights[0]).toBeCloseTo(e ** 2 / Z, 15);
    expect(raw.weights[1]).toBeCloseTo(e / Z, 15);
    const norm = refRouter([2, 1, 1, 1], 4, 2, true, 'softmax-then-topk');
    expect([...norm.ids]).toEqual([0, 1]);
    expect(norm.weights[0]).toBeCloseTo(e / (e + 1), 15);
    expect(norm.weights[1]).toBeCloseTo(1 / (e + 1), 15);
    // the tied group late in the row: (1, 1, 5, 1) -> 2, then 0
    expect([...refRouter([1, 1, 5, 1], 4, 2, true, 'softmax-then-topk').ids]).toEqual([2, 0]);
  });

  it('all logits equal: experts 0..K-1, weights 1/E raw or 1/K renormalised', () => {
    const raw = refRouter([0.3, 0.3, 0.3, 0.3], 4, 2, false, 'softmax-then-topk');
    expect([...raw.ids]).toEqual([0, 1]);
    expect(raw.weights[0]).toBeCloseTo(0.25, 15);
    expect(raw.weights[1]).toBeCloseTo(0.25, 15);
    const norm = refRouter([0.3, 0.3, 0.3, 0.3], 4, 2, true, 'softmax-then-topk');
    expect([...norm.weights]).toEqual([0.5, 0.5]);
    // torch.topk([-1, -1, -1, -1], 1) answers index 2 on CPU (pytorch #88184); the reference fixes 0
    expect([...refRouter([-1, -1, -1, -1], 4, 1, false, 'softmax-then-topk').ids]).toEqual([0]);
  });

  it('topk-then-softmax (Granite): softmax over the K kept logits, normalised whatever normTopK says', () => {
    for (const normTopK of [false, true]) {
      const r = refRouter([2, 1, 1, 1], 4, 2, normTopK, 'topk-then-softmax');
      expect([...r.ids]).toEqual([0, 1]);
      expect(r.weights[0]).toBeCloseTo(e / (e + 1), 15);
      expect(r.weights[1]).toBeCloseTo(1 / (e + 1), 15);
    }
    // the same experts and weights as softmax-then-topk with renormalisation, on random rows
    const logits = randn(7, 9 * 6, 2);
    const a = refRouter(logits, 6, 3, true, 'softmax-then-topk');
    const b = refRouter(logits, 6, 3, false, 'topk-then-softmax');
    expect([...b.ids]).toEqual([...a.ids]);
    expect(rel(b.weights, a.weights)).toBeLessThan(1e-14);
  });

  it('rows are independent; K = E keeps the whole softmax', () => {
    const r = refRouter([0, 1, 2, /* row 2 */ 5, 5, -3], 3, 3, false, 'softmax-then-topk');
    expect([...r.ids]).toEqual([2, 1, 0, 0, 1, 2]);
    const Z1 = 1 + e + e ** 2;
    expect([...r.weights.slice(0, 3)].map((v) => +v.toFixed(15))).toEqual([e ** 2 / Z1, e / Z1, 1 / Z1].map((v) => +v.toFixed(15)));
    expect(r.weights[3]).toBeCloseTo(r.weights[4], 15);
    expect(r.weights[3] + r.weights[4] + r.weights[5]).toBeCloseTo(1, 15);
  });

  it('refuses a bad K or a non-finite logit', () => {
    expect(() => refRouter([1, 2], 2, 3, true, 'softmax-then-topk')).toThrow(/top-k/);
    expect(() => refRouter([1, NaN], 2, 1, true, 'softmax-then-topk')).toThrow(/non-finite/);
  });
});

/** Every expert on every token, weighted by a dense (T, E) routing mask built by rank counting. */
function bruteForceBlock(x: Float64Array, T: number, D: number, E: number, K: number, I: number, normTopK: boolean, mode: RouterMode, w: RefMoeBlockWeights): Float64Array {
  const out = new Float64Array(T * D);
  for (let t = 0; t < T; t++) {
    const xt = x.subarray(t * D, (t + 1) * D);
    const logit = Array.from({ length: E }, (_, j) => { let s = 0; for (let i = 0; i < D; i++) s += xt[i] * (w.router[j * D + i] as number); return s; });
    // expert j is kept iff fewer than K experts beat it (a larger value, or an equal one at a lower index)
    const kept = logit.map((lj, j) => logit.filter((li, i) => li > lj || (li === lj && i < j)).length < K);
    const max = Math.max(...logit);
    const expAll = logit.map((l) => Math.exp(l - max));
    const sumAll = expAll.reduce((a, b) => a + b, 0);
    const sumKept = expAll.reduce((a, b, j) => a + (kept[j] ? b : 0), 0);
    const mask = expAll.map((v, j) => (!kept[j] ? 0 : mode === 'topk-then-softmax' || normTopK ? v / sumKept : v / sumAll));
    for (let j = 0; j < E; j++) {
      const y = refSwiglu(xt, w.expert(j), D, I); // every expert runs; the mask zeroes the unchosen
      for (let i = 0; i < D; i++) out[t * D + i] += mask[j] * y[i];
    }
    if (w.shared) {
      const y = refSwiglu(xt, w.shared, D, w.shared.size);
      let z = 0;
      for (let i = 0; i < D; i++) z += xt[i] * (w.shared.gateWeight[i] as number);
      for (let i = 0; i < D; i++) out[t * D + i] += y[i] / (1 + Math.exp(-z));
    }
  }
  return out;
}

describe('refMoeBlock equals every expert weighted by the dense routing mask', () => {
  const T = 9, D = 16, E = 6, K = 2, I = 8;
  const make = (seed: number, shared: boolean): RefMoeBlockWeights => {
    const router = randn(seed, E * D, 1 / Math.sqrt(D));
    // experts 2 and 3 share a router row: their logits tie on every token, so the tie rule decides
    router.set(router.subarray(2 * D, 3 * D), 3 * D);
    const experts = Array.from({ length: E }, (_, j) => ({
      gate: randn(seed + 10 + 3 * j, I * D, 1 / Math.sqrt(D)), up: randn(seed + 11 + 3 * j, I * D, 1 / Math.sqrt(D)), down: randn(seed + 12 + 3 * j, D * I, 1 / Math.sqrt(I)),
    }));
    return {
      router,
      expert: (j) => experts[j],
      shared: shared ? { gate: randn(seed + 100, 12 * D, 0.25), up: randn(seed + 101, 12 * D, 0.25), down: randn(seed + 102, D * 12, 0.3), gateWeight: randn(seed + 103, D, 0.25), size: 12 } : null,
    };
  };
  const cases = [
    { mode: 'softmax-then-topk' as RouterMode, normTopK: false, shared: false },
    { mode: 'softmax-then-topk' as RouterMode, normTopK: true, shared: false },
    { mode: 'softmax-then-topk' as RouterMode, normTopK: false, shared: true },
    { mode: 'topk-then-softmax' as RouterMode, normTopK: true, shared: false },
  ];
  it.each(cases)('$mode, normTopK $normTopK, shared expert $shared', (c) => {
    const w = make(c.shared ? 40 : 20, c.shared);
    const x = Float64Array.from(randn(5, T * D));
    const got = refMoeBlock(x, { T, D, E, K, I, normTopK: c.normTopK, mode: c.mode }, w);
    expect(rel(got.out, bruteForceBlock(x, T, D, E, K, I, c.normTopK, c.mode, w))).toBeLessThan(1e-13);
    // the tie really happened: experts 2 and 3 have equal logits everywhere, and 3 is never chosen over 2
    for (let t = 0; t < T; t++) {
      expect(got.routerLogits[t * E + 2]).toBe(got.routerLogits[t * E + 3]);
      const ids = [...got.ids.subarray(t * K, (t + 1) * K)];
      if (ids.includes(3)) expect(ids).toContain(2);
      expect(new Set(ids).size).toBe(K);
    }
  });
});

describe('Qwen2-MoE shared expert and its sigmoid gate', () => {
  const D = 8, I = 4, Is = 6;
  const x = Float64Array.from(randn(3, D));
  const base: RefMoeBlockWeights = {
    router: randn(4, 3 * D, 0.3),
    expert: (j) => ({ gate: randn(10 + j, I * D, 0.3), up: randn(20 + j, I * D, 0.3), down: randn(30 + j, D * I, 0.4) }),
  };
  const sh = { gate: randn(50, Is * D, 0.3), up: randn(51, Is * D, 0.3), down: randn(52, D * Is, 0.4) };
  // the shared MLP by hand: down(silu(gate x) * up x)
  const sharedByHand = new Float64Array(D);
  {
    const act = new Float64Array(Is);
    for (let r = 0; r < Is; r++) {
      let g = 0, u = 0;
      for (let c = 0; c < D; c++) { g += sh.gate[r * D + c] * x[c]; u += sh.up[r * D + c] * x[c]; }
      act[r] = (g / (1 + Math.exp(-g))) * u;
    }
    for (let r = 0; r < D; r++) for (let c = 0; c < Is; c++) sharedByHand[r] += sh.down[r * Is + c] * act[c];
  }
  const shape = { T: 1, D, E: 3, K: 2, I, normTopK: false, mode: 'softmax-then-topk' as RouterMode };
  const routed = refMoeBlock(x, shape, base).out;

  it('a zero gate weight gives sigmoid(0) = 1/2 of the shared expert', () => {
    const out = refMoeBlock(x, shape, { ...base, shared: { ...sh, size: Is, gateWeight: new Float32Array(D) } }).out;
    const added = out.map((v, i) => v - routed[i]);
    expect(rel(added, sharedByHand.map((v) => 0.5 * v))).toBeLessThan(1e-13);
  });

  it('a gate weight w gives sigmoid(w . x) of it, and changes the output', () => {
    // along x, so z = 0.3 |x|^2 is well away from 0
    const gw = Float32Array.from(x, (v) => 0.3 * v);
    let z = 0;
    for (let i = 0; i < D; i++) z += gw[i] * x[i];
    const out = refMoeBlock(x, shape, { ...base, shared: { ...sh, size: Is, gateWeight: gw } }).out;
    const added = out.map((v, i) => v - routed[i]);
    expect(rel(added, sharedByHand.map((v) => v / (1 + Math.exp(-z))))).toBeLessThan(1e-13);
    expect(1 / (1 + Math.exp(-z))).toBeGreaterThan(0.8);
  });

  it('in the model: the shared_expert_gate weight changes the logits', () => {
    const ck = tinyMoe('qwen2_moe', { seed: 3 });
    const tokens = [5, 77, 200, 13];
    const a = refMoeForward(ck.config, weightsOf(ck.weights), tokens);
    const w2 = new Map<string, ArrayLike<number>>(ck.weights);
    w2.set('model.layers.0.mlp.shared_expert_gate.weight', new Float32Array(64));
    const b = refMoeForward(ck.config, weightsOf(w2), tokens);
    expect(rel(b, a)).toBeGreaterThan(1e-3);
  });
});

/** The safetensors header's tensors: name -> shape. */
function headerOf(file: Uint8Array): Map<string, number[]> {
  const n = Number(new DataView(file.buffer, file.byteOffset).getBigUint64(0, true));
  const json = JSON.parse(new TextDecoder().decode(file.subarray(8, 8 + n))) as Record<string, { shape: number[] }>;
  return new Map(Object.entries(json).filter(([k]) => k !== '__metadata__').map(([k, v]) => [k, v.shape]));
}

/** The names each layout's published checkpoints hold, written out by hand (E experts, 2 layers, the tiny sizes). */
function expectedNames(layout: MoeLayout, E: number, tie: boolean, sparse: boolean[]): string[] {
  const names = ['model.embed_tokens.weight', 'model.norm.weight'];
  if (!tie) names.push('lm_head.weight');
  sparse.forEach((isSparse, l) => {
    const p = `model.layers.${l}.`;
    names.push(p + 'input_layernorm.weight', p + 'post_attention_layernorm.weight');
    for (const m of ['q', 'k', 'v', 'o']) names.push(p + `self_attn.${m}_proj.weight`);
    if (layout === 'qwen2_moe') for (const m of ['q', 'k', 'v']) names.push(p + `self_attn.${m}_proj.bias`);
    if (layout === 'olmoe') names.push(p + 'self_attn.q_norm.weight', p + 'self_attn.k_norm.weight');
    if (layout === 'mixtral') {
      names.push(p + 'block_sparse_moe.gate.weight');
      for (let j = 0; j < E; j++) for (const m of ['w1', 'w2', 'w3']) names.push(p + `block_sparse_moe.experts.${j}.${m}.weight`);
    } else if (layout === 'granitemoe') {
      names.push(p + 'block_sparse_moe.input_linear.weight', p + 'block_sparse_moe.output_linear.weight', p + 'block_sparse_moe.router.layer.weight');
    } else if (!isSparse) {
      for (const m of ['gate', 'up', 'down']) names.push(p + `mlp.${m}_proj.weight`);
    } else {
      names.push(p + 'mlp.gate.weight');
      for (let j = 0; j < E; j++) for (const m of ['gate', 'up', 'down']) names.push(p + `mlp.experts.${j}.${m}_proj.weight`);
      if (layout === 'qwen2_moe') {
        for (const m of ['gate', 'up', 'down']) names.push(p + `mlp.shared_expert.${m}_proj.weight`);
        names.push(p + 'mlp.shared_expert_gate.weight');
      }
    }
  });
  return names.sort();
}

describe('tiny checkpoints carry the published config keys and tensor names', () => {
  it.each(LAYOUTS)('%s', (layout) => {
    const ck = tinyMoe(layout, { experts: 6 });
    const cfg = JSON.parse(new TextDecoder().decode(ck.files['config.json']));
    const arch = { mixtral: 'MixtralForCausalLM', olmoe: 'OlmoeForCausalLM', qwen2_moe: 'Qwen2MoeForCausalLM', granitemoe: 'GraniteMoeForCausalLM' }[layout];
    expect(cfg.model_type).toBe(layout);
    expect(cfg.architectures).toEqual([arch]);
    expect(cfg.num_experts_per_tok).toBe(2);
    // the expert-count key differs: num_local_experts (Mixtral, Granite) vs num_experts (OLMoE, Qwen2-MoE)
    const countKey = layout === 'mixtral' || layout === 'granitemoe' ? 'num_local_experts' : 'num_experts';
    expect(cfg[countKey]).toBe(6);
    expect(cfg[countKey === 'num_experts' ? 'num_local_experts' : 'num_experts']).toBeUndefined();
    if (layout === 'qwen2_moe') {
      expect(cfg).toMatchObject({ moe_intermediate_size: 32, intermediate_size: 96, shared_expert_intermediate_size: 48, decoder_sparse_step: 1, mlp_only_layers: [1], norm_topk_prob: false });
    }
    if (layout === 'olmoe') expect(cfg).toMatchObject({ norm_topk_prob: false, clip_qkv: null });
    if (layout === 'granitemoe') expect(cfg).toMatchObject({ embedding_multiplier: 12, attention_multiplier: 0.0625, residual_multiplier: 0.22, logits_scaling: 6, tie_word_embeddings: true });

    const header = headerOf(ck.files['model.safetensors']);
    const sparse = [0, 1].map((l) => isSparseLayer(ck.config, l));
    expect(sparse).toEqual(layout === 'qwen2_moe' ? [true, false] : [true, true]);
    expect([...header.keys()].sort()).toEqual(expectedNames(layout, 6, layout === 'granitemoe', sparse));
    expect([...ck.weights.keys()].sort()).toEqual([...header.keys()].sort());
    // a few shapes (out, in) by hand: D 64, 4 heads over 2 KV heads of 16, I 32
    expect(header.get('model.layers.0.self_attn.k_proj.weight')).toEqual([32, 64]);
    if (layout === 'mixtral') {
      expect(header.get('model.layers.1.block_sparse_moe.gate.weight')).toEqual([6, 64]);
      expect(header.get('model.layers.1.block_sparse_moe.experts.5.w1.weight')).toEqual([32, 64]);
      expect(header.get('model.layers.1.block_sparse_moe.experts.5.w2.weight')).toEqual([64, 32]);
    }
    if (layout === 'olmoe') {
      expect(header.get('model.layers.0.self_attn.q_norm.weight')).toEqual([64]);
      expect(header.get('model.layers.0.self_attn.k_norm.weight')).toEqual([32]);
    }
    if (layout === 'qwen2_moe') {
      expect(header.get('model.layers.0.self_attn.k_proj.bias')).toEqual([32]);
      expect(header.get('model.layers.0.mlp.experts.0.down_proj.weight')).toEqual([64, 32]);
      expect(header.get('model.layers.0.mlp.shared_expert.up_proj.weight')).toEqual([48, 64]);
      expect(header.get('model.layers.0.mlp.shared_expert_gate.weight')).toEqual([1, 64]);
      expect(header.get('model.layers.1.mlp.down_proj.weight')).toEqual([64, 96]);
    }
    if (layout === 'granitemoe') {
      expect(header.get('model.layers.0.block_sparse_moe.input_linear.weight')).toEqual([6, 64, 64]);
      expect(header.get('model.layers.0.block_sparse_moe.output_linear.weight')).toEqual([6, 64, 32]);
      expect(header.get('model.layers.0.block_sparse_moe.router.layer.weight')).toEqual([6, 64]);
    }
  });

  it('Qwen2-MoE picks its sparse layers by decoder_sparse_step and mlp_only_layers', () => {
    const step2 = tinyMoe('qwen2_moe', { layers: 4, extra: { decoder_sparse_step: 2, mlp_only_layers: [] } });
    expect([0, 1, 2, 3].map((l) => isSparseLayer(step2.config, l))).toEqual([false, true, false, true]);
    const header = headerOf(step2.files['model.safetensors']);
    expect(header.has('model.layers.0.mlp.gate_proj.weight')).toBe(true);
    expect(header.has('model.layers.1.mlp.gate.weight')).toBe(true);
    expect(header.has('model.layers.3.mlp.shared_expert_gate.weight')).toBe(true);
    const both = tinyMoe('qwen2_moe', { layers: 4, extra: { decoder_sparse_step: 2, mlp_only_layers: [3] } });
    expect([0, 1, 2, 3].map((l) => isSparseLayer(both.config, l))).toEqual([false, true, false, false]);
  });

  it('the config parser reads the defaults and refuses what it cannot run', () => {
    const c = refMoeConfigFromHf({ model_type: 'granitemoe', architectures: ['GraniteMoeForCausalLM'] });
    expect(c).toMatchObject({ attentionMultiplier: 1, embeddingMultiplier: 1, residualMultiplier: 1, logitsScaling: 1, nExperts: 8, topK: 2, rmsNormEps: 1e-6, routerMode: 'topk-then-softmax' });
    expect(refMoeConfigFromHf({ model_type: 'qwen2_moe' })).toMatchObject({ qkvBias: true, oBias: false, normTopK: false, expertIntermediateSize: 1408, sharedExpertIntermediateSize: 5632, denseIntermediateSize: 5632 });
    expect(refMoeConfigFromHf({ model_type: 'mixtral' })).toMatchObject({ normTopK: true, qkvBias: false, nKvHeads: 8, ropeTheta: 1e6 });
    expect(refMoeConfigFromHf({ model_type: 'olmoe', rope_parameters: { rope_type: 'default', rope_theta: 5e5 } })).toMatchObject({ ropeTheta: 5e5, qkNorm: true, nExperts: 64, topK: 8 });
    expect(() => refMoeConfigFromHf({ model_type: 'qwen2_moe', use_sliding_window: true })).toThrow(/sliding/);
    expect(() => refMoeConfigFromHf({ model_type: 'mixtral', rope_scaling: { type: 'yarn', factor: 4 } })).toThrow(/rope/);
    expect(() => refMoeConfigFromHf({ model_type: 'olmoe', hidden_act: 'gelu' })).toThrow(/silu/);
    expect(() => refMoeConfigFromHf({ model_type: 'mixtral', architectures: ['OlmoeForCausalLM'] })).toThrow(/disagree/);
    expect(() => tinyMoe('mixtral', { normTopK: false })).toThrow(/renormalises/);
  });
});

describe('refMoeForward: incremental runs equal one run', () => {
  const tokens = Array.from(randint(11, 9, 259));
  it.each(LAYOUTS)('%s: 4 + 5 tokens, and token by token', (layout) => {
    const ck = tinyMoe(layout, { seed: 2 });
    const w = weightsOf(ck.weights);
    const V = ck.config.vocabSize;
    const whole = refMoeForward(ck.config, w, tokens);
    const cache = createRefMoeCache(ck.config);
    const parts = new Float64Array(whole.length);
    parts.set(refMoeForward(ck.config, w, tokens.slice(0, 4), cache), 0);
    parts.set(refMoeForward(ck.config, w, tokens.slice(4), cache), 4 * V);
    expect(cache.position).toBe(9);
    expect(rel(parts, whole)).toBeLessThan(1e-12);
    const one = createRefMoeCache(ck.config);
    const steps = new Float64Array(whole.length);
    tokens.forEach((t, i) => steps.set(refMoeForward(ck.config, w, [t], one), i * V));
    expect(rel(steps, whole)).toBeLessThan(1e-12);
    // the logits are O(1) and not degenerate
    const mx = Math.max(...whole.map(Math.abs));
    expect(mx).toBeGreaterThan(0.1);
    expect(mx).toBeLessThan(100);
  });
});

/**
 * An independent forward for the tests, straight from the Hugging Face modules, with plain loops
 * and the tensor names (no code shared with src/reference/moe.ts): embedding * m_emb; per layer
 * input RMSNorm, q/k/v (+bias), [OLMoE] full-width q/k RMSNorm, rotate_half RoPE, causal softmax
 * attention with the layout's scale, o_proj, residual * m_res; post RMSNorm, the router, the
 * experts (Granite's fused halves sliced here), the shared expert, residual * m_res; final norm,
 * head, / logits_scaling.
 */
function handForward(cfg: RefMoeConfig, W: Map<string, Float32Array>, tokens: number[]): Float64Array {
  const D = cfg.hiddenSize, H = cfg.nHeads, Hkv = cfg.nKvHeads, Dh = cfg.headDim, V = cfg.vocabSize, T = tokens.length;
  const g = (n: string) => { const t = W.get(n); if (!t) throw new Error(`hand: no ${n}`); return t; };
  const granite = cfg.layout === 'granitemoe';
  const rms = (v: Float64Array, wt: ArrayLike<number>) => {
    const ms = v.reduce((a, b) => a + b * b, 0) / v.length;
    return v.map((a, i) => (a / Math.sqrt(ms + cfg.rmsNormEps)) * wt[i]);
  };
  const mv = (m: ArrayLike<number>, v: ArrayLike<number>, rows: number, off = 0) => {
    const cols = v.length;
    return Float64Array.from({ length: rows }, (_, r) => { let s = 0; for (let c = 0; c < cols; c++) s += m[off + r * cols + c] * v[c]; return s; });
  };
  const silu = (a: number) => a / (1 + Math.exp(-a));
  const mlp = (v: Float64Array, gate: ArrayLike<number>, up: ArrayLike<number>, down: ArrayLike<number>, width: number, gOff = 0, uOff = 0, dOff = 0) => {
    const gv = mv(gate, v, width, gOff), uv = mv(up, v, width, uOff);
    return mv(down, gv.map((a, i) => silu(a) * uv[i]), D, dOff);
  };
  const rot = (v: Float64Array, heads: number, pos: number) => {
    const out = v.slice();
    for (let h = 0; h < heads; h++) for (let i = 0; i < Dh / 2; i++) {
      const inv = Math.fround(1 / Math.fround(cfg.ropeTheta ** Math.fround(Math.fround(2 * i) / Dh)));
      const ang = Math.fround(pos * inv), c = Math.fround(Math.cos(ang)), s = Math.fround(Math.sin(ang));
      const a = v[h * Dh + i], b = v[h * Dh + i + Dh / 2];
      out[h * Dh + i] = a * c - b * s;
      out[h * Dh + i + Dh / 2] = b * c + a * s;
    }
    return out;
  };
  const m = granite ? cfg.embeddingMultiplier : 1, r = granite ? cfg.residualMultiplier : 1;
  let xs = tokens.map((id) => Float64Array.from({ length: D }, (_, i) => g('model.embed_tokens.weight')[id * D + i] * m));
  for (let l = 0; l < cfg.nLayers; l++) {
    const p = `model.layers.${l}.`;
    const b = (n: string) => (W.has(p + n) ? g(p + n) : null);
    const addB = (v: Float64Array, bias: ArrayLike<number> | null) => (bias ? v.map((a, i) => a + bias[i]) : v);
    const ks: Float64Array[] = [], vs: Float64Array[] = [], qs: Float64Array[] = [];
    xs.forEach((x, t) => {
      const xn = rms(x, g(p + 'input_layernorm.weight'));
      let q = addB(mv(g(p + 'self_attn.q_proj.weight'), xn, H * Dh), b('self_attn.q_proj.bias'));
      let k = addB(mv(g(p + 'self_attn.k_proj.weight'), xn, Hkv * Dh), b('self_attn.k_proj.bias'));
      const v = addB(mv(g(p + 'self_attn.v_proj.weight'), xn, Hkv * Dh), b('self_attn.v_proj.bias'));
      if (cfg.layout === 'olmoe') { q = rms(q, g(p + 'self_attn.q_norm.weight')); k = rms(k, g(p + 'self_attn.k_norm.weight')); }
      qs.push(rot(q, H, t)); ks.push(rot(k, Hkv, t)); vs.push(v);
    });
    const scale = granite ? (cfg.attentionMultiplier as number) : 1 / Math.sqrt(Dh);
    xs = xs.map((x, t) => {
      const o = new Float64Array(H * Dh);
      for (let h = 0; h < H; h++) {
        const kv = Math.floor(h / (H / Hkv));
        const sc = ks.slice(0, t + 1).map((k) => { let s = 0; for (let d = 0; d < Dh; d++) s += qs[t][h * Dh + d] * k[kv * Dh + d]; return s * scale; });
        const mx = Math.max(...sc), ex = sc.map((s) => Math.exp(s - mx)), z = ex.reduce((a, c) => a + c, 0);
        ex.forEach((pj, j) => { for (let d = 0; d < Dh; d++) o[h * Dh + d] += (pj / z) * vs[j][kv * Dh + d]; });
      }
      const attn = addB(mv(g(p + 'self_attn.o_proj.weight'), o, D), b('self_attn.o_proj.bias'));
      const h1 = x.map((a, i) => a + r * attn[i]);
      const hn = rms(h1, g(p + 'post_attention_layernorm.weight'));
      let ffn = new Float64Array(D);
      const E = cfg.nExperts, K = cfg.topK, I = cfg.expertIntermediateSize;
      const f = cfg.layout === 'mixtral' || granite ? p + 'block_sparse_moe.' : p + 'mlp.';
      if (cfg.layout === 'qwen2_moe' && cfg.mlpOnlyLayers.includes(l)) {
        ffn = mlp(hn, g(f + 'gate_proj.weight'), g(f + 'up_proj.weight'), g(f + 'down_proj.weight'), cfg.denseIntermediateSize);
      } else {
        const logits = mv(g(granite ? f + 'router.layer.weight' : f + 'gate.weight'), hn, E);
        const order = [...logits.keys()].sort((a, c) => logits[c] - logits[a] || a - c).slice(0, K);
        const mx = Math.max(...logits);
        const all = logits.reduce((a, c) => a + Math.exp(c - mx), 0);
        const kept = order.reduce((a, j) => a + Math.exp(logits[j] - mx), 0);
        const renorm = cfg.layout === 'mixtral' || granite || cfg.normTopK;
        for (const j of order) {
          const wj = Math.exp(logits[j] - mx) / (renorm ? kept : all);
          const y = granite
            ? mlp(hn, g(f + 'input_linear.weight'), g(f + 'input_linear.weight'), g(f + 'output_linear.weight'), I, j * 2 * I * D, (j * 2 + 1) * I * D, j * D * I)
            : cfg.layout === 'mixtral'
              ? mlp(hn, g(f + `experts.${j}.w1.weight`), g(f + `experts.${j}.w3.weight`), g(f + `experts.${j}.w2.weight`), I)
              : mlp(hn, g(f + `experts.${j}.gate_proj.weight`), g(f + `experts.${j}.up_proj.weight`), g(f + `experts.${j}.down_proj.weight`), I);
          ffn = ffn.map((a, i) => a + wj * y[i]);
        }
        if (cfg.layout === 'qwen2_moe') {
          const y = mlp(hn, g(f + 'shared_expert.gate_proj.weight'), g(f + 'shared_expert.up_proj.weight'), g(f + 'shared_expert.down_proj.weight'), cfg.sharedExpertIntermediateSize);
          const z = mv(g(f + 'shared_expert_gate.weight'), hn, 1)[0];
          ffn = ffn.map((a, i) => a + y[i] / (1 + Math.exp(-z)));
        }
      }
      return h1.map((a, i) => a + r * ffn[i]);
    });
  }
  const head = W.get('lm_head.weight') ?? g('model.embed_tokens.weight');
  const out = new Float64Array(T * V);
  xs.forEach((x, t) => out.set(mv(head, rms(x, g('model.norm.weight')), V).map((v) => v / (granite ? cfg.logitsScaling : 1)), t * V));
  return out;
}

describe('refMoeForward equals a forward written out by hand', () => {
  const tokens = [3, 141, 59, 26, 5];
  it.each(LAYOUTS)('%s', (layout) => {
    const ck = tinyMoe(layout, { seed: 4, experts: 5 });
    expect(rel(refMoeForward(ck.config, weightsOf(ck.weights), tokens), handForward(ck.config, ck.weights, tokens))).toBeLessThan(1e-12);
  });

  it('with norm_topk_prob true (OLMoE, Qwen2-MoE) and biases on every projection (OLMoE attention_bias)', () => {
    for (const ck of [tinyMoe('olmoe', { normTopK: true, extra: { attention_bias: true } }), tinyMoe('qwen2_moe', { normTopK: true })]) {
      expect(ck.config.normTopK).toBe(true);
      expect(rel(refMoeForward(ck.config, weightsOf(ck.weights), tokens), handForward(ck.config, ck.weights, tokens))).toBeLessThan(1e-12);
    }
    expect(tinyMoe('olmoe', { extra: { attention_bias: true } }).weights.has('model.layers.1.self_attn.o_proj.bias')).toBe(true);
  });
});

describe('the layout-specific pieces change the output', () => {
  const tokens = [3, 141, 59, 26];
  const run = (ck: MoeCheckpoint, cfg: Partial<RefMoeConfig> = {}, W: Map<string, ArrayLike<number>> = ck.weights) => refMoeForward({ ...ck.config, ...cfg }, weightsOf(W), tokens);

  it('Granite logits_scaling divides the logits', () => {
    const ck = tinyMoe('granitemoe');
    const scaled = run(ck);
    const unscaled = run(ck, { logitsScaling: 1 });
    expect(rel(scaled.map((v) => v * 6), unscaled)).toBeLessThan(1e-14);
  });

  it('Granite residual_multiplier 0 leaves rmsnorm(12 e) . head / 6, worked out by hand', () => {
    const ck = tinyMoe('granitemoe');
    const got = run(ck, { residualMultiplier: 0 });
    const E = ck.weights.get('model.embed_tokens.weight')!, nw = ck.weights.get('model.norm.weight')!;
    const D = 64, V = ck.config.vocabSize;
    tokens.forEach((id, t) => {
      const x = Float64Array.from({ length: D }, (_, i) => 12 * E[id * D + i]);
      const inv = 1 / Math.sqrt(x.reduce((a, b) => a + b * b, 0) / D + 1e-6);
      for (const vId of [0, 7, V - 1]) {
        let s = 0;
        for (let i = 0; i < D; i++) s += x[i] * inv * nw[i] * E[vId * D + i];
        expect(got[t * V + vId]).toBeCloseTo(s / 6, 12);
      }
    });
    expect(rel(run(ck), got)).toBeGreaterThan(1e-2); // and 0.22 differs from 0
  });

  it('Granite attention_multiplier replaces 1/sqrt(Dh): equal at 1/sqrt(Dh) = 0.25, position 0 untouched otherwise', () => {
    const ck = tinyMoe('granitemoe');
    const V = ck.config.vocabSize;
    // the default scale path (attentionMultiplier null) is 1/sqrt(16)
    expect(rel(run(ck, { attentionMultiplier: 0.25 }), run(ck, { attentionMultiplier: null }))).toBeLessThan(1e-15);
    const a = run(ck), b = run(ck, { attentionMultiplier: 0.25 });
    // one visible key: softmax is 1 whatever the scale
    expect(rel(a.subarray(0, V), b.subarray(0, V))).toBeLessThan(1e-14);
    expect(rel(a.subarray(V), b.subarray(V))).toBeGreaterThan(1e-4);
  });

  it('Granite embedding_multiplier changes the output', () => {
    const ck = tinyMoe('granitemoe');
    expect(rel(run(ck, { embeddingMultiplier: 1 }), run(ck))).toBeGreaterThan(1e-3);
  });

  it('OLMoE q_norm and k_norm act on position >= 1 only (one key: scores do not matter), over the full width', () => {
    const ck = tinyMoe('olmoe', { layers: 1 });
    const V = ck.config.vocabSize;
    const W = new Map<string, ArrayLike<number>>(ck.weights);
    // scaling a whole-width norm weight by c scales q (or k) by c: the same as a c-times attention scale
    W.set('model.layers.0.self_attn.q_norm.weight', ck.weights.get('model.layers.0.self_attn.q_norm.weight')!.map((v) => 2 * v));
    const a = run(ck), b = run(ck, {}, W);
    expect(rel(b.subarray(0, V), a.subarray(0, V))).toBeLessThan(1e-14);
    expect(rel(b.subarray(V), a.subarray(V))).toBeGreaterThan(1e-4);
    // ... which is what a doubled score scale does
    expect(rel(b, refMoeForward({ ...ck.config, attentionMultiplier: 2 / Math.sqrt(16) }, weightsOf(ck.weights), tokens))).toBeLessThan(1e-12);
  });

  it('OLMoE clip_qkv clamps q, k, v', () => {
    const ck = tinyMoe('olmoe');
    expect(rel(run(ck, { clipQkv: 1e9 }), run(ck))).toBeLessThan(1e-15);
    expect(rel(run(ck, { clipQkv: 0.5 }), run(ck))).toBeGreaterThan(1e-3);
  });

  it('refMoeBlockWeights slices Granite\'s fused experts: gate rows first, then up', () => {
    const ck = tinyMoe('granitemoe');
    const bw = refMoeBlockWeights(ck.config, weightsOf(ck.weights), 1);
    const inp = ck.weights.get('model.layers.1.block_sparse_moe.input_linear.weight')!;
    const ex = bw.expert(3);
    const I = 32, D = 64;
    expect(ex.gate[0]).toBe(inp[3 * 2 * I * D]);
    expect(ex.up[0]).toBe(inp[(3 * 2 + 1) * I * D]);
    expect(ex.gate.length).toBe(I * D);
  });

  it('a Mixtral sliding_window is refused once the sequence passes it', () => {
    const ck = tinyMoe('mixtral', { extra: { sliding_window: 3 } });
    expect(() => refMoeForward(ck.config, weightsOf(ck.weights), tokens)).toThrow(/sliding window/);
  });
});
