// One HTTP request of a URL source and its body, under a stall timer and the
// caller's AbortSignal, with the helpers that describe what a server did
// (status, headers, bytes received) for the Errors source_url.ts throws.

import { abortError } from '../../runtime/errors';
import type { FetchFn } from './source';

/** What every request of one source shares. */
export interface Net {
  fetchFn: FetchFn;
  timeoutMs: number;
  signal?: AbortSignal;
  /** Requests in flight, which the signal's one listener cancels (one listener per source, not per request). */
  active: Set<Exchange>;
}

/** 'fetch failed: connect ECONNREFUSED 127.0.0.1:9': undici hides the reason in `cause`. */
function errorText(e: unknown): string {
  if (!(e instanceof Error)) return String(e);
  const cause = e.cause as { message?: string; code?: string } | undefined;
  const why = cause?.message || cause?.code;
  return why && why !== e.message ? `${e.message}: ${why}` : e.message;
}

function kindOf(v: unknown): string {
  if (v === null || v === undefined) return String(v);
  if (typeof v !== 'object') return `a ${typeof v}`;
  const name = (v as object).constructor?.name;
  return name && name !== 'Object' ? `a ${name}` : 'an object';
}

/** A Response, or something close enough to read (a custom fetchFn may return its own class). */
function isResponse(v: unknown): v is Response {
  const r = v as Response;
  return typeof v === 'object' && v !== null && typeof r.status === 'number' && typeof r.headers?.get === 'function' && typeof r.arrayBuffer === 'function';
}

/** Content-Encoding other than identity: the body's bytes are not the file's bytes. */
export function encodingOf(res: Response): string | null {
  const enc = res.headers.get('content-encoding')?.trim().toLowerCase();
  return enc && enc !== 'identity' ? enc : null;
}

/** Content-Length, when it counts the file's own bytes (no Content-Encoding). */
export function lengthOf(res: Response): number | null {
  const len = res.headers.get('content-length');
  if (encodingOf(res) || len === null || !/^\s*\d+\s*$/.test(len)) return null;
  return Number(len);
}

export interface ContentRange {
  /** First and last byte sent; null for `bytes *\/N` (a 416). */
  first: number | null;
  last: number | null;
  /** The file's size; null for `bytes a-b/*`. */
  total: number | null;
}

/** `bytes 0-7/100`, `bytes 0-7/*` or `bytes *\/100`; null when absent or malformed. */
export function parseContentRange(v: string | null): ContentRange | null {
  const m = v && /^\s*bytes\s+(?:(\d+)-(\d+)|\*)\s*\/\s*(\d+|\*)\s*$/i.exec(v);
  if (!m) return null;
  const num = (s: string | undefined) => (s === undefined || s === '*' ? null : Number(s));
  const r = { first: num(m[1]), last: num(m[2]), total: num(m[3]) };
  if ([r.first, r.last, r.total].some((n) => n !== null && !Number.isSafeInteger(n))) return null;
  if (r.first !== null && (r.first > r.last! || (r.total !== null && r.last! >= r.total))) return null;
  return r;
}

/** 'HTTP 206 Partial Content (Content-Range: bytes 0-7/100, Content-Length: 8)', plus where a redirect led. */
function answerOf(res: Response): string {
  const shown = ['Content-Range', 'Content-Length', 'Content-Encoding'].flatMap((h) => {
    const v = res.headers.get(h);
    return v === null ? [] : [`${h}: ${v}`];
  });
  const from = res.redirected && res.url ? ` from ${res.url} (redirected)` : '';
  return `HTTP ${res.status}${res.statusText ? ` ${res.statusText}` : ''}${from}${shown.length ? ` (${shown.join(', ')})` : ''}`;
}

/** Why a status is refused, with what the server said about it (Hugging Face sends X-Error-Message). */
export function statusHint(res: Response, wanted: string): string {
  const said = res.headers.get('x-error-message');
  const parts = said ? [`the server says: ${said}`] : [];
  const location = res.headers.get('location');
  if (res.status === 401 || res.status === 403) {
    parts.push('a gated or private repository needs an access token: pass loadModel(url, { fetchFn }) a fetch that adds an Authorization header');
  } else if (res.status === 0 || (res.status >= 300 && res.status < 400)) {
    parts.push(`a redirect that was not followed${location ? ` (to ${location})` : ''}, or an opaque response`);
  } else if (res.ok) {
    parts.push(`expected ${wanted}`);
  }
  return parts.join('; ');
}

/**
 * One request and its body, under a stall timer and the caller's signal.
 * Every await goes through `wait`, which rejects as soon as either fires,
 * even when a custom fetchFn or its body ignores the abort.
 */
