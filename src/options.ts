// The options of the public API and their checks. Everything a caller hands
// to loadModel(), generate() or logits() is checked here before any work
// starts, so misuse is an Error that names the argument and its value, never
// a TypeError from deep inside or a value silently coerced.

import { Gpu } from './runtime/gpu';
import { describeValue, TesseraError } from './runtime/errors';
import { checkSourceOptions, isAbortSignal, type FetchFn } from './models/loader/source';
import type { ChatMessage } from './runtime/tokenizer';
import type { EmbeddingMode, LoadProgress, WeightMode } from './models/loader/weights';

export type { FetchFn };

export interface LoadModelOptions {
  /** 'q4' (default): linear weights quantized to 4 bits while loading; 'f32' keeps them exact. */
  weights?: WeightMode;
  /**
   * The embedding table and LM head: 'q8' (the default beside 4-bit weights:
   * 4 bits cost small models the most there), 'q4' (smallest), or 'f32' (the
   * default beside f32 weights).
   */
  embeddings?: EmbeddingMode;
  /**
   * Longest context to allocate the state for; defaults to the model's
   * maximum. Families whose state does not grow with the context (Mamba)
   * check it and otherwise ignore it.
   */
  maxContext?: number;
  /** A Gpu to share between models; by default one is opened for the process. */
  device?: Gpu;
  /**
   * f16 activations and KV cache where the adapter has `shader-f16` (half the
   * memory and bandwidth of the state that grows with the context); f32
   * otherwise, and by default. Picks the process's shared device for f16; a
   * `device` keeps the precision it was opened with (Gpu.create({ preferF16 })).
   */
  preferF16?: boolean;
  onProgress?: (p: LoadProgress) => void;
  /** Most tokens one prefill submit takes (default 256); smaller saves workspace memory. */
  prefillChunk?: number;
  /** Cancels the load: it rejects with an AbortError and frees what it had made. */
  signal?: AbortSignal;
  /** For URL sources: the fetch to use (e.g. one that adds an Authorization header). */
  fetchFn?: FetchFn;
  /** For URL sources: a read that receives nothing for this long fails (default 30000 ms). */
  timeoutMs?: number;
  /**
   * For URL sources (bundled models in a browser too): keep the files in the
   * browser's Cache Storage and load from there next time, with no network.
   * Sources on disk or in memory are read as they are.
   */
  cache?: boolean;
}

export interface GenerateOptions {
  maxNewTokens?: number;
  /** 0 (default) decodes greedily; above 0 samples. */
  temperature?: number;
  topK?: number;
  topP?: number;
  /** Sampling seed; the same seed, prompt and options give the same text. */
  seed?: number;
  /** Generation ends before the first occurrence of any of these strings. */
  stop?: readonly string[];
  signal?: AbortSignal;
  /**
   * Continue the conversation instead of starting afresh: the prompt (may be
   * '') is appended after everything so far, including the last generated
   * token. Sampling continues the same random stream unless `seed` is given.
   */
  continue?: boolean;
}

/** What generate() takes: text, chat messages (rendered with the checkpoint's template), or token ids. */
export type Prompt = string | readonly ChatMessage[] | Int32Array | Uint32Array | readonly number[];

const LOAD_KEYS = ['weights', 'embeddings', 'maxContext', 'device', 'preferF16', 'onProgress', 'prefillChunk', 'signal', 'fetchFn', 'timeoutMs', 'cache'];
const GENERATE_KEYS = ['maxNewTokens', 'temperature', 'topK', 'topP', 'seed', 'stop', 'signal', 'continue'];

/** An options argument: undefined, or a plain object whose keys are all known (a typo is an Error, not ignored). */
function checkKeys(op: string, o: unknown, known: readonly string[]): void {
  if (o === undefined) return;
  if (typeof o !== 'object' || o === null || Array.isArray(o)) throw argumentError(`${op}: options must be an object, got ${describeValue(o)}`);
  for (const key of Object.keys(o)) {
    if (known.includes(key)) continue;
    const plain = key.replace(/[_-]/g, '').toLowerCase();
    const near = known.find((k) => k.toLowerCase() === plain);
    throw argumentError(`${op}: unknown option '${key}'${near ? ` (did you mean '${near}'?)` : ''}; the options are ${known.join(', ')}`);
  }
}

/** A misused argument: an Error coded INVALID_ARGUMENT. */
const argumentError = (message: string) => new TesseraError('INVALID_ARGUMENT', message);

const isInt = (v: unknown, min: number, max = Number.MAX_SAFE_INTEGER): v is number => typeof v === 'number' && Number.isInteger(v) && v >= min && v <= max;

