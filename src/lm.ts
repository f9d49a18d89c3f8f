// The handle loadModel() returns: a LanguageModel with its tokenizer and one
// conversation (a state and a cursor), and the generation loop. Every family
// shares it; the bench, the demo and the CLI see only this.
//
// Concurrency: every call records and submits its GPU work in one go, so the
// device sees whole steps in call order. The conversation belongs to the
// latest generate(), reset() or restoreState(): each takes it over and ends
// the generation before it, whose iterator then throws if it is resumed, so a
// suspended or abandoned generation never blocks the handle nor diverges
// silently. logits() and saveState() do not change the conversation.

import type { MemoryReport } from './runtime/ledger';
import { Recorder } from './runtime/recorder';
import type { Tensor } from './runtime/tensor';
import { abortError, TesseraError } from './runtime/errors';
import type { Tokenizer } from './runtime/tokenizer';
import type { LanguageModel, ModelInfo, ModelState } from './models/model';
import { checkGenerateOptions, checkMessages, checkTokenIds, isTokenIds, type GenerateOptions, type Prompt } from './options';
import { TextOut } from './lm/text_out';
import { chooseToken } from './lm/choose';
import { SnapshotStore, type StateSnapshot } from './lm/snapshots';

export type { StateSnapshot };
export { loadModel } from './load';
export type { LoadModelOptions, GenerateOptions, Prompt } from './options';

/** Where a conversation stands besides the model state. */
interface Cursor {
  /** Token ids not yet fed to the model: the rest of a prompt an abort cut short, or the last chosen token. */
  unfed: Int32Array;
  /** Whether unfed[0] is a chosen token whose text is not out yet (an abort came between choosing and emitting it). */
  owed: boolean;
  /** The sampling stream: seed and step. */
  step: number;
  seed: number;
  /** Text an abort left part-way out (bytes of an unfinished character, text held back for stop strings). */
  out: TextOut | null;
}

const freshCursor = (seed: number): Cursor => ({ unfed: new Int32Array(0), owed: false, step: 0, seed, out: null });

export interface GenerationStats {
  /** Tokens fed before the first choice (the prompt, plus the last token of the conversation when continuing). */
  promptTokens: number;
  generatedTokens: number;
  /** Milliseconds from the call to the first generated token. */
  timeToFirstTokenMs: number;
  prefillTokensPerSecond: number;
  decodeTokensPerSecond: number;
  stopReason: 'eos' | 'stop' | 'length' | 'abort' | null;
  /** Generated ids the tokenizer has no text for (e.g. padding rows of a larger model vocabulary): they add nothing to the text. */
  undecodableTokens: number;
}

export class LM {
  private readonly state: ModelState;
  private readonly tokenOut: Tensor; // (chosen token, count of non-finite logits)
  private lastStats: GenerationStats | null = null;
  private cursor: Cursor = freshCursor(0);
  /** Bumped by every call that takes the conversation over; a generation runs while it holds the current value. */
  private owner = 0;
  private disposed = false;
  private readonly snapshots = new SnapshotStore<Cursor>();

  constructor(readonly model: LanguageModel, readonly tokenizer: Tokenizer | null) {
    [this.state, this.tokenOut] = model.gpu.allOrNothing(() => [model.createState(), model.gpu.empty([2], 'u32', 'lm.token', 'activations')] as const);
  }

  get info(): ModelInfo {
    return this.model.info;
  }

  /** Logits (ids.length × vocab) of one full forward pass over `ids` from position 0. */
  async logits(ids: ArrayLike<number>): Promise<Float32Array> {
    this.assertUsable('logits');
    const V = this.info.vocabSize;
    const tokens = checkTokenIds('logits', ids, V);
    const max = this.info.maxContext;
    if (max !== null && tokens.length > max) throw new TesseraError('CONTEXT_OVERFLOW', `logits: context overflow: ${tokens.length} tokens exceed the model's ${max}-token context`);
    let out: Float32Array;
    try {
      out = new Float32Array(tokens.length * V);
    } catch {
      throw new Error(`logits: ${tokens.length} tokens × ${V} logits (${tokens.length * V * 4} bytes) do not fit one Float32Array on this host; score the text in windows`);
    }
    const state = this.model.createState({ maxTokens: tokens.length });
    const step = this.model.logitsRows; // (step, V) logits fit one binding
    try {
      for (let i = 0; i < tokens.length; i += step) {
        const rec = new Recorder(this.model.gpu, 'logits');
        const t = this.model.prefill(rec, state, tokens.subarray(i, i + step), { logits: 'all' });
        out.set((await rec.submitAndRead(t)) as Float32Array, i * V);
        this.assertUsable('logits');
      }
    } finally {
      state.dispose();
    }
    const bad = out.findIndex((v) => !Number.isFinite(v));
    if (bad >= 0) {
      throw new TesseraError('NON_FINITE', `logits: the forward pass produced a non-finite value at token ${Math.floor(bad / V)} (weights or activations overflow float32)`);
    }
    return out;
  }

