// The handle loadModel() returns: a LanguageModel with its tokenizer and one
// state, and the generation loop. Every family shares it; the bench, the
// demo and the CLI see only this.

import { Gpu } from './runtime/gpu';
import type { MemoryReport } from './runtime/ledger';
import { Recorder } from './runtime/recorder';
import type { Tensor } from './runtime/tensor';
import { Tokenizer, type ChatMessage } from './runtime/tokenizer';
import { argmax } from './kernels/argmax';
import { countNonfinite } from './kernels/count_nonfinite';
import { sample } from './kernels/sample';
import type { LanguageModel, ModelInfo, ModelState } from './models/model';
import { familyFor } from './models/registry';
import type { EmbeddingMode, LoadProgress, WeightMode } from './models/loader/weights';
import { openSource, type SourceInput } from './models/loader/source';
import { openCheckpoint } from './models/loader/safetensors';

export interface LoadModelOptions {
  /** 'q4' (default): linear weights quantized to 4 bits while loading; 'f32' keeps them exact. */
  weights?: WeightMode;
  /**
   * The embedding table and LM head: 'q8' (the default beside 4-bit weights:
   * 4 bits cost small models the most there), 'q4' (smallest), or 'f32' (the
   * default beside f32 weights).
   */
  embeddings?: EmbeddingMode;
  /** Longest context to allocate the state for; defaults to the model's maximum. */
  maxContext?: number;
  /** A Gpu to share between models; by default one is opened for the process. */
  device?: Gpu;
  onProgress?: (p: LoadProgress) => void;
  /** Most tokens one prefill submit takes (default 256); smaller saves workspace memory. */
  prefillChunk?: number;
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
  stop?: string[];
  signal?: AbortSignal;
  /**
   * Continue the conversation instead of starting afresh: the prompt (may be
   * '') is appended after everything so far, including the last generated
   * token. Sampling continues the same random stream unless `seed` is given.
   */
  continue?: boolean;
}

/** A copy of a conversation's state, from saveState(); dispose() frees its device memory. */
export interface StateSnapshot {
  readonly position: number;
  readonly bytes: number;
  dispose(): void;
}

/** Where a conversation stands besides the model state: the last chosen token (not yet fed) and the sampling stream. */
interface Cursor { token: number | null; step: number; seed: number }

export interface GenerationStats {
  promptTokens: number;
  generatedTokens: number;
  /** Milliseconds from the call to the first generated token. */
  timeToFirstTokenMs: number;
  prefillTokensPerSecond: number;
  decodeTokensPerSecond: number;
  stopReason: 'eos' | 'stop' | 'length' | 'abort' | null;
}

let sharedGpu: Promise<Gpu> | null = null;
/** Which model made each snapshot (a snapshot only fits its own model's state layout). */
const snapshots = new WeakMap<object, LanguageModel>();

/** Opens a checkpoint folder (path, URL, File list or name -> bytes map) and loads it onto the GPU. */
export async function loadModel(source: SourceInput, options: LoadModelOptions = {}): Promise<LM> {
  const weights = options.weights ?? 'q4';
  if (weights !== 'q4' && weights !== 'f32') throw new Error(`loadModel: weights must be 'q4' or 'f32', got '${String(weights)}'`);
  const embeddings = options.embeddings ?? (weights === 'q4' ? 'q8' : 'f32');
  if (!['q8', 'q4', 'f32'].includes(embeddings)) throw new Error(`loadModel: embeddings must be 'q8', 'q4' or 'f32', got '${String(embeddings)}'`);
  const src = await openSource(source);
  const raw = await readJson(src, 'config.json', true);
  const family = familyFor(raw!);
  const { eosTokenIds, largestMatrix } = family.parse(raw!);
  const tokJson = await readJson(src, 'tokenizer.json', false);
  const tokConfig = (await readJson(src, 'tokenizer_config.json', false)) ?? {};
  // Hugging Face generate() stops on generation_config.json's eos ids (chat
  // models list their end-of-turn token there): stop on those too.
  const genConfig = await readJson(src, 'generation_config.json', false);
  const stopIds = [...eosTokenIds, ...(genConfig ? eosIdsOf(genConfig.eos_token_id, `${src.describe}: generation_config.json: 'eos_token_id'`) : [])];
  const tokenizer = tokJson ? new Tokenizer(tokJson, tokConfig, stopIds) : null;

  sharedGpu ??= Gpu.create();
  const gpu = options.device ?? (await sharedGpu);
  if (gpu.activationType !== 'f32') {
    // The kernels take f16, but no model has run end to end on an adapter with shader-f16 yet.
    throw new Error('loadModel: the models run with f32 activations only so far (their f16 path has not been checked on an adapter with shader-f16); open the device without preferF16');
  }
  // Refuse a model whose largest layer cannot be bound, before reading any
  // weight (the vocabulary matrix is split into parts that fit instead).
  const [rows, cols] = largestMatrix;
  const bytes = weights === 'q4' ? rows * cols * 0.625 : rows * cols * 4;
  if (bytes > gpu.maxBinding) {
    throw new Error(`loadModel: a (${rows}, ${cols}) layer weight needs ${bytes} bytes in one binding, over this device's ${gpu.maxBinding}`);
  }
  const checkpoint = await openCheckpoint(src);
  const model = await family.load(gpu, raw!, checkpoint, { weights, embeddings, maxContext: options.maxContext, onProgress: options.onProgress, prefillChunk: options.prefillChunk });
  try {
    return new LM(model, tokenizer);
  } catch (e) {
    model.dispose();
    throw e;
  }
}

