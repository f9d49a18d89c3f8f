// A small WordPiece tokenizer.json (the BERT kind): the one kind of model
// that transformers 5 still applies clean_up_tokenization_spaces to, so the
// tests can see the clean-up done, and streamed, where the reference does it.

/**
 * The pieces of clean-up's patterns first (ids 3 to 3 + CLEAN_UP_PIECES - 1),
 * joined with a space or not ("##"), and ' ', which decodes to two spaces.
 */
const WORDS = ['n', "'", 't', 'm', 's', 've', 're', '?', '.', ',', '!', ' ', "##'", '##t', '##n', '##ve', 'I', 'do', 'a', 'b', 'go', '##ing', '##s', 'the', 'cat', '-', '(', ')', '"', '漢', '字'];
export const CLEAN_UP_PIECES = 16;
export const WORDPIECE_SPECIALS = ['[UNK]', '[CLS]', '[SEP]'];

export function wordPieceTokenizer(cleanUp: boolean | undefined): { tokenizerJson: Record<string, unknown>; tokenizerConfig: Record<string, unknown>; vocabSize: number } {
  const vocab: Record<string, number> = {};
  for (const token of [...WORDPIECE_SPECIALS, ...WORDS]) vocab[token] = Object.keys(vocab).length;
  const added = WORDPIECE_SPECIALS.map((content, id) => ({ id, content, single_word: false, lstrip: false, rstrip: false, normalized: false, special: true }));
  const tokenizerConfig: Record<string, unknown> = { tokenizer_class: 'BertTokenizer', unk_token: '[UNK]' };
  if (cleanUp !== undefined) tokenizerConfig.clean_up_tokenization_spaces = cleanUp;
  return {
    tokenizerJson: {
      version: '1.0',
      truncation: null,
      padding: null,
      added_tokens: added,
      normalizer: null,
      pre_tokenizer: { type: 'BertPreTokenizer' },
      post_processor: null,
      decoder: { type: 'WordPiece', prefix: '##', cleanup: true },
      model: { type: 'WordPiece', unk_token: '[UNK]', continuing_subword_prefix: '##', max_input_chars_per_word: 100, vocab },
    },
    tokenizerConfig,
    vocabSize: Object.keys(vocab).length,
  };
}