  /**
   * Streams the text generated after `prompt`: a string, chat messages
   * (rendered with the checkpoint's template) or token ids. Starts from an
   * empty state unless `continue` is set. An abort (opts.signal) throws an
   * AbortError; generate('', { continue: true }) then resumes exactly where
   * it stopped, as if it had never been interrupted.
   */
  async *generate(prompt: Prompt, opts: GenerateOptions = {}): AsyncGenerator<string, void, undefined> {
    this.assertUsable('generate');
    checkGenerateOptions(opts);
    const tok = this.tokenizer;
    if (!tok) throw new TesseraError('NO_TOKENIZER', 'generate: this checkpoint has no tokenizer.json; use logits() with token ids');
    const promptIds = this.encodePrompt(tok, prompt, opts.continue === true);
    const { signal } = opts;
    if (signal?.aborted) throw abortError('generate: aborted before it started', signal.reason);

    const me = ++this.owner; // takes the conversation over: an earlier generation ends here
    const stats: GenerationStats = { promptTokens: 0, generatedTokens: 0, timeToFirstTokenMs: 0, prefillTokensPerSecond: 0, decodeTokensPerSecond: 0, stopReason: null, undecodableTokens: 0 };
    this.lastStats = stats;
    if (!opts.continue) {
      this.state.reset();
      this.cursor = freshCursor(opts.seed ?? (Math.random() * 2 ** 32) >>> 0);
    } else if (opts.seed !== undefined) {
      this.cursor.seed = opts.seed;
    }
    const cursor = this.cursor;
    const maxNew = opts.maxNewTokens ?? 256;
    const t0 = performance.now();
    let t1 = t0;

    let feed = concat(cursor.unfed, promptIds); // to feed before the next choice
    let owed = cursor.owed;                      // feed[0] was chosen and its text is not out yet
    if (feed.length === 0) throw new Error(opts.continue ? 'generate: nothing to continue from and an empty prompt' : 'generate: the prompt encodes to no tokens');
    const carried = cursor.out;
    const out = carried ?? new TextOut(tok);
    out.stops = opts.stop?.filter((s) => s.length > 0) ?? [];
    cursor.out = null;
    /** On abort: keep what a continuation needs to go on exactly, then throw. */
    const abort = () => {
      stats.stopReason = 'abort';
      cursor.out = out;
      return abortError(`generate: aborted after ${stats.generatedTokens} generated tokens`, signal!.reason);
    };
    // Text an abort left held back ends before a continuation's prompt.
    if (carried && !owed && promptIds.length > 0) yield* this.emit(out.flush(), me);

    for (;;) {
      if (owed) {
        // The text of the last chosen token, unless the model said it is done.
        const token = feed[0];
        owed = cursor.owed = false;
        const alone = feed.length === 1; // nothing follows it: it ends the generation or is generated text
        if (tok.eosIds.has(token)) {
          if (alone) {
            stats.stopReason = 'eos';
            break;
          }
        } else {
          stats.generatedTokens++;
          if (!tok.isDecodable(token)) stats.undecodableTokens++;
          const { text, stopped } = out.push(token);
          yield* this.emit(text, me);
          if (stopped) {
            stats.stopReason = 'stop';
            break;
          }
        }
        if (alone && stats.generatedTokens >= maxNew) {
          stats.stopReason = 'length';
          break;
        }
        // A continuation's prompt comes next: the text so far is complete.
        if (!alone) yield* this.emit(out.flush(), me);
      }
      if (signal?.aborted) throw abort();
      const max = this.info.maxContext;
      if (max !== null && this.state.position + feed.length > max) {
        throw new TesseraError('CONTEXT_OVERFLOW', stats.generatedTokens > 0
          ? `generate: context overflow: the ${max}-token context is full after ${stats.generatedTokens} generated tokens (raise maxContext or lower maxNewTokens)`
          : `generate: context overflow: ${this.state.position} tokens so far + ${feed.length} new exceed the model's ${max}-token context (raise maxContext or shorten the prompt)`);
      }
      // Feed in chunks; the last one also picks the next token, in the same submit.
      const first = stats.promptTokens === 0;
      if (first) stats.promptTokens = feed.length;
      let token = -1;
      for (let i = 0; i < feed.length; i += this.model.prefillChunk) {
        const part = feed.subarray(i, i + this.model.prefillChunk);
        const rec = new Recorder(this.model.gpu, first ? 'prefill' : 'decode');
        const logits = part.length === 1 && !first ? this.model.decode(rec, this.state, part[0]) : this.model.prefill(rec, this.state, part);
        cursor.unfed = feed.slice(i + part.length); // in step with the state
        if (cursor.unfed.length > 0) {
          await rec.submit();
          this.assertOwner(me);
          if (signal?.aborted) throw abort();
        } else {
          token = await this.pick(rec, logits, opts, cursor.seed, cursor.step++);
          this.assertOwner(me);
        }
      }
      feed = cursor.unfed = Int32Array.of(token);
      owed = cursor.owed = true;
      if (first) {
        t1 = performance.now();
        stats.timeToFirstTokenMs = t1 - t0;
        stats.prefillTokensPerSecond = stats.promptTokens / ((t1 - t0) / 1000);
      }
      if (signal?.aborted) throw abort();
    }
    const tail = out.flush();
    if (tail && stats.stopReason !== 'stop') yield tail;
    const decodeTime = (performance.now() - t1) / 1000;
    stats.decodeTokensPerSecond = stats.generatedTokens > 1 ? (stats.generatedTokens - 1) / decodeTime : 0;
  }