/** eos_token_id as Hugging Face writes it: absent, one id, or a list of ids. */
function eosIdsOf(v: unknown, where: string): number[] {
  if (v == null) return [];
  const ids = Array.isArray(v) ? v : [v];
  if (!ids.every((id) => Number.isInteger(id) && id >= 0)) throw new Error(`${where} must be a token id or a list of them, got ${JSON.stringify(v)}`);
  return ids as number[];
}

async function readJson(src: Awaited<ReturnType<typeof openSource>>, name: string, required: boolean): Promise<Record<string, unknown> | null> {
  if (!(await src.has(name))) {
    if (required) throw new Error(`${src.describe}: ${name} is missing`);
    return null;
  }
  const text = await src.text(name);
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch (e) {
    throw new Error(`${src.describe}: ${name} is not valid JSON (${(e as Error).message})`);
  }
  if (!v || typeof v !== 'object' || Array.isArray(v)) throw new Error(`${src.describe}: ${name} must hold a JSON object`);
  return v as Record<string, unknown>;
}

export class LM {
  private state: ModelState;
  private lastStats: GenerationStats | null = null;
  private busy = false;
  private cursor: Cursor = { token: null, step: 0, seed: 0 };
  private readonly tokenOut: Tensor; // (chosen token, count of non-finite logits)

  constructor(readonly model: LanguageModel, readonly tokenizer: Tokenizer | null) {
    this.state = model.createState();
    this.tokenOut = model.gpu.empty([2], 'u32', 'lm.token', 'activations');
  }

  get info(): ModelInfo {
    return this.model.info;
  }

  /** Logits (ids.length × vocab) of one full forward pass over `ids` from position 0. */
  async logits(ids: ArrayLike<number>): Promise<Float32Array> {
    const tokens = Int32Array.from(ids);
    if (tokens.length === 0) throw new Error('logits: no token ids');
    return this.exclusive('logits', async () => {
      const V = this.info.vocabSize;
      const out = new Float32Array(tokens.length * V);
      const max = this.info.maxContext;
      if (max !== null && tokens.length > max) throw new Error(`logits: context overflow: ${tokens.length} tokens exceed the model's ${max}-token context`);
      const state = this.model.createState({ maxTokens: tokens.length });
      const step = this.model.logitsRows; // (step, V) logits fit one binding
      try {
        for (let i = 0; i < tokens.length; i += step) {
          const part = tokens.subarray(i, i + step);
          const rec = new Recorder(this.model.gpu, 'logits');
          const t = this.model.prefill(rec, state, part, { logits: 'all' });
          out.set((await rec.submitAndRead(t)) as Float32Array, i * V);
        }
        const bad = out.findIndex((v) => !Number.isFinite(v));
        if (bad >= 0) {
          throw new Error(`logits: the forward pass produced a non-finite value at token ${Math.floor(bad / V)} (weights or activations overflow float32)`);
        }
      } finally {
        state.dispose();
      }
      return out;
    });
  }

