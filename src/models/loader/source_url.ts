// Checkpoint files from a base URL (a Hugging Face repo's resolve/main/, a
// static server), read with HTTP Range requests so one tensor at a time
// crosses the network.
//
// The network is not trusted: each request runs under a stall timer and the
// caller's AbortSignal, and each answer is checked (status, Content-Range,
// Content-Length, Content-Encoding, the bytes that actually arrive) before its
// bytes are used. Every failure is an Error that says what was asked (method,
// URL, range) and what the server did (status, headers, bytes received).

import { abortError } from '../../runtime/errors';
import { checkName, checkSourceOptions, checkRange, decodeUtf8, missingFile, type CheckpointSource, type SourceOptions } from './source';
import { encodingOf, exchange, lengthOf, parseContentRange, statusHint, type Exchange, type Net } from './http';

/** How long a request may receive nothing (no headers, or no body bytes) before it fails. */
export const DEFAULT_TIMEOUT_MS = 30_000;

/** A file's size and where it came from, to name both when a later answer disagrees. */
interface Size {
  bytes: number;
  from: string;
}

/**
 * Files under a base URL, e.g. `https://huggingface.co/<repo>/resolve/main/`.
 * Sizes come from HEAD (or a one-byte Range GET); reads are Range GETs. A
 * server that ignores Range still works: the body is streamed, the wanted
 * bytes kept and the download cancelled, so memory stays at one tensor
 * (though each read then downloads the file up to its end).
 * `opts.fetchFn` adds headers (an access token for gated repositories),
 * `opts.signal` cancels, and `opts.timeoutMs` bounds how long a request may
 * receive nothing.
 */
