// Text <-> token ids from a checkpoint's own tokenizer.json, fully offline.
//
// Tokenization is done by @huggingface/tokenizers (Tokenizers.js): a small,
// dependency-free, maintained port of the Rust `tokenizers` pipeline that
// takes the JSON objects directly. We chose it over the tokenizer inside
// @huggingface/transformers, which would bring a whole second inference
// runtime (and onnxruntime) along for the same tokenizer code.
// Chat templates (Jinja, in tokenizer_config.json) go through @huggingface/jinja.

import { Tokenizer as HfTokenizer } from '@huggingface/tokenizers';
import { Template } from '@huggingface/jinja';
import { TesseraError } from './errors';

export interface ChatMessage { role: 'system' | 'user' | 'assistant' | string; content: string }

type Json = Record<string, unknown>;

export class Tokenizer {
  private readonly tok: HfTokenizer;
  private readonly template: Template | null;
  /** Token ids that end generation: the model config's eos ids plus the tokenizer's eos token. */
  readonly eosIds: ReadonlySet<number>;
  readonly bosToken: string | null;
  readonly eosToken: string | null;
  /** Whether decode applies transformers' clean_up_tokenization (" 's" -> "'s", " ?" -> "?"); see the constructor. */
  readonly cleanUpSpaces: boolean;
  /** Contents of the special tokens, which decode leaves out. */
  private readonly specials: ReadonlySet<string>;

  constructor(tokenizerJson: Json, tokenizerConfig: Json = {}, modelEosIds: readonly number[] = []) {
    try {
      this.tok = new HfTokenizer(tokenizerJson, tokenizerConfig);
    } catch (e) {
      throw new Error(`tokenizer.json: could not build the tokenizer (${(e as Error).message})`);
    }
    // clean_up_tokenization_spaces as transformers 5 applies it: off when the
    // key is absent (tokenization_utils_base.py), and skipped for BPE models
    // even when on, as "destructive for BPE" (tokenization_utils_tokenizers.py,
    // TokenizersBackend._decode): Llama 3's config sets it, yet `a ?? b` must
    // not come back as `a?? b`. The Rust tokenizers' decode has no such step.
    // Tokenizers.js would default it to on: decode turns its own off and
    // applies cleanUpTokenization below (the same replacements) itself.
    this.cleanUpSpaces = tokenizerConfig.clean_up_tokenization_spaces === true && !isBpeModel(tokenizerJson.model);
    this.specials = new Set([
      ...[...this.tok.get_added_tokens_decoder().values()].filter((t) => t.special).map((t) => t.content),
      ...(Array.isArray(tokenizerConfig.additional_special_tokens) ? tokenizerConfig.additional_special_tokens : []).filter((t): t is string => typeof t === 'string'),
    ]);
    this.bosToken = tokenText(tokenizerConfig.bos_token);
    this.eosToken = tokenText(tokenizerConfig.eos_token);
    const eos = new Set(modelEosIds);
    if (this.eosToken) {
      const id = this.tok.token_to_id(this.eosToken);
      if (id !== undefined) eos.add(id);
    }
    this.eosIds = eos;
    const chat = pickChatTemplate(tokenizerConfig.chat_template);
    try {
      this.template = chat ? new Template(chat) : null;
    } catch (e) {
      throw new Error(`tokenizer_config.json: chat_template does not parse (${(e as Error).message})`);
    }
  }

  get hasChatTemplate(): boolean {
    return this.template !== null;
  }

  /** Token ids of `text`, with the tokenizer's special tokens (BOS etc.) unless told otherwise. */
  encode(text: string, opts: { addSpecialTokens?: boolean } = {}): Int32Array {
    return Int32Array.from(this.tok.encode(text, { add_special_tokens: opts.addSpecialTokens ?? true }).ids);
  }

  /**
   * Text of `ids`, without special tokens unless told otherwise. Ids with no
   * token are left out, as the Rust tokenizers' decode does (Tokenizers.js
   * would put the unk token, or nothing usable, in their place).
   */
  decode(ids: ArrayLike<number>, opts: { skipSpecialTokens?: boolean; cleanUpSpaces?: boolean } = {}): string {
    const known = Array.from(ids).filter((id) => this.isDecodable(id));
    if (known.length === 0) return '';
    const text = this.tok.decode(known, { skip_special_tokens: opts.skipSpecialTokens ?? true, clean_up_tokenization_spaces: false });
    return opts.cleanUpSpaces ?? this.cleanUpSpaces ? cleanUpTokenization(text) : text;
  }

