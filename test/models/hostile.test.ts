// Misuse of the public API and hostile configs: each is an Error naming the
// argument, position or key (never a TypeError from inside, never a value
// silently coerced), refused before any weight is read where it can be, and
// the engine is as it was afterwards.

import { afterAll, beforeAll, expect, it } from 'vitest';
import { loadModel, type LM } from '../../src/lm';
import { Recorder } from '../../src/runtime/recorder';
import { describeGpu, useGpu } from '../helpers/gpu';
import { tinyMamba, tinyTransformer } from '../helpers/checkpoints';

const enc = new TextEncoder();
const transformer = tinyTransformer({ seed: 81, layers: 1 });
const mamba = tinyMamba({ seed: 82, layers: 1 });

/** The checkpoint with config.json edited. */
function withConfig(files: Record<string, Uint8Array>, edit: (c: Record<string, unknown>) => void): Record<string, Uint8Array> {
  const c = JSON.parse(new TextDecoder().decode(files['config.json']));
  edit(c);
  return { ...files, 'config.json': enc.encode(JSON.stringify(c)) };
}

const drain = async (gen: AsyncGenerator<string>) => {
  let out = '';
  for await (const p of gen) out += p;
  return out;
};

describeGpu('hostile use of the API', () => {
  const gpu = useGpu();
  let lm: LM;
  let expected = '';
  let baseline = 0;

  beforeAll(async () => {
    lm = await loadModel(transformer.files, { device: gpu(), maxContext: 64 });
    expected = await drain(lm.generate('the cat', { maxNewTokens: 5 }));
    baseline = gpu().ledger.report().total;
  });
  afterAll(() => lm.dispose());

  /** After each misuse: the ledger as it was, and the same text as before. */
  async function unharmed(): Promise<void> {
    expect(gpu().ledger.report().total).toBe(baseline);
    expect(await drain(lm.generate('the cat', { maxNewTokens: 5 }))).toBe(expected);
  }

  it('token ids that are not integers in the vocabulary are an Error naming the position and value, everywhere ids enter', async () => {
    const V = lm.info.vocabSize;
    const cases: [unknown, RegExp][] = [
      [[1, 2 ** 32 + 5], /token id 4294967301 at position 1 is outside the vocabulary \(0..274\)/],
      [[1.7], /token id 1.7 at position 0 is not an integer/],
      [[3, NaN], /token id NaN at position 1 is not an integer/],
      [[undefined], /token id undefined at position 0 is not an integer/],
      [[0, '5'], /token id "5" at position 1 is not an integer/],
      [[-1], /token id -1 at position 0 is outside the vocabulary/],
      [[V], /token id 275 at position 0 is outside the vocabulary/],
      [Float32Array.of(2, 2.5), /token id 2.5 at position 1 is not an integer/],
      ['abc', /token ids must be an array or a typed array of integers, got "abc"/],
      [{ length: 2, 0: 1, 1: 2 }, /token ids must be an array or a typed array of integers, got an object/],
      [null, /token ids must be an array or a typed array of integers, got null/],
      [[], /no token ids/],
    ];
    for (const [ids, message] of cases) {
      await expect(lm.logits(ids as number[]), String(ids)).rejects.toThrow(new RegExp(`^logits: ${message.source}`));
      if (Array.isArray(ids) && ids.length > 0) await expect(drain(lm.generate(ids as number[]))).rejects.toThrow(new RegExp(`^generate: ${message.source}`));
    }
    // The contract's own entry points refuse them too.
    const state = lm.model.createState();
    try {
      expect(() => lm.model.decode(new Recorder(gpu()), state, 1.7)).toThrow(/decode: token id 1.7 is not an integer in the vocabulary/);
      expect(() => lm.model.decode(new Recorder(gpu()), state, V)).toThrow(/decode: token id 275 is not an integer in the vocabulary/);
    } finally {
      state.dispose();
    }
    // Ids given to generate() are the same prompt as their text.
    expect(await drain(lm.generate(Array.from(lm.tokenizer!.encode('the cat')), { maxNewTokens: 5 }))).toBe(expected);
    expect(await drain(lm.generate(lm.tokenizer!.encode('the cat'), { maxNewTokens: 5 }))).toBe(expected);
    await unharmed();
  });

  it('generate() options and prompts of the wrong kind are named', async () => {
    const cases: [unknown, unknown, RegExp][] = [
      ['a', { temperature: '0.5' }, /generate: temperature must be a finite number >= 0, got "0.5"/],
      ['a', { temperature: Infinity }, /generate: temperature must be a finite number >= 0, got Infinity/],
      ['a', { temperature: NaN }, /generate: temperature must be a finite number >= 0, got NaN/],
      ['a', { topK: 2.5 }, /generate: topK must be an integer >= 0, got 2.5/],
      ['a', { maxNewTokens: '3' }, /generate: maxNewTokens must be a positive integer, got "3"/],
      ['a', { seed: -1 }, /generate: seed must be an integer in \[0, 2\^32\), got -1/],
      ['a', { stop: 'x' }, /generate: stop must be an array of strings, got "x"/],
      ['a', { stop: ['x', 3] }, /generate: stop must be an array of strings, got an array holding 3/],
      ['a', { signal: {} }, /generate: signal must be an AbortSignal, got an object/],
      ['a', { continue: 'yes' }, /generate: continue must be true or false, got "yes"/],
      ['a', { max_new_tokens: 3 }, /generate: unknown option 'max_new_tokens' \(did you mean 'maxNewTokens'\?\)/],
      ['a', 'fast', /generate: options must be an object, got "fast"/],
      [null, {}, /generate: the prompt must be a string, chat messages or token ids, got null/],
      [undefined, {}, /generate: the prompt must be a string, chat messages or token ids, got undefined/],
      [42, {}, /generate: the prompt must be a string, chat messages or token ids, got 42/],
      [[{ role: 'user' }], {}, /generate: chat message 0 must be \{ role: string, content: string \}/],
      [[{ role: 'user', content: 'hi' }, 'hello'], {}, /generate: chat message 1 must be/],
    ];
    for (const [prompt, opts, message] of cases) {
      await expect(drain(lm.generate(prompt as string, opts as never)), message.source).rejects.toThrow(message);
    }
    await unharmed();
  });

  it('loadModel() options of the wrong kind are named, for every family alike, before anything is read', async () => {
    let read = 0;
    const onProgress = () => read++;
    const cases: [object, RegExp][] = [
      [{ maxContext: -5 }, /loadModel: maxContext must be a positive integer, got -5/],
      [{ maxContext: NaN }, /loadModel: maxContext must be a positive integer, got NaN/],
      [{ maxContext: 1.5 }, /loadModel: maxContext must be a positive integer, got 1.5/],
      [{ prefillChunk: 0 }, /loadModel: prefillChunk must be a positive integer, got 0/],
      [{ weights: 'q3' }, /loadModel: weights must be 'q4' or 'f32', got "q3"/],
      [{ device: {} }, /loadModel: device must be a Gpu/],
      [{ onProgress: 'yes' }, /loadModel: onProgress must be a function, got "yes"/],
      [{ signal: 'stop' }, /loadModel: signal must be an AbortSignal, got "stop"/],
      [{ timeoutMs: 0 }, /loadModel: timeoutMs must be a positive number of milliseconds/],
      [{ max_context: 8 }, /loadModel: unknown option 'max_context' \(did you mean 'maxContext'\?\)/],
    ];
    for (const files of [transformer.files, mamba.files]) {
      for (const [opts, message] of cases) {
        await expect(loadModel(files, { device: gpu(), onProgress, ...opts } as object), message.source).rejects.toThrow(message);
      }
      await expect(loadModel(files, 'q4' as never)).rejects.toThrow(/loadModel: options must be an object, got "q4"/);
    }
    expect(read).toBe(0);
    await unharmed();
  });

  it('a prefillChunk whose workspace cannot fit the device is refused before any weight is read', async () => {
    let read = 0;
    await expect(loadModel(mamba.files, { device: gpu(), prefillChunk: 10 ** 8, onProgress: () => read++ }))
      .rejects.toThrow(/prefillChunk 100000000: the mamba workspace buffer '\w+' \(100000000, \d+\) needs \d+ bytes, over this device's limit of \d+ bytes per binding; pass a smaller prefillChunk/);
    expect(read).toBe(0);
    await unharmed();
  });

  it('model_type and architectures that name Object.prototype members are plainly unsupported', async () => {
    for (const type of ['__proto__', 'constructor', 'toString', 'hasOwnProperty']) {
      await expect(loadModel(withConfig(transformer.files, (c) => { c.model_type = type; }), { device: gpu() })).rejects.toThrow(`config.json: model_type "${type}" is not supported (supported: llama, qwen2, mistral, mixtral, olmoe, qwen2_moe, granitemoe, mamba, retnet)`);
    }
    const odd = withConfig(transformer.files, (c) => { c.architectures = ['constructor']; });
    const fine = await loadModel(odd, { device: gpu(), maxContext: 64 });
    expect(await drain(fine.generate('the cat', { maxNewTokens: 5 }))).toBe(expected);
    fine.dispose();
    await unharmed();
  });

  it('absurd sizes in config.json are refused from the config and the headers, in milliseconds, with the sizes', async () => {
    const cases: [Record<string, Uint8Array>, RegExp][] = [
      [withConfig(transformer.files, (c) => { c.num_hidden_layers = 1e9; }), /config\.json \(1000000000 layers\) implies 9000000002 tensors, but the checkpoint holds 11: the config and the weights disagree/],
      [withConfig(mamba.files, (c) => { c.num_hidden_layers = 1e9; }), /config\.json \(1000000000 layers\) implies \d+ tensors, but the checkpoint holds \d+/],
      [withConfig(transformer.files, (c) => { c.hidden_size = 2 ** 30; c.num_attention_heads = 2 ** 20; c.num_key_value_heads = 2 ** 20; }), /loadModel: a \(1073741824, 1073741824\) layer weight needs \d+ bytes in one binding/],
      [withConfig(transformer.files, (c) => { c.vocab_size = 1e9; }), /wrong shapes: model\.embed_tokens\.weight is \(275, 64\), expected \(1000000000, 64\)/],
      [withConfig(transformer.files, (c) => { c.intermediate_size = 1e7; }), /wrong shapes: model\.layers\.0\.mlp\.gate_proj\.weight is \(96, 64\), expected \(10000000, 64\)/],
    ];
    for (const [files, message] of cases) {
      const t0 = performance.now();
      await expect(loadModel(files, { device: gpu(), maxContext: 64 })).rejects.toThrow(message);
      expect(performance.now() - t0, message.source).toBeLessThan(1000);
    }
    await unharmed();
  });
});
