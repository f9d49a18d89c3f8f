// URL sources against a real HTTP server on 127.0.0.1 that misbehaves on
// purpose: it stalls, drops connections, and lies about lengths and ranges.
// Each case must end in an Error that says what the server did, well within
// a short timeout, and an AbortSignal must cancel a stalled read at once.

import { gzipSync } from 'node:zlib';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openCheckpoint } from '../../src/models/loader/safetensors';
import { fromMap, fromUrl, openSource, type FetchFn } from '../../src/models/loader/source';
import { fromPath } from '../../src/node/folder';
import { writeSafetensors } from '../helpers/fixtures';
import { startServer, type TestServer } from '../helpers/http_server';
import { randn } from '../helpers/random';

const FILE = 'model.safetensors';
const tensors = {
  a: { dtype: 'F32' as const, shape: [4, 8], data: randn(1, 32) },
  b: { dtype: 'BF16' as const, shape: [8], data: randn(2, 8) },
  c: { dtype: 'F16' as const, shape: [3], data: randn(3, 3) },
};
const files: Record<string, Uint8Array> = { [FILE]: writeSafetensors(tensors), 'config.json': new TextEncoder().encode(JSON.stringify({ model_type: 'llama', pad: 'x'.repeat(200) })) };
const SIZE = files[FILE].length;
const TIMEOUT = 300;
/** A stalled response is dropped by the server after this long at most. */
const STALL_CAP = 5_000;

/**
 * Serves `files` under /<mode>/: HEAD gives sizes, GET with Range a 206 and
 * GET without a 200, except where `mode` names a misbehaviour.
 */
function serve(req: IncomingMessage, res: ServerResponse, server: TestServer): void {
  const [, mode, ...rest] = new URL(req.url ?? '/', 'http://x').pathname.split('/');
  const name = rest.join('/');
  const body = files[name];
  const stall = () => server.hold(STALL_CAP, () => req.socket.destroy());
  if (mode === 'redirect') return void res.writeHead(302, { location: `/good/${name}` }).end();
  if (mode === 'loop') return void res.writeHead(302, { location: `/loop/${name}` }).end();
  if (mode === 'error500') return void res.writeHead(500).end('boom');
  if (mode === 'gated') return void res.writeHead(401, { 'x-error-message': 'Access to this model is restricted' }).end();
  if (!body) return void res.writeHead(404).end();
  if (req.method === 'HEAD') {
    if (mode === 'stall-head') return stall();
    return void res.writeHead(200, { 'content-length': mode === 'head-lies' ? SIZE + 50 : body.length }).end();
  }
  const m = /^bytes=(\d+)-(\d+)$/.exec(req.headers.range ?? '');
  if (!m) {
    // The whole file (text()).
    if (mode === 'stall-text' || mode === 'cut-text') {
      res.writeHead(200, { 'content-length': body.length }).write(body.subarray(0, 50));
      return mode === 'stall-text' ? stall() : void server.hold(20, () => req.socket.destroy());
    }
    return void res.writeHead(200, { 'content-length': body.length }).end(body);
  }
  const [a, b] = [Number(m[1]), Math.min(Number(m[2]), body.length - 1)];
  const part = body.subarray(a, b + 1);
  const half = part.subarray(0, part.length >> 1);
  const range = (first: number, last: number, total = body.length) => ({ 'content-range': `bytes ${first}-${last}/${total}` });
  switch (mode) {
    case 'ignore-range':
      return void res.writeHead(200, { 'content-length': body.length }).end(body);
    case 'ignore-range-short': // an honest Content-Length, of a shorter file than HEAD said
      return void res.writeHead(200, { 'content-length': body.length - 10 }).end(body.subarray(0, body.length - 10));
    case 'ignore-range-cut': // no Content-Length, and the body stops halfway
      return void res.writeHead(200).end(body.subarray(0, body.length >> 1));
    case 'stall-headers':
      return stall();
    case 'stall-body':
      res.writeHead(206, { ...range(a, b), 'content-length': part.length }).write(half);
      return stall();
    case 'drop':
      res.writeHead(206, { ...range(a, b), 'content-length': part.length }).write(half);
      return server.hold(20, () => req.socket.destroy());
    case 'wrong-range':
      return void res.writeHead(206, range(a + 1, b + 1)).end(body.subarray(a + 1, b + 2));
    case 'wrong-total':
      return void res.writeHead(206, range(a, b, body.length + 5)).end(part);
    case 'no-content-range':
      return void res.writeHead(206).end(part);
    case 'short': // chunked, so only the end of the body tells
      return void res.writeHead(206, range(a, b)).end(half);
    case 'short-length': // an honest Content-Length that is not the range's
      return void res.writeHead(206, { ...range(a, b), 'content-length': half.length }).end(half);
    case 'long':
      return void res.writeHead(206, range(a, b)).end(Buffer.concat([part, new Uint8Array(4)]));
    case 'gzip':
      return void res.writeHead(206, { ...range(a, b), 'content-encoding': 'gzip' }).end(gzipSync(part));
    default:
      return void res.writeHead(206, { ...range(a, b), 'content-length': part.length }).end(part);
  }
}

