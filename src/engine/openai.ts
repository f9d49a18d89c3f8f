// chat.completions.create() in the shape of OpenAI's Chat Completions API
// (and web-llm's, which follows it): the request's fields, the response and
// its streamed chunks, finish reasons and usage, so a web app written for
// that API runs on an engine by changing its import. Each call is
// stateless, as that API is: the messages are rendered with the checkpoint's
// chat template and generated from an empty state. One model per engine: the
// request's `model` is accepted and not checked; responses name the loaded one.

import { TesseraError, describeValue } from '../runtime/errors';
import type { ChatMessage } from '../runtime/tokenizer';
import type { GenerationStats } from '../lm';
import type { GenerateOptions } from '../options';

export interface ChatCompletionMessageParam {
  role: 'system' | 'developer' | 'user' | 'assistant' | string;
  /** Text, or text parts ({ type: 'text', text }) joined in order. */
  content: string | readonly { type: 'text'; text: string }[];
  name?: string;
}

export interface ChatCompletionRequest {
  messages: readonly ChatCompletionMessageParam[];
  /** Accepted for compatibility; the engine answers with the model it has loaded. */
  model?: string | null;
  stream?: boolean | null;
  /** include_usage: a last chunk with no choices carries the usage. */
  stream_options?: { include_usage?: boolean } | null;
  /** Most tokens to generate (default DEFAULT_MAX_TOKENS; a full context also ends with finish_reason 'length'). */
  max_tokens?: number | null;
  max_completion_tokens?: number | null;
  /** 0 to 2, default 1 (0 decodes greedily). */
  temperature?: number | null;
  top_p?: number | null;
  seed?: number | null;
  stop?: string | readonly string[] | null;
  /** Only 1. */
  n?: number | null;
  /** Only 0 (no penalties are applied). */
  frequency_penalty?: number | null;
  presence_penalty?: number | null;
  /** Accepted and ignored, as by OpenAI. */
  user?: string;
}

export interface ChatCompletionUsage {
  prompt_tokens: number;
  completion_tokens: number;
  total_tokens: number;
  /** web-llm's figures beside OpenAI's counts. */
  extra: { e2e_latency_s: number; time_to_first_token_s: number; prefill_tokens_per_s: number; decode_tokens_per_s: number };
}

export type FinishReason = 'stop' | 'length';

export interface ChatCompletion {
  id: string;
  object: 'chat.completion';
  created: number;
  model: string;
  choices: { index: 0; message: { role: 'assistant'; content: string }; finish_reason: FinishReason; logprobs: null }[];
  usage: ChatCompletionUsage;
}

export interface ChatCompletionChunk {
  id: string;
  object: 'chat.completion.chunk';
  created: number;
  model: string;
  choices: { index: 0; delta: { role?: 'assistant'; content?: string }; finish_reason: FinishReason | null; logprobs: null }[];
  /** With stream_options.include_usage: null on every chunk but the last, which has no choices. */
  usage?: ChatCompletionUsage | null;
}

export interface ChatRequestOptions {
  /** Stops the generation: create() or the stream's iteration rejects with an AbortError. */
  signal?: AbortSignal;
}

export interface ChatCompletions {
  create(body: ChatCompletionRequest & { stream: true }, options?: ChatRequestOptions): Promise<AsyncIterable<ChatCompletionChunk>>;
  create(body: ChatCompletionRequest & { stream?: false | null }, options?: ChatRequestOptions): Promise<ChatCompletion>;
  create(body: ChatCompletionRequest, options?: ChatRequestOptions): Promise<ChatCompletion | AsyncIterable<ChatCompletionChunk>>;
}

/** What the chat API needs of an engine. */
export interface ChatBackend {
  readonly modelId: string | null;
  generate(prompt: readonly ChatMessage[], opts: GenerateOptions): AsyncGenerator<string, void, undefined>;
  stats(): Promise<GenerationStats | null>;
}

