// createWorkerEngine(): the engine in a dedicated Web Worker, behind the same
// Engine interface as createEngine(). The page's thread only posts messages:
// loading, every kernel and every token run in the worker. Generated text
// streams back as it comes (the worker does not wait for the page to pull);
// breaking out of the loop or the signal stops it in the worker.

import type { Engine, EngineEstimateOptions, EngineLoadOptions, EngineMemory, EngineSource } from './engine';
import type { ModelEstimate } from '../estimate';
import { CHANNEL, fromWire, type EngineOp, type FromWorker, type ToWorker } from './protocol';
import { chatCompletions } from './openai';
import type { GenerationStats } from '../lm';
import type { StateSnapshot } from '../lm/snapshots';
import type { ModelInfo } from '../models/model';
import { abortError, describeValue, TesseraError } from '../runtime/errors';
import { isAbortSignal } from '../models/loader/source';
import type { GenerateOptions, Prompt } from '../options';
import type { Endpoint } from './serve';

export interface WorkerEngine extends Engine {
  /** Ends the worker (the model with it); later calls are an Error. */
  terminate(): void;
}

export interface WorkerEngineOptions {
  /**
   * The worker to run in: one made from your own file that imports
   * 'tessera-llm/worker' (bundlers build it with your app). By default the
   * package's own worker module, beside this file.
   */
  worker?: Worker;
}

/** One call in flight: its messages, queued until read. */
interface Call {
  queue: FromWorker[];
  wake: (() => void) | null;
}

/** The end of a worker or a MessagePort this engine talks through. */
type Port = Endpoint & { terminate?(): void };

export function createWorkerEngine(opts: WorkerEngineOptions = {}): WorkerEngine {
  if (typeof Worker === 'undefined') throw new TesseraError('ERROR', 'createWorkerEngine: this environment has no Web Worker (in Node.js, use createEngine())');
  const worker = opts.worker ?? new Worker(new URL(/* @vite-ignore */ './worker.js', import.meta.url), { type: 'module', name: 'tessera-engine' });
  return engineOverPort(worker);
}

