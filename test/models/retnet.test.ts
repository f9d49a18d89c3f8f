// RetNet on the GPU against the float64 reference written from fla's code
// (src/reference/retnet.ts), on fixture checkpoints with fla's config keys
// and tensor names (test/helpers/retnet_checkpoint.ts).

import { expect, it } from 'vitest';
import { loadModel } from '../../src/lm';
import { Recorder } from '../../src/runtime/recorder';
import { refRetNetForward, createRefRetNetState, retnetRefTensorShapes } from '../../src/reference/retnet';
import type { RetNetModel } from '../../src/models/retnet/model';
import { RETNET_PARALLEL_MAX_T, retnetParamCount } from '../../src/models/retnet/model';
import { parseRetNetConfig } from '../../src/models/retnet/config';
import { describeGpu, useGpu } from '../helpers/gpu';
import { tinyRetnet } from '../helpers/retnet_checkpoint';
import { tinyTransformer } from '../helpers/checkpoints';
import { randint } from '../helpers/random';
import { asLoaded, greedyGpu, argmaxOf, relMaxErr } from '../helpers/models';

// Logits as max |gpu - ref| / max |ref|: the f32 forward measures around 1e-6
// here; 1e-4 is the bound the issue states.
const REL = 1e-4;

it("parses fla-hub/retnet-1.3B-100B's shape (RetNetConfig's defaults) to its published parameter count", () => {
  const cfg = parseRetNetConfig({ model_type: 'retnet', architectures: ['RetNetForCausalLM'], hidden_size: 2048, num_hidden_layers: 24, num_heads: 8, expand_k: 1, expand_v: 2, hidden_ratio: 2, intermediate_size: null, vocab_size: 32000 });
  expect(cfg).toMatchObject({ keyDim: 256, valueDim: 512, intermediateSize: 2816, normEps: 1e-6, tieWordEmbeddings: false, eosTokenIds: [2] });
  expect(retnetParamCount(cfg)).toBe(1_351_727_104);
  // Older configs name the eps rms_norm_eps; hidden_ratio null is GatedMLP's own 4.
  expect(parseRetNetConfig({ model_type: 'retnet', hidden_size: 2048, rms_norm_eps: 1e-5, hidden_ratio: null })).toMatchObject({ normEps: 1e-5, intermediateSize: 5632 });
});

