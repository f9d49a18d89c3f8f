// The offline cache: a checkpoint fetched from a URL is kept in the browser's
// Cache Storage and read from there next time, with no network at all.
//
// Why Cache Storage rather than the origin private file system: it is the
// same in a page and in a worker and in every browser, it stores a Response
// as it came (its size known up front), Blob slices of a cached body read a
// tensor without reading the file, and each put() either stores a whole file
// or nothing. A model is its files plus a manifest, put last: the manifest is
// what says the model is complete, so a download cut short (network, quota,
// abort) never leaves a model that looks cached; its files are deleted.

import { TesseraError, withCode } from '../../runtime/errors';
import { checkAborted, fromMap, fromUrl, type CheckpointSource, type SourceOptions } from './source';
import type { LoadProgress } from './weights';
import { BUNDLED_PREFIX, bundledModelUrl } from '../../bundled';

/** The Cache Storage cache Tessera keeps models in. */
export const MODEL_CACHE = 'tessera-models-v1';
/** The manifest's name beside a model's files (not a checkpoint file name). */
const MANIFEST = '.tessera-manifest.json';
/** Files a load may read besides the weights; absent ones are skipped. */
const OPTIONAL = ['tokenizer.json', 'tokenizer_config.json', 'generation_config.json'];
/** Bytes fetched per request while downloading (URL reads are hardened per range: timeouts, lengths). */
const PART = 16 << 20;

export interface CachedModel {
  /** The base URL the model was fetched from. */
  url: string;
  /** Its files and their sizes in bytes. */
  files: Record<string, number>;
  bytes: number;
  /** When it was stored (ms since 1970). */
  savedAt: number;
}

function storage(op: string): CacheStorage {
  if (typeof caches === 'undefined') {
    throw new TesseraError('CACHE', `${op}: Cache Storage is not available here (browsers give it only to secure contexts: https, or http on localhost)`);
  }
  return caches;
}

const withSlash = (url: string) => (url.endsWith('/') ? url : `${url}/`);

async function manifestOf(cache: Cache, base: string): Promise<CachedModel | null> {
  const r = await cache.match(new URL(MANIFEST, base).href);
  if (!r) return null;
  try {
    return (await r.json()) as CachedModel;
  } catch {
    return null;
  }
}

/** The files of a model, as the loader will ask for them: config, tokenizer files, weights (one file or an index and its shards). */
export async function filesToFetch(net: CheckpointSource): Promise<string[]> {
  const names = ['config.json'];
  for (const n of OPTIONAL) if (await net.has(n)) names.push(n);
  if (await net.has('model.safetensors')) names.push('model.safetensors');
  else if (await net.has('model.safetensors.index.json')) {
    names.push('model.safetensors.index.json');
    let index: { weight_map?: Record<string, string> };
    try {
      index = JSON.parse(await net.text('model.safetensors.index.json'));
    } catch (e) {
      throw new Error(`${net.describe}: model.safetensors.index.json is not valid JSON (${(e as Error).message})`);
    }
    names.push(...new Set(Object.values(index.weight_map ?? {})));
  } else throw new Error(`${net.describe}: neither model.safetensors nor model.safetensors.index.json is there`);
  return names;
}

/**
 * The checkpoint at `base` from the cache, fetching it into the cache first
 * when it is not there whole. Progress reports the download.
 */
export async function cachedSource(base: string, opts: SourceOptions & { onProgress?: (p: LoadProgress) => void } = {}): Promise<CheckpointSource> {
  base = withSlash(base);
  const cache = await storage('loadModel (cache)').open(MODEL_CACHE);
  let manifest = await manifestOf(cache, base);
  if (manifest && !(await isWhole(cache, base, manifest))) manifest = null; // the browser evicted a file
  manifest ??= await download(cache, base, opts);
  const blobs = new Map<string, Blob>();
  for (const name of Object.keys(manifest.files)) {
    const r = await cache.match(new URL(name, base).href);
    if (!r) throw new TesseraError('CACHE', `the cached copy of ${base} lost "${name}" while it was being opened; load it again`);
    blobs.set(name, await r.blob());
  }
  return fromMap(blobs, { signal: opts.signal, describe: `cached copy of ${base}` });
}

async function isWhole(cache: Cache, base: string, m: CachedModel): Promise<boolean> {
  for (const name of Object.keys(m.files)) if (!(await cache.match(new URL(name, base).href))) return false;
  return true;
}

