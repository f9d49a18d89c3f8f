// Checkpoint sources: in-memory maps, picked Files, a local folder, and a base
// URL served by a fake fetch (with and without Range support, and failing).

import { mkdtemp, mkdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openCheckpoint } from '../../src/models/loader/safetensors';
import { fromFiles, fromMap, fromUrl, openSource, type CheckpointSource } from '../../src/models/loader/source';
import { fromPath } from '../../src/node/folder';
import { shard, writeSafetensors } from '../helpers/fixtures';
import { randn } from '../helpers/random';

const FILE = 'model.safetensors';
const bytes = Uint8Array.from({ length: 100 }, (_, i) => (i * 37 + 11) & 0xff);
const enc = (s: string) => new TextEncoder().encode(s);

/** The contract every source keeps, checked on `src` holding FILE = bytes and config.json = '{"a":1}'. */
async function checkContract(src: CheckpointSource) {
  expect(await src.has(FILE)).toBe(true);
  expect(await src.has('nope.json')).toBe(false);
  expect(await src.size(FILE)).toBe(100);
  const part = await src.read(FILE, 10, 30);
  expect(part).toEqual(bytes.slice(10, 30));
  expect(part.byteOffset).toBe(0); // a fresh array: the caller owns it
  part.fill(0);
  expect(await src.read(FILE, 10, 30)).toEqual(bytes.slice(10, 30));
  expect(await src.read(FILE, 0, 100)).toEqual(bytes);
  expect(await src.read(FILE, 7, 7)).toEqual(new Uint8Array(0));
  expect(await src.text('config.json')).toBe('{"a":1}');
  await expect(src.size('nope.json')).rejects.toThrow(new RegExp(`file "nope\\.json" not found in ${src.describe.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')}`));
  await expect(src.read('nope.json', 0, 1)).rejects.toThrow(/file "nope\.json" not found in/);
  await expect(src.text('nope.json')).rejects.toThrow(/file "nope\.json" not found in/);
  await expect(src.read(FILE, 5, 3)).rejects.toThrow(/reading file "model\.safetensors" in .*: invalid byte range \[5, 3\)/);
  await expect(src.read(FILE, 90, 110)).rejects.toThrow(/model\.safetensors/);
}

describe('in-memory and picked files', () => {
  it('fromMap keeps the contract for Uint8Array, views, ArrayBuffer and Blob', async () => {
    const padded = new Uint8Array(120);
    padded.set(bytes, 20);
    for (const data of [bytes, padded.subarray(20), bytes.slice().buffer, new Blob([bytes])]) {
      const src = fromMap({ [FILE]: data, 'config.json': enc('{"a":1}') });
      expect(src.describe).toBe('in-memory files');
      expect(await src.list()).toEqual(['config.json', FILE]);
      await checkContract(src);
      await expect(src.read(FILE, 90, 110)).rejects.toThrow(/range \[90, 110\) runs past its end \(100 bytes\)/);
    }
    await checkContract(fromMap(new Map<string, Uint8Array>([[FILE, bytes], ['config.json', enc('{"a":1}')]])));
    expect(() => fromMap({ [FILE]: 3 as unknown as Uint8Array })).toThrow(/in-memory files: file "model\.safetensors" is number, expected a Blob, ArrayBuffer or Uint8Array/);
    await expect(fromMap({ 'config.json': new Uint8Array([0x7b, 0xff]) }).text('config.json')).rejects.toThrow(/file "config\.json" in in-memory files is not valid UTF-8 text/);
  });

  it('fromFiles matches picked files by name, or by path inside a picked folder', async () => {
    const src = fromFiles([new File([bytes], FILE), new File(['{"a":1}'], 'config.json')]);
    expect(src.describe).toBe('2 picked files');
    await checkContract(src);
    const inFolder = (path: string, data: BlobPart) => {
      const f = new File([data], path.split('/').pop()!);
      Object.defineProperty(f, 'webkitRelativePath', { value: path });
      return f;
    };
    const folder = fromFiles([inFolder(`MyModel/${FILE}`, bytes), inFolder('MyModel/config.json', '{"a":1}'), inFolder('MyModel/original/config.json', '{}')]);
    expect(folder.describe).toBe('picked folder "MyModel"');
    expect(await folder.list()).toEqual(['config.json', FILE, 'original/config.json']);
    await checkContract(folder);
    expect(() => fromFiles([new File(['a'], 'x.json'), new File(['b'], 'x.json')])).toThrow(/2 picked files: two files are named "x\.json"/);
    expect(() => fromFiles(['x.json'] as unknown as File[])).toThrow(/fromFiles: item 0 is not a File/);
  });
});

