// Mixture-of-experts transformers on the GPU (Mixtral, OLMoE, Qwen2-MoE,
// GraniteMoE) against the float64 references of src/reference/moe.ts, on
// fixture checkpoints with each layout's published config keys and tensor
// names (test/helpers/moe_checkpoint.ts). The experts are 4-bit in every
// mode, so the reference runs on them dequantized; 'f32' keeps the rest exact.

import { expect, it } from 'vitest';
import { loadModel } from '../../src/lm';
import { Gpu } from '../../src/runtime/gpu';
import { Recorder } from '../../src/runtime/recorder';
import { refMoeForward, createRefMoeCache, isSparseLayer, moeRefTensorShapes, type MoeLayout } from '../../src/reference/moe';
import { TransformerModel } from '../../src/models/transformer/model';
import { parseTransformerConfig } from '../../src/models/transformer/config';
import { loadTransformerWeights, transformerTensorShapes } from '../../src/models/transformer/weights';
import type { MoeWeights } from '../../src/models/blocks/moe';
import { describeGpu, useGpu } from '../helpers/gpu';
import { moeAsLoaded, moeTensorSource, tinyMoe } from '../helpers/moe_checkpoint';
import { tinyTransformer } from '../helpers/checkpoints';
import { randint } from '../helpers/random';
import { argmaxOf, greedyGpu, relMaxErr } from '../helpers/models';
import { writeSafetensors } from '../helpers/fixtures';
import { poisonExperts, unrouted } from '../helpers/moe_poison';