/** max_tokens when the request gives none. */
export const DEFAULT_MAX_TOKENS = 4096;

const KNOWN = ['messages', 'model', 'stream', 'stream_options', 'max_tokens', 'max_completion_tokens', 'temperature', 'top_p', 'seed', 'stop', 'n', 'frequency_penalty', 'presence_penalty', 'user'];

const bad = (message: string) => new TesseraError('INVALID_ARGUMENT', `chat.completions.create: ${message}`);

/** The request as generate() takes it: chat messages and options. */
function toGenerate(body: ChatCompletionRequest): { messages: ChatMessage[]; opts: GenerateOptions; stream: boolean; includeUsage: boolean } {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) throw bad(`the request must be an object, got ${describeValue(body)}`);
  for (const key of Object.keys(body)) if (!KNOWN.includes(key)) throw bad(`'${key}' is not supported (supported: ${KNOWN.join(', ')})`);
  const given = <T>(v: T | null | undefined): v is T => v !== undefined && v !== null;
  if (!Array.isArray(body.messages) || body.messages.length === 0) throw bad('messages must be a non-empty array of { role, content }');
  const messages = body.messages.map((m, i): ChatMessage => {
    if (typeof m !== 'object' || m === null || typeof m.role !== 'string') throw bad(`messages[${i}] must be { role: string, content }`);
    let content: string;
    if (typeof m.content === 'string') content = m.content;
    else if (Array.isArray(m.content) && m.content.every((p: { type?: unknown; text?: unknown }) => p?.type === 'text' && typeof p.text === 'string')) {
      content = (m.content as { text: string }[]).map((p) => p.text).join('');
    }
    else throw bad(`messages[${i}].content must be a string or an array of text parts ({ type: 'text', text }); other parts are not supported`);
    // 'developer' is OpenAI's newer name for 'system'; chat templates know the latter.
    return { role: m.role === 'developer' ? 'system' : m.role, content };
  });
  if (given(body.n) && body.n !== 1) throw bad(`n must be 1, got ${describeValue(body.n)}`);
  for (const key of ['frequency_penalty', 'presence_penalty'] as const) {
    if (given(body[key]) && body[key] !== 0) throw bad(`${key} is not supported (only 0), got ${describeValue(body[key])}`);
  }
  if (given(body.max_tokens) && given(body.max_completion_tokens) && body.max_tokens !== body.max_completion_tokens) throw bad('max_tokens and max_completion_tokens disagree');
  const maxTokens = body.max_completion_tokens ?? body.max_tokens ?? DEFAULT_MAX_TOKENS;
  if (!(Number.isInteger(maxTokens) && maxTokens >= 1)) throw bad(`max_tokens must be a positive integer, got ${describeValue(maxTokens)}`);
  const temperature = body.temperature ?? 1;
  if (!(typeof temperature === 'number' && temperature >= 0 && temperature <= 2)) throw bad(`temperature must be a number from 0 to 2, got ${describeValue(temperature)}`);
  const topP = body.top_p ?? 1;
  if (!(typeof topP === 'number' && topP > 0 && topP <= 1)) throw bad(`top_p must be a number in (0, 1], got ${describeValue(topP)}`);
  if (given(body.seed) && !(Number.isInteger(body.seed) && body.seed >= 0 && body.seed < 2 ** 32)) throw bad(`seed must be an integer in [0, 2^32), got ${describeValue(body.seed)}`);
  const stop = !given(body.stop) ? [] : typeof body.stop === 'string' ? [body.stop] : body.stop;
  if (!Array.isArray(stop) || !stop.every((s) => typeof s === 'string')) throw bad(`stop must be a string or an array of strings, got ${describeValue(body.stop)}`);
  if (given(body.stream) && typeof body.stream !== 'boolean') throw bad(`stream must be true or false, got ${describeValue(body.stream)}`);
  const opts: GenerateOptions = { maxNewTokens: maxTokens, temperature, topP, stop, ...(given(body.seed) && { seed: body.seed }) };
  return { messages, opts, stream: body.stream === true, includeUsage: body.stream_options?.include_usage === true };
}

