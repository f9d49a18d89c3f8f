// Checkpoint files from a base URL (a Hugging Face repo's resolve/main/, a
// static server), read with HTTP Range requests so one tensor at a time
// crosses the network.

import { checkName, checkRange, decodeUtf8, missingFile, type CheckpointSource } from './source';

type FetchFn = (input: string, init?: RequestInit) => Promise<Response>;

/** Reads [skip, skip + len) of a response body into a fresh array, then stops the download. */
async function bodySlice(res: Response, skip: number, len: number, what: string): Promise<Uint8Array> {
  const out = new Uint8Array(len);
  if (!res.body) {
    const all = new Uint8Array(await res.arrayBuffer());
    if (all.length < skip + len) throw new Error(`${what}: the response has ${all.length} bytes, fewer than the ${skip + len} needed`);
    out.set(all.subarray(skip, skip + len));
    return out;
  }
  const reader = res.body.getReader();
  let pos = 0; // bytes of the body seen so far
  try {
    while (pos < skip + len) {
      const { done, value } = await reader.read().catch((e: Error) => {
        throw new Error(`${what}: the download failed after ${pos} bytes: ${e.message}`);
      });
      if (done) throw new Error(`${what}: the response ended after ${pos} bytes, before byte ${skip + len}`);
      const from = Math.max(skip - pos, 0);
      const to = Math.min(value.length, skip + len - pos);
      if (from < to) out.set(value.subarray(from, to), pos + from - skip);
      pos += value.length;
    }
  } finally {
    await reader.cancel().catch(() => {});
  }
  return out;
}

function contentLength(res: Response): number | null {
  const enc = res.headers.get('content-encoding');
  const len = res.headers.get('content-length');
  if ((enc && enc !== 'identity') || len === null || !/^\d+$/.test(len.trim())) return null;
  return Number(len);
}

/**
 * Files under a base URL, e.g. `https://huggingface.co/<repo>/resolve/main/`.
 * Sizes come from HEAD (or a one-byte Range GET); reads are Range GETs. A
 * server that ignores Range still works: the body is streamed, the wanted
 * bytes kept and the download cancelled, so memory stays at one tensor
 * (though each read then downloads the file up to its end).
 * Pass `fetchFn` to add headers (an access token for gated repositories).
 */
export function fromUrl(baseUrl: string | URL, fetchFn: FetchFn = (u, i) => fetch(u, i)): CheckpointSource {
  const base = new URL(String(baseUrl));
  if (base.protocol !== 'http:' && base.protocol !== 'https:') throw new Error(`fromUrl: unsupported protocol in ${base.href} (expected http or https)`);
  if (!base.pathname.endsWith('/')) base.pathname += '/';
  const describe = `URL ${base.href}`;
  const sizes = new Map<string, number>();
  const urlOf = (name: string) => {
    checkName(describe, name);
    return new URL(name.split('/').map(encodeURIComponent).join('/'), base).href;
  };
  const request = async (url: string, init: RequestInit, what: string): Promise<Response> => {
    try {
      return await fetchFn(url, init);
    } catch (e) {
      throw new Error(`${what} failed: ${(e as Error).message}`);
    }
  };
  const statusError = (what: string, res: Response): Error => {
    const hint = res.status === 401 || res.status === 403 ? ' (a gated or private repository needs an access token: pass a fetchFn that adds it)' : '';
    return new Error(`${what} failed: HTTP ${res.status} ${res.statusText}`.trimEnd() + hint);
  };

  /** The file's size, or null when the server says it does not exist. */
  const probe = async (name: string): Promise<number | null> => {
    const known = sizes.get(name);
    if (known !== undefined) return known;
    const url = urlOf(name);
    const head = await request(url, { method: 'HEAD' }, `HEAD ${url}`);
    if (head.status === 404 || head.status === 410) return null;
    let size = head.ok ? contentLength(head) : null;
    if (size === null) {
      // No usable HEAD (refused, or no length): ask for one byte and read the total from Content-Range.
      const what = `GET ${url} (bytes=0-0)`;
      const res = await request(url, { headers: { Range: 'bytes=0-0' } }, what);
      if (res.status === 404 || res.status === 410) return null;
      const range = res.headers.get('content-range');
      if (res.status === 206 || res.status === 416) {
        await res.body?.cancel().catch(() => {});
        const m = range && /\/\s*(\d+)\s*$/.exec(range);
        if (!m) throw new Error(`${what}: HTTP ${res.status} without a readable Content-Range header, so the file size is unknown (a cross-origin server must expose Content-Range)`);
        size = Number(m[1]);
      } else if (res.ok) {
        // The server ignored Range and is sending the whole file: take its length, or count it.
        size = contentLength(res);
        if (size === null) {
          size = 0;
          const reader = res.body?.getReader();
          for (;;) {
            const chunk = await reader?.read();
            if (!chunk || chunk.done) break;
            size += chunk.value.length;
          }
        } else {
          await res.body?.cancel().catch(() => {});
        }
      } else {
        throw statusError(what, res);
      }
    } else {
      await head.body?.cancel().catch(() => {});
    }
    sizes.set(name, size);
    return size;
  };

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
      if (start === end) return new Uint8Array(0);
      const url = urlOf(name);
      const what = `GET ${url} (bytes=${start}-${end - 1})`;
      const res = await request(url, { headers: { Range: `bytes=${start}-${end - 1}` } }, what);
      if (res.status === 404 || res.status === 410) throw missingFile(describe, name);
      if (res.status === 416) throw new Error(`${what}: the range lies outside file "${name}" (HTTP 416)`);
      if (res.status === 206) {
        const range = res.headers.get('content-range');
        const m = range && /^\s*bytes\s+(\d+)-(\d+)\s*\//i.exec(range);
        if (m && (Number(m[1]) !== start || Number(m[2]) !== end - 1)) {
          await res.body?.cancel().catch(() => {});
          throw new Error(`${what}: the server sent ${range}, not the range asked for`);
        }
        const bytes = await bodySlice(res, 0, end - start, what);
        return bytes;
      }
      if (res.ok) return bodySlice(res, start, end - start, `${what} (the server ignored Range)`);
      throw statusError(what, res);
    },
    async text(name) {
      const url = urlOf(name);
      const res = await request(url, {}, `GET ${url}`);
      if (res.status === 404 || res.status === 410) throw missingFile(describe, name);
      if (!res.ok) throw statusError(`GET ${url}`, res);
      const body = await res.arrayBuffer().catch((e: Error) => {
        throw new Error(`GET ${url}: the download failed: ${e.message}`);
      });
      return decodeUtf8(describe, name, new Uint8Array(body));
    },
  };
}
