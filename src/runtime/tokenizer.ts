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

export interface ChatMessage { role: 'system' | 'user' | 'assistant' | string; content: string }

type Json = Record<string, unknown>;

export class Tokenizer {
  private readonly tok: HfTokenizer;
  private readonly template: Template | null;
  /** Token ids that end generation: the model config's eos ids plus the tokenizer's eos token. */
  readonly eosIds: ReadonlySet<number>;
  readonly bosToken: string | null;
  readonly eosToken: string | null;

  constructor(tokenizerJson: Json, tokenizerConfig: Json = {}, modelEosIds: readonly number[] = []) {
    try {
      this.tok = new HfTokenizer(tokenizerJson, tokenizerConfig);
    } catch (e) {
      throw new Error(`tokenizer.json: could not build the tokenizer (${(e as Error).message})`);
    }
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

  decode(ids: ArrayLike<number>, opts: { skipSpecialTokens?: boolean } = {}): string {
    if (ids.length === 0) return '';
    return this.tok.decode(Array.from(ids), { skip_special_tokens: opts.skipSpecialTokens ?? true });
  }

  /** Renders messages with the checkpoint's chat template, ending with the assistant prompt. */
  applyChatTemplate(messages: readonly ChatMessage[]): string {
    if (!this.template) throw new Error('applyChatTemplate: this checkpoint has no chat_template in tokenizer_config.json; pass a plain string prompt');
    return this.template.render({
      messages: messages.map((m) => ({ ...m })),
      add_generation_prompt: true,
      bos_token: this.bosToken ?? '',
      eos_token: this.eosToken ?? '',
    });
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

/**
 * Incremental detokenization. Decoding ids one by one would split multi-byte
 * characters (byte-level BPE spreads an emoji over several tokens) and lose
 * the spaces that SentencePiece-style decoders strip from a first token. So
 * each step decodes a short window that starts one emitted piece back, and
 * emits the text past what that prefix decodes to, holding it back while it
 * ends in U+FFFD (an incomplete UTF-8 sequence). The same scheme as Hugging
 * Face text-generation-inference's decode_token; the cost per token is the
 * window, not the whole text so far.
 */
export class StreamDecoder {
  private ids: number[] = [];
  private prefixOffset = 0;
  private readOffset = 0;
  private emitted = '';
  constructor(private readonly tokenizer: Tokenizer) {}

  /** Adds one token; returns the new text it completes ('' if it must wait for more). */
  push(id: number): string {
    this.ids.push(id);
    const prefix = this.tokenizer.decode(this.ids.slice(this.prefixOffset, this.readOffset));
    const text = this.tokenizer.decode(this.ids.slice(this.prefixOffset));
    if (text.length <= prefix.length || text.endsWith('\uFFFD') || !text.startsWith(prefix)) return '';
    const piece = text.slice(prefix.length);
    this.prefixOffset = this.readOffset;
    this.readOffset = this.ids.length;
    this.emitted += piece;
    return piece;
  }

  /** Whatever is still held back at the end (an incomplete character is emitted as U+FFFD). */
  flush(): string {
    if (this.readOffset === this.ids.length) return '';
    const prefix = this.tokenizer.decode(this.ids.slice(this.prefixOffset, this.readOffset));
    const text = this.tokenizer.decode(this.ids.slice(this.prefixOffset));
    const piece = text.startsWith(prefix) ? text.slice(prefix.length) : '';
    this.prefixOffset = this.readOffset = this.ids.length;
    this.emitted += piece;
    return piece;
  }

  /** All text emitted so far. */
  get text(): string {
    return this.emitted;
  }
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
