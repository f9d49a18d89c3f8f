import { describe, expect, it } from 'vitest';
import { Tokenizer } from '../../src/runtime/tokenizer';
import { byteLevelTokenizer } from '../helpers/tokenizer';

describe('tokenizer (byte-level BPE fixture)', () => {
  const fx = byteLevelTokenizer();
  const tok = new Tokenizer(fx.tokenizerJson, fx.tokenizerConfig, [fx.eosId]);

  it('round-trips text, multi-byte characters included, and applies merges', () => {
    for (const text of ['the cat sat on the mat', 'héllo wörld', 'emoji 🦙 and 漢字', ' leading space', 'a\nb\tc']) {
      const ids = tok.encode(text);
      expect(tok.decode(ids)).toBe(text);
    }
    // 'Ġthe' is one merged token: ' the' encodes to a single id.
    expect(tok.encode(' the').length).toBe(1);
    expect(tok.encode('🦙').length).toBe(4); // four UTF-8 bytes, no merges
  });

  it('streams text pieces that never split a character', () => {
    const text = 'ok 🦙 café 漢字!';
    const ids = tok.encode(text);
    const dec = tok.streamDecoder();
    const pieces = Array.from(ids, (id) => dec.push(id));
    pieces.push(dec.flush());
    expect(pieces.join('')).toBe(text);
    for (const p of pieces) expect(p).not.toContain('\uFFFD');
    // The four byte tokens of the llama emoji: three wait, the fourth completes it.
    expect(pieces.filter((p) => p === '').length).toBeGreaterThanOrEqual(3);
  });

  it('renders the chat template and knows its end-of-sequence ids', () => {
    const prompt = tok.applyChatTemplate([{ role: 'user', content: 'hi' }]);
    expect(prompt).toBe('<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n');
    const ids = tok.encodePrompt([{ role: 'user', content: 'hi' }]);
    expect(ids[0]).toBe(fx.vocabSize - 2); // <|im_start|> is one special token
    expect(tok.eosIds.has(fx.eosId)).toBe(true);
  });

  it('a prompt as chat messages without a template is a clear error', () => {
    const bare = new Tokenizer(fx.tokenizerJson, {});
    expect(() => bare.encodePrompt([{ role: 'user', content: 'hi' }])).toThrow(/no chat_template in tokenizer_config.json/);
  });

  it('a broken tokenizer.json is reported as such', () => {
    expect(() => new Tokenizer({ model: { type: 'Nonsense' } }, {})).toThrow(/tokenizer.json/);
  });
});
