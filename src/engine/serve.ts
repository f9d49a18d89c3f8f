// The worker's side of the engine: an in-thread engine (engine.ts) driven by
// messages (protocol.ts). Calls run as they arrive, not one after another,
// so an abort, stats() or memory() is answered while a generation runs; the
// engine itself orders what touches the conversation (see src/lm.ts).

import { createEngine } from './engine';
import { CHANNEL, toWire, type FromWorker, type ToWorker } from './protocol';
import type { StateSnapshot } from '../lm/snapshots';
import { TesseraError } from '../runtime/errors';

/** A worker's global scope, or either end of a MessageChannel. */
export interface Endpoint {
  postMessage(message: unknown, transfer?: Transferable[]): void;
  addEventListener(type: 'message', listener: (e: MessageEvent) => void): void;
  /** A MessagePort delivers nothing to addEventListener listeners until started. */
  start?(): void;
}

/** Serves an engine on `endpoint` (in a worker: self) until the worker ends. */
export function serveEngine(endpoint: Endpoint): void {
  const engine = createEngine();
  const controllers = new Map<number, AbortController>();
  /** The worker keeps snapshots; the page holds their ids. */
  const snapshots = new Map<string, StateSnapshot>();
  const send = (m: FromWorker, transfer: Transferable[] = []) => endpoint.postMessage({ channel: CHANNEL, ...m }, transfer);

  const run = async (id: number, op: ToWorker & { kind: 'call' }): Promise<unknown> => {
    const signal = controllers.get(id)!.signal;
    const args = op.args;
    switch (op.op) {
      case 'estimate':
        return engine.estimate(args[0] as never, { ...(args[1] as object), signal });
      case 'load': {
        const opts = (args[1] ?? {}) as Record<string, unknown>;
        if (typeof opts !== 'object' || opts === null) throw new TesseraError('INVALID_ARGUMENT', 'load: options must be an object');
        snapshots.clear(); // the engine frees them with the model it replaces
        const info = await engine.load(args[0] as never, { ...opts, signal, onProgress: opts.onProgress ? (p) => send({ kind: 'progress', id, progress: p }) : undefined });
        return { info, modelId: engine.modelId };
      }
      case 'generate': {
        for await (const text of engine.generate(args[0] as never, { ...(args[1] as object), signal })) send({ kind: 'chunk', id, text });
        return engine.stats();
      }
      case 'logits':
        return engine.logits(args[0] as number[]);
      case 'stats':
        return engine.stats();
      case 'memory':
        return engine.memory();
      case 'saveState': {
        const snap = await engine.saveState();
        snapshots.set(snap.id, snap);
        return { id: snap.id, position: snap.position, bytes: snap.bytes };
      }
      case 'restoreState':
        return engine.restoreState(args[0] as string);
      case 'reset':
        return engine.reset();
      case 'dispose':
        snapshots.clear(); // the engine frees them with the model
        return engine.dispose();
      default:
        throw new TesseraError('INVALID_ARGUMENT', `engine: unknown operation '${String((op as { op: unknown }).op)}'`);
    }
  };

  endpoint.addEventListener('message', (e: MessageEvent) => {
    const m = e.data as (ToWorker & { channel?: string }) | null;
    if (!m || m.channel !== CHANNEL) return;
    if (m.kind === 'abort') {
      controllers.get(m.id)?.abort(m.reason); // the reason the page gave, which the AbortError names
      return;
    }
    if (m.kind === 'drop-snapshot') {
      snapshots.get(m.snapshotId)?.dispose();
      snapshots.delete(m.snapshotId);
      return;
    }
    if (m.kind !== 'call') return;
    controllers.set(m.id, new AbortController());
    run(m.id, m).then(
      (value) => {
        // Logits go back without a copy.
        const transfer = value instanceof Float32Array ? [value.buffer as ArrayBuffer] : [];
        send({ kind: 'result', id: m.id, value }, transfer);
      },
      (err) => send({ kind: 'error', id: m.id, error: toWire(err) }),
    ).finally(() => controllers.delete(m.id));
  });
  endpoint.start?.();
}