async function download(cache: Cache, base: string, opts: SourceOptions & { onProgress?: (p: LoadProgress) => void }): Promise<CachedModel> {
  const net = fromUrl(base, opts);
  const names = await filesToFetch(net);
  const files: Record<string, number> = {};
  for (const n of names) files[n] = await net.size(n);
  const total = Object.values(files).reduce((a, b) => a + b, 0);
  await checkRoom(base, total);
  const stored: string[] = [];
  let loaded = 0;
  try {
    for (const name of names) {
      const parts: Uint8Array[] = [];
      for (let a = 0; a < files[name]; a += PART) {
        const part = await net.read(name, a, Math.min(files[name], a + PART));
        parts.push(part);
        loaded += part.length;
        opts.onProgress?.({ phase: 'download', loadedBytes: loaded, totalBytes: total, file: name });
      }
      checkAborted(opts.signal, `caching ${base}`);
      const url = new URL(name, base).href;
      stored.push(url);
      await put(cache, url, new Response(new Blob(parts as BlobPart[]), { headers: { 'content-length': String(files[name]) } }), base, total);
    }
    const manifest: CachedModel = { url: base, files, bytes: total, savedAt: Date.now() };
    const url = new URL(MANIFEST, base).href;
    stored.push(url);
    await put(cache, url, new Response(JSON.stringify(manifest), { headers: { 'content-type': 'application/json' } }), base, total);
    return manifest;
  } catch (e) {
    // Nothing half-written stays: the files stored so far go.
    await Promise.all(stored.map((u) => cache.delete(u).catch(() => false)));
    throw e;
  }
}

async function put(cache: Cache, url: string, response: Response, base: string, total: number): Promise<void> {
  try {
    await cache.put(url, response);
  } catch (e) {
    if ((e as { name?: string }).name === 'QuotaExceededError') throw await quotaError(base, total, e);
    throw withCode(new Error(`caching ${url}: ${(e as Error).message}`, { cause: e }), 'CACHE');
  }
}

/** Refuses a download the origin's storage cannot hold, before any byte is stored. */
async function checkRoom(base: string, total: number): Promise<void> {
  const estimate = await storageEstimate();
  if (estimate?.quota !== undefined && estimate.usage !== undefined && estimate.quota - estimate.usage < total) throw await quotaError(base, total, null);
}

/** What the browser says of this origin's storage, where it says anything. */
async function storageEstimate(): Promise<StorageEstimate | null> {
  if (typeof navigator === 'undefined' || !navigator.storage?.estimate) return null;
  return navigator.storage.estimate().catch(() => null);
}

async function quotaError(base: string, total: number, cause: unknown): Promise<TesseraError> {
  const e = await storageEstimate();
  const room = e?.quota !== undefined && e.usage !== undefined ? `; this site uses ${e.usage} of its ${e.quota} bytes` : '';
  return new TesseraError('QUOTA_EXCEEDED', `caching ${base}: the browser's storage quota is exhausted (the model needs ${total} bytes${room}); delete cached models (deleteCachedModel) or free space, or load it without the cache`, { cause });
}

/** The models in the offline cache, with their sizes. */
export async function listCachedModels(): Promise<CachedModel[]> {
  const cache = await storage('listCachedModels').open(MODEL_CACHE);
  const out: CachedModel[] = [];
  for (const req of await cache.keys()) {
    if (!req.url.endsWith(`/${MANIFEST}`)) continue;
    const m = await manifestOf(cache, req.url.slice(0, -MANIFEST.length));
    if (m) out.push(m);
  }
  return out.sort((a, b) => a.url.localeCompare(b.url));
}

/** Deletes a cached model, by URL or bundled name (its manifest first, so it stops counting as cached at once); false if it was not cached. */
export async function deleteCachedModel(url: string | URL): Promise<boolean> {
  const base = withSlash(typeof url === 'string' && url.startsWith(BUNDLED_PREFIX) ? bundledModelUrl(url).href : String(url));
  const cache = await storage('deleteCachedModel').open(MODEL_CACHE);
  const m = await manifestOf(cache, base);
  if (!m) return false;
  await cache.delete(new URL(MANIFEST, base).href);
  for (const name of Object.keys(m.files)) await cache.delete(new URL(name, base).href);
  return true;
}