describe('a local folder', () => {
  let dir = '';
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'tessera-source-'));
    await writeFile(join(dir, FILE), bytes);
    await writeFile(join(dir, 'config.json'), '{"a":1}');
    await mkdir(join(dir, 'sub'));
  });
  afterAll(async () => {
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('keeps the contract and lists only files', async () => {
    const src = fromPath(dir);
    expect(src.describe).toBe(`folder "${dir}"`);
    expect(await src.list()).toEqual(['config.json', FILE]);
    await checkContract(src);
    await expect(src.read(FILE, 90, 110)).rejects.toThrow(/the file ends before byte 100, inside the requested range \[90, 110\)/);
    expect(await src.has('sub')).toBe(false);
    await expect(src.size('sub')).rejects.toThrow(/"sub" in folder ".*" is not a regular file/);
    // A trailing separator is the same folder.
    expect(await fromPath(`${dir}/`).read(FILE, 0, 4)).toEqual(bytes.slice(0, 4));
  });

  it('refuses names that leave the folder', async () => {
    const src = fromPath(join(dir, 'sub'));
    for (const name of ['../model.safetensors', '/etc/passwd', 'a\\b', './x', 'C:x', '']) {
      await expect(src.size(name), name).rejects.toThrow(/invalid file name ".*" for folder/);
    }
    await expect(fromPath(join(dir, 'missing')).list()).rejects.toThrow(/folder ".*missing" does not exist/);
  });
});

interface ServerOptions {
  /** Answer Range requests with the whole file (200). */
  ignoreRange?: boolean;
  /** Refuse HEAD (405). */
  noHead?: boolean;
  /** Answer everything with this status. */
  status?: number;
  /** Body chunk size. */
  chunk?: number;
}

