// Errors a caller may want to tell apart by name: a lost device (reload the
// model on a new one) and a cancellation (the caller's own AbortSignal).

/** The GPU device is gone (destroyed, or lost to a driver reset or out-of-memory); load the model again. */
export class DeviceLostError extends Error {
  override readonly name = 'DeviceLostError';
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
  const e = new Error(`${what}${why}`, { cause: reason });
  e.name = 'AbortError';
  return e;
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