  /**
   * Streams the text generated after `prompt` (a string, or chat messages
   * rendered with the checkpoint's template). Starts from an empty state
   * unless `continue` is set.
   */
  async *generate(prompt: string | readonly ChatMessage[], opts: GenerateOptions = {}): AsyncGenerator<string, void, undefined> {
    const tok = this.tokenizer;
    if (!tok) throw new Error('generate: this checkpoint has no tokenizer.json; use logits() with token ids');
    const maxNew = opts.maxNewTokens ?? 256;
    checkGenerateOptions(opts, maxNew);
    if (this.busy) throw new Error('generate: another call on this model is still running');
    this.busy = true;
    const stats: GenerationStats = { promptTokens: 0, generatedTokens: 0, timeToFirstTokenMs: 0, prefillTokensPerSecond: 0, decodeTokensPerSecond: 0, stopReason: null };
    this.lastStats = stats;
    try {
      if (!opts.continue) {
        this.state.reset();
        this.cursor = { token: null, step: 0, seed: opts.seed ?? (Math.random() * 2 ** 32) >>> 0 };
      } else if (opts.seed !== undefined) {
        this.cursor.seed = opts.seed;
      }
      const cursor = this.cursor;
      // A continuation appends plain text without the tokenizer's BOS; chat messages render their own specials.
      const promptIds = opts.continue && typeof prompt === 'string' ? tok.encode(prompt, { addSpecialTokens: false }) : tok.encodePrompt(prompt);
      const ids = cursor.token === null ? promptIds : Int32Array.of(cursor.token, ...promptIds);
      if (ids.length === 0) throw new Error(opts.continue ? 'generate: nothing to continue from and an empty prompt' : 'generate: the prompt encodes to no tokens');
      stats.promptTokens = ids.length;
      const t0 = performance.now();
      // Prefill in chunks; the last one also picks the first token, in the same submit.
      let token = -1;
      for (let i = 0; i < ids.length; i += this.chunk) {
        const part = ids.subarray(i, i + this.chunk);
        const rec = new Recorder(this.model.gpu, 'prefill');
        const logits = this.model.prefill(rec, this.state, part);
        if (i + this.chunk >= ids.length) {
          token = await this.pick(rec, logits, opts, cursor.seed, cursor.step++);
        } else {
          await rec.submit();
        }
        if (opts.signal?.aborted) {
          stats.stopReason = 'abort';
          cursor.token = null;
          throw abortError(opts.signal, 0);
        }
      }
      cursor.token = token;
      const t1 = performance.now();
      stats.timeToFirstTokenMs = t1 - t0;
      stats.prefillTokensPerSecond = ids.length / ((t1 - t0) / 1000);

      const decoder = tok.streamDecoder();
      const stops = opts.stop?.filter((s) => s.length > 0) ?? [];
      let pending = ''; // text held back while it could be the start of a stop string
      for (;;) {
        if (opts.signal?.aborted) {
          stats.stopReason = 'abort';
          throw abortError(opts.signal, stats.generatedTokens);
        }
        if (tok.eosIds.has(token)) {
          stats.stopReason = 'eos';
          break;
        }
        stats.generatedTokens++;
        pending += decoder.push(token);
        const cut = stops.length ? firstStop(pending, stops) : -1;
        if (cut >= 0) {
          if (cut > 0) yield pending.slice(0, cut);
          stats.stopReason = 'stop';
          pending = '';
          break;
        }
        const safe = stops.length ? pending.length - longestStopPrefix(pending, stops) : pending.length;
        if (safe > 0) {
          yield pending.slice(0, safe);
          pending = pending.slice(safe);
        }
        if (stats.generatedTokens >= maxNew) {
          stats.stopReason = 'length';
          break;
        }
        if (this.state.position >= (this.info.maxContext ?? Infinity)) {
          throw new Error(`generate: context overflow: the ${this.info.maxContext}-token context is full after ${stats.generatedTokens} generated tokens (raise maxContext or lower maxNewTokens)`);
        }
        const rec = new Recorder(this.model.gpu, 'decode');
        const logits = this.model.decode(rec, this.state, token);
        token = await this.pick(rec, logits, opts, cursor.seed, cursor.step++);
        cursor.token = token;
      }
      const tail = pending + (stats.stopReason === 'stop' ? '' : decoder.flush());
      if (tail) yield tail;
      const decodeTime = (performance.now() - t1) / 1000;
      stats.decodeTokensPerSecond = stats.generatedTokens > 1 ? (stats.generatedTokens - 1) / decodeTime : 0;
    } finally {
      this.busy = false;
    }
  }

  /** The last generate() call's figures. */
  stats(): GenerationStats | null {
    return this.lastStats && { ...this.lastStats };
  }

  /** Device memory by category (weights, cache, activations, scratch), with peaks. */
  memory(): MemoryReport & { stateBytes: number } {
    return { ...this.model.gpu.ledger.report(), stateBytes: this.state.bytes };
  }

  /** Forgets the conversation: the state goes back to position 0. */
  reset(): void {
    this.state.reset();
    this.cursor = { token: null, step: 0, seed: 0 };
  }