  /** Whether `id` has a token, in the vocabulary or the added tokens (special ones included). */
  isDecodable(id: number): boolean {
    return Number.isInteger(id) && id >= 0 && this.tok.id_to_token(id) !== undefined;
  }

  /** Whether `id` is a special token (BOS, EOS, chat markers), which decode leaves out by default. */
  isSpecial(id: number): boolean {
    const token = Number.isInteger(id) && id >= 0 ? this.tok.id_to_token(id) : undefined;
    return token !== undefined && this.specials.has(token);
  }

  /** Renders messages with the checkpoint's chat template, ending with the assistant prompt. */
  applyChatTemplate(messages: readonly ChatMessage[]): string {
    if (!this.template) throw new TesseraError('NO_CHAT_TEMPLATE', 'applyChatTemplate: this checkpoint has no chat_template in tokenizer_config.json; pass a plain string prompt');
    try {
      // @huggingface/jinja gives templates transformers' raise_exception (Gemma's raises on
      // roles out of turn) and strftime_now (Llama 3.1's writes today's date).
      return this.template.render({
        messages: messages.map((m) => ({ ...m })),
        add_generation_prompt: true,
        bos_token: this.bosToken ?? '',
        eos_token: this.eosToken ?? '',
      });
    } catch (e) {
      throw new Error(`chat template: ${(e as Error).message}`);
    }
  }

  /** Token ids of a prompt: plain text, or chat messages through the template (which writes its own special tokens). */
  encodePrompt(prompt: string | readonly ChatMessage[]): Int32Array {
    if (typeof prompt === 'string') return this.encode(prompt);
    return this.encode(this.applyChatTemplate(prompt), { addSpecialTokens: false });
  }

  /** A decoder for streaming: feed ids one at a time, get text pieces that never split a character. */
  streamDecoder(): StreamDecoder {
    return new StreamDecoder(this);
  }
}

/** Ids a window keeps when it slides. */
const CONTEXT = 4;
/** Window length at which it tries to slide (so each push decodes about this many ids). */
const SLIDE_AT = 2 * CONTEXT;

/**
 * Incremental detokenization: everything push() returns, then flush(), adds
 * up to tokenizer.decode(all ids) exactly, whatever the decoder (but CTC's,
 * a speech-model one that cleans up inside).
 *
 * Decoding ids one by one is wrong: byte-level BPE spreads a character over
 * several tokens, SentencePiece decoders strip the leading space of whatever
 * comes first, clean-up rewrites " 's" to "'s" across tokens. So each push
 * decodes a short window of the latest ids (before clean-up) and emits its
 * text past what was already emitted, but for a trailing U+FFFD: it may be
 * an incomplete UTF-8 sequence, while any earlier one is final. Text before
 * it never changes, so the emitted text is always a prefix of the decode.
 *
 * The window then drops its oldest ids, keeping CONTEXT, once decoding the
 * shorter window gives the same text but for leading spaces that a window
 * start strips; a split inside a character shows as a mismatch, and it
 * retries on the next push. So the cost per token stays bounded instead of
 * growing with the text.
 *
 * Clean-up, where on, runs last, on stretches cut where no pattern can span
 * the cut (see safeCut): the same text as cleaning the whole.
 */
export class StreamDecoder {
  /** The window: the latest ids, special tokens left out (decode skips them anyway). */
  private ids: number[] = [];
  /** decode(ids), before clean-up. */
  private windowText = '';
  /** How many characters of windowText have been emitted (to clean-up, where on). */
  private sent = 0;
  /** Text waiting for a safe cut before clean-up. */
  private uncleaned = '';
  private emitted = '';
  private skipped = 0;

  constructor(private readonly tokenizer: Tokenizer) {}

  /** Ids pushed that the tokenizer has no token for; they add no text (decode leaves them out too). */
  get undecodable(): number {
    return this.skipped;
  }

  /** Adds one token; returns the new text it settles ('' if it must wait for more). */
  push(id: number): string {
    if (!this.tokenizer.isDecodable(id)) {
      this.skipped++;
      return '';
    }
    if (this.tokenizer.isSpecial(id)) return '';
    this.ids.push(id);
    this.windowText = this.tokenizer.decode(this.ids, { cleanUpSpaces: false });
    const end = this.windowText.endsWith('\uFFFD') ? this.windowText.length - 1 : this.windowText.length;
    // sent never passes the text: were a decoder ever to rewrite text already
    // emitted, streaming would carry on from there instead of stalling.
    this.sent = Math.min(this.sent, this.windowText.length);
    const piece = end > this.sent ? this.windowText.slice(this.sent, end) : '';
    this.sent += piece.length;
    if (this.ids.length >= SLIDE_AT) this.slide();
    return this.out(piece, false);
  }

