// Seeded inputs for the stream decoder's invariant (its pieces add up to the
// full decode), and the check itself.

import { expect } from 'vitest';
import type { Tokenizer } from '../../src/runtime/tokenizer';
import { rng } from './random';

/** Pieces of text where decoders, clean-up and byte splits go wrong. */
const FRAGMENTS = [
  // quotes and contractions, punctuation after spaces (what clean-up rewrites)
  "I 'm here", " 's", " ?", " !", " .", " ,", " n't", " 've", " 're", " ' ", "'", '"', '« »', '“quoted”', "it's", "don't",
  'a ?? b', 'x !== y', "s = ' ' * 4 + name", 'wait ...', 'so - so', '(a , b)',
  // CJK, accents, other scripts
  '漢字', '日本語のテキスト。', '中文，标点。', '한국어 문장', 'café', 'naïve', 'Ærøskøbing', 'Привет', 'مرحبا',
  // emoji: ZWJ sequences, skin tones, flags, variation selectors
  '🦙', '👩🏽‍💻', '👨‍👩‍👧‍👦', '🏳️‍🌈', '👍🏿', '❤️', '🇫🇷🇯🇵', '1️⃣',
  // code
  'const f = (a, b) => a ?? b;', 'if (x !== y) { return; }', 'def f(x):\n    return x', '<div class="a">', '{"k": [1, 2]}',
  '#include <stdio.h>', '    indented', 'x += 1 # comment',
  // plain words and numbers
  'hello', 'world', 'The', 'token', '123', '3.14', '—', '–',
];
const JOINERS = ['', ' ', ' ', ' ', '  ', '\n', '\n\n', '\t'];

/** A text of 1 to 10 fragments; some start with spaces or a newline. */
export function fuzzText(seed: number): string {
  const u = rng(seed);
  const pick = <T>(a: readonly T[]): T => a[Math.floor(u() * a.length)];
  let text = u() < 0.25 ? pick([' ', '  ', '\n', ' \n']) : '';
  const n = 1 + Math.floor(u() * 10);
  for (let i = 0; i < n; i++) text += (i > 0 ? pick(JOINERS) : '') + pick(FRAGMENTS);
  return text;
}

/**
 * n ids, half from [0, 256) (byte tokens and short pieces in the usual
 * vocabularies, so split and stray UTF-8 sequences), half from [0, top).
 */
export function randomIds(seed: number, n: number, top: number): number[] {
  const u = rng(seed);
  return Array.from({ length: n }, () => Math.floor(u() * (u() < 0.5 ? 256 : top)));
}

/** Pushes every id and flushes; expects the pieces to add up to decode(ids) and returns them. */
export function expectStreamEqualsDecode(tok: Tokenizer, ids: ArrayLike<number>): string[] {
  const decoder = tok.streamDecoder();
  const pieces = Array.from(ids, (id) => decoder.push(id));
  pieces.push(decoder.flush());
  const shown = Array.from(ids).slice(0, 64).join(', ') + (ids.length > 64 ? ', ...' : '');
  expect(pieces.join(''), `ids [${shown}]`).toBe(tok.decode(ids));
  return pieces;
}