  /** The last generate() call's figures. */
  stats(): GenerationStats | null {
    return this.lastStats && { ...this.lastStats };
  }

  /** Device memory by category (weights, cache, activations, scratch), with peaks. */
  memory(): MemoryReport & { stateBytes: number } {
    return { ...this.model.gpu.ledger.report(), stateBytes: this.disposed ? 0 : this.state.bytes };
  }

  /** Forgets the conversation: the state goes back to position 0, and a generation in progress ends. */
  reset(): void {
    this.assertUsable('reset');
    this.owner++;
    this.state.reset();
    this.cursor = freshCursor(0);
  }

  /**
   * Copies the conversation so far (the model state on the device, the
   * tokens not yet fed, the sampling stream) so it can be resumed or forked
   * later without re-running the prompt.
   */
  async saveState(): Promise<StateSnapshot> {
    this.assertUsable('saveState');
    const state = this.model.createState({ maxTokens: Math.max(1, this.state.position) });
    try {
      const rec = new Recorder(this.model.gpu, 'saveState');
      this.model.copyState(rec, this.state, state);
      const c = this.cursor;
      const cursor: Cursor = { ...c, unfed: c.unfed.slice(), out: null }; // the cursor of the moment the copy is submitted
      await rec.submit();
      return this.snapshots.add(state, cursor);
    } catch (e) {
      state.dispose();
      throw e;
    }
  }

  /** Puts a saved conversation (a snapshot or its id) back, ending a generation in progress; generate({ continue: true }) then goes on from it. */
  async restoreState(snapshot: StateSnapshot | string): Promise<void> {
    this.assertUsable('restoreState');
    const { state, extra: cursor } = this.snapshots.get('restoreState', snapshot);
    const rec = new Recorder(this.model.gpu, 'restoreState');
    this.model.copyState(rec, state, this.state);
    this.owner++;
    this.cursor = { ...cursor, unfed: cursor.unfed.slice() };
    await rec.submit();
  }

  /** Frees the model, its state, its snapshots and its buffers; a generation in progress ends. Later calls are an Error. */
  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    this.owner++;
    this.snapshots.dropAll();
    this.state.dispose();
    this.tokenOut.dispose();
    this.model.dispose();
  }

  /** Token ids of a prompt; a continuation appends plain text without the tokenizer's BOS. */
  private encodePrompt(tok: Tokenizer, prompt: Prompt, continuing: boolean): Int32Array {
    if (isTokenIds(prompt)) return checkTokenIds('generate', prompt, this.info.vocabSize);
    if (typeof prompt === 'string') return continuing ? tok.encode(prompt, { addSpecialTokens: false }) : tok.encode(prompt);
    checkMessages('generate', prompt);
    return tok.encodePrompt(prompt);
  }

  /** Throws once the handle is disposed or its device is lost. */
  private assertUsable(op: string): void {
    if (this.disposed) throw new TesseraError('DISPOSED', `${op}: the model was disposed`);
    this.model.gpu.assertAlive(op);
  }

  /** Yields `text` unless empty; when the consumer comes back, checks the generation still owns the conversation. */
  private async *emit(text: string, me: number): AsyncGenerator<string, void, undefined> {
    if (!text) return;
    yield text;
    this.assertOwner(me);
  }

  /** Throws in a generation that another call took the conversation from while it waited. */
  private assertOwner(me: number): void {
    this.assertUsable('generate');
    if (this.owner !== me) throw new Error('generate: this generation was ended by a later reset(), restoreState() or generate() on the same model');
  }

  private pick(rec: Recorder, logits: Tensor, opts: GenerateOptions, seed: number, step: number): Promise<number> {
    const sampling = { temperature: opts.temperature ?? 0, topK: opts.topK ?? 0, topP: opts.topP ?? 1 };
    return chooseToken(rec, logits, this.tokenOut, sampling, seed, step, this.info.vocabSize);
  }
}

function concat(a: Int32Array, b: Int32Array): Int32Array {
  const out = new Int32Array(a.length + b.length);
  out.set(a);
  out.set(b, a.length);
  return out;
}