  /**
   * Copies the conversation so far (the model state on the device, the last
   * token, the sampling stream) so it can be resumed or forked later without
   * re-running the prompt.
   */
  async saveState(): Promise<StateSnapshot> {
    return this.exclusive('saveState', async () => {
      const state = this.model.createState({ maxTokens: this.state.position > 0 ? Math.max(1, this.state.position) : 1 });
      const rec = new Recorder(this.model.gpu, 'saveState');
      this.model.copyState(rec, this.state, state);
      await rec.submit();
      const snap = { state, cursor: { ...this.cursor }, position: state.position, bytes: state.bytes, dispose: () => state.dispose() };
      snapshots.set(snap, this.model);
      return snap;
    });
  }

  /** Puts a saved conversation back; generate({ continue: true }) then goes on from it. */
  async restoreState(snapshot: StateSnapshot): Promise<void> {
    const snap = snapshot as StateSnapshot & { state: ModelState; cursor: Cursor };
    if (snapshots.get(snap) !== this.model) throw new Error('restoreState: the snapshot was not made by this model');
    return this.exclusive('restoreState', async () => {
      const rec = new Recorder(this.model.gpu, 'restoreState');
      this.model.copyState(rec, snap.state, this.state);
      await rec.submit();
      this.cursor = { ...snap.cursor };
    });
  }

  dispose(): void {
    this.state.dispose();
    this.tokenOut.dispose();
    this.model.dispose();
  }

  private get chunk(): number {
    return this.model.prefillChunk;
  }

  /**
   * Records token selection after the forward pass and reads back 8 bytes: the
   * token id and the count of non-finite logits, which makes an overflowed
   * forward pass an Error rather than a token chosen among NaNs.
   */
  private async pick(rec: Recorder, logits: Tensor, opts: GenerateOptions, seed: number, step: number): Promise<number> {
    const temperature = opts.temperature ?? 0;
    if (temperature === 0) argmax(rec, logits, this.tokenOut, undefined, 0);
    else sample(rec, logits, this.tokenOut, { temperature, topK: opts.topK ?? 0, topP: opts.topP ?? 1, seed, step }, undefined, 0);
    countNonfinite(rec, logits, this.tokenOut, undefined, 1);
    const [token, nonfinite] = await rec.submitAndRead(this.tokenOut);
    if (nonfinite > 0) {
      throw new Error(`generate: the forward pass produced ${nonfinite} non-finite logits (NaN or infinity) at step ${step}; weights or activations overflow float32, so no token was chosen`);
    }
    if (token >= this.info.vocabSize) throw new Error(`generate: no token could be chosen at step ${step}`);
    return token;
  }

  private async exclusive<T>(op: string, fn: () => Promise<T>): Promise<T> {
    if (this.busy) throw new Error(`${op}: another call on this model is still running`);
    this.busy = true;
    try {
      return await fn();
    } finally {
      this.busy = false;
    }
  }
}

function checkGenerateOptions(o: GenerateOptions, maxNew: number): void {
  if (!Number.isInteger(maxNew) || maxNew < 1) throw new Error(`generate: maxNewTokens must be a positive integer, got ${o.maxNewTokens}`);
  if (o.temperature !== undefined && !(o.temperature >= 0)) throw new Error(`generate: temperature must be >= 0, got ${o.temperature}`);
  if (o.topK !== undefined && !(Number.isInteger(o.topK) && o.topK >= 0)) throw new Error(`generate: topK must be an integer >= 0, got ${o.topK}`);
  if (o.topP !== undefined && !(o.topP > 0 && o.topP <= 1)) throw new Error(`generate: topP must be in (0, 1], got ${o.topP}`);
  if (o.seed !== undefined && !(Number.isInteger(o.seed) && o.seed >= 0 && o.seed < 2 ** 32)) throw new Error(`generate: seed must be an integer in [0, 2^32), got ${o.seed}`);
}

function firstStop(text: string, stops: string[]): number {
  let best = -1;
  for (const s of stops) {
    const i = text.indexOf(s);
    if (i >= 0 && (best < 0 || i < best)) best = i;
  }
  return best;
}

/** Length of the longest suffix of `text` that is a proper prefix of a stop string. */
function longestStopPrefix(text: string, stops: string[]): number {
  let best = 0;
  for (const s of stops) {
    for (let n = Math.min(s.length - 1, text.length); n > best; n--) {
      if (text.endsWith(s.slice(0, n))) {
        best = n;
        break;
      }
    }
  }
  return best;
}

function abortError(signal: AbortSignal, generated: number): Error {
  const e = new Error(`generate: aborted after ${generated} generated tokens${signal.reason instanceof Error ? ` (${signal.reason.message})` : ''}`);
  e.name = 'AbortError';
  return e;
}