  /** Whatever is still held back at the end (an incomplete character comes out as U+FFFD, as in decode). */
  flush(): string {
    const piece = this.windowText.slice(this.sent);
    this.sent = this.windowText.length;
    return this.out(piece, true);
  }

  /** All text emitted so far. */
  get text(): string {
    return this.emitted;
  }

  /** Emits settled text, through clean-up where the tokenizer applies it. */
  private out(piece: string, final: boolean): string {
    let text = piece;
    if (this.tokenizer.cleanUpSpaces) {
      this.uncleaned += piece;
      const cut = final ? this.uncleaned.length : safeCut(this.uncleaned);
      text = cleanUpTokenization(this.uncleaned.slice(0, cut));
      this.uncleaned = this.uncleaned.slice(cut);
    }
    this.emitted += text;
    return text;
  }

  /**
   * Drops the oldest ids when the last CONTEXT ids, decoded alone, give the
   * window's text minus its head (a whitespace gap between the two is what a
   * window start strips: Metaspace, Strip, WordPiece). What is held back
   * must lie inside them after at least one emitted character, so that what
   * a window start does falls on text already emitted.
   */
  private slide(): void {
    const cut = this.ids.length - CONTEXT;
    const head = this.tokenizer.decode(this.ids.slice(0, cut), { cleanUpSpaces: false });
    const tail = this.tokenizer.decode(this.ids.slice(cut), { cleanUpSpaces: false });
    const text = this.windowText;
    const held = text.length - this.sent;
    const gap = text.length - head.length - tail.length;
    if (tail.length <= held || gap < 0 || !text.startsWith(head) || !text.endsWith(tail)) return;
    if (text.slice(head.length, head.length + gap).trim() !== '') return;
    this.ids = this.ids.slice(cut);
    this.windowText = tail;
    this.sent = tail.length - held;
  }
}

/**
 * transformers' clean_up_tokenization (tokenization_utils_base.py), the same
 * replacements in the same order as Tokenizers.js's. Each deletes spaces.
 */
export function cleanUpTokenization(text: string): string {
  return text
    .replaceAll(' .', '.').replaceAll(' ?', '?').replaceAll(' !', '!').replaceAll(' ,', ',')
    .replaceAll(" ' ", "'").replaceAll(" n't", "n't").replaceAll(" 'm", "'m").replaceAll(" 's", "'s")
    .replaceAll(" 've", "'ve").replaceAll(" 're", "'re");
}

/**
 * What a replacement of cleanUpTokenization can match, as text before it
 * ran: its patterns, and those that " ' " -> "'" can join (" n ' t" becomes
 * " n't"). Each starts with a space.
 */
const CLEAN_UP_SPANS = [' .', ' ?', ' !', ' ,', " ' ", " n't", " 'm", " 's", " 've", " 're", " n ' t", "  ' m", "  ' s", "  ' ve", "  ' re"];

/**
 * The last place in the last 8 characters of `text` where it can be cut
 * so that cleaning each side apart equals cleaning the whole, whatever
 * follows: not after a space (" ' " needs it, " ." may take it), nor after a
 * space that starts an unfinished CLEAN_UP_SPANS entry. 0 if there is none.
 */
function safeCut(text: string): number {
  for (let k = text.length; k > 0 && k >= text.length - 8; k--) {
    if (text[k - 1] === ' ') continue;
    let safe = true;
    for (let p = Math.max(0, k - 5); p < k && safe; p++) {
      const head = text.slice(p, k);
      if (text[p] === ' ' && CLEAN_UP_SPANS.some((s) => s.length > head.length && s.startsWith(head))) safe = false;
    }
    if (safe) return k;
  }
  return 0;
}

function tokenText(v: unknown): string | null {
  if (typeof v === 'string') return v;
  if (v && typeof v === 'object' && typeof (v as Json).content === 'string') return (v as Json).content as string;
  return null;
}

function pickChatTemplate(v: unknown): string | null {
  if (typeof v === 'string') return v;
  if (Array.isArray(v)) {
    const def = v.find((t) => t && t.name === 'default') ?? v[0];
    return typeof def?.template === 'string' ? def.template : null;
  }
  return null;
}

/** Whether a tokenizer.json model is BPE (older files leave out `type`; a BPE one has merges). */
function isBpeModel(model: unknown): boolean {
  if (!model || typeof model !== 'object') return false;
  const m = model as Json;
  return m.type === 'BPE' || (m.type === undefined && 'merges' in m);
}
