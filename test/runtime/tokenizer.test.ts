import { describe, expect, it } from 'vitest';
import { Tokenizer } from '../../src/runtime/tokenizer';
import { expectStreamEqualsDecode, randomIds } from '../helpers/stream_fuzz';
import { byteLevelTokenizer } from '../helpers/tokenizer';
import { CLEAN_UP_PIECES, wordPieceTokenizer } from '../helpers/wordpiece_tokenizer';

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

  it('streams random id sequences (stray UTF-8 bytes, special tokens) to exactly their full decode', () => {
    for (let seed = 1; seed <= 200; seed++) expectStreamEqualsDecode(tok, randomIds(seed, 30, fx.vocabSize));
  });

  it('leaves out ids with no token, counts them in the stream, and knows special tokens are decodable', () => {
    const ids = [...tok.encode('the cat'), fx.vocabSize, 1e6, -3];
    const decoder = tok.streamDecoder();
    const text = ids.map((id) => decoder.push(id)).join('') + decoder.flush();
    expect(text).toBe('the cat');
    expect(tok.decode(ids)).toBe('the cat');
    expect(decoder.undecodable).toBe(3);
    expect(tok.isDecodable(fx.eosId)).toBe(true);
    expect(tok.isDecodable(fx.vocabSize)).toBe(false);
  });

  it('does not clean up tokenization spaces, even when the config asks: transformers 5 skips it for BPE', () => {
    const cleaned = new Tokenizer(fx.tokenizerJson, { ...fx.tokenizerConfig, clean_up_tokenization_spaces: true });
    expect(cleaned.cleanUpSpaces).toBe(false);
    for (const text of ['a ?? b', "I 'm", 'x !== y', " 's ,"]) expect(cleaned.decode(cleaned.encode(text))).toBe(text);
  });
});

describe('tokenizer (WordPiece fixture: clean-up where transformers 5 applies it)', () => {
  const ids = (tok: Tokenizer, tokens: string[]) => tokens.map((t) => {
    const id = tok.encode(t, { addSpecialTokens: false })[0];
    expect(id).toBeDefined();
    return id;
  });

  it('cleans up spaces when the config sets clean_up_tokenization_spaces, and only then', () => {
    const on = wordPieceTokenizer(true), absent = wordPieceTokenizer(undefined), off = wordPieceTokenizer(false);
    const tokOn = new Tokenizer(on.tokenizerJson, on.tokenizerConfig);
    const seq = ids(tokOn, ['I', "'", 'm', 'do', 'n', "'", 't', 'go', '?']);
    expect(tokOn.cleanUpSpaces).toBe(true);
    expect(tokOn.decode(seq)).toBe("I'm don't go?");
    for (const fx of [absent, off]) {
      const tok = new Tokenizer(fx.tokenizerJson, fx.tokenizerConfig);
      expect(tok.cleanUpSpaces).toBe(false);
      expect(tok.decode(seq)).toBe("I ' m do n ' t go?"); // the WordPiece decoder's own cleanup, per token
    }
  });

  it('streams random id sequences to exactly their cleaned-up full decode, holding back only what clean-up may still change', () => {
    const fx = wordPieceTokenizer(true);
    const tok = new Tokenizer(fx.tokenizerJson, fx.tokenizerConfig);
    const decoder = tok.streamDecoder();
    const pieces = Array.from(ids(tok, ['I', "'", 'm', 'go', 'do', 'n', "'", 't', 'go', '!']), (id) => decoder.push(id));
    expect(pieces).toEqual(['I', '', "'m", ' go', ' do', '', '', "n't", ' go', '!']);
    expect(decoder.flush()).toBe('');
    for (let seed = 1; seed <= 300; seed++) {
      // Mostly the contraction and punctuation pieces the clean-up rewrites.
      const seq = randomIds(seed, 40, fx.vocabSize).map((id) => (id < 256 ? 3 + (id % CLEAN_UP_PIECES) : id));
      expectStreamEqualsDecode(tok, seq);
    }
  });
});