// Logits as max |gpu - ref| / max |ref|; f32 arithmetic on the same weights.
const REL = 1e-4;
const LAYOUTS: MoeLayout[] = ['mixtral', 'olmoe', 'qwen2_moe', 'granitemoe'];
describeGpu('mixture-of-experts transformers against the float64 reference', () => {
  const gpu = useGpu();

  it.each(LAYOUTS.flatMap((l) => [[l, 'f32'], [l, 'q4']] as const))('%s (%s weights): logits of a prompt (grouped prefill) and of decode steps match; info reports the experts', async (layout, mode) => {
    const ck = tinyMoe(layout, { seed: 3 });
    const lm = await loadModel(ck.files, { weights: mode, device: gpu(), maxContext: 64 });
    try {
      expect(lm.info).toMatchObject({ family: 'transformer', ffn: 'moe', modelType: layout });
      expect(lm.info.params.activePerToken).toBeLessThan(lm.info.params.total);
      // The experts' bytes apart from the rest: E × 3 projections of (I, D) at 4 bits with their group scales.
      const { nExperts: E, expertIntermediateSize: I, hiddenSize: D } = ck.config;
      const sparse = Array.from({ length: ck.config.nLayers }, (_, l) => isSparseLayer(ck.config, l)).filter(Boolean).length;
      expect(lm.memory().bytes.experts).toBeGreaterThanOrEqual(sparse * 3 * E * I * D * 0.5625);
      expect(lm.memory().bytes.weights).toBeGreaterThan(0);
      const w = moeAsLoaded(ck, mode);
      const ids = Array.from(randint(17, 23, ck.config.vocabSize));
      expect(relMaxErr(await lm.logits(ids), refMoeForward(ck.config, w, ids)), 'prefill').toBeLessThan(REL);
      // Then one token at a time (the decode path: moe_matvec_q4 over the routed experts only).
      const model = lm.model as TransformerModel;
      const state = model.createState();
      const cache = createRefMoeCache(ck.config);
      for (const id of ids.slice(0, 6)) {
        const rec = new Recorder(gpu());
        const got = (await rec.submitAndRead(model.decode(rec, state, id))) as Float32Array;
        expect(relMaxErr(got, refMoeForward(ck.config, w, [id], cache)), `decode at ${state.position}`).toBeLessThan(REL);
      }
      state.dispose();
    } finally {
      lm.dispose();
    }
  });

  it.each(['mixtral', 'granitemoe', 'qwen2_moe'] as const)('%s: a decode step reads only the routed experts (every other expert of every layer poisoned with NaN on the GPU): finite logits within 1e-4', async (layout) => {
    const ck = tinyMoe(layout, { seed: 11 });
    const cfg = parseTransformerConfig(ck.raw);
    const shapes = transformerTensorShapes(cfg);
    const src = moeTensorSource(ck, shapes);
    const weights = await loadTransformerWeights(gpu(), src, cfg, { weights: 'q4' });
    const model = new TransformerModel(gpu(), cfg, weights, { maxContext: 32 });
    const state = model.createState();
    try {
      const w = moeAsLoaded(ck, 'q4');
      const cache = createRefMoeCache(ck.config);
      const prompt = Array.from(randint(61, 5, ck.config.vocabSize));
      refMoeForward(ck.config, w, prompt, cache);
      let rec = new Recorder(gpu());
      await rec.submitAndRead(model.prefill(rec, state, Int32Array.from(prompt)));
      // The next token's routing in each sparse layer, from the reference; then every other expert poisoned.
      const next = 17;
      const routed = new Map<number, Int32Array>();
      const want = refMoeForward(ck.config, w, [next], cache, (l, r) => routed.set(l, r.ids));
      const { nExperts: E, expertIntermediateSize: I, hiddenSize: D } = ck.config;
      expect(routed.size).toBeGreaterThan(0);
      for (const [l, ids] of routed) {
        const { gate, up, down } = (weights.layers[l].ffn as MoeWeights).experts;
        const cold = unrouted(E, ids);
        expect(cold.length).toBe(E - ck.config.topK);
        poisonExperts(gpu(), gate, I, cold);
        poisonExperts(gpu(), up, I, cold);
        poisonExperts(gpu(), down, D, cold);
      }
      rec = new Recorder(gpu());
      const got = (await rec.submitAndRead(model.decode(rec, state, next))) as Float32Array;
      expect(got.every(Number.isFinite)).toBe(true);
      expect(relMaxErr(got, want)).toBeLessThan(REL);
      // The poison is real: a prompt of several tokens (the grouped path reads every expert some token chose) no longer is finite.
      rec = new Recorder(gpu());
      const after = (await rec.submitAndRead(model.prefill(rec, state, Int32Array.from(randint(62, 12, ck.config.vocabSize))))) as Float32Array;
      expect(after.some((v) => !Number.isFinite(v))).toBe(true);
    } finally {
      state.dispose();
      model.dispose();
    }
  });

  it('greedy generation of 24 tokens is identical on the GPU and the reference (Qwen2-MoE, default formats)', async () => {
    const ck = tinyMoe('qwen2_moe', { seed: 5 });
    const lm = await loadModel(ck.files, { device: gpu(), maxContext: 64 });
    try {
      const model = lm.model as TransformerModel;
      const prompt = randint(55, 9, ck.config.vocabSize);
      const state = model.createState();
      const got = await greedyGpu(model, state, prompt, 24);
      state.dispose();
      const w = moeAsLoaded(ck, 'q4');
      const cache = createRefMoeCache(ck.config);
      let logits = refMoeForward(ck.config, w, prompt, cache);
      const V = ck.config.vocabSize;
      const want: number[] = [];
      while (want.length < 24) {
        want.push(argmaxOf(logits.subarray(logits.length - V)));
        logits = refMoeForward(ck.config, w, [want[want.length - 1]], cache);
      }
      expect(got).toEqual(want);
    } finally {
      lm.dispose();
    }
  });

  it('refuses num_experts_per_tok above the experts, a missing or misshapen expert tensor and an expert stack over the binding, naming them; a good model loads after', async () => {
    const ck = tinyMoe('mixtral', { seed: 2 });
    const withConfig = (extra: Record<string, unknown>) => ({ ...ck.files, 'config.json': new TextEncoder().encode(JSON.stringify({ ...ck.raw, ...extra })) });
    await expect(loadModel(withConfig({ num_experts_per_tok: 9 }), { device: gpu() })).rejects.toThrow(/config\.json: 'num_experts_per_tok' = 9 exceeds the 4 experts/);
    const shapes = moeRefTensorShapes(ck.config);
    const without = (drop: string, reshape?: string) => ({
      ...ck.files,
      'model.safetensors': writeSafetensors(Object.fromEntries([...ck.weights].filter(([n]) => n !== drop).map(([n, data]) => {
        const shape = shapes.get(n)!;
        return [n, n === reshape ? { dtype: 'F32', shape: [shape[0] / 2, shape[1] * 2], data } : { dtype: 'F32', shape, data }];
      }))),
    });
    await expect(loadModel(without('model.layers.1.block_sparse_moe.experts.3.w2.weight'), { device: gpu() })).rejects.toThrow(/missing.*model\.layers\.1\.block_sparse_moe\.experts\.3\.w2\.weight/);
    await expect(loadModel(without('', 'model.layers.0.block_sparse_moe.experts.1.w1.weight'), { device: gpu() })).rejects.toThrow(/model\.layers\.0\.block_sparse_moe\.experts\.1\.w1\.weight/);
    // An expert stack larger than one binding: refused, with the sizes, before any weight is read.
    const small = await Gpu.create({ maxBindingBytes: 4096 });
    try {
      let read = 0;
      await expect(loadModel(ck.files, { device: small, onProgress: () => read++ })).rejects.toThrow(/loadModel: the 4 experts of one projection \(4 × \(\d+, 64\) at 4 bits, \d+ bytes\) exceed this device's 4096-byte binding/);
      expect(read).toBe(0);
    } finally {
      small.destroy();
    }
    const good = await loadModel(tinyTransformer({ seed: 1 }).files, { device: gpu(), maxContext: 16 });
    expect((await good.logits([1, 2])).every(Number.isFinite)).toBe(true);
    good.dispose();
  });
});
