import { describe, expect, it } from 'vitest';
import {
  createRefRetNetState, refGatedRmsNorm, refRetNetRope, retnetInvFreq, refRetentionChunkwise, refRetentionParallel, refRetentionRecurrent,
  refRetNetForward, retnetDecays, retnetRefTensorShapes, type RefWeights, type RetNetRefConfig,
} from '../../src/reference/retnet';
import { flaIntermediateSize, retnetRefConfigFromFla, tinyRetnet } from '../helpers/retnet_checkpoint';
import { randint, randn } from '../helpers/random';

const rel = (got: ArrayLike<number>, want: ArrayLike<number>) => {
  let num = 0;
  let den = 0;
  for (let i = 0; i < want.length; i++) {
    num = Math.max(num, Math.abs(got[i] - want[i]));
    den = Math.max(den, Math.abs(want[i]));
  }
  return num / den;
};
const f64 = (a: ArrayLike<number>) => Float64Array.from(a);
const weightsOf = (m: Map<string, Float32Array>): RefWeights => (name) => {
  const t = m.get(name);
  if (!t) throw new Error(`no tensor ${name}`);
  return t;
};

describe('retention: recurrent, parallel and chunkwise forms agree', () => {
  const cases = [
    { T: 1, H: 1, Dk: 4, Dv: 6 },
    { T: 5, H: 2, Dk: 6, Dv: 4 },
    { T: 13, H: 3, Dk: 4, Dv: 8 },
    { T: 32, H: 8, Dk: 8, Dv: 16 },
  ];
  it.each(cases)('T $T, H $H, Dk $Dk, Dv $Dv, from a non-zero state', (s) => {
    const seed = s.T * 100 + s.H;
    const q = f64(randn(seed, s.T * s.H * s.Dk));
    const k = f64(randn(seed + 1, s.T * s.H * s.Dk));
    const v = f64(randn(seed + 2, s.T * s.H * s.Dv));
    const S0 = f64(randn(seed + 3, s.H * s.Dk * s.Dv));
    // fla's decays, and faster ones so the decay visibly matters over T
    for (const gammas of [retnetDecays(s.H), Float64Array.from({ length: s.H }, (_, h) => 0.5 + 0.15 * h)]) {
      const Sr = S0.slice();
      const Sp = S0.slice();
      const or = refRetentionRecurrent(q, k, v, s, Sr, gammas);
      const op = refRetentionParallel(q, k, v, s, Sp, gammas);
      expect(rel(op, or)).toBeLessThan(1e-10);
      expect(rel(Sp, Sr)).toBeLessThan(1e-10);
      for (const chunk of [1, 3, 4, 64]) {
        const Sc = S0.slice();
        const oc = refRetentionChunkwise(q, k, v, s, Sc, gammas, chunk);
        expect(rel(oc, or)).toBeLessThan(1e-10);
        expect(rel(Sc, Sr)).toBeLessThan(1e-10);
      }
    }
  });

  it('a sequence split in two with the state carried equals one pass', () => {
    const s = { T: 11, H: 2, Dk: 4, Dv: 6 };
    const q = f64(randn(1, s.T * s.H * s.Dk));
    const k = f64(randn(2, s.T * s.H * s.Dk));
    const v = f64(randn(3, s.T * s.H * s.Dv));
    const gammas = [0.8, 0.6];
    const S = new Float64Array(s.H * s.Dk * s.Dv);
    const whole = refRetentionParallel(q, k, v, s, S, gammas);
    const S2 = new Float64Array(S.length);
    const a = refRetentionParallel(q.subarray(0, 4 * s.H * s.Dk), k.subarray(0, 4 * s.H * s.Dk), v.subarray(0, 4 * s.H * s.Dv), { ...s, T: 4 }, S2, gammas);
    const b = refRetentionParallel(q.subarray(4 * s.H * s.Dk), k.subarray(4 * s.H * s.Dk), v.subarray(4 * s.H * s.Dv), { ...s, T: 7 }, S2, gammas);
    expect(rel([...a, ...b], whole)).toBeLessThan(1e-12);
    expect(rel(S2, S)).toBeLessThan(1e-12);
  });

  it('matches a hand-worked case (H 1, Dk 1, Dv 1, scale 1)', () => {
    // gamma 0.5, S0 = 2; q = k = v = 1, 2, 3:
    // S1 = 0.5*2 + 1 = 2, o1 = 2; S2 = 1 + 4 = 5, o2 = 10; S3 = 2.5 + 9 = 11.5, o3 = 34.5
    const S = new Float64Array([2]);
    const o = refRetentionRecurrent([1, 2, 3], [1, 2, 3], [1, 2, 3], { T: 3, H: 1, Dk: 1, Dv: 1 }, S, [0.5], 1);
    expect(Array.from(o)).toEqual([2, 10, 34.5]);
    expect(S[0]).toBe(11.5);
    // the default scale is Dk^-0.5, on q only: with Dk 4 the output halves, S does not change
    const S4 = new Float64Array(4);
    const o4 = refRetentionRecurrent([1, 1, 1, 1], [1, 0, 0, 0], [3], { T: 1, H: 1, Dk: 4, Dv: 1 }, S4, [0.5]);
    expect(o4[0]).toBe(1.5);
    expect(Array.from(S4)).toEqual([3, 0, 0, 0]);
  });
});