export class Exchange {
  /** Body bytes received so far. */
  received = 0;
  /** Bytes this request should bring, for messages; null when unknown. */
  expected: number | null;
  private answer = '';
  private res: Response | undefined;
  private error: Error | undefined;
  private timer: ReturnType<typeof setTimeout> | undefined;
  private readonly controller = new AbortController();
  private stop!: (e: Error) => void;
  private readonly stopped = new Promise<never>((_, reject) => (this.stop = reject));

  constructor(
    private readonly net: Net,
    readonly what: string,
    expected: number | null,
  ) {
    this.expected = expected;
    this.stopped.catch(() => {}); // observed through wait(); never an unhandled rejection
    net.active.add(this);
    this.arm();
  }

  /** `GET <url> (bytes=0-7) failed: HTTP 206 ... ; <problem>`. */
  fail(problem: string): Error {
    const parts = [this.answer, problem].filter(Boolean);
    return new Error(`${this.what} failed: ${parts.join('; ')}`);
  }

  private bytes(): string {
    return this.expected === null ? `${this.received} bytes` : `${this.received} of ${this.expected} bytes`;
  }

  /** (Re)starts the stall timer: called when the request starts and whenever bytes arrive. */
  private arm(): void {
    clearTimeout(this.timer);
    this.timer = setTimeout(() => {
      const waiting = this.answer ? 'the body sent nothing more' : 'no response headers came';
      this.interrupt(this.fail(`${waiting} for ${this.net.timeoutMs} ms (the timeoutMs option), after ${this.bytes()}`));
    }, this.net.timeoutMs);
  }

  /** Called by the signal's listener. */
  cancel(reason: unknown): void {
    this.interrupt(abortError(`${this.what}: the load was cancelled`, reason));
  }

  private interrupt(e: Error): void {
    if (this.error) return;
    this.error = e;
    this.stop(e);
    this.controller.abort(e); // ends the download where the fetchFn honours its signal
  }

  private wait<T>(p: Promise<T>): Promise<T> {
    return Promise.race([p, this.stopped]);
  }

  /** The response headers, checked to be a Response; `init` gets the exchange's signal. */
  async fetch(url: string, init: RequestInit): Promise<Response> {
    let res: unknown;
    try {
      // Through then(): a fetchFn that throws synchronously rejects like one that rejects.
      res = await this.wait(Promise.resolve().then(() => this.net.fetchFn(url, { ...init, signal: this.controller.signal })));
    } catch (e) {
      throw this.error ?? this.fail(errorText(e));
    }
    if (!isResponse(res)) throw this.fail(`fetchFn returned ${kindOf(res)}, not a Response`);
    this.res = res;
    this.answer = answerOf(res);
    this.arm();
    return res;
  }

  /**
   * Feeds the body to `take(chunk, offset)` until it returns true (enough) or
   * the body ends; a gap longer than timeoutMs, a dropped connection or the
   * signal reject.
   */
  async stream(res: Response, take: (chunk: Uint8Array, at: number) => boolean): Promise<void> {
    const body = res.body as ReadableStream<Uint8Array> | null;
    if (!body || typeof body.getReader !== 'function') {
      let all: Uint8Array;
      try {
        all = new Uint8Array(await this.wait(res.arrayBuffer()));
      } catch (e) {
        throw this.error ?? this.fail(`the download failed (${errorText(e)})`);
      }
      this.received = all.length;
      take(all, 0);
      return;
    }
    const reader = body.getReader();
    try {
      for (;;) {
        let step: ReadableStreamReadResult<Uint8Array>;
        try {
          step = await this.wait(reader.read());
        } catch (e) {
          throw this.error ?? this.fail(`the connection dropped after ${this.bytes()} (${errorText(e)})`);
        }
        if (step.done) return;
        const at = this.received;
        this.received += step.value.length;
        this.arm();
        if (take(step.value, at)) return;
      }
    } finally {
      // Not awaited: a stalled stream may never settle its cancel.
      reader.cancel().catch(() => {});
    }
  }

  /** Stops the timer and leaves the in-flight set; ends any download left unread. */
  close(): void {
    clearTimeout(this.timer);
    this.net.active.delete(this);
    const body = this.res?.body;
    if (body && !body.locked && typeof body.cancel === 'function') body.cancel().catch(() => {});
    this.controller.abort();
  }
}

/** Runs `work` on a new Exchange, closing it however it ends. */
export async function exchange<T>(net: Net, what: string, expected: number | null, work: (x: Exchange) => Promise<T>): Promise<T> {
  if (net.signal?.aborted) throw abortError(`${what}: the load was cancelled`, net.signal.reason);
  const x = new Exchange(net, what, expected);
  try {
    return await work(x);
  } finally {
    x.close();
  }
}