/** The engine over any message port whose other end runs serveEngine() (a worker; a MessageChannel in tests). */
export function engineOverPort(port: Port): WorkerEngine {
  let nextId = 0;
  const calls = new Map<number, Call>();
  let info: ModelInfo | null = null;
  let modelId: string | null = null;
  let broken: TesseraError | null = null;
  const post = (m: ToWorker) => port.postMessage({ channel: CHANNEL, ...m });

  port.addEventListener('message', (e: MessageEvent) => {
    const m = e.data as (FromWorker & { channel?: string }) | null;
    if (!m || m.channel !== CHANNEL) return;
    const call = calls.get(m.id);
    if (!call) return;
    call.queue.push(m);
    call.wake?.();
  });
  // A worker that fails to start or throws outside a call: every call in flight, and every later one, fails with why.
  (port as unknown as Worker).addEventListener?.('error', (e: ErrorEvent) => {
    broken = new TesseraError('ERROR', `the engine worker failed: ${e.message || 'it could not be started (check that its script is served)'}`);
    for (const call of calls.values()) {
      call.queue.push({ kind: 'error', id: -1, error: { name: 'Error', message: broken.message, code: 'ERROR' } });
      call.wake?.();
    }
  });

  port.start?.();

  /** Starts a call; next() gives its messages in order. */
  const start = (op: EngineOp, args: unknown[]) => {
    if (broken) throw broken;
    const id = ++nextId;
    const call: Call = { queue: [], wake: null };
    try {
      post({ kind: 'call', id, op, args });
    } catch (e) {
      // A function, a Gpu or a CheckpointSource cannot be cloned into the worker.
      if ((e as { name?: string }).name !== 'DataCloneError') throw e;
      throw new TesseraError('INVALID_ARGUMENT', `${op}: its arguments must be plain data to reach the worker (no functions such as fetchFn, no device, no CheckpointSource; use headers for a token): ${(e as Error).message}`);
    }
    calls.set(id, call);
    const next = async (): Promise<FromWorker> => {
      while (call.queue.length === 0) await new Promise<void>((r) => (call.wake = r));
      call.wake = null;
      return call.queue.shift()!;
    };
    return { id, next, end: () => calls.delete(id) };
  };

  /** A call with one answer; progress goes to onProgress. */
  const request = async <T>(op: EngineOp, args: unknown[], onProgress?: (p: unknown) => void, signal?: AbortSignal): Promise<T> => {
    const c = start(op, args);
    const onAbort = () => post({ kind: 'abort', id: c.id, reason: reasonOf(signal) });
    signal?.addEventListener('abort', onAbort, { once: true });
    if (signal?.aborted) onAbort();
    try {
      for (;;) {
        const m = await c.next();
        if (m.kind === 'progress') onProgress?.(m.progress);
        else if (m.kind === 'result') return m.value as T;
        else if (m.kind === 'error') throw fromWire(m.error);
      }
    } finally {
      signal?.removeEventListener('abort', onAbort);
      c.end();
    }
  };

  const engine: Omit<WorkerEngine, 'chat'> = {
    get info() {
      return info;
    },
    get modelId() {
      return modelId;
    },
    async estimate(source: EngineSource, o: EngineEstimateOptions = {}) {
      const { signal, ...rest } = o;
      checkSignal('estimate', signal);
      return request<ModelEstimate>('estimate', [source instanceof URL ? source.href : source, rest], undefined, signal);
    },
    async load(source: EngineSource, o: EngineLoadOptions = {}) {
      const { onProgress, signal, ...rest } = o;
      if (onProgress !== undefined && typeof onProgress !== 'function') throw new TesseraError('INVALID_ARGUMENT', `load: onProgress must be a function, got ${describeValue(onProgress)}`);
      checkSignal('load', signal);
      if (signal?.aborted) throw abortError('load: cancelled before it started', signal.reason);
      info = null;
      modelId = null;
      const r = await request<{ info: ModelInfo; modelId: string }>('load', [source instanceof URL ? source.href : source, { ...rest, onProgress: onProgress !== undefined }], onProgress as (p: unknown) => void, signal);
      info = r.info;
      modelId = r.modelId;
      return r.info;
    },
    async *generate(prompt: Prompt, o: GenerateOptions = {}) {
      const { signal, ...rest } = o ?? {};
      checkSignal('generate', signal);
      if (signal?.aborted) throw abortError('generate: aborted before it started', signal.reason);
      const c = start('generate', [prompt, rest]);
      let finished = false;
      const stop = (reason: string) => post({ kind: 'abort', id: c.id, reason });
      const onAbort = () => stop(reasonOf(signal));
      signal?.addEventListener('abort', onAbort, { once: true });
      try {
        for (;;) {
          const m = await c.next();
          if (m.kind === 'chunk') yield m.text;
          else if (m.kind === 'result') {
            finished = true;
            return;
          } else if (m.kind === 'error') {
            finished = true;
            throw fromWire(m.error);
          }
        }
      } finally {
        signal?.removeEventListener('abort', onAbort);
        // The loop was left early (break, or an Error thrown by its body): stop the worker's generation.
        if (!finished) stop('generate: the caller stopped reading');
        c.end();
      }
    },
    async logits(ids) {
      return request<Float32Array>('logits', [Array.from(ids as ArrayLike<number>)]);
    },
    stats: () => request<GenerationStats | null>('stats', []),
    memory: () => request<EngineMemory>('memory', []),
    async saveState(): Promise<StateSnapshot> {
      const s = await request<{ id: string; position: number; bytes: number }>('saveState', []);
      return { ...s, dispose: () => (broken ? undefined : post({ kind: 'drop-snapshot', snapshotId: s.id })) };
    },
    async restoreState(snapshot) {
      const id = typeof snapshot === 'string' ? snapshot : (snapshot as StateSnapshot | null)?.id;
      await request<void>('restoreState', [id ?? snapshot]);
    },
    reset: () => request<void>('reset', []),
    async dispose() {
      info = null;
      modelId = null;
      await request<void>('dispose', []);
    },
    terminate() {
      broken ??= new TesseraError('DISPOSED', 'the worker engine was terminated');
      port.terminate?.();
      for (const call of calls.values()) {
        call.queue.push({ kind: 'error', id: -1, error: { name: 'Error', message: broken.message, code: broken.code } });
        call.wake?.();
      }
    },
  };
  return Object.assign(engine, { chat: { completions: chatCompletions(engine) } });
}

function checkSignal(op: string, signal: unknown): void {
  if (signal !== undefined && !isAbortSignal(signal)) throw new TesseraError('INVALID_ARGUMENT', `${op}: signal must be an AbortSignal, got ${describeValue(signal)}`);
}

/** What an abort message says: the signal's reason where it gives one. */
function reasonOf(signal: AbortSignal | undefined): string {
  const r = signal?.reason as unknown;
  if (r instanceof Error && r.name !== 'AbortError') return r.message;
  return typeof r === 'string' && r ? r : 'aborted by the caller';
}