describe('retnetDecays', () => {
  it("gamma_h = 1 - 2^(-5-h), fla's per-head constants", () => {
    expect(Array.from(retnetDecays(8))).toEqual([
      0.96875, 0.984375, 0.9921875, 0.99609375, 0.998046875, 0.9990234375, 0.99951171875, 0.999755859375,
    ]);
    // depends on the head index only, not on the number of heads
    expect(retnetDecays(3)[2]).toBe(retnetDecays(16)[2]);
    // built in float32: exact up to h = 19 (1 - 2^-24), exactly 1 from h = 20
    const g = retnetDecays(22);
    expect(g[19]).toBe(1 - 2 ** -24);
    expect(g[20]).toBe(1);
    expect(g[21]).toBe(1);
  });
});

describe('refGatedRmsNorm (FusedRMSNormGated, per head over Dv)', () => {
  it('matches a hand-computed example', () => {
    // 1 row, 2 heads, Dv 4, eps 5:
    // head 0: o = [2, -2, 2, -2], mean(o^2) = 4, rstd = 1/sqrt(4 + 5) = 1/3 -> o_hat = [2/3, -2/3, 2/3, -2/3]
    // head 1: o = [1, 1, 1, 1],   mean(o^2) = 1, rstd = 1/sqrt(1 + 5)     -> o_hat = 1/sqrt(6) each
    // w (per Dv, shared by heads) = [1, 2, 0.5, 1]
    // swish(g) = g*sigmoid(g): g = 0 -> 0; ln3 -> 0.75 ln3; -ln3 -> -0.25 ln3; 2 -> 2/(1+e^-2)
    const L3 = Math.log(3);
    const o = [2, -2, 2, -2, 1, 1, 1, 1];
    const g = [0, L3, -L3, 2, L3, L3, 0, -L3];
    const w = [1, 2, 0.5, 1];
    const y = refGatedRmsNorm(o, g, w, 1, 2, 4, 5);
    const r6 = 1 / Math.sqrt(6);
    const want = [
      0, (-2 / 3) * 2 * 0.75 * L3, (2 / 3) * 0.5 * -0.25 * L3, (-2 / 3) * (2 / (1 + Math.exp(-2))),
      r6 * 0.75 * L3, r6 * 2 * 0.75 * L3, 0, r6 * -0.25 * L3,
    ];
    expect(rel(y, want)).toBeLessThan(1e-15);
    // no gate, no weight: a plain per-head RMSNorm
    expect(rel(refGatedRmsNorm(o, null, null, 1, 2, 4, 5), [2 / 3, -2 / 3, 2 / 3, -2 / 3, r6, r6, r6, r6])).toBeLessThan(1e-15);
  });
});

describe('rotary (fla RotaryEmbedding: rotate_half, base 10000, whole Dk)', () => {
  it('pairs dim i with dim i + Dk/2 and continues from the position offset', () => {
    // Dk 4: inv_freq = [1, 1/sqrt(10000)] (float32)
    const inv = retnetInvFreq(4, 10000);
    expect(Array.from(inv)).toEqual([1, Math.fround(0.01)]);
    // one head, unit vectors at position 1 (offset 1, first token): angle 1 on pair (0, 2), 0.01 on pair (1, 3)
    const c = Math.fround(Math.cos(1));
    const s = Math.fround(Math.sin(1));
    const x = new Float64Array([1, 0, 0, 0, 0, 0, 1, 0]); // two tokens: e0 at position 1, e2 at position 2
    refRetNetRope(x, 2, 1, 4, 1, inv);
    const c2 = Math.fround(Math.cos(2));
    const s2 = Math.fround(Math.sin(2));
    // o0 = x0 cos - x2 sin, o2 = x0 sin + x2 cos
    expect(Array.from(x)).toEqual([c, 0, s, 0, -s2, 0, c2, 0]);
  });
});

