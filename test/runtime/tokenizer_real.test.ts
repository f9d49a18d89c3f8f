// The tokenizer on the files real checkpoints are published with (Llama 3.1,
// Qwen3, Llama 2, Gemma 3, and a Metaspace decoder of Llama 2's kind): decode
// as the reference (transformers 5, Rust tokenizers) does, a stream decoder
// whose pieces always add up to that decode at a bounded cost per token, and
// the checkpoints' own chat templates.

import { describe, expect, it, vi } from 'vitest';
import { Tokenizer } from '../../src/runtime/tokenizer';
import { realTokenizerFiles, type RealTokenizerName } from '../helpers/real_tokenizers';
import { expectStreamEqualsDecode, fuzzText, randomIds } from '../helpers/stream_fuzz';

function build(name: RealTokenizerName, decoder?: Record<string, unknown>): Tokenizer {
  const { tokenizerJson, tokenizerConfig } = realTokenizerFiles(name);
  if (decoder) tokenizerJson.decoder = decoder;
  return new Tokenizer(tokenizerJson, tokenizerConfig);
}

/**
 * Built once each (the 128k-entry Llama 3 vocabulary takes seconds). The two
 * swapped decoders do not invert Llama 2's encoder, so only the published
 * files round-trip text; all must stream exactly their own decode.
 */
const tokenizers: [string, Tokenizer, { roundTrips: boolean }][] = [
  ['Llama 3.1 (byte-level BPE)', build('llama3'), { roundTrips: true }],
  ['Qwen3 (byte-level BPE, NFC)', build('qwen3'), { roundTrips: true }],
  ['Llama 2 (byte fallback, Strip)', build('llama2'), { roundTrips: true }],
  ['Gemma 3 (byte fallback, no Strip)', build('gemma3'), { roundTrips: true }],
  // Metaspace: strips the leading space of the first token only (no byte fallback).
  ['Llama 2 with a Metaspace decoder', build('llama2', { type: 'Metaspace', replacement: '\u2581', prepend_scheme: 'always', split: false }), { roundTrips: false }],
];
const llama3 = tokenizers[0][1];

/** What transformers' clean_up_tokenization_spaces would mangle, had it not been turned off for BPE. */
const CLEAN_UP_VICTIMS = ['a ?? b', 'x !== y', "I 'm here and the rest of it", " 's", ' ?', "s = ' ' * 4 + name", 'wait , what ? yes !', "do n't"];

