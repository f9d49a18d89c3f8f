import { expect, it } from 'vitest';
import { loadModel } from '../../src/lm';
import { Recorder } from '../../src/runtime/recorder';
import { refMambaForward, createRefMambaState } from '../../src/reference/mamba';
import { mambaTensorShapes } from '../../src/models/mamba/weights';
import type { MambaModel } from '../../src/models/mamba/model';
import { describeGpu, useGpu } from '../helpers/gpu';
import { tinyMamba } from '../helpers/checkpoints';
import { writeSafetensors, type FixtureTensor } from '../helpers/fixtures';
import { randint } from '../helpers/random';
import { asLoaded, greedyGpu, argmaxOf, relMaxErr, mambaQuantized } from '../helpers/models';

// Logits as max |gpu - ref| / max |ref|: the f32 scan and projections measure
// around 1e-6 here; 1e-4 is the bound the issue states.
const REL = 1e-4;
const enc = new TextEncoder();

describeGpu('Mamba against the float64 reference', () => {
  const gpu = useGpu();

  it.each([
    ['hf layout', 'f32', {}],
    ['untied, state 8, conv 2, expand 1', 'f32', { tie: false, state: 8, conv: 2, expand: 1, layers: 1 }],
    ['state-spaces layout', 'f32', { layout: 'state-spaces' as const }],
    ['hf layout, q4', 'q4', {}],
  ] as const)('%s: logits of a prompt match (%s weights)', async (_name, mode, opts) => {
    const ck = tinyMamba({ ...opts, seed: 4 });
    const lm = await loadModel(ck.files, { weights: mode, device: gpu() });
    try {
      expect(lm.info).toMatchObject({ family: 'mamba', ffn: 'dense', maxContext: null, weights: mode });
      const ids = Array.from(randint(6, 29, ck.config.vocabSize));
      const got = await lm.logits(ids);
      const want = refMambaForward(ck.config, asLoaded(ck.weights, mambaTensorShapes(ck.config), mode, mambaQuantized), ids);
      expect(relMaxErr(got, want)).toBeLessThan(REL);
    } finally {
      lm.dispose();
    }
  });

  it('prefill of N tokens then one step equals prefill of N+1 (1, chunk-1, chunk, chunk+1, 3*chunk+5)', async () => {
    const ck = tinyMamba({ seed: 7 });
    const chunk = 16;
    const lm = await loadModel(ck.files, { weights: 'f32', device: gpu(), prefillChunk: chunk });
    const model = lm.model as MambaModel;
    const V = ck.config.vocabSize;
    try {
      for (const n of [1, chunk - 1, chunk, chunk + 1, 3 * chunk + 5]) {
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
        const want = refMambaForward(ck.config, (k) => ck.weights.get(k)!, ids).subarray(n * V);
        expect(relMaxErr(stepped, want), `n = ${n} vs reference`).toBeLessThan(REL);
        expect(part.state.position).toBe(n + 1);
        whole.state.dispose();
        part.state.dispose();
      }
    } finally {
      lm.dispose();
    }
  });

  it('greedy generation of 32 tokens is identical on the GPU and the reference (q4 weights)', async () => {
    const ck = tinyMamba({ seed: 12 });
    const lm = await loadModel(ck.files, { weights: 'q4', device: gpu(), prefillChunk: 8 });
    try {
      const prompt = randint(55, 13, ck.config.vocabSize);
      const state = lm.model.createState();
      const got = await greedyGpu(lm.model, state, prompt, 32);
      state.dispose();
      const w = asLoaded(ck.weights, mambaTensorShapes(ck.config), 'q4', mambaQuantized);
      const ref = createRefMambaState(ck.config);
      const V = ck.config.vocabSize;
      let logits = refMambaForward(ck.config, w, prompt, ref);
      const want: number[] = [];
      for (let i = 0; i < 32; i++) {
        const tok = argmaxOf(logits.subarray(logits.length - V));
        want.push(tok);
        logits = refMambaForward(ck.config, w, [tok], ref);
      }
      expect(got).toEqual(want);
    } finally {
      lm.dispose();
    }
  });

  it('saveState / restoreState then continuing gives the same text as never having stopped', async () => {
    const ck = tinyMamba({ seed: 3 });
    const lm = await loadModel(ck.files, { weights: 'q4', device: gpu() });
    try {
      const opts = { temperature: 0.8, topP: 0.9, seed: 5 };
      const all: string[] = [];
      for await (const p of lm.generate('once upon', { ...opts, maxNewTokens: 24 })) all.push(p);
      const first: string[] = [];
      for await (const p of lm.generate('once upon', { ...opts, maxNewTokens: 10 })) first.push(p);
      const snap = await lm.saveState();
      expect(snap.bytes).toBe(lm.memory().stateBytes);
      for await (const _ of lm.generate('a different prompt', { maxNewTokens: 4 })) void _;
      await lm.restoreState(snap);
      const rest: string[] = [];
      for await (const p of lm.generate('', { continue: true, maxNewTokens: 14 })) rest.push(p);
      expect(first.join('') + rest.join('')).toBe(all.join(''));
      snap.dispose();
    } finally {
      lm.dispose();
    }
  });

  it('the state has the same byte count after 10 and after 2000 tokens (ledger)', async () => {
    const ck = tinyMamba({ seed: 1, hidden: 32, layers: 1 });
    const g = gpu();
    const lm = await loadModel(ck.files, { weights: 'q4', device: g, prefillChunk: 512 });
    const model = lm.model as MambaModel;
    try {
      const state = model.createState();
      const cacheBytes = () => g.ledger.report().bytes.cache;
      const feed = async (n: number) => {
        const ids = randint(n, n, ck.config.vocabSize);
        for (let i = 0; i < n; i += 512) {
          const rec = new Recorder(g);
          model.prefill(rec, state, ids.subarray(i, i + 512));
          await rec.submit();
        }
      };
      await feed(10);
      const after10 = { ledger: cacheBytes(), state: state.bytes };
      await feed(1990);
      expect(state.position).toBe(2000);
      expect(cacheBytes()).toBe(after10.ledger);
      expect(state.bytes).toBe(after10.state);
      const { intermediateSize: Di, stateSize: N, convKernel: Kc } = ck.config;
      expect(state.bytes).toBe(ck.config.nLayers * Di * (N + Kc - 1) * 4);
      state.dispose();
    } finally {
      lm.dispose();
    }
  });

  const ck = tinyMamba({ seed: 2 });
  const shapes = mambaTensorShapes(ck.config);
  const tensors = (edit: (t: Record<string, FixtureTensor>) => void) => {
    const t: Record<string, FixtureTensor> = Object.fromEntries([...ck.weights].map(([n, d]) => [n, { dtype: 'F32' as const, shape: shapes.get(n)!, data: d }]));
    edit(t);
    return { ...ck.files, 'model.safetensors': writeSafetensors(t) };
  };
  const config = (edit: (c: Record<string, unknown>) => void) => {
    const c = JSON.parse(new TextDecoder().decode(ck.files['config.json']));
    edit(c);
    return { ...ck.files, 'config.json': enc.encode(JSON.stringify(c)) };
  };
  const Di = ck.config.intermediateSize;
  it.each([
    ['a missing mixer tensor', () => tensors((t) => delete t['backbone.layers.1.mixer.x_proj.weight']), /missing tensors: backbone\.layers\.1\.mixer\.x_proj\.weight/],
    ['a mis-shaped mixer tensor', () => tensors((t) => { t['backbone.layers.0.mixer.D'] = { dtype: 'F32', shape: [Di + 1], data: new Float32Array(Di + 1) }; }), /wrong shapes: backbone\.layers\.0\.mixer\.D is \(129\), expected \(128\)/],
    ['state_size not matching A_log', () => config((c) => { c.state_size = 8; }), /backbone\.layers\.0\.mixer\.A_log has 16 state columns but config\.json state_size is 8/],
    ['a Mamba-2 state-spaces config', () => ({ ...ck.files, 'config.json': enc.encode(JSON.stringify({ d_model: 64, n_layer: 2, vocab_size: 275, ssm_cfg: { layer: 'Mamba2' } })) }), /ssm_cfg\.layer 'Mamba2' is not supported/],
    ['only a pytorch_model.bin (original state-spaces release)', () => { const f: Record<string, Uint8Array> = { ...ck.files, 'pytorch_model.bin': new Uint8Array(16) }; delete f['model.safetensors']; return f; }, /holds pytorch_model\.bin .* convert it to model\.safetensors/],
    ['intermediate_size not expand × hidden', () => config((c) => { c.intermediate_size = 100; }), /intermediate_size 100 is not expand 2 × hidden_size 64/],
  ] as const)('%s is a clear Error naming it', async (_n, files, message) => {
    await expect(loadModel(files() as Record<string, Uint8Array>, { device: gpu() })).rejects.toThrow(message);
  });
});