describe('the fla config', () => {
  it('derives intermediate_size as GatedMLP does', () => {
    expect(flaIntermediateSize(2048, 2)).toBe(2816); // int(2730.67) = 2730 -> next multiple of 256
    expect(flaIntermediateSize(64, 2)).toBe(256);
    expect(flaIntermediateSize(2048, null)).toBe(5632); // hidden_ratio null -> 4
    expect(flaIntermediateSize(2560, 2)).toBe(3584);
  });

  it('gives the published parameter count of fla-hub/retnet-1.3B-100B', () => {
    const cfg = retnetRefConfigFromFla({ model_type: 'retnet', hidden_size: 2048, num_hidden_layers: 24, num_heads: 8, vocab_size: 32000 });
    expect(cfg).toMatchObject({ keyDim: 256, valueDim: 512, intermediateSize: 2816, nKvHeads: 8, normEps: 1e-6, tieWordEmbeddings: false });
    let total = 0;
    for (const shape of retnetRefTensorShapes(cfg).values()) total += shape.reduce((a, b) => a * b, 1);
    expect(total).toBe(1_351_727_104);
  });

  it.each([
    [{ use_short_conv: true }, /use_short_conv/],
    [{ feature_map: 'relu' }, /feature_map/],
    [{ attn: { layers: [1], num_heads: 2 } }, /hybrid/],
    [{ hidden_act: 'powlu' }, /hidden_act/],
    [{ num_kv_heads: 3, num_heads: 2 }, /KV heads/],
  ])('refuses %j', (extra, why) => {
    expect(() => tinyRetnet({ extra })).toThrow(why);
  });
});

describe('the tiny checkpoint', () => {
  const header = (bytes: Uint8Array) => {
    const n = Number(new DataView(bytes.buffer, bytes.byteOffset).getBigUint64(0, true));
    return JSON.parse(new TextDecoder().decode(bytes.subarray(8, 8 + n))) as Record<string, { dtype: string; shape: number[] }>;
  };
  const layer = (l: number, mlp: string[]) => [
    `model.layers.${l}.attn_norm.weight`,
    `model.layers.${l}.attn.q_proj.weight`, `model.layers.${l}.attn.k_proj.weight`, `model.layers.${l}.attn.v_proj.weight`,
    `model.layers.${l}.attn.g_proj.weight`, `model.layers.${l}.attn.o_proj.weight`, `model.layers.${l}.attn.g_norm_swish_gate.weight`,
    `model.layers.${l}.mlp_norm.weight`, ...mlp.map((m) => `model.layers.${l}.mlp.${m}.weight`),
  ];

  it("holds exactly fla's tensor names and shapes (split MLP, untied)", () => {
    const ck = tinyRetnet();
    const h = header(ck.files['model.safetensors']);
    const names = ['model.embeddings.weight', ...layer(0, ['gate_proj', 'up_proj', 'down_proj']), ...layer(1, ['gate_proj', 'up_proj', 'down_proj']), 'model.norm.weight', 'lm_head.weight'];
    expect(Object.keys(h).filter((k) => k !== '__metadata__').sort()).toEqual([...names].sort());
    const V = ck.config.vocabSize;
    expect(h['model.embeddings.weight'].shape).toEqual([V, 64]);
    expect(h['model.layers.0.attn.q_proj.weight'].shape).toEqual([64, 64]); // H*Dk = 2*32
    expect(h['model.layers.0.attn.k_proj.weight'].shape).toEqual([64, 64]);
    expect(h['model.layers.0.attn.v_proj.weight'].shape).toEqual([128, 64]); // H*Dv = 2*64
    expect(h['model.layers.0.attn.g_proj.weight'].shape).toEqual([128, 64]);
    expect(h['model.layers.0.attn.o_proj.weight'].shape).toEqual([64, 128]);
    expect(h['model.layers.0.attn.g_norm_swish_gate.weight'].shape).toEqual([64]); // Dv, shared by the heads
    expect(h['model.layers.0.mlp.gate_proj.weight'].shape).toEqual([256, 64]);
    expect(h['model.layers.0.mlp.down_proj.weight'].shape).toEqual([64, 256]);
    expect(h['lm_head.weight'].shape).toEqual([V, 64]);
    const cfg = JSON.parse(new TextDecoder().decode(ck.files['config.json']));
    expect(cfg).toMatchObject({ model_type: 'retnet', architectures: ['RetNetForCausalLM'], expand_k: 1, expand_v: 2, num_kv_heads: null, intermediate_size: null, hidden_ratio: 2, use_short_conv: false, feature_map: null, attn: null, fuse_norm: true, vocab_size: V });
    expect(ck.config).toMatchObject({ hiddenSize: 64, nHeads: 2, keyDim: 32, valueDim: 64, intermediateSize: 256 });
  });

  it('fused MLP, tied: one gate_proj of 2I rows, no up_proj, no lm_head', () => {
    const ck = tinyRetnet({ mlpLayout: 'fused', tie: true, layers: 1 });
    const h = header(ck.files['model.safetensors']);
    const names = ['model.embeddings.weight', ...layer(0, ['gate_proj', 'down_proj']), 'model.norm.weight'];
    expect(Object.keys(h).filter((k) => k !== '__metadata__').sort()).toEqual([...names].sort());
    expect(h['model.layers.0.mlp.gate_proj.weight'].shape).toEqual([512, 64]);
  });
});