let server: TestServer;
beforeAll(async () => {
  server = await startServer(serve);
});
afterAll(async () => {
  await server?.close();
});

/** The rejection of `run()` and how long it took to come. */
async function failure(run: () => Promise<unknown>): Promise<{ error: Error; ms: number }> {
  const t0 = performance.now();
  const error = await run().then(
    () => new Error('it did not fail'),
    (e: Error) => e,
  );
  return { error, ms: performance.now() - t0 };
}

const esc = (s: string) => s.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');

describe('a URL source on a real server', () => {
  it('loads a full checkpoint from a good server, a redirect, and a server that ignores Range', async () => {
    for (const mode of ['good', 'redirect', 'ignore-range']) {
      const src = openSource(`${server.url}${mode}/`, { timeoutMs: TIMEOUT });
      const ckpt = await openCheckpoint(src);
      expect(ckpt.names, mode).toEqual(['a', 'b', 'c']);
      expect(await ckpt.readF32('a'), mode).toEqual(tensors.a.data);
      expect((await ckpt.readF32('b')).length).toBe(8);
      expect(JSON.parse(await src.text('config.json')).model_type).toBe('llama');
      expect(await src.has('missing.json')).toBe(false);
    }
    expect(server.log).toContain(`GET /good/${FILE} bytes=0-7`);
  });

  // [mode, what the Error must say]: openCheckpoint reads the 8-byte header length first.
  const broken: [string, (url: string) => string | RegExp][] = [
    ['stall-headers', (u) => `GET ${u}${FILE} (bytes=0-7) failed: no response headers came for 300 ms (the timeoutMs option), after 0 of 8 bytes`],
    ['stall-body', (u) => `GET ${u}${FILE} (bytes=0-7) failed: HTTP 206 Partial Content (Content-Range: bytes 0-7/${SIZE}, Content-Length: 8); the body sent nothing more for 300 ms (the timeoutMs option), after 4 of 8 bytes`],
    ['stall-head', (u) => `HEAD ${u}${FILE} failed: no response headers came for 300 ms (the timeoutMs option), after 0 bytes`],
    ['drop', (u) => new RegExp(`^GET ${esc(u + FILE)} \\(bytes=0-7\\) failed: HTTP 206 Partial Content \\(.*\\); the connection dropped after 4 of 8 bytes \\(terminated`)],
    ['wrong-range', (u) => `GET ${u}${FILE} (bytes=0-7) failed: HTTP 206 Partial Content (Content-Range: bytes 1-8/${SIZE}); the server sent bytes 1-8, not the bytes 0-7 asked`],
    ['wrong-total', (u) => `failed: HTTP 206 Partial Content (Content-Range: bytes 0-7/${SIZE + 5}); Content-Range gives the file's size as ${SIZE + 5} bytes, but the Content-Length of HEAD ${u}${FILE} said ${SIZE}`],
    ['head-lies', (u) => `Content-Range gives the file's size as ${SIZE} bytes, but the Content-Length of HEAD ${u}${FILE} said ${SIZE + 50}`],
    ['no-content-range', () => /\(bytes=0-7\) failed: HTTP 206 Partial Content; without a readable Content-Range header, the bytes sent cannot be placed in the file/],
    ['short', () => /\(bytes=0-7\) failed: HTTP 206 Partial Content \(Content-Range: bytes 0-7\/\d+\); the body ended after 4 of the 8 bytes asked/],
    ['short-length', () => /\(bytes=0-7\) failed: HTTP 206 Partial Content \(Content-Range: bytes 0-7\/\d+, Content-Length: 4\); Content-Length 4 is not the 8 bytes asked/],
    ['long', () => /\(bytes=0-7\) failed: HTTP 206 Partial Content \(Content-Range: bytes 0-7\/\d+\); the body holds more than the 8 bytes asked \(at least 12\)/],
    ['gzip', () => /\(bytes=0-7\) failed: HTTP 206 Partial Content \(Content-Range: bytes 0-7\/\d+, Content-Encoding: gzip\); the response to a Range request is compressed \(Content-Encoding gzip\)/],
    ['ignore-range-short', () => `failed: HTTP 200 OK (Content-Length: ${SIZE - 10}); the server ignored Range and sent the whole file, but its Content-Length ${SIZE - 10} is not the file's size`],
    ['error500', (u) => `GET ${u}${FILE} (bytes=0-0) failed: HTTP 500 Internal Server Error`],
    ['gated', () => /failed: HTTP 401 Unauthorized; the server says: Access to this model is restricted; a gated or private repository needs an access token: pass loadModel\(url, \{ fetchFn \}\)/],
    ['loop', (u) => new RegExp(`^HEAD ${esc(u + FILE)} failed: fetch failed: redirect count exceeded`)],
  ];
  it.each(broken)('%s: openCheckpoint fails with a clear Error within the timeout', async (mode, message) => {
    const url = `${server.url}${mode}/`;
    const { error, ms } = await failure(() => openCheckpoint(openSource(url, { timeoutMs: TIMEOUT })));
    expect(error.constructor).toBe(Error);
    expect(error.message).toMatch(typeof message(url) === 'string' ? new RegExp(esc(message(url) as string)) : message(url));
    expect(error.message).not.toMatch(/UTF-8/);
    expect(ms).toBeLessThan(2_000);
  });

  it('checks reads of a whole file (text) and of ranges past what a server that ignores Range sends', async () => {
    const stalled = await failure(() => openSource(`${server.url}stall-text/`, { timeoutMs: TIMEOUT }).text('config.json'));
    const len = files['config.json'].length;
    expect(stalled.error.message).toBe(`GET ${server.url}stall-text/config.json failed: HTTP 200 OK (Content-Length: ${len}); the body sent nothing more for 300 ms (the timeoutMs option), after 50 of ${len} bytes`);
    expect(stalled.ms).toBeLessThan(2_000);
    const cut = await failure(() => openSource(`${server.url}cut-text/`, { timeoutMs: TIMEOUT }).text('config.json'));
    expect(cut.error.message).toMatch(new RegExp(`^GET ${esc(server.url)}cut-text/config\\.json failed: HTTP 200 OK .*; the connection dropped after 50 of ${len} bytes`));
    // HEAD said SIZE; a whole-file GET that brings another length is refused.
    const lies = openSource(`${server.url}head-lies/`, { timeoutMs: TIMEOUT });
    expect(await lies.size(FILE)).toBe(SIZE + 50);
    await expect(lies.text(FILE)).rejects.toThrow(`Content-Length ${SIZE} is not the file's size: the Content-Length of HEAD ${server.url}head-lies/${FILE} said ${SIZE + 50}`);
    // A server that ignores Range and whose body stops short of the range.
    const cutFile = openSource(`${server.url}ignore-range-cut/`, { timeoutMs: TIMEOUT });
    await expect(cutFile.read(FILE, SIZE - 8, SIZE)).rejects.toThrow(
      `GET ${server.url}ignore-range-cut/${FILE} (bytes=${SIZE - 8}-${SIZE - 1}) failed: HTTP 200 OK; the server ignored Range and sent the whole file, but the body ended after ${SIZE >> 1} of the ${SIZE} bytes needed`,
    );
  });

  it('an AbortSignal cancels a stalled read at once, with an AbortError', async () => {
    for (const mode of ['stall-headers', 'stall-body']) {
      const ctl = new AbortController();
      const src = openSource(`${server.url}${mode}/`, { timeoutMs: 10_000, signal: ctl.signal });
      setTimeout(() => ctl.abort(new Error('the user pressed stop')), 100);
      const { error, ms } = await failure(() => src.read(FILE, 0, 8));
      expect(error.name).toBe('AbortError');
      expect(error.message).toBe(`GET ${server.url}${mode}/${FILE} (bytes=0-7): the load was cancelled (the user pressed stop)`);
      expect(ms).toBeLessThan(1_000);
    }
    // Many reads in flight on one signal (shards opened together): all cancelled, and the
    // signal holds one listener per source, not one per request (Node warns past 10).
    const warnings: string[] = [];
    const onWarning = (w: Error) => warnings.push(w.name);
    process.on('warning', onWarning);
    const many = new AbortController();
    const src = openSource(`${server.url}stall-headers/`, { timeoutMs: 10_000, signal: many.signal });
    const reads = Array.from({ length: 16 }, (_, i) => src.read(FILE, i, i + 8).catch((e: Error) => e.name));
    setTimeout(() => many.abort(), 100);
    expect(await Promise.all(reads)).toEqual(Array(16).fill('AbortError'));
    await new Promise((ok) => setTimeout(ok, 10));
    process.off('warning', onWarning);
    expect(warnings).toEqual([]);
    // Already aborted: nothing is asked of the server.
    const ctl = new AbortController();
    ctl.abort();
    const before = server.log.length;
    const { error } = await failure(() => openCheckpoint(openSource(`${server.url}good/`, { signal: ctl.signal })));
    expect(error.name).toBe('AbortError');
    expect(error.message).toBe(`HEAD ${server.url}good/${FILE}: the load was cancelled`);
    expect(server.log.length).toBe(before);
  });

  it('in-memory and local folder sources honour an aborted signal too', async () => {
    const ctl = new AbortController();
    const mem = fromMap({ [FILE]: files[FILE] }, { signal: ctl.signal });
    expect((await mem.read(FILE, 0, 8)).length).toBe(8);
    ctl.abort(new Error('stop'));
    for (const src of [mem, openSource({ [FILE]: files[FILE] }, { signal: ctl.signal }), fromPath('/nonexistent', { signal: ctl.signal })]) {
      const { error } = await failure(() => src.read(FILE, 0, 8));
      expect(error.name).toBe('AbortError');
      expect(error.message).toMatch(/^reading file "model\.safetensors" in .*: the load was cancelled \(stop\)$/);
    }
  });

  it('reports a fetchFn that throws, returns something else, or never answers', async () => {
    const url = `${server.url}good/`;
    const cases: [FetchFn, string][] = [
      [() => { throw new Error('no network here'); }, `HEAD ${url}${FILE} failed: no network here`],
      [async () => 'a string' as unknown as Response, `HEAD ${url}${FILE} failed: fetchFn returned a string, not a Response`],
      [async () => ({}) as Response, `HEAD ${url}${FILE} failed: fetchFn returned an object, not a Response`],
      [() => new Promise<Response>(() => {}), `HEAD ${url}${FILE} failed: no response headers came for 300 ms (the timeoutMs option), after 0 bytes`],
    ];
    for (const [fetchFn, message] of cases) {
      const { error, ms } = await failure(() => fromUrl(url, { fetchFn, timeoutMs: TIMEOUT }).size(FILE));
      expect(error.message).toBe(message);
      expect(ms).toBeLessThan(2_000);
    }
    // A fetchFn sees the request and its signal, and can add headers.
    const seen: string[] = [];
    const src = fromUrl(url, {
      fetchFn: (u, init) => {
        seen.push(`${init?.method ?? 'GET'} ${init?.signal instanceof AbortSignal}`);
        return fetch(u, { ...init, headers: { ...(init?.headers as Record<string, string>), authorization: 'Bearer x' } });
      },
    });
    expect(await src.read(FILE, 0, 8)).toEqual(files[FILE].slice(0, 8));
    expect(seen).toEqual(['GET true']);
    expect(() => fromUrl(url, { timeoutMs: 0 })).toThrow(/fromUrl: timeoutMs must be a positive number of milliseconds/);
    expect(() => fromUrl(url, { fetchFn: 'fetch' as unknown as FetchFn })).toThrow(/fromUrl: fetchFn must be a function like fetch, got "fetch"/);
  });
});
