// Loading, the generation API and every bad input the transformer issue
// names: each gives a clear Error, and the engine still works afterwards.

import { expect, it } from 'vitest';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { LM, loadModel, type GenerateOptions } from '../../src/lm';
import { Gpu } from '../../src/runtime/gpu';
import type { Recorder } from '../../src/runtime/recorder';
import type { ModelState } from '../../src/models/model';
import { refForward } from '../../src/reference/transformer';
import { describeGpu, useGpu } from '../helpers/gpu';
import { tinyTransformer } from '../helpers/checkpoints';
import { writeSafetensors, type FixtureTensor } from '../helpers/fixtures';
import { transformerTensorShapes } from '../../src/models/transformer/weights';
import { relMaxErr } from '../helpers/models';

const enc = new TextEncoder();

describeGpu('loading a transformer checkpoint', () => {
  const gpu = useGpu();
  const ck = tinyTransformer({ seed: 5 });
  const ids = [3, 60, 101, 7, 250];

  /** The engine still works: a fresh load gives the reference logits. */
  async function stillWorks(): Promise<void> {
    const lm = await loadModel(ck.files, { weights: 'f32', device: gpu(), maxContext: 64 });
    try {
      expect(relMaxErr(await lm.logits(ids), refForward(ck.config, (n) => ck.weights.get(n)!, ids))).toBeLessThan(1e-4);
    } finally {
      lm.dispose();
    }
  }

  it('loads from a folder on disk, from a map, and reports progress up to the total', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'tessera-ck-'));
    for (const [name, bytes] of Object.entries(ck.files)) writeFileSync(join(dir, name), bytes);
    const seen: number[] = [];
    let total = 0;
    const lm = await loadModel(dir, { weights: 'q4', device: gpu(), maxContext: 64, onProgress: (p) => { seen.push(p.loadedBytes); total = p.totalBytes; } });
    try {
      expect(lm.info).toMatchObject({ family: 'transformer', ffn: 'dense', modelType: 'llama', nLayers: 2, dModel: 64, maxContext: 64, weights: 'q4', embeddings: 'q8', vocabSize: ck.config.vocabSize });
      expect(seen.length).toBeGreaterThan(5);
      expect(seen[seen.length - 1]).toBe(total);
      expect([...seen].sort((a, b) => a - b)).toEqual(seen);
      expect(lm.info.weightBytes).toBe(lm.memory().bytes.weights);
    } finally {
      lm.dispose();
    }
  });

  it('load and dispose 6 times (q4 and f32 in turn) leaves the memory ledger where it started', async () => {
    const g = gpu();
    const lm0 = await loadModel(ck.files, { weights: 'q4', device: g, maxContext: 64 });
    await lm0.logits(ids); // the uniform ring exists from here on
    lm0.dispose();
    const start = g.ledger.report();
    for (let i = 0; i < 6; i++) {
      const lm = await loadModel(ck.files, { weights: i % 2 ? 'f32' : 'q4', device: g, maxContext: 64 });
      await lm.logits(ids.slice(0, 2));
      lm.dispose();
    }
    const end = g.ledger.report();
    expect(end.bytes).toEqual(start.bytes);
    expect(end.buffers).toBe(start.buffers);
  });

  it('streams text, stops on a stop string or maxNewTokens, and reports stats', async () => {
    const lm = await loadModel(ck.files, { weights: 'q4', device: gpu(), maxContext: 128 });
    try {
      const pieces: string[] = [];
      for await (const p of lm.generate('the cat', { maxNewTokens: 12, temperature: 0.8, topK: 20, seed: 1 })) pieces.push(p);
      const s = lm.stats()!;
      expect(s.promptTokens).toBe(lm.tokenizer!.encode('the cat').length);
      expect(s.generatedTokens).toBeGreaterThan(0);
      expect(['length', 'eos']).toContain(s.stopReason);
      expect(s.timeToFirstTokenMs).toBeGreaterThan(0);
      expect(s.prefillTokensPerSecond).toBeGreaterThan(0);
      const text = pieces.join('');
      // Same seed, same text; a stop string taken from that text ends generation before it.
      const again: string[] = [];
      for await (const p of lm.generate('the cat', { maxNewTokens: 12, temperature: 0.8, topK: 20, seed: 1 })) again.push(p);
      expect(again.join('')).toBe(text);
      if (text.length >= 4) {
        const stop = text.slice(2, 4);
        const cut: string[] = [];
        for await (const p of lm.generate('the cat', { maxNewTokens: 12, temperature: 0.8, topK: 20, seed: 1, stop: [stop] })) cut.push(p);
        expect(cut.join('')).toBe(text.slice(0, text.indexOf(stop)));
        expect(lm.stats()!.stopReason).toBe('stop');
      }
    } finally {
      lm.dispose();
    }
  });

  it("stops on generation_config.json's eos ids as Hugging Face generate() does, and names a malformed one", async () => {
    const lm = await loadModel(ck.files, { weights: 'q4', device: gpu(), maxContext: 128 });
    let first: number;
    try {
      // The token greedy decoding picks first: declared an eos id, generation stops right there.
      const ids = lm.tokenizer!.encodePrompt('the cat');
      const logits = await lm.logits(Array.from(ids));
      const V = lm.info.vocabSize;
      const last = logits.subarray(logits.length - V);
      first = last.indexOf(Math.max(...last));
      expect(lm.tokenizer!.eosIds.has(first)).toBe(false);
    } finally {
      lm.dispose();
    }
    const withGen = (v: unknown) => ({ ...ck.files, 'generation_config.json': enc.encode(JSON.stringify({ eos_token_id: v })) });
    const stops = await loadModel(withGen([first, 99999]), { weights: 'q4', device: gpu(), maxContext: 128 });
    try {
      const out: string[] = [];
      for await (const p of stops.generate('the cat', { maxNewTokens: 8 })) out.push(p);
      expect(stops.stats()).toMatchObject({ stopReason: 'eos', generatedTokens: 0 });
      expect(out.join('')).toBe('');
    } finally {
      stops.dispose();
    }
    await expect(loadModel(withGen('2'), { device: gpu() })).rejects.toThrow(/generation_config\.json: 'eos_token_id' must be a token id or a list of them, got "2"/);
  });

  it('an aborted generation throws AbortError and the model is ready for the next call', async () => {
    const lm = await loadModel(ck.files, { weights: 'q4', device: gpu(), maxContext: 128 });
    try {
      const ctl = new AbortController();
      let n = 0;
      await expect((async () => {
        for await (const _ of lm.generate('abc', { maxNewTokens: 50, signal: ctl.signal })) if (++n === 2) ctl.abort();
      })()).rejects.toThrow(/generate: aborted after \d+ generated tokens/);
      expect(lm.stats()!.stopReason).toBe('abort');
      const out: string[] = [];
      for await (const p of lm.generate('abc', { maxNewTokens: 3 })) out.push(p);
      expect(lm.stats()!.generatedTokens).toBeGreaterThan(0);
    } finally {
      lm.dispose();
    }
  });

  it('non-finite logits (NaN, infinity) are an Error from generate, never a token; the model then generates as before', async () => {
    const lm = await loadModel(ck.files, { weights: 'q4', device: gpu(), maxContext: 128 });
    const g = lm.model.gpu;
    const inner = lm.model;
    const poison = { value: g.upload(Float32Array.of(NaN), [1], { label: 'poison' }), step: -1 };
    let steps = 0;
    // The same model, except that decode step `poison.step` leaves one bad logit (entry 3), as an overflow would.
    const model = new Proxy(inner, {
      get(target, prop) {
        if (prop === 'decode') {
          return (rec: Recorder, state: ModelState, token: number) => {
            const logits = target.decode(rec, state, token);
            if (steps++ === poison.step) rec.copy(poison.value, logits.view([1], 3));
            return logits;
          };
        }
        const v = Reflect.get(target, prop, target);
        return typeof v === 'function' ? v.bind(target) : v;
      },
    });
    const poisoned = new LM(model, lm.tokenizer);
    const run = async (opts: GenerateOptions) => {
      const out: string[] = [];
      for await (const p of poisoned.generate('the cat', { maxNewTokens: 6, ...opts })) out.push(p);
      return out.join('');
    };
    try {
      const clean = await run({});
      // Greedy would take the NaN (torch's argmax order), sampling would skip it: both must refuse instead.
      for (const [bad, opts] of [[NaN, {}], [Infinity, { temperature: 1, seed: 3 }], [-Infinity, {}]] as const) {
        g.write(poison.value, Float32Array.of(bad));
        poison.step = steps + 2;
        await expect(run(opts)).rejects.toThrow(/generate: the forward pass produced 1 non-finite logits \(NaN or infinity\) at step 3; weights or activations overflow float32, so no token was chosen/);
      }
      poison.step = -1;
      expect(await run({})).toBe(clean);
    } finally {
      poisoned.dispose();
      lm.dispose();
      poison.value.dispose();
    }
  });

  it('preferF16 is checked, picks the shared device by precision, and lm.info says which activations are in use and why', async () => {
    await expect(loadModel(ck.files, { preferF16: 'yes' as never })).rejects.toThrow(/loadModel: preferF16 must be true or false, got "yes"/);
    await expect(loadModel(ck.files, { preferF16: true, device: gpu() })).rejects.toThrow(/loadModel: preferF16 applies to the shared device; a given device keeps the precision it was opened with \(f32\): pass preferF16 to Gpu.create\(\) instead/);
    // A report that claims f16 on a device without shader-f16 is refused where it is made.
    const g = gpu();
    if (!g.device.features.has('shader-f16')) {
      expect(() => Gpu.fromDevice(g.device, { ...g.report, precision: 'f16' })).toThrow(/Gpu.fromDevice: the report's precision is f16, but the device was created without the shader-f16 feature/);
    }
    const plain = await loadModel(ck.files, { weights: 'f32', device: g, maxContext: 16 });
    expect([plain.info.activations, plain.info.activationsReason]).toEqual(['f32', expect.stringMatching(/^f32: the default \(preferF16 not asked for/)]);
    plain.dispose();
    // The shared f16 device: f16 where the adapter has shader-f16 (checked in Firefox, f16.test.ts), f32 and why where not.
    const asked = await loadModel(ck.files, { weights: 'f32', maxContext: 16, preferF16: true });
    try {
      if (asked.model.gpu.report.features.shaderF16) expect(asked.info.activations).toBe('f16');
      else expect([asked.info.activations, asked.info.activationsReason]).toEqual(['f32', 'f32: preferF16 was asked for, but the adapter lacks shader-f16']);
      const want = refForward(ck.config, (n) => ck.weights.get(n)!, [1, 2, 3]);
      expect(relMaxErr(await asked.logits([1, 2, 3]), want)).toBeLessThan(asked.info.activations === 'f16' ? 2e-2 : 1e-4);
    } finally {
      asked.dispose();
      asked.model.gpu.destroy();
    }
    await stillWorks();
  });

  it('context overflow is a clear Error, never a silent truncation', async () => {
    const lm: LM = await loadModel(ck.files, { weights: 'q4', device: gpu(), maxContext: 8 });
    try {
      await expect(lm.logits(Array.from({ length: 9 }, (_, i) => i))).rejects.toThrow(/context overflow: 9 tokens exceed the model's 8-token context/);
      await expect((async () => { for await (const _ of lm.generate('a long prompt that is longer than eight tokens')) void _; })()).rejects.toThrow(/context overflow/);
      await expect((async () => { for await (const _ of lm.generate('ab', { maxNewTokens: 20 })) void _; })()).rejects.toThrow(/context overflow/);
      expect((await lm.logits([1, 2, 3])).length).toBe(3 * ck.config.vocabSize);
    } finally {
      lm.dispose();
    }
    await expect(loadModel(ck.files, { device: gpu(), maxContext: 100000 })).rejects.toThrow(/maxContext 100000 exceeds the model's 512 positions/);
  });

  it('bad arguments to generate and logits are named', async () => {
    const lm = await loadModel(ck.files, { weights: 'q4', device: gpu(), maxContext: 64 });
    try {
      const run = async (o: object) => { for await (const _ of lm.generate('a', o)) void _; };
      await expect(run({ maxNewTokens: 0 })).rejects.toThrow(/maxNewTokens must be a positive integer/);
      await expect(run({ temperature: -1 })).rejects.toThrow(/temperature must be a finite number >= 0, got -1/);
      await expect(run({ topP: 0 })).rejects.toThrow(/topP must be a number in \(0, 1\], got 0/);
      await expect(lm.logits([ck.config.vocabSize])).rejects.toThrow(/logits: token id 275 at position 0 is outside the vocabulary \(0..274\)/);
      await expect(lm.logits([])).rejects.toThrow(/no token ids/);
    } finally {
      lm.dispose();
    }
    await expect(loadModel(ck.files, { device: gpu(), embeddings: 'q2' as never })).rejects.toThrow(/loadModel: embeddings must be 'q8', 'q4' or 'f32', got "q2"/);
    await stillWorks();
  });

  // Each broken checkpoint throws an Error that names what is wrong; after each, the engine still loads a good one.
  const st = ck.files['model.safetensors'];
  const headerLen = Number(new DataView(st.buffer, st.byteOffset).getBigUint64(0, true));
  const withFile = (name: string, bytes: Uint8Array | null) => {
    const files = { ...ck.files };
    if (bytes) files[name] = bytes;
    else delete files[name];
    return files;
  };
  const config = (edit: (c: Record<string, unknown>) => void) => {
    const c = JSON.parse(new TextDecoder().decode(ck.files['config.json']));
    edit(c);
    return withFile('config.json', enc.encode(JSON.stringify(c)));
  };
  const shapes = transformerTensorShapes(ck.config);
  const shapeOf = (n: string) => shapes.get(n)!;
  const tensors = (edit: (t: Record<string, FixtureTensor>) => void) => {
    const t: Record<string, FixtureTensor> = Object.fromEntries([...ck.weights].map(([n, d]) => [n, { dtype: 'F32' as const, shape: shapeOf(n), data: d }]));
    edit(t);
    return withFile('model.safetensors', writeSafetensors(t));
  };

  it.each([
    ['truncated file', () => withFile('model.safetensors', st.subarray(0, st.length - 100)), /model\.safetensors/],
    ['header larger than the file', () => { const b = st.slice(); new DataView(b.buffer).setBigUint64(0, BigInt(b.length), true); return withFile('model.safetensors', b); }, /model\.safetensors.*header/i],
    ['out-of-range offsets', () => { const b = st.slice(); const h = new TextDecoder().decode(b.subarray(8, 8 + headerLen)).replace(/"data_offsets":\[(\d+),(\d+)\]/, (_m, a, z) => `"data_offsets":[${a},${Number(z) + 4000000}]`); b.set(enc.encode(h.padEnd(headerLen)), 8); return withFile('model.safetensors', b); }, /model\.safetensors/],
    ['a missing tensor', () => tensors((t) => delete t['model.layers.1.mlp.up_proj.weight']), /missing tensors: model\.layers\.1\.mlp\.up_proj\.weight/],
    ['a wrong shape', () => tensors((t) => { t['model.norm.weight'] = { dtype: 'F32', shape: [32], data: new Float32Array(32) }; }), /wrong shapes: model\.norm\.weight is \(32\), expected \(64\)/],
    ['an unused tensor', () => tensors((t) => { t['model.layers.0.extra.weight'] = { dtype: 'F32', shape: [4], data: new Float32Array(4) }; }), /tensors this model does not use: model\.layers\.0\.extra\.weight/],
    ['a non-finite weight', () => tensors((t) => { t['model.norm.weight'] = { dtype: 'F32', shape: [64], data: new Float32Array(64).fill(NaN) }; }), /model\.norm\.weight.*not finite/],
    ['unsupported dtype', () => tensors((t) => { t['model.norm.weight'] = { dtype: 'I32', shape: [64], bytes: new Uint8Array(256) }; }), /unsupported dtype I32 for tensor "model\.norm\.weight"/],
    ['unknown model_type', () => config((c) => { c.model_type = 'gpt_bigcode'; }), /model_type "gpt_bigcode" is not supported \(supported: llama, qwen2, mistral, mixtral, olmoe, qwen2_moe, granitemoe, mamba, retnet\)/],
    ['unsupported rope scaling', () => config((c) => { c.rope_scaling = { rope_type: 'yarn', factor: 4 }; }), /rope_scaling type 'yarn' is not supported/],
    ['heads not dividing', () => config((c) => { c.num_key_value_heads = 3; }), /num_attention_heads 4 is not a multiple of num_key_value_heads 3/],
    ['missing config.json', () => withFile('config.json', null), /config\.json is missing/],
    ['config.json not JSON', () => withFile('config.json', enc.encode('{ nope')), /config\.json is not valid JSON/],
    ['missing weights file', () => withFile('model.safetensors', null), /model\.safetensors/],
  ] as const)('%s gives a clear Error, then the engine still works', async (_name, files, message) => {
    await expect(loadModel(files() as Record<string, Uint8Array>, { weights: 'q4', device: gpu(), maxContext: 64 })).rejects.toThrow(message);
    await stillWorks();
  });

  it('a failed load leaves nothing on the device', async () => {
    const g = gpu();
    const before = g.ledger.report().bytes;
    await expect(loadModel(tensors((t) => { t['model.norm.weight'] = { dtype: 'F32', shape: [64], data: new Float32Array(64).fill(Infinity) }; }) as Record<string, Uint8Array>, { weights: 'q4', device: g })).rejects.toThrow(/not finite/);
    expect(g.ledger.report().bytes).toEqual(before);
  });
});

describeGpu('conversation state (transformer)', () => {
  const gpu = useGpu();

  it('saveState / restoreState then continuing gives the same tokens as never having stopped', async () => {
    const ck = tinyTransformer({ seed: 9 });
    const lm = await loadModel(ck.files, { weights: 'q4', device: gpu(), maxContext: 128 });
    try {
      const opts = { temperature: 0.7, topK: 30, seed: 12 };
      const all: string[] = [];
      for await (const p of lm.generate('the cat', { ...opts, maxNewTokens: 20 })) all.push(p);

      const first: string[] = [];
      for await (const p of lm.generate('the cat', { ...opts, maxNewTokens: 8 })) first.push(p);
      const snap = await lm.saveState();
      expect(snap.position).toBeGreaterThan(0);
      for await (const _ of lm.generate('something else entirely', { maxNewTokens: 5 })) void _; // the live state moves on
      await lm.restoreState(snap);
      const rest: string[] = [];
      for await (const p of lm.generate('', { continue: true, maxNewTokens: 12 })) rest.push(p);
      expect(lm.stats()!.generatedTokens).toBe(12);
      expect(first.join('') + rest.join('')).toBe(all.join(''));
      // A snapshot is also named by its id (what crosses a worker's message boundary).
      expect(typeof snap.id).toBe('string');
      await lm.restoreState(snap.id);
      const again: string[] = [];
      for await (const p of lm.generate('', { continue: true, maxNewTokens: 12 })) again.push(p);
      expect(again.join('')).toBe(rest.join(''));
      snap.dispose();
      await expect(lm.restoreState(snap)).rejects.toMatchObject({ code: 'SNAPSHOT', message: expect.stringMatching(/was disposed/) });
      await expect(lm.restoreState('snapshot-none')).rejects.toMatchObject({ code: 'SNAPSHOT' });
      await expect(lm.restoreState(null as never)).rejects.toMatchObject({ code: 'SNAPSHOT' });
      // Another model's snapshot does not fit this one.
      const other = await loadModel(ck.files, { weights: 'q4', device: gpu(), maxContext: 128 });
      try {
        const theirs = await other.saveState();
        await expect(lm.restoreState(theirs)).rejects.toMatchObject({ code: 'SNAPSHOT', message: expect.stringMatching(/another model/) });
      } finally {
        other.dispose();
      }
    } finally {
      lm.dispose();
    }
  });

  it('dispose() frees the snapshots a handle made: the ledger returns to where it was', async () => {
    const before = gpu().ledger.report().total;
    const lm = await loadModel(tinyTransformer({ seed: 3 }).files, { weights: 'q4', device: gpu(), maxContext: 64 });
    for await (const _ of lm.generate('the cat', { maxNewTokens: 4 })) void _;
    const snaps = [await lm.saveState(), await lm.saveState()];
    expect(snaps[0].id).not.toBe(snaps[1].id);
    snaps[0].dispose();
    lm.dispose();
    expect(gpu().ledger.report().total).toBe(before);
    snaps[1].dispose(); // after the handle: nothing left to free, no Error
  });
});

describeGpu('a KV cache larger than the device allows', () => {
  it('is refused before allocation, with the sizes and what to do', async () => {
    const g = await Gpu.create({ limits: 'default' });
    try {
      // 2 KV heads × 16 dims × 4 bytes = 128 bytes per token: 2^21 tokens is 256 MiB per layer.
      const ck = tinyTransformer({ maxPositions: 2 ** 21 });
      await expect(loadModel(ck.files, { device: g })).rejects.toThrow(/KV cache: 2097152 tokens need 268435456 bytes per layer .* pass a smaller maxContext/);
      expect(g.ledger.report().total).toBe(0);
    } finally {
      g.destroy();
    }
  });
});