describeGpu('RetNet against the float64 reference', () => {
  const gpu = useGpu();

  it.each([
    ['split MLP, untied', 'f32', {}],
    ['fused MLP (older fla), tied', 'f32', { mlpLayout: 'fused' as const, tie: true }],
    ['3 heads, expand_k 0.5, hidden_ratio null, 1 layer', 'f32', { heads: 3, hidden: 96, expandK: 0.5, hiddenRatio: null, layers: 1 }],
    ['g_norm name (fuse_norm false)', 'f32', { extra: { fuse_norm: false } }],
    ['split MLP, default 4-bit formats', 'q4', {}],
    ['fused MLP, default 4-bit formats', 'q4', { mlpLayout: 'fused' as const }],
  ] as const)('%s: logits of a prompt (parallel form) and of a long one (chunkwise) match (%s weights)', async (_name, mode, opts) => {
    const ck = tinyRetnet({ ...opts, seed: 4 });
    const lm = await loadModel(ck.files, { weights: mode, device: gpu() });
    try {
      expect(lm.info).toMatchObject({ family: 'retnet', ffn: 'dense', modelType: 'retnet', maxContext: null, weights: mode, activations: 'f32' });
      const w = asLoaded(ck.weights, retnetRefTensorShapes(ck.config), mode);
      for (const n of [29, RETNET_PARALLEL_MAX_T + 70]) {
        const ids = Array.from(randint(6 + n, n, ck.config.vocabSize));
        expect(relMaxErr(await lm.logits(ids), refRetNetForward(ck.config, w, ids)), `${n} tokens`).toBeLessThan(REL);
      }
    } finally {
      lm.dispose();
    }
  });

  it('prefill of N tokens then one step equals prefill of N+1, across the forms (1, 63, 64, 65, 3*64+5, chunked by 160: chunkwise then parallel)', async () => {
    const ck = tinyRetnet({ seed: 7 });
    const chunk = 160;
    expect(chunk).toBeGreaterThan(RETNET_PARALLEL_MAX_T);
    const lm = await loadModel(ck.files, { weights: 'f32', device: gpu(), prefillChunk: chunk });
    const model = lm.model as RetNetModel;
    const V = ck.config.vocabSize;
    try {
      for (const n of [1, 63, 64, 65, 3 * 64 + 5]) {
        const ids = randint(300 + n, n + 1, V);
        const run = async (tokens: Int32Array, state = model.createState()) => {
          let out: Float32Array = new Float32Array(0);
          for (let i = 0; i < tokens.length; i += chunk) {
            const rec = new Recorder(gpu());
            out = (await rec.submitAndRead(model.prefill(rec, state, tokens.subarray(i, i + chunk)))) as Float32Array;
          }
          return { out, state };
        };
        const whole = await run(ids);
        const part = await run(ids.subarray(0, n));
        const rec = new Recorder(gpu());
        const stepped = (await rec.submitAndRead(model.decode(rec, part.state, ids[n]))) as Float32Array;
        expect(relMaxErr(stepped, whole.out), `n = ${n}`).toBeLessThan(REL);
        const want = refRetNetForward(ck.config, (k) => ck.weights.get(k)!, ids).subarray(n * V);
        expect(relMaxErr(stepped, want), `n = ${n} vs reference`).toBeLessThan(REL);
        expect(part.state.position).toBe(n + 1);
        whole.state.dispose();
        part.state.dispose();
      }
    } finally {
      lm.dispose();
    }
  });

  it('greedy generation of 32 tokens is identical on the GPU and the reference (q4 weights); the state stays the same size', async () => {
    const ck = tinyRetnet({ seed: 9 });
    const lm = await loadModel(ck.files, { device: gpu() });
    try {
      const model = lm.model as RetNetModel;
      const prompt = randint(91, 12, ck.config.vocabSize);
      const state = model.createState();
      const bytes = state.bytes;
      expect(bytes).toBe(ck.config.nLayers * ck.config.nHeads * ck.config.keyDim * ck.config.valueDim * 4);
      const got = await greedyGpu(model, state, prompt, 32);
      expect(state.bytes).toBe(bytes);
      const w = asLoaded(ck.weights, retnetRefTensorShapes(ck.config), 'q4');
      const ref = createRefRetNetState(ck.config);
      let logits = refRetNetForward(ck.config, w, prompt, ref);
      const want: number[] = [];
      const V = ck.config.vocabSize;
      while (want.length < 32) {
        const next = argmaxOf(logits.subarray(logits.length - V));
        want.push(next);
        logits = refRetNetForward(ck.config, w, [next], ref);
      }
      expect(got).toEqual(want);
      state.dispose();
    } finally {
      lm.dispose();
    }
  });

  it('a snapshot restores exactly, and generate continues as if it had not been interrupted', async () => {
    const ck = tinyRetnet({ seed: 11 });
    const lm = await loadModel(ck.files, { device: gpu() });
    try {
      let first = '';
      for await (const piece of lm.generate('the cat', { maxNewTokens: 6 })) first += piece;
      const snap = await lm.saveState();
      const cont = async () => {
        let s = '';
        for await (const piece of lm.generate(' and', { continue: true, maxNewTokens: 8 })) s += piece;
        return s;
      };
      const a = await cont();
      await lm.restoreState(snap);
      expect(await cont()).toBe(a);
      snap.dispose();
      expect(first.length + a.length).toBeGreaterThan(0);
    } finally {
      lm.dispose();
    }
  });

  it('refuses unsupported keys, a missing tensor and dimensions the heads do not divide, naming them; a good model loads after', async () => {
    const base = tinyRetnet({ seed: 2 });
    const refuse = async (extra: Record<string, unknown>, re: RegExp) => {
      const config = new TextEncoder().encode(JSON.stringify({ ...base.raw, ...extra }));
      await expect(loadModel({ ...base.files, 'config.json': config }, { device: gpu() })).rejects.toThrow(re);
    };
    await refuse({ use_short_conv: true }, /config\.json: 'use_short_conv' = true \(short convolutions on q, k and v\) is not supported/);
    await refuse({ feature_map: 'elu' }, /'feature_map' = "elu" \(a feature map on q and k\) is not supported/);
    await refuse({ attn: { layers: [1], num_heads: 2 } }, /'attn' = .* \(hybrid softmax-attention layers\) is not supported/);
    await refuse({ num_kv_heads: 1 }, /'num_kv_heads' = 1 differs from num_heads 2: grouped key\/value heads are not supported/);
    await refuse({ hidden_act: 'gelu' }, /'hidden_act' = "gelu" \(an activation other than 'swish'\) is not supported/);
    await refuse({ use_output_gate: false }, /'use_output_gate' = false/);
    await refuse({ num_heads: 3 }, /hidden_size 64 × expand_k 1 = 64 is not a positive multiple of num_heads 3/);
    const ck = tinyRetnet({ seed: 2 });
    const files = { ...ck.files };
    const { writeSafetensors } = await import('../helpers/fixtures');
    const shapes = retnetRefTensorShapes(ck.config);
    files['model.safetensors'] = writeSafetensors(Object.fromEntries([...ck.weights].filter(([n]) => n !== 'model.layers.1.attn.g_proj.weight').map(([n, data]) => [n, { dtype: 'F32', shape: shapes.get(n)!, data }])));
    await expect(loadModel(files, { device: gpu() })).rejects.toThrow(/retnet checkpoint: the checkpoint does not match its config: .*missing.*model\.layers\.1\.attn\.g_proj\.weight/);
    expect(gpu().ledger.report().bytes.weights ?? 0).toBe(0);
    const good = await loadModel(tinyTransformer({ seed: 1 }).files, { device: gpu(), maxContext: 16 });
    expect((await good.logits([1, 2])).every(Number.isFinite)).toBe(true);
    good.dispose();
  });
});
