// Errors a caller may want to tell apart: by name, a lost device (reload the
// model on a new one) and a cancellation (the caller's own AbortSignal); by
// a stable `code` beside the message, every kind the engine reports, so an
// app can react to an Error that crossed a worker boundary without parsing
// its message.

/** What went wrong, in words an app can switch on; the message says the rest. */
export const ERROR_CODES = [
  'ABORTED',            // the caller's AbortSignal fired
  'DEVICE_LOST',        // the GPU device is gone; load the model again
  'NO_WEBGPU',          // no WebGPU here, or no adapter
  'INVALID_ARGUMENT',   // an option, prompt or token id that is not allowed
  'NO_MODEL',           // the engine has no model loaded
  'DISPOSED',           // the model was disposed
  'LOAD_FAILED',        // a checkpoint that cannot be read, parsed or placed on the device
  'WILL_NOT_FIT',       // the model is larger than this device can hold
  'CONTEXT_OVERFLOW',   // the prompt and the generation exceed the context
  'NO_TOKENIZER',       // text in or out, but the checkpoint has no tokenizer.json
  'NO_CHAT_TEMPLATE',   // chat messages, but the checkpoint has no chat template
  'NON_FINITE',         // the forward pass overflowed (NaN or infinity in the logits)
  'SNAPSHOT',           // a snapshot that is unknown, disposed, or of another model
  'QUOTA_EXCEEDED',     // the browser's storage quota is exhausted
  'CACHE',              // the offline cache cannot be read or written
  'ERROR',              // anything else
] as const;
export type ErrorCode = (typeof ERROR_CODES)[number];

/** An Error with a code (ERROR_CODES); `name` stays 'Error' unless given. */
export class TesseraError extends Error {
  constructor(readonly code: ErrorCode, message: string, options?: { cause?: unknown; name?: string }) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    if (options?.name) this.name = options.name;
  }
}

/** The code of any thrown value: its own, or from its name (AbortError, DeviceLostError), else 'ERROR'. */
export function errorCode(e: unknown): ErrorCode {
  const own = (e as { code?: unknown } | null)?.code;
  if (typeof own === 'string' && (ERROR_CODES as readonly string[]).includes(own)) return own as ErrorCode;
  const name = (e as { name?: unknown } | null)?.name;
  if (name === 'AbortError') return 'ABORTED';
  if (name === 'DeviceLostError') return 'DEVICE_LOST';
  return 'ERROR';
}

/** `e` with `code` set where it has none (a plain Error from deep inside gets the code of the step that failed). */
export function withCode<E>(e: E, code: ErrorCode): E {
  if (e instanceof Error && errorCode(e) === 'ERROR') Object.defineProperty(e, 'code', { value: code, enumerable: true, configurable: true });
  return e;
}

/** The GPU device is gone (destroyed, or lost to a driver reset or out-of-memory); load the model again. */
export class DeviceLostError extends Error {
  override readonly name = 'DeviceLostError';
  readonly code = 'DEVICE_LOST';
  constructor(op: string, readonly reason: string, detail: string) {
    super(`${op}: the GPU device was lost (${reason}${detail ? `: ${detail}` : ''}); load the model again, which opens a new device`);
  }
}

/**
 * The Error a cancellation rejects with: named AbortError (as fetch's),
 * keeping the signal's reason when it says more than the default one
 * ("This operation was aborted").
 */
export function abortError(what: string, reason: unknown): Error {
  const own = reason instanceof Error && reason.name !== 'AbortError' && reason.message;
  const why = own ? ` (${(reason as Error).message})` : typeof reason === 'string' && reason ? ` (${reason})` : '';
  return new TesseraError('ABORTED', `${what}${why}`, { cause: reason, name: 'AbortError' });
}

/** A value as an Error message shows what was given: "q2", 1.5, NaN, null, an array, a Map. */
export function describeValue(v: unknown): string {
  if (typeof v === 'string') return JSON.stringify(v);
  if (typeof v === 'number' || typeof v === 'boolean' || typeof v === 'bigint' || v == null) return String(v);
  if (typeof v === 'function') return 'a function';
  if (typeof v === 'symbol') return 'a symbol';
  if (Array.isArray(v)) return 'an array';
  const name = (v as object).constructor?.name;
  return name && name !== 'Object' ? `a ${name}` : 'an object';
}