function usageOf(s: GenerationStats | null, started: number): ChatCompletionUsage {
  const prompt = s?.promptTokens ?? 0;
  const completion = s?.generatedTokens ?? 0;
  return {
    prompt_tokens: prompt,
    completion_tokens: completion,
    total_tokens: prompt + completion,
    extra: {
      e2e_latency_s: (performance.now() - started) / 1000,
      time_to_first_token_s: (s?.timeToFirstTokenMs ?? 0) / 1000,
      prefill_tokens_per_s: s?.prefillTokensPerSecond ?? 0,
      decode_tokens_per_s: s?.decodeTokensPerSecond ?? 0,
    },
  };
}

const finishOf = (s: GenerationStats | null): FinishReason => (s?.stopReason === 'length' ? 'length' : 'stop');

/** A fresh completion id, as OpenAI's look. */
function completionId(): string {
  const bytes = crypto.getRandomValues(new Uint8Array(12));
  return `chatcmpl-${Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join('')}`;
}

/**
 * The text pieces of a generation, ending with its finish reason. A context
 * that fills after some tokens ends the completion as 'length', as a model's
 * context limit does in that API.
 */
async function* pieces(backend: ChatBackend, messages: ChatMessage[], opts: GenerateOptions): AsyncGenerator<string, FinishReason, undefined> {
  let produced = false;
  try {
    for await (const text of backend.generate(messages, opts)) {
      produced = true;
      yield text;
    }
  } catch (e) {
    if ((e as { code?: string }).code === 'CONTEXT_OVERFLOW' && produced) return 'length';
    throw e;
  }
  return finishOf(await backend.stats());
}

export function chatCompletions(backend: ChatBackend): ChatCompletions {
  async function create(body: ChatCompletionRequest, options: ChatRequestOptions = {}): Promise<ChatCompletion | AsyncIterable<ChatCompletionChunk>> {
    const { messages, opts, stream, includeUsage } = toGenerate(body);
    if (options.signal !== undefined) opts.signal = options.signal;
    const model = backend.modelId;
    if (model === null) throw new TesseraError('NO_MODEL', 'chat.completions.create: no model is loaded; call load() first');
    const id = completionId();
    const created = Math.floor(Date.now() / 1000);
    const started = performance.now();
    if (!stream) {
      let content = '';
      const gen = pieces(backend, messages, opts);
      let r = await gen.next();
      for (; !r.done; r = await gen.next()) content += r.value;
      return {
        id, object: 'chat.completion', created, model,
        choices: [{ index: 0, message: { role: 'assistant', content }, finish_reason: r.value, logprobs: null }],
        usage: usageOf(await backend.stats(), started),
      };
    }
    const chunk = (delta: ChatCompletionChunk['choices'][0]['delta'], finish: FinishReason | null): ChatCompletionChunk => ({
      id, object: 'chat.completion.chunk', created, model,
      choices: [{ index: 0, delta, finish_reason: finish, logprobs: null }],
      ...(includeUsage && { usage: null }),
    });
    // The first piece is awaited here, so a request the model cannot take (no chat
    // template, a prompt past the context) rejects create() itself, as that API's does.
    const gen = pieces(backend, messages, opts);
    const first = await gen.next();
    return (async function* (): AsyncGenerator<ChatCompletionChunk, void, undefined> {
      yield chunk({ role: 'assistant', content: '' }, null);
      let r = first;
      for (; !r.done; r = await gen.next()) yield chunk({ content: r.value }, null);
      yield chunk({}, r.value);
      if (includeUsage) yield { id, object: 'chat.completion.chunk', created, model, choices: [], usage: usageOf(await backend.stats(), started) };
    })();
  }
  return { create } as ChatCompletions;
}