/** A fetch function serving `files` under https://example.test/repo/, logging requests. */
function fakeServer(files: Record<string, Uint8Array>, opts: ServerOptions = {}) {
  const log: string[] = [];
  const stats = { chunksSent: 0 };
  const stream = (body: Uint8Array) => {
    let at = 0;
    return new ReadableStream<Uint8Array>({
      pull(c) {
        if (at >= body.length) return c.close();
        const size = opts.chunk ?? 16;
        c.enqueue(body.slice(at, at + size));
        at += size;
        stats.chunksSent++;
      },
    });
  };
  const fetchFn = async (url: string, init?: RequestInit): Promise<Response> => {
    const method = init?.method ?? 'GET';
    const range = new Headers(init?.headers).get('range');
    log.push(`${method} ${url}${range ? ` ${range}` : ''}`);
    if (opts.status) return new Response('no', { status: opts.status, statusText: opts.status === 401 ? 'Unauthorized' : 'Server Error' });
    const path = decodeURIComponent(new URL(url).pathname.replace(/^\/repo\//, ''));
    const body = files[path];
    if (!body) return new Response('not found', { status: 404, statusText: 'Not Found' });
    if (method === 'HEAD') return opts.noHead ? new Response(null, { status: 405 }) : new Response(null, { headers: { 'content-length': String(body.length) } });
    const m = range && /^bytes=(\d+)-(\d+)$/.exec(range);
    if (m && !opts.ignoreRange) {
      const a = Number(m[1]);
      const b = Math.min(Number(m[2]), body.length - 1);
      if (a >= body.length) return new Response(null, { status: 416, headers: { 'content-range': `bytes */${body.length}` } });
      return new Response(stream(body.slice(a, b + 1)), { status: 206, headers: { 'content-range': `bytes ${a}-${b}/${body.length}` } });
    }
    return new Response(stream(body), { status: 200, headers: { 'content-length': String(body.length) } });
  };
  return { fetchFn, log, stats };
}

describe('a base URL', () => {
  const files = { [FILE]: bytes, 'config.json': enc('{"a":1}'), 'a b.json': enc('"spaced"') };
  const base = 'https://example.test/repo';

  it('keeps the contract with HEAD sizes and Range reads', async () => {
    const server = fakeServer(files);
    const src = fromUrl(base, { fetchFn: server.fetchFn });
    expect(src.describe).toBe('URL https://example.test/repo/');
    expect(await src.list()).toBeNull();
    await checkContract(src);
    server.log.length = 0;
    expect(await src.read(FILE, 8, 20)).toEqual(bytes.slice(8, 20));
    expect(await src.size(FILE)).toBe(100); // cached: no second HEAD
    expect(server.log).toEqual([`GET ${base}/${FILE} bytes=8-19`]);
    expect(await src.text('a b.json')).toBe('"spaced"');
    expect(server.log.at(-1)).toBe(`GET ${base}/a%20b.json`);
    await expect(src.read(FILE, 100, 101)).rejects.toThrow(/reading file "model\.safetensors" in URL .*: range \[100, 101\) runs past its end \(100 bytes\)/);
    // Where the size is not known yet, the server's 416 says it.
    await expect(fromUrl(base, { fetchFn: server.fetchFn }).read(FILE, 100, 101)).rejects.toThrow(
      'GET https://example.test/repo/model.safetensors (bytes=100-100) failed: HTTP 416 (Content-Range: bytes */100); the range lies outside file "model.safetensors"',
    );
    await expect(src.size('../secret')).rejects.toThrow(/invalid file name "\.\.\/secret" for URL/);
    expect(() => fromUrl('ftp://example.test/repo/')).toThrow(/fromUrl: unsupported protocol in ftp:\/\/example\.test\/repo\//);
  });

  it('finds sizes with a one-byte Range GET when HEAD is refused', async () => {
    const server = fakeServer(files, { noHead: true });
    const src = fromUrl(`${base}/`, { fetchFn: server.fetchFn });
    expect(await src.size(FILE)).toBe(100);
    expect(server.log).toEqual([`HEAD ${base}/${FILE}`, `GET ${base}/${FILE} bytes=0-0`]);
    await checkContract(src);
  });

  it('works with a server that ignores Range, streaming only up to the wanted bytes', async () => {
    const big = Uint8Array.from({ length: 4096 }, (_, i) => i & 0xff);
    const server = fakeServer({ ...files, 'big.bin': big }, { ignoreRange: true });
    const src = fromUrl(base, { fetchFn: server.fetchFn });
    await checkContract(src);
    server.stats.chunksSent = 0;
    expect(await src.read('big.bin', 20, 40)).toEqual(big.slice(20, 40));
    expect(server.stats.chunksSent).toBeLessThan(8); // 256 chunks in all: the download was cancelled
    const noHead = fromUrl(base, { fetchFn: fakeServer({ 'big.bin': big }, { ignoreRange: true, noHead: true }).fetchFn });
    expect(await noHead.size('big.bin')).toBe(4096); // from the 200's Content-Length
  });

  it('opens a sharded checkpoint over HTTP, reading each tensor by range', async () => {
    const tensors = { a: { dtype: 'F32' as const, shape: [4, 8], data: randn(1, 32) }, b: { dtype: 'BF16' as const, shape: [8], data: randn(2, 8) }, c: { dtype: 'F16' as const, shape: [3], data: randn(3, 3) } };
    for (const opts of [{}, { ignoreRange: true }, { noHead: true }]) {
      const server = fakeServer(shard(tensors, 2).files, opts);
      const ckpt = await openCheckpoint(fromUrl(base, { fetchFn: server.fetchFn }));
      expect(ckpt.files).toEqual(['model-00001-of-00002.safetensors', 'model-00002-of-00002.safetensors']);
      expect(await ckpt.readF32('a')).toEqual(tensors.a.data);
      expect((await ckpt.readF32('c')).length).toBe(3);
    }
    const single = await openCheckpoint(fromUrl(base, { fetchFn: fakeServer({ [FILE]: writeSafetensors(tensors) }).fetchFn }));
    expect(await single.readF32('a')).toEqual(tensors.a.data);
  });

  it('reports HTTP and network failures with the URL and the status', async () => {
    const failing = fromUrl(base, { fetchFn: fakeServer(files, { status: 500 }).fetchFn });
    await expect(failing.size(FILE)).rejects.toThrow(/GET https:\/\/example\.test\/repo\/model\.safetensors \(bytes=0-0\) failed: HTTP 500 Server Error/);
    await expect(failing.read(FILE, 0, 8)).rejects.toThrow(/GET https:\/\/example\.test\/repo\/model\.safetensors \(bytes=0-7\) failed: HTTP 500 Server Error/);
    await expect(failing.text('config.json')).rejects.toThrow(/GET https:\/\/example\.test\/repo\/config\.json failed: HTTP 500/);
    const gated = fromUrl(base, { fetchFn: fakeServer(files, { status: 401 }).fetchFn });
    await expect(gated.has(FILE)).rejects.toThrow(/HTTP 401 Unauthorized; a gated or private repository needs an access token: pass loadModel\(url, \{ fetchFn \}\) a fetch that adds an Authorization header/);
    const offline = fromUrl(base, {
      fetchFn: async () => {
        throw new TypeError('fetch failed');
      },
    });
    const err = await offline.read(FILE, 0, 8).catch((e: Error) => e);
    expect(err).toBeInstanceOf(Error);
    expect((err as Error).constructor).toBe(Error);
    expect((err as Error).message).toBe('GET https://example.test/repo/model.safetensors (bytes=0-7) failed: fetch failed');
  });

  it('refuses a short or mismatched 206 body', async () => {
    const short = fromUrl(base, { fetchFn: async () => new Response(new Uint8Array(3), { status: 206, headers: { 'content-range': 'bytes 0-7/100' } }) });
    await expect(short.read(FILE, 0, 8)).rejects.toThrow(/\(bytes=0-7\) failed: HTTP 206 \(Content-Range: bytes 0-7\/100\); the body ended after 3 of the 8 bytes asked/);
    const shifted = fromUrl(base, { fetchFn: async () => new Response(new Uint8Array(8), { status: 206, headers: { 'content-range': 'bytes 8-15/100' } }) });
    await expect(shifted.read(FILE, 0, 8)).rejects.toThrow(/the server sent bytes 8-15, not the bytes 0-7 asked/);
    const broken = new ReadableStream<Uint8Array>({
      start(c) {
        c.enqueue(new Uint8Array(4));
        c.error(new TypeError('terminated'));
      },
    });
    const dropped = fromUrl(base, { fetchFn: async () => new Response(broken, { status: 206, headers: { 'content-range': 'bytes 0-7/100' } }) });
    const err = await dropped.read(FILE, 0, 8).catch((e: Error) => e);
    expect((err as Error).constructor).toBe(Error);
    expect((err as Error).message).toMatch(/\(bytes=0-7\) failed: HTTP 206 \(Content-Range: bytes 0-7\/100\); the connection dropped after \d+ of 8 bytes \(terminated\)/);
    const hidden = fromUrl(base, { fetchFn: async (_u, init) => (init?.method === 'HEAD' ? new Response(null, { status: 405 }) : new Response(new Uint8Array(1), { status: 206 })) });
    await expect(hidden.size(FILE)).rejects.toThrow(/without a readable Content-Range header/);
  });

  it('names what the server did for odd statuses and headers', async () => {
    const answer = (status: number, headers: Record<string, string> = {}) =>
      fromUrl(base, { fetchFn: async () => new Response(status === 204 || status === 302 ? null : new Uint8Array(8), { status, headers }) });
    const read = (src: ReturnType<typeof fromUrl>) => src.read(FILE, 0, 8).catch((e: Error) => e.message);
    const what = 'GET https://example.test/repo/model.safetensors (bytes=0-7) failed';
    expect(await read(answer(206, { 'content-range': 'bytes 0-7' }))).toBe(
      `${what}: HTTP 206 (Content-Range: bytes 0-7); without a readable Content-Range header, the bytes sent cannot be placed in the file (a cross-origin server must expose Content-Range)`,
    );
    expect(await read(answer(206, { 'content-range': 'bytes 0-9/5' }))).toMatch(/HTTP 206 \(Content-Range: bytes 0-9\/5\); without a readable Content-Range header/);
    expect(await read(answer(204))).toBe(`${what}: HTTP 204; expected 206 Partial Content`);
    expect(await read(answer(302, { location: 'https://cdn.test/x' }))).toBe(`${what}: HTTP 302; a redirect that was not followed (to https://cdn.test/x), or an opaque response`);
    expect(await read(answer(403))).toMatch(/HTTP 403; a gated or private repository needs an access token: pass loadModel\(url, \{ fetchFn \}\)/);
    expect(await read(answer(206, { 'content-range': 'bytes 0-7/100', 'content-encoding': 'br' }))).toMatch(/\(Content-Range: bytes 0-7\/100, Content-Encoding: br\); the response to a Range request is compressed/);
    // Sizes known from HEAD bound later reads, and a Content-Range total that disagrees is refused.
    const headSays = fromUrl(base, {
      fetchFn: async (_u, init) =>
        init?.method === 'HEAD' ? new Response(null, { headers: { 'content-length': '50' } }) : new Response(new Uint8Array(8), { status: 206, headers: { 'content-range': 'bytes 0-7/100' } }),
    });
    expect(await headSays.size(FILE)).toBe(50);
    await expect(headSays.read(FILE, 40, 60)).rejects.toThrow(/range \[40, 60\) runs past its end \(50 bytes\)/);
    await expect(headSays.read(FILE, 0, 8)).rejects.toThrow(/Content-Range gives the file's size as 100 bytes, but the Content-Length of HEAD https:\/\/example\.test\/repo\/model\.safetensors said 50/);
  });
});

describe('openSource', () => {
  it('dispatches on the kind of input', () => {
    expect(openSource('https://example.test/repo').describe).toBe('URL https://example.test/repo/');
    expect(openSource('HTTP://example.test/x/').describe).toBe('URL http://example.test/x/');
    expect(openSource(new URL('https://example.test/r/')).describe).toBe('URL https://example.test/r/');
    expect(openSource('/models/tiny').describe).toBe('folder "/models/tiny"');
    expect(openSource('models/tiny').describe).toBe('folder "models/tiny"');
    expect(openSource({ [FILE]: bytes }).describe).toBe('in-memory files');
    expect(openSource(new Map([[FILE, bytes]])).describe).toBe('in-memory files');
    expect(openSource([new File([bytes], FILE)]).describe).toBe('1 picked file');
    const custom = fromMap({});
    expect(openSource(custom)).toBe(custom);
    expect(() => openSource('ftp://example.test/x')).toThrow(/openSource: unsupported URL "ftp:\/\/example\.test\/x"/);
    expect(() => openSource(42 as unknown as string)).toThrow(/openSource: expected a path, a URL, picked Files, a map of file names to data, or a CheckpointSource; got number/);
    expect(() => openSource(new Date() as unknown as string)).toThrow(/got object/);
  });
});
