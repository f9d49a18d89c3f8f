// chat.completions.create() in OpenAI's shape, on the bundled transformer
// (whose chat template writes the messages as a play's speeches): the
// response and chunk objects, usage, finish reasons, stop, seed, options
// refused with their code, and a checkpoint without a chat template.

import { readFileSync, readdirSync } from 'node:fs';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { describeGpu } from '../helpers/gpu';
import { createEngine, type Engine } from '../../src/engine/engine';
import { serveEngine } from '../../src/engine/serve';
import { engineOverPort } from '../../src/engine/worker_engine';
import type { ChatCompletionChunk } from '../../src/engine/openai';

const messages = [
  { role: 'system', content: 'A play.' },
  { role: 'user', content: 'Who art thou?' },
];
/** The template's rendering, one token per character (no BOS: add_bos_token is false). */
const rendered = 'SYSTEM:\nA play.\n\nUSER:\nWho art thou?\n\nASSISTANT:\n';

describeGpu('chat.completions.create', () => {
  let engine: Engine;
  beforeAll(async () => {
    engine = createEngine();
    await engine.load('bundled:transformer', { maxContext: 256 });
  });
  afterAll(() => engine.dispose());

  it('answers in the shape of a chat.completion, with usage counted in tokens', async () => {
    const r = await engine.chat.completions.create({ messages, max_tokens: 12, temperature: 0, model: 'any-name' });
    expect(r).toMatchObject({ object: 'chat.completion', model: 'bundled:transformer', id: expect.stringMatching(/^chatcmpl-[0-9a-f]{24}$/) });
    expect(Math.abs(r.created - Date.now() / 1000)).toBeLessThan(120);
    expect(r.choices).toHaveLength(1);
    const [c] = r.choices;
    expect(c).toMatchObject({ index: 0, finish_reason: 'length', logprobs: null, message: { role: 'assistant' } });
    expect(c.message.content).toHaveLength(12);
    expect(r.usage).toMatchObject({ prompt_tokens: rendered.length, completion_tokens: 12, total_tokens: rendered.length + 12 });
    expect(r.usage.extra.decode_tokens_per_s).toBeGreaterThan(0);
    // The same text as the native API gives for the rendered prompt.
    let native = '';
    for await (const p of engine.generate(rendered, { maxNewTokens: 12 })) native += p;
    expect(c.message.content).toBe(native);
  });

  it('streams chunks: the role first, the text, the finish reason, then usage when asked', async () => {
    const stream = await engine.chat.completions.create({ messages, max_tokens: 12, temperature: 0, stream: true, stream_options: { include_usage: true } });
    const chunks: ChatCompletionChunk[] = [];
    for await (const ch of stream) chunks.push(ch);
    const whole = await engine.chat.completions.create({ messages, max_tokens: 12, temperature: 0 });
    expect(new Set(chunks.map((c) => c.id)).size).toBe(1);
    for (const c of chunks) expect(c.object).toBe('chat.completion.chunk');
    expect(chunks[0].choices[0].delta).toEqual({ role: 'assistant', content: '' });
    const body = chunks.slice(0, -1);
    expect(body.map((c) => c.choices[0].delta.content ?? '').join('')).toBe(whole.choices[0].message.content);
    expect(body.slice(0, -1).every((c) => c.choices[0].finish_reason === null && c.usage === null)).toBe(true);
    expect(body.at(-1)!.choices[0]).toMatchObject({ delta: {}, finish_reason: 'length' });
    const last = chunks.at(-1)!;
    expect(last.choices).toEqual([]);
    expect(last.usage).toMatchObject({ prompt_tokens: rendered.length, completion_tokens: 12, total_tokens: rendered.length + 12 });
    // Without include_usage, no chunk carries a usage field.
    const plain: ChatCompletionChunk[] = [];
    for await (const ch of await engine.chat.completions.create({ messages, max_tokens: 3, stream: true })) plain.push(ch);
    expect(plain.every((c) => !('usage' in c) && c.choices.length === 1)).toBe(true);
  });

  it('stop strings end with finish_reason stop; a seed repeats a sampled answer', async () => {
    const full = (await engine.chat.completions.create({ messages, max_tokens: 16, temperature: 0 })).choices[0].message.content;
    const stop = full.slice(6, 8); // a string the greedy answer holds: the answer ends before its first occurrence
    const r = await engine.chat.completions.create({ messages, max_tokens: 16, temperature: 0, stop: [stop, 'never said'] });
    expect(r.choices[0].finish_reason).toBe('stop');
    expect(r.choices[0].message.content).toBe(full.slice(0, full.indexOf(stop)));
    const sampled = async (seed: number) => (await engine.chat.completions.create({ messages, max_tokens: 10, temperature: 1, top_p: 0.95, seed })).choices[0].message.content;
    const a = await sampled(7);
    expect(await sampled(7)).toBe(a);
    expect(await sampled(8)).not.toBe(a);
  });

  it('refuses what it does not do, with INVALID_ARGUMENT naming the field', async () => {
    const cases: [Record<string, unknown>, RegExp][] = [
      [{ messages, n: 2 }, /n must be 1/],
      [{ messages, tools: [] }, /'tools' is not supported/],
      [{ messages, temperature: 3 }, /temperature must be a number from 0 to 2/],
      [{ messages, max_tokens: 0 }, /max_tokens must be a positive integer/],
      [{ messages, frequency_penalty: 0.5 }, /frequency_penalty is not supported/],
      [{ messages: [] }, /messages must be a non-empty array/],
      [{ messages: [{ role: 'user', content: [{ type: 'image_url', image_url: { url: 'x' } }] }] }, /content must be a string or an array of text parts/],
      [{ messages, stop: [1] }, /stop must be a string or an array of strings/],
    ];
    for (const [body, why] of cases) {
      await expect(engine.chat.completions.create(body as never)).rejects.toMatchObject({ code: 'INVALID_ARGUMENT', message: expect.stringMatching(why) });
    }
  });

  it('a checkpoint without a chat template: NO_CHAT_TEMPLATE from create() itself, streaming or not', async () => {
    const dir = new URL('../../models/transformer/', import.meta.url);
    const files: Record<string, Uint8Array> = {};
    for (const f of readdirSync(dir)) files[f] = readFileSync(new URL(f, dir));
    const cfg = JSON.parse(new TextDecoder().decode(files['tokenizer_config.json']));
    delete cfg.chat_template;
    files['tokenizer_config.json'] = new TextEncoder().encode(JSON.stringify(cfg));
    const bare = createEngine();
    try {
      await bare.load(files, { maxContext: 64 });
      expect(bare.modelId).toBe('files');
      for (const stream of [false, true]) {
        await expect(bare.chat.completions.create({ messages, stream })).rejects.toMatchObject({ code: 'NO_CHAT_TEMPLATE' });
      }
    } finally {
      await bare.dispose();
    }
  });

  it('runs across a message port the same way, and an abort rejects the stream', async () => {
    const ch = new MessageChannel();
    serveEngine(ch.port2 as never);
    const remote = engineOverPort(ch.port1 as never);
    try {
      await remote.load('bundled:transformer', { maxContext: 256 });
      const r = await remote.chat.completions.create({ messages, max_tokens: 12, temperature: 0 });
      const local = await engine.chat.completions.create({ messages, max_tokens: 12, temperature: 0 });
      expect(r.choices[0].message.content).toBe(local.choices[0].message.content);
      expect(r.usage.completion_tokens).toBe(12);
      const ctl = new AbortController();
      const stream = await remote.chat.completions.create({ messages, max_tokens: 200, stream: true }, { signal: ctl.signal });
      const read = (async () => {
        let n = 0;
        for await (const _ of stream) if (++n === 3) ctl.abort();
      })();
      await expect(read).rejects.toMatchObject({ name: 'AbortError', code: 'ABORTED' });
    } finally {
      await remote.dispose();
      ch.port1.close();
      ch.port2.close();
    }
  });
});
