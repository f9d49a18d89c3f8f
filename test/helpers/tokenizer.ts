// A small byte-level BPE tokenizer.json (the GPT-2 / SmolLM2 / Qwen kind),
// written here so tests need nothing downloaded: 256 byte tokens, a few
// merges, and special tokens at the end of the vocabulary.

/** GPT-2's reversible byte -> printable character map. */
function bytesToUnicode(): string[] {
  const keep: number[] = [];
  for (let b = 33; b <= 126; b++) keep.push(b);
  for (let b = 161; b <= 172; b++) keep.push(b);
  for (let b = 174; b <= 255; b++) keep.push(b);
  const map: string[] = new Array(256);
  let extra = 0;
  for (let b = 0; b < 256; b++) map[b] = String.fromCodePoint(keep.includes(b) ? b : 256 + extra++);
  return map;
}

export const SPECIAL_TOKENS = ['<|endoftext|>', '<|im_start|>', '<|im_end|>'];
const MERGES: [string, string][] = [
  ['Ġ', 't'], ['h', 'e'], ['Ġt', 'he'], ['Ġ', 'a'], ['i', 'n'], ['o', 'u'], ['e', 'r'], ['Ġ', 's'],
  ['r', 'e'], ['o', 'n'], ['Ġ', 'w'], ['a', 'n'], ['Ġ', 'o'], ['l', 'l'], ['Ġ', 'm'], ['e', 'n'],
];

const CHAT_TEMPLATE =
  "{% for message in messages %}{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n' }}{% endfor %}" +
  "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}";

export interface TokenizerFixture {
  tokenizerJson: Record<string, unknown>;
  tokenizerConfig: Record<string, unknown>;
  vocabSize: number;
  eosId: number;
}

export function byteLevelTokenizer(): TokenizerFixture {
  const byteChars = bytesToUnicode();
  const vocab: Record<string, number> = {};
  byteChars.forEach((c, i) => (vocab[c] = i));
  for (const [a, b] of MERGES) vocab[a + b] = Object.keys(vocab).length;
  const firstSpecial = Object.keys(vocab).length;
  const added = SPECIAL_TOKENS.map((content, i) => ({ id: firstSpecial + i, content, single_word: false, lstrip: false, rstrip: false, normalized: false, special: true }));
  const byteLevel = { type: 'ByteLevel', add_prefix_space: false, trim_offsets: true, use_regex: true };
  return {
    tokenizerJson: {
      version: '1.0',
      truncation: null,
      padding: null,
      added_tokens: added,
      normalizer: null,
      pre_tokenizer: byteLevel,
      post_processor: byteLevel,
      decoder: byteLevel,
      model: {
        type: 'BPE', dropout: null, unk_token: null, continuing_subword_prefix: null, end_of_word_suffix: null,
        fuse_unk: false, byte_fallback: false, ignore_merges: false,
        vocab, merges: MERGES.map(([a, b]) => `${a} ${b}`),
      },
    },
    tokenizerConfig: {
      tokenizer_class: 'GPT2Tokenizer',
      bos_token: '<|endoftext|>',
      eos_token: '<|im_end|>',
      chat_template: CHAT_TEMPLATE,
      add_prefix_space: false,
    },
    vocabSize: firstSpecial + SPECIAL_TOKENS.length,
    eosId: firstSpecial + 2,
  };
}