describe('tokenizer on real published tokenizer files', () => {
  it('Llama 3.1 decodes what clean-up used to mangle exactly, though its config sets clean_up_tokenization_spaces', () => {
    expect(llama3.cleanUpSpaces).toBe(false);
    for (const text of CLEAN_UP_VICTIMS) expect(llama3.decode(llama3.encode(text))).toBe(text);
  });

  it('Llama 3.1 streams those texts in full', () => {
    for (const text of CLEAN_UP_VICTIMS) {
      const pieces = expectStreamEqualsDecode(llama3, llama3.encode(text));
      expect(pieces.join('')).toBe(text);
    }
  });

  describe.each(tokenizers)('%s', (_name, tok, { roundTrips }) => {
    it('streams 300 seeded fuzz texts to exactly their full decode, which is the text where the files invert each other', () => {
      for (let seed = 1; seed <= 300; seed++) {
        const text = fuzzText(seed);
        const ids = tok.encode(text);
        if (roundTrips) expect(tok.decode(ids), `seed ${seed}`).toBe(text);
        const pieces = expectStreamEqualsDecode(tok, ids);
        if (roundTrips) for (const p of pieces) expect(p, `seed ${seed}`).not.toContain('\uFFFD');
      }
    });

    it('streams random id sequences (stray UTF-8 bytes, special and unknown ids) to exactly their full decode', () => {
      for (let seed = 1; seed <= 100; seed++) expectStreamEqualsDecode(tok, randomIds(seed, 40, 160_000));
    });
  });

  it('the stream decodes a bounded number of ids per token, however long the text, and emits as it goes', () => {
    for (const [, tok] of tokenizers.slice(0, 4)) {
      const text = Array.from({ length: 80 }, (_, i) => fuzzText(1000 + i)).join(' ');
      const ids = tok.encode(text);
      const decode = vi.spyOn(tok, 'decode');
      const decoder = tok.streamDecoder();
      const pushed = Array.from(ids, (id) => decoder.push(id)).join('');
      const sizes = decode.mock.calls.map(([window]) => window.length);
      decode.mockRestore();
      expect(ids.length).toBeGreaterThan(1500);
      expect(Math.max(...sizes)).toBeLessThanOrEqual(24);
      expect(sizes.reduce((a, b) => a + b, 0)).toBeLessThanOrEqual(16 * ids.length);
      expect(pushed + decoder.flush()).toBe(tok.decode(ids));
      expect(pushed).toBe(text); // nothing was left for flush()
    }
  });

  it("renders each checkpoint's own chat template as its model card shows, with the template's special tokens as single ids", () => {
    const qwen3 = tokenizers[1][1];
    const gemma3 = tokenizers[3][1];
    const hi = [{ role: 'user', content: 'hi' }];
    expect(llama3.applyChatTemplate(hi)).toBe('<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\nhi<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n');
    expect(qwen3.applyChatTemplate(hi)).toBe('<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n');
    expect(gemma3.applyChatTemplate(hi)).toBe('<bos><start_of_turn>user\nhi<end_of_turn>\n<start_of_turn>model\n');
    // The ids Llama 3 (<|begin_of_text|> 128000, <|start_header_id|> 128006, <|eot_id|> 128009), Qwen (<|im_start|> 151644)
    // and Gemma (<bos> 2, <start_of_turn> 105, <end_of_turn> 106) give these markers, each once, BOS not doubled.
    const count = (ids: Int32Array, id: number) => ids.filter((x) => x === id).length;
    const l = llama3.encodePrompt(hi);
    expect([l[0], count(l, 128000), count(l, 128006), count(l, 128009)]).toEqual([128000, 1, 2, 1]);
    const q = qwen3.encodePrompt(hi);
    expect([q[0], count(q, 151644), count(q, 151645)]).toEqual([151644, 2, 1]);
    const g = gemma3.encodePrompt(hi);
    expect([g[0], count(g, 2), count(g, 105), count(g, 106)]).toEqual([2, 1, 2, 1]);
    // Generation stops on each config's eos_token.
    expect([llama3.eosIds.has(128009), qwen3.eosIds.has(151645), gemma3.eosIds.has(106)]).toEqual([true, true, true]);
    // The template's raise_exception is an Error that says what the template said.
    expect(() => gemma3.applyChatTemplate([{ role: 'assistant', content: 'hi' }])).toThrow(/chat template: Conversation roles must alternate user\/assistant/);
  });

  it('counts the ids it cannot decode, and leaves them out of the text as decode does', () => {
    const hello = Array.from(llama3.encode('Hello'));
    const world = Array.from(llama3.encode(' world', { addSpecialTokens: false }));
    // 128256 is where Llama 3's padded embedding rows begin: no token there.
    const ids = [...hello, 128_256, 200_000, ...world, -1, 2.5];
    const decoder = llama3.streamDecoder();
    const text = ids.map((id) => decoder.push(id)).join('') + decoder.flush();
    expect(text).toBe('Hello world');
    expect(llama3.decode(ids)).toBe('Hello world');
    expect(decoder.undecodable).toBe(4);
    expect(llama3.isDecodable(128_000)).toBe(true); // <|begin_of_text|>: special, skipped by decode on purpose
    expect(llama3.isDecodable(128_255)).toBe(true);
    expect(llama3.isDecodable(128_256)).toBe(false);
    expect(llama3.isDecodable(-1)).toBe(false);
    expect(llama3.isDecodable(2.5)).toBe(false);
  });
});