export function checkLoadOptions(o: LoadModelOptions | undefined): void {
  checkKeys('loadModel', o, LOAD_KEYS);
  if (!o) return;
  if (o.weights !== undefined && o.weights !== 'q4' && o.weights !== 'f32') throw argumentError(`loadModel: weights must be 'q4' or 'f32', got ${describeValue(o.weights)}`);
  if (o.embeddings !== undefined && !['q8', 'q4', 'f32'].includes(o.embeddings)) throw argumentError(`loadModel: embeddings must be 'q8', 'q4' or 'f32', got ${describeValue(o.embeddings)}`);
  if (o.maxContext !== undefined && !isInt(o.maxContext, 1)) throw argumentError(`loadModel: maxContext must be a positive integer, got ${describeValue(o.maxContext)}`);
  if (o.prefillChunk !== undefined && !isInt(o.prefillChunk, 1)) throw argumentError(`loadModel: prefillChunk must be a positive integer, got ${describeValue(o.prefillChunk)}`);
  if (o.device !== undefined && !(o.device instanceof Gpu)) throw argumentError(`loadModel: device must be a Gpu (from Gpu.create() or Gpu.fromDevice()), got ${describeValue(o.device)}`);
  if (o.preferF16 !== undefined && typeof o.preferF16 !== 'boolean') throw argumentError(`loadModel: preferF16 must be true or false, got ${describeValue(o.preferF16)}`);
  if (o.preferF16 !== undefined && o.device !== undefined) {
    throw argumentError(`loadModel: preferF16 applies to the shared device; a given device keeps the precision it was opened with (${o.device.activationType}): pass preferF16 to Gpu.create() instead`);
  }
  if (o.cache !== undefined && typeof o.cache !== 'boolean') throw argumentError(`loadModel: cache must be true or false, got ${describeValue(o.cache)}`);
  if (o.onProgress !== undefined && typeof o.onProgress !== 'function') throw argumentError(`loadModel: onProgress must be a function, got ${describeValue(o.onProgress)}`);
  checkSourceOptions('loadModel', o);
}

/** Checks generate()'s options. */
export function checkGenerateOptions(o: GenerateOptions | undefined): void {
  checkKeys('generate', o, GENERATE_KEYS);
  if (!o) return;
  const num = (key: keyof GenerateOptions, ok: (v: number) => boolean, what: string) => {
    const v = o[key];
    if (v !== undefined && !(typeof v === 'number' && ok(v))) throw argumentError(`generate: ${key} must be ${what}, got ${describeValue(v)}`);
  };
  num('maxNewTokens', (v) => isInt(v, 1), 'a positive integer');
  num('temperature', (v) => Number.isFinite(v) && v >= 0, 'a finite number >= 0');
  num('topK', (v) => isInt(v, 0), 'an integer >= 0');
  num('topP', (v) => v > 0 && v <= 1, 'a number in (0, 1]');
  num('seed', (v) => isInt(v, 0, 2 ** 32 - 1), 'an integer in [0, 2^32)');
  if (o.stop !== undefined && !(Array.isArray(o.stop) && o.stop.every((s) => typeof s === 'string'))) {
    throw argumentError(`generate: stop must be an array of strings, got ${describeValue(o.stop)}${Array.isArray(o.stop) ? ` holding ${describeValue(o.stop.find((s) => typeof s !== 'string'))}` : ''}`);
  }
  if (o.signal !== undefined && !isAbortSignal(o.signal)) throw argumentError(`generate: signal must be an AbortSignal, got ${describeValue(o.signal)}`);
  if (o.continue !== undefined && typeof o.continue !== 'boolean') throw argumentError(`generate: continue must be true or false, got ${describeValue(o.continue)}`);
}

/**
 * Token ids as the model takes them: an array or typed array of integers in
 * 0..vocabSize-1. Anything else (a string, 2^32 + 5, 1.7, NaN, a hole) is an
 * Error naming the position and the value, never coerced.
 */
export function checkTokenIds(op: string, ids: unknown, vocabSize: number): Int32Array {
  const typed = ids instanceof Int32Array || ids instanceof Uint32Array || ids instanceof Uint16Array || ids instanceof Uint8Array || ids instanceof Float64Array || ids instanceof Float32Array;
  if (!Array.isArray(ids) && !typed) throw argumentError(`${op}: token ids must be an array or a typed array of integers, got ${describeValue(ids)}`);
  const list = ids as ArrayLike<unknown>;
  if (list.length === 0) throw argumentError(`${op}: no token ids`);
  const out = new Int32Array(list.length);
  for (let i = 0; i < list.length; i++) {
    const v = list[i];
    if (typeof v !== 'number' || !Number.isInteger(v)) throw argumentError(`${op}: token id ${describeValue(v)} at position ${i} is not an integer`);
    if (v < 0 || v >= vocabSize) throw argumentError(`${op}: token id ${v} at position ${i} is outside the vocabulary (0..${vocabSize - 1})`);
    out[i] = v;
  }
  return out;
}

/** Whether a prompt is token ids rather than text or chat messages. */
export function isTokenIds(p: unknown): boolean {
  return ArrayBuffer.isView(p) || (Array.isArray(p) && p.length > 0 && p.every((x) => typeof x !== 'object' || x === null));
}

/** Chat messages: an array of { role: string, content: string }. */
export function checkMessages(op: string, p: unknown): asserts p is readonly ChatMessage[] {
  if (!Array.isArray(p)) throw argumentError(`${op}: the prompt must be a string, chat messages or token ids, got ${describeValue(p)}`);
  if (p.length === 0) throw argumentError(`${op}: no chat messages`);
  p.forEach((m, i) => {
    if (typeof m !== 'object' || m === null || typeof m.role !== 'string' || typeof m.content !== 'string') {
      throw argumentError(`${op}: chat message ${i} must be { role: string, content: string }, got ${describeValue(m)}`);
    }
  });
}
