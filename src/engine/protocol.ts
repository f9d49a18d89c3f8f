// The messages between createWorkerEngine() (the page) and serveEngine()
// (the worker). Every call has an id; its answer is a result or an error,
// after any chunks (generated text) or progress it streams. Cancellation is
// a message naming the call. Errors travel as { name, message, code } and
// are rebuilt as TesseraErrors, so `code` and `name` (AbortError) survive.

import { errorCode, TesseraError, type ErrorCode } from '../runtime/errors';

/** The engine methods a call names. */
export type EngineOp = 'estimate' | 'load' | 'generate' | 'logits' | 'stats' | 'memory' | 'saveState' | 'restoreState' | 'reset' | 'dispose';

export type ToWorker =
  | { kind: 'call'; id: number; op: EngineOp; args: unknown[] }
  | { kind: 'abort'; id: number; reason: string }
  | { kind: 'drop-snapshot'; snapshotId: string };

export interface WireError {
  name: string;
  message: string;
  code: ErrorCode;
}

export type FromWorker =
  | { kind: 'result'; id: number; value: unknown }
  | { kind: 'error'; id: number; error: WireError }
  | { kind: 'chunk'; id: number; text: string }
  | { kind: 'progress'; id: number; progress: unknown };

/** Marks the messages of this protocol among others a worker may receive. */
export const CHANNEL = 'tessera-engine';

export function toWire(e: unknown): WireError {
  const error = e instanceof Error ? e : new Error(String(e));
  return { name: error.name, message: error.message, code: errorCode(e) };
}

export function fromWire(w: WireError): TesseraError {
  return new TesseraError(w.code, w.message, { name: w.name });
}