describe('refRetNetForward on the tiny checkpoint', () => {
  const run = (cfg: RetNetRefConfig, w: RefWeights, ids: ArrayLike<number>, form?: 'recurrent' | 'parallel' | 'chunkwise') => {
    const state = createRefRetNetState(cfg);
    return { logits: refRetNetForward(cfg, w, ids, state, { form, chunk: 3 }), state };
  };

  it.each([
    ['split, untied', {}],
    ['fused, tied, 3 layers, 4 heads, Dk 8, Dv 24', { mlpLayout: 'fused' as const, tie: true, layers: 3, heads: 4, expandK: 0.5, expandV: 1.5 }],
  ])('%s: the three retention forms give the same logits', (_n, opts) => {
    const ck = tinyRetnet({ ...opts, seed: 3 });
    const ids = Array.from(randint(5, 10, ck.config.vocabSize));
    const w = weightsOf(ck.weights);
    const r = run(ck.config, w, ids);
    expect(r.logits.length).toBe(10 * ck.config.vocabSize);
    expect(r.state.position).toBe(10);
    for (const form of ['parallel', 'chunkwise'] as const) {
      const o = run(ck.config, w, ids, form);
      expect(rel(o.logits, r.logits)).toBeLessThan(1e-10);
      for (let l = 0; l < ck.config.nLayers; l++) expect(rel(o.state.S[l], r.state.S[l])).toBeLessThan(1e-10);
    }
    // the logits are not degenerate
    let min = Infinity;
    let max = -Infinity;
    for (const v of r.logits) { min = Math.min(min, v); max = Math.max(max, v); }
    expect(max - min).toBeGreaterThan(1);
  });

  it.each([1, 4, 9])('tokens fed in two parts (first %i) with the state carried equal one run', (n) => {
    const ck = tinyRetnet({ seed: 8 });
    const V = ck.config.vocabSize;
    const w = weightsOf(ck.weights);
    const ids = Array.from(randint(40 + n, 12, V));
    const whole = run(ck.config, w, ids);
    const state = createRefRetNetState(ck.config);
    const a = refRetNetForward(ck.config, w, ids.slice(0, n), state);
    expect(state.position).toBe(n);
    const b = refRetNetForward(ck.config, w, ids.slice(n), state, { form: 'parallel' });
    expect(state.position).toBe(12);
    expect(rel([...a, ...b], whole.logits)).toBeLessThan(1e-10);
    for (let l = 0; l < ck.config.nLayers; l++) expect(rel(state.S[l], whole.state.S[l])).toBeLessThan(1e-10);
    // the position matters: the second part alone from a fresh state differs
    const fresh = refRetNetForward(ck.config, w, ids.slice(n));
    expect(rel(fresh, b)).toBeGreaterThan(1e-3);
  });

  it('the fused gate_proj is [gate rows; up rows] of the split layout', () => {
    const split = tinyRetnet({ seed: 11, layers: 1 });
    const fusedCfg: RetNetRefConfig = { ...split.config, mlpLayout: 'fused' };
    const fused = new Map(split.weights);
    const gate = split.weights.get('model.layers.0.mlp.gate_proj.weight')!;
    const up = split.weights.get('model.layers.0.mlp.up_proj.weight')!;
    const both = new Float32Array(gate.length * 2);
    both.set(gate);
    both.set(up, gate.length);
    fused.set('model.layers.0.mlp.gate_proj.weight', both);
    fused.delete('model.layers.0.mlp.up_proj.weight');
    const ids = [1, 2, 3, 4, 5];
    expect(rel(refRetNetForward(fusedCfg, weightsOf(fused), ids), refRetNetForward(split.config, weightsOf(split.weights), ids))).toBe(0);
  });

  it('num_kv_heads 1 over 2 heads equals 2 heads with k and v copied', () => {
    const gqa = tinyRetnet({ seed: 12, layers: 1, kvHeads: 1 });
    const cfg = gqa.config;
    expect(cfg.nKvHeads).toBe(1);
    const full = new Map(gqa.weights);
    for (const p of ['k_proj', 'v_proj']) {
      const t = gqa.weights.get(`model.layers.0.attn.${p}.weight`)!;
      const two = new Float32Array(t.length * 2);
      two.set(t);
      two.set(t, t.length);
      full.set(`model.layers.0.attn.${p}.weight`, two);
    }
    const ids = [7, 100, 3, 250, 9, 42];
    const want = refRetNetForward({ ...cfg, nKvHeads: 2 }, weightsOf(full), ids);
    expect(rel(refRetNetForward(cfg, weightsOf(gqa.weights), ids), want)).toBeLessThan(1e-12);
  });
});