export function fromUrl(baseUrl: string | URL, opts: SourceOptions = {}): CheckpointSource {
  checkSourceOptions('fromUrl', opts);
  const base = new URL(String(baseUrl));
  if (base.protocol !== 'http:' && base.protocol !== 'https:') throw new Error(`fromUrl: unsupported protocol in ${base.href} (expected http or https)`);
  if (!base.pathname.endsWith('/')) base.pathname += '/';
  const describe = `URL ${base.href}`;
  const net: Net = { fetchFn: opts.fetchFn ?? ((u, i) => fetch(u, i)), timeoutMs: opts.timeoutMs ?? DEFAULT_TIMEOUT_MS, signal: opts.signal, active: new Set() };
  opts.signal?.addEventListener('abort', () => [...net.active].forEach((x) => x.cancel(opts.signal!.reason)), { once: true });
  const sizes = new Map<string, Size>();
  const urlOf = (name: string) => {
    checkName(describe, name);
    return new URL(name.split('/').map(encodeURIComponent).join('/'), base).href;
  };

  /** A Content-Range total must be the size known so far; the first one seen becomes it. */
  const checkTotal = (x: Exchange, name: string, total: number | null) => {
    if (total === null) return;
    const known = sizes.get(name);
    if (known && known.bytes !== total) throw x.fail(`Content-Range gives the file's size as ${total} bytes, but ${known.from} said ${known.bytes}`);
    if (!known) sizes.set(name, { bytes: total, from: 'an earlier Content-Range' });
  };

  /** The size from HEAD: null when missing, undefined when HEAD does not tell (refused, or no length). */
  const head = (name: string, url: string) =>
    exchange(net, `HEAD ${url}`, null, async (x): Promise<number | null | undefined> => {
      const res = await x.fetch(url, { method: 'HEAD' });
      if (res.status === 404 || res.status === 410) return null;
      const size = res.ok ? lengthOf(res) : null;
      if (size !== null) sizes.set(name, { bytes: size, from: `the Content-Length of HEAD ${url}` });
      return size ?? undefined;
    });

  /** The size from a one-byte Range GET's Content-Range (or a 200's length): null when missing. */
  const rangeProbe = (name: string, url: string) =>
    exchange(net, `GET ${url} (bytes=0-0)`, 1, async (x): Promise<number | null> => {
      const res = await x.fetch(url, { headers: { Range: 'bytes=0-0' } });
      if (res.status === 404 || res.status === 410) return null;
      const enc = encodingOf(res);
      if (res.status === 206 || res.status === 416) {
        if (enc) throw x.fail(`a range compressed with Content-Encoding ${enc} does not give the file's size (the server must send ranges uncompressed)`);
        const cr = parseContentRange(res.headers.get('content-range'));
        if (cr?.total == null) throw x.fail(`HTTP ${res.status} without a readable Content-Range header, so the file size is unknown (a cross-origin server must expose Content-Range)`);
        if (res.status === 206 && (cr.first !== 0 || cr.last !== 0)) throw x.fail(`the server sent bytes ${cr.first}-${cr.last}, not the bytes 0-0 asked`);
        sizes.set(name, { bytes: cr.total, from: `the Content-Range of GET ${url} (bytes=0-0)` });
        return cr.total;
      }
      if (res.status !== 200) throw x.fail(statusHint(res, '206 Partial Content'));
      // The server ignored Range and is sending the whole file: take its length, or count it.
      if (enc) throw x.fail(`the server ignored Range and sent the file compressed (Content-Encoding ${enc}), so its size is unknown`);
      x.expected = lengthOf(res);
      if (x.expected === null) await x.stream(res, () => false);
      const size = x.expected ?? x.received;
      sizes.set(name, { bytes: size, from: `the length of GET ${url} (which ignored Range)` });
      return size;
    });

  /** The file's size, or null when the server says it does not exist. */
  const probe = async (name: string): Promise<number | null> => {
    const known = sizes.get(name);
    if (known) return known.bytes;
    const url = urlOf(name);
    const size = await head(name, url);
    return size !== undefined ? size : rangeProbe(name, url);
  };

  /** Bytes [start, end) of the file at `url`, from a 206 or from a 200 that ignored Range. */
  const readRange = (name: string, url: string, start: number, end: number) =>
    exchange(net, `GET ${url} (bytes=${start}-${end - 1})`, end - start, async (x): Promise<Uint8Array> => {
      const len = end - start;
      const res = await x.fetch(url, { headers: { Range: `bytes=${start}-${end - 1}` } });
      if (res.status === 404 || res.status === 410) throw missingFile(describe, name);
      if (res.status === 416) throw x.fail(`the range lies outside file "${name}"`);
      if (res.status !== 206 && res.status !== 200) throw x.fail(statusHint(res, '206 Partial Content'));
      const enc = encodingOf(res);
      if (enc) throw x.fail(`the response to a Range request is compressed (Content-Encoding ${enc}), so its bytes cannot be placed in the file (the server must send ranges uncompressed)`);
      const known = sizes.get(name);
      const cl = lengthOf(res);
      const out = new Uint8Array(len);
      if (res.status === 206) {
        const cr = parseContentRange(res.headers.get('content-range'));
        if (!cr || cr.first === null) throw x.fail(`without a readable Content-Range header, the bytes sent cannot be placed in the file (a cross-origin server must expose Content-Range)`);
        if (cr.first !== start || cr.last !== end - 1) throw x.fail(`the server sent bytes ${cr.first}-${cr.last}, not the bytes ${start}-${end - 1} asked`);
        checkTotal(x, name, cr.total);
        if (cl !== null && cl !== len) throw x.fail(`Content-Length ${cl} is not the ${len} bytes asked`);
        await x.stream(res, (chunk, at) => {
          if (at + chunk.length > len) throw x.fail(`the body holds more than the ${len} bytes asked (at least ${at + chunk.length})`);
          out.set(chunk, at);
          return false;
        });
        if (x.received < len) throw x.fail(`the body ended after ${x.received} of the ${len} bytes asked`);
        return out;
      }
      // 200: the server ignored Range and sends the whole file; keep [start, end) and stop there.
      x.expected = end;
      const ignored = 'the server ignored Range and sent the whole file';
      if (cl !== null && known && cl !== known.bytes) throw x.fail(`${ignored}, but its Content-Length ${cl} is not the file's size: ${known.from} said ${known.bytes}`);
      if (cl !== null && cl < end) throw x.fail(`${ignored}, which at ${cl} bytes ends before byte ${end}`);
      await x.stream(res, (chunk, at) => {
        const from = Math.max(start - at, 0);
        const to = Math.min(chunk.length, end - at);
        if (from < to) out.set(chunk.subarray(from, to), at + from - start);
        return at + chunk.length >= end;
      });
      if (x.received < end) throw x.fail(`${ignored}, but the body ended after ${x.received} of the ${end} bytes needed`);
      return out;
    });

  /** The whole file; its length checked against Content-Length and the size known so far. */
  const readWhole = (name: string, url: string) =>
    exchange(net, `GET ${url}`, null, async (x): Promise<Uint8Array> => {
      const res = await x.fetch(url, {});
      if (res.status === 404 || res.status === 410) throw missingFile(describe, name);
      if (res.status !== 200) throw x.fail(statusHint(res, '200 OK with the whole file'));
      const known = sizes.get(name);
      // A compressed body arrives decoded: neither Content-Length nor HEAD's size counts its bytes.
      const plain = !encodingOf(res);
      const cl = lengthOf(res);
      if (plain && cl !== null && known && cl !== known.bytes) throw x.fail(`Content-Length ${cl} is not the file's size: ${known.from} said ${known.bytes}`);
      x.expected = plain ? cl ?? known?.bytes ?? null : null;
      const chunks: Uint8Array[] = [];
      await x.stream(res, (chunk) => {
        chunks.push(chunk);
        return false;
      });
      if (x.expected !== null && x.received !== x.expected) throw x.fail(`the body ${x.received < x.expected ? 'ended after' : 'held'} ${x.received} of the ${x.expected} bytes expected`);
      const out = new Uint8Array(x.received);
      let at = 0;
      for (const c of chunks) {
        out.set(c, at);
        at += c.length;
      }
      return out;
    });

  return {
    describe,
    async list() {
      return null;
    },
    async has(name) {
      return (await probe(name)) !== null;
    },
    async size(name) {
      const size = await probe(name);
      if (size === null) throw missingFile(describe, name);
      return size;
    },
    async read(name, start, end) {
      checkRange(describe, name, start, end);
      const url = urlOf(name);
      if (net.signal?.aborted) throw abortError(`reading file "${name}" in ${describe}: the load was cancelled`, net.signal.reason);
      const known = sizes.get(name);
      if (known && end > known.bytes) throw new Error(`reading file "${name}" in ${describe}: range [${start}, ${end}) runs past its end (${known.bytes} bytes)`);
      if (start === end) return new Uint8Array(0);
      return readRange(name, url, start, end);
    },
    async text(name) {
      return decodeUtf8(describe, name, await readWhole(name, urlOf(name)));
    },
  };
}
