// The engine: one model at a time behind the API a web app writes against,
// the same in the page's thread (createEngine) and in a Web Worker
// (createWorkerEngine, worker_engine.ts). Every method is async and every
// value it takes or gives is plain data (snapshots by id, stats and memory
// as objects, errors with a code), so the two are interchangeable and the
// worker's message boundary changes nothing a caller sees.

import { loadModel } from '../load';
import type { LM, GenerationStats } from '../lm';
import type { StateSnapshot } from '../lm/snapshots';
import type { ModelInfo } from '../models/model';
import type { SourceInput } from '../models/loader/source';
import type { LoadProgress } from '../models/loader/weights';
import type { MemoryReport } from '../runtime/ledger';
import { TesseraError, withCode } from '../runtime/errors';
import { isAbortSignal } from '../models/loader/source';
import type { GenerateOptions, LoadModelOptions, Prompt } from '../options';
import { chatCompletions, type ChatCompletions } from './openai';
import { estimateModel, type ModelEstimate } from '../estimate';

/** What an engine loads: a URL (or 'bundled:NAME'), picked files, or a name -> bytes map. */
export type EngineSource = Exclude<SourceInput, { read: unknown }>;

/** loadModel's options that are plain data, with progress and cancellation. */
export interface EngineLoadOptions extends Pick<LoadModelOptions, 'weights' | 'embeddings' | 'maxContext' | 'preferF16' | 'prefillChunk' | 'timeoutMs' | 'signal' | 'cache'> {
  /** Bytes downloaded into the offline cache, then bytes of the weights placed on the device. */
  onProgress?: (p: LoadProgress) => void;
  /** URL sources: headers for every request (an access token for a gated repository). */
  headers?: Record<string, string>;
}

/** estimateModel's options that are plain data. */
export type EngineEstimateOptions = Pick<EngineLoadOptions, 'weights' | 'embeddings' | 'maxContext' | 'prefillChunk' | 'preferF16' | 'timeoutMs' | 'signal' | 'headers'>;

/** Device memory by category, with the conversation's state bytes. */
export type EngineMemory = MemoryReport & { stateBytes: number };

export interface Engine {
  /** "Will it fit": the bytes a model would take on this device, from its config and headers, before any download. */
  estimate(source: EngineSource, opts?: EngineEstimateOptions): Promise<ModelEstimate>;
  /** Loads a model, replacing the one loaded before (which is disposed first). */
  load(source: EngineSource, opts?: EngineLoadOptions): Promise<ModelInfo>;
  /** The loaded model's description; null before load() and after dispose(). */
  readonly info: ModelInfo | null;
  /** Where the loaded model came from ('bundled:transformer', a URL, 'files'); the `model` of chat completions. */
  readonly modelId: string | null;
  /** Streams generated text (see LM.generate); `signal` stops it with an AbortError. */
  generate(prompt: Prompt, opts?: GenerateOptions): AsyncGenerator<string, void, undefined>;
  /** Logits (ids.length × vocab) of one forward pass from position 0. */
  logits(ids: ArrayLike<number>): Promise<Float32Array>;
  /** The last generation's figures. */
  stats(): Promise<GenerationStats | null>;
  memory(): Promise<EngineMemory>;
  /** Copies the conversation; restore it with the snapshot or its id. */
  saveState(): Promise<StateSnapshot>;
  restoreState(snapshot: StateSnapshot | string): Promise<void>;
  /** Forgets the conversation. */
  reset(): Promise<void>;
  /** Frees the model (and its snapshots); load() may be called again. */
  dispose(): Promise<void>;
  /** The OpenAI-style chat API over this engine. */
  readonly chat: { readonly completions: ChatCompletions };
}

/** The id a source is known by. */
export function sourceId(source: EngineSource): string {
  if (typeof source === 'string') return source;
  if (source instanceof URL) return source.href;
  return 'files';
}

/** Checks engine load options that loadModel does not know (headers), and makes loadModel's. */
function toLoadOptions(opts: EngineLoadOptions): LoadModelOptions {
  const { headers, ...rest } = opts;
  if (headers === undefined) return rest;
  if (typeof headers !== 'object' || headers === null || Array.isArray(headers) || !Object.values(headers).every((v) => typeof v === 'string')) {
    throw new TesseraError('INVALID_ARGUMENT', 'load: headers must be an object of header names to string values');
  }
  return { ...rest, fetchFn: (input, init) => fetch(input, { ...init, headers: { ...(init?.headers as Record<string, string> | undefined), ...headers } }) };
}

/** An engine that runs in this thread (in a worker, serveEngine runs one). */
export function createEngine(): Engine {
  let lm: LM | null = null;
  let modelId: string | null = null;
  let loading = 0;
  /** Cancels the load in progress when a later load() or dispose() replaces it. */
  let pending: AbortController | null = null;
  const current = (op: string): LM => {
    if (!lm) throw new TesseraError('NO_MODEL', `${op}: no model is loaded; call load() first`);
    return lm;
  };
  const engine: Omit<Engine, 'chat'> = {
    get info() {
      return lm?.info ?? null;
    },
    get modelId() {
      return lm ? modelId : null;
    },
    async load(source, opts = {}) {
      const me = ++loading;
      pending?.abort(new Error('replaced by a later load()'));
      const ctl = (pending = new AbortController());
      lm?.dispose();
      lm = null;
      const given = (opts as { signal?: unknown }).signal;
      const signal = isAbortSignal(given) ? AbortSignal.any([given, ctl.signal]) : given === undefined ? ctl.signal : given;
      let loaded: LM;
      try {
        loaded = await loadModel(source as SourceInput, toLoadOptions({ ...opts, signal: signal as AbortSignal }));
      } catch (e) {
        throw withCode(e, 'LOAD_FAILED');
      } finally {
        if (pending === ctl) pending = null;
      }
      if (me !== loading) {
        // A later load() or dispose() came as this one finished: it wins.
        loaded.dispose();
        throw new TesseraError('ABORTED', 'load: replaced by a later load() or dispose()', { name: 'AbortError' });
      }
      lm = loaded;
      modelId = sourceId(source);
      return lm.info;
    },
    async estimate(source, opts = {}) {
      return estimateModel(source as SourceInput, toLoadOptions(opts));
    },
    async *generate(prompt, opts) {
      yield* current('generate').generate(prompt, opts);
    },
    async logits(ids) {
      return current('logits').logits(ids);
    },
    async stats() {
      return lm?.stats() ?? null;
    },
    async memory() {
      return current('memory').memory();
    },
    async saveState() {
      return current('saveState').saveState();
    },
    async restoreState(snapshot) {
      return current('restoreState').restoreState(snapshot);
    },
    async reset() {
      current('reset').reset();
    },
    async dispose() {
      loading++;
      pending?.abort(new Error('the engine was disposed'));
      lm?.dispose();
      lm = null;
    },
  };
  return Object.assign(engine, { chat: { completions: chatCompletions(engine) } });
}
