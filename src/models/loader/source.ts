// Where checkpoint files come from: a local folder (Node), a base URL (HTTP
// Range requests, source_url.ts), files picked in a browser, or an in-memory map. Everything
// above this layer asks for byte ranges, so a tensor is read on its own and a
// checkpoint never has to sit in memory whole.

import { abortError, describeValue } from '../../runtime/errors';
import { DEFAULT_TIMEOUT_MS, fromUrl } from './source_url';
import { BUNDLED_PREFIX, bundledModelUrl } from '../../bundled';

export { DEFAULT_TIMEOUT_MS, fromUrl };

/** The global fetch's shape; pass one to add headers (an access token for a gated repository). */
export type FetchFn = (input: string, init?: RequestInit) => Promise<Response>;

/** How a source reads. Every source honours `signal`; the others are for URLs. */
export interface SourceOptions {
  /** Cancels the load: the read in progress and every later one reject with an AbortError. */
  signal?: AbortSignal;
  /** URL sources: the fetch to use (default: the global fetch). */
  fetchFn?: FetchFn;
  /** URL sources: a request that receives nothing for this long fails (default DEFAULT_TIMEOUT_MS, 30 s). */
  timeoutMs?: number;
}

/** A folder of checkpoint files (config.json, *.safetensors, tokenizer.json, ...). */
export interface CheckpointSource {
  /** Where the files come from, for error messages: `folder "/models/x"`, `URL https://.../`. */
  readonly describe: string;
  /** Names of the files it holds, sorted; null where it cannot list them (a URL). */
  list(): Promise<string[] | null>;
  /** Whether the file exists. */
  has(name: string): Promise<boolean>;
  /** Size in bytes; throws naming the file and the source when the file is missing. */
  size(name: string): Promise<number>;
  /** Bytes [start, end) as a fresh array the caller owns, exactly end - start long. */
  read(name: string, start: number, end: number): Promise<Uint8Array>;
  /** The whole file decoded as UTF-8 (config.json, tokenizer.json, the shard index). */
  text(name: string): Promise<string>;
}

/** In-memory file contents accepted by fromMap. */
export type FileData = Blob | ArrayBuffer | ArrayBufferView;

/** Everything openSource understands. */
export type SourceInput =
  | string
  | URL
  | CheckpointSource
  | File[]
  | FileList
  | Record<string, FileData>
  | Map<string, FileData>;

export function missingFile(describe: string, name: string): Error {
  return new Error(`file "${name}" not found in ${describe}`);
}

export function checkRange(describe: string, name: string, start: number, end: number): void {
  if (!Number.isSafeInteger(start) || !Number.isSafeInteger(end) || start < 0 || end < start) {
    throw new Error(`reading file "${name}" in ${describe}: invalid byte range [${start}, ${end})`);
  }
}

/** Rejects names that would leave the folder or the base URL ('../x', '/etc/x', 'a\\b'). */
export function checkName(describe: string, name: string): void {
  const parts = name.split('/');
  if (!name || name.startsWith('/') || name.includes('\\') || /^[a-zA-Z]:/.test(name) || parts.some((p) => p === '..' || p === '.' || p === '')) {
    throw new Error(`invalid file name "${name}" for ${describe}: expected a relative name like "model.safetensors"`);
  }
}

export function isAbortSignal(v: unknown): v is AbortSignal {
  return typeof v === 'object' && v !== null && typeof (v as AbortSignal).aborted === 'boolean' && typeof (v as AbortSignal).addEventListener === 'function';
}

/** Checks the options a source takes, naming the entry point `op` and the option. */
export function checkSourceOptions(op: string, o: SourceOptions): void {
  if (o.signal !== undefined && !isAbortSignal(o.signal)) throw new Error(`${op}: signal must be an AbortSignal, got ${describeValue(o.signal)}`);
  if (o.fetchFn !== undefined && typeof o.fetchFn !== 'function') throw new Error(`${op}: fetchFn must be a function like fetch, got ${describeValue(o.fetchFn)}`);
  if (o.timeoutMs !== undefined && !(typeof o.timeoutMs === 'number' && o.timeoutMs > 0 && o.timeoutMs <= 2 ** 31 - 1)) {
    throw new Error(`${op}: timeoutMs must be a positive number of milliseconds (at most 2^31 - 1), got ${describeValue(o.timeoutMs)}`);
  }
}

/** Throws the AbortError of a cancelled load once `signal` has fired. */
export function checkAborted(signal: AbortSignal | undefined, during: string): void {
  if (signal?.aborted) throw abortError(`${during}: the load was cancelled`, signal.reason);
}

export function decodeUtf8(describe: string, name: string, bytes: Uint8Array): string {
  try {
    return new TextDecoder('utf-8', { fatal: true }).decode(bytes);
  } catch {
    throw new Error(`file "${name}" in ${describe} is not valid UTF-8 text`);
  }
}

// ---- a local folder: given by the Node entry (node/folder.ts) ---------------

/** Reads a folder on disk, by path or file: URL; only a host with a file system gives one (src/node.ts). */
export type FolderReader = (dir: string | URL, opts: SourceOptions) => CheckpointSource;
let folderReader: FolderReader | null = null;

/** Called once by a host's entry point that can read folders (Node). */
export function setFolderReader(fn: FolderReader): void {
  folderReader = fn;
}

// ---- in-memory files and browser File objects --------------------------------

interface Entry {
  size: number;
  read(start: number, end: number): Promise<Uint8Array>;
}

function entryOf(describe: string, name: string, data: unknown): Entry {
  if (typeof Blob !== 'undefined' && data instanceof Blob) {
    return { size: data.size, read: async (s, e) => new Uint8Array(await data.slice(s, e).arrayBuffer()) };
  }
  let bytes: Uint8Array;
  if (data instanceof ArrayBuffer) bytes = new Uint8Array(data);
  else if (ArrayBuffer.isView(data)) bytes = new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
  else throw new Error(`${describe}: file "${name}" is ${data === null ? 'null' : typeof data}, expected a Blob, ArrayBuffer or Uint8Array`);
  return { size: bytes.length, read: async (s, e) => bytes.slice(s, e) };
}

function entrySource(describe: string, entries: Map<string, Entry>, signal: AbortSignal | undefined): CheckpointSource {
  const get = (name: string): Entry => {
    checkAborted(signal, `reading file "${name}" in ${describe}`);
    const entry = entries.get(name);
    if (!entry) throw missingFile(describe, name);
    return entry;
  };
  return {
    describe,
    async list() {
      return [...entries.keys()].sort();
    },
    async has(name) {
      checkAborted(signal, `reading file "${name}" in ${describe}`);
      return entries.has(name);
    },
    async size(name) {
      return get(name).size;
    },
    async read(name, start, end) {
      checkRange(describe, name, start, end);
      const entry = get(name);
      if (end > entry.size) throw new Error(`reading file "${name}" in ${describe}: range [${start}, ${end}) runs past its end (${entry.size} bytes)`);
      return entry.read(start, end);
    },
    async text(name) {
      const entry = get(name);
      return decodeUtf8(describe, name, await entry.read(0, entry.size));
    },
  };
}

/** Files held in memory, by name: `{ 'config.json': blob, 'model.safetensors': bytes }`. */
export function fromMap(map: Record<string, FileData> | Map<string, FileData>, opts: SourceOptions & { describe?: string } = {}): CheckpointSource {
  const describe = opts.describe ?? 'in-memory files';
  const pairs = map instanceof Map ? [...map] : Object.entries(map);
  return entrySource(describe, new Map(pairs.map(([name, data]) => [name, entryOf(describe, name, data)])), opts.signal);
}

/**
 * Files picked in a browser (an <input type=file multiple> or a folder picker).
 * Files are matched by name; from a folder picker, by their path inside the
 * picked folder ("config.json", "original/params.json").
 */
export function fromFiles(files: File[] | FileList, opts: SourceOptions = {}): CheckpointSource {
  const list = Array.from(files as ArrayLike<File>);
  const rel = list.map((f) => (typeof f.webkitRelativePath === 'string' ? f.webkitRelativePath : ''));
  const top = rel.every((r) => r.includes('/')) ? rel[0]?.split('/')[0] : undefined;
  const inFolder = top !== undefined && rel.every((r) => r.startsWith(`${top}/`));
  const prefix = inFolder ? `${top}/` : '';
  const describe = inFolder ? `picked folder "${top}"` : `${list.length} picked file${list.length === 1 ? '' : 's'}`;
  const entries = new Map<string, Entry>();
  list.forEach((file, i) => {
    if (typeof Blob === 'undefined' || !(file instanceof Blob) || typeof file.name !== 'string') throw new Error(`fromFiles: item ${i} is not a File`);
    const name = inFolder ? rel[i].slice(prefix.length) : file.name;
    if (entries.has(name)) throw new Error(`${describe}: two files are named "${name}"`);
    entries.set(name, entryOf(describe, name, file));
  });
  return entrySource(describe, entries, opts.signal);
}

function isSource(x: unknown): x is CheckpointSource {
  const s = x as CheckpointSource;
  return typeof s === 'object' && s !== null && typeof s.describe === 'string' && ['list', 'has', 'size', 'read', 'text'].every((k) => typeof (s as unknown as Record<string, unknown>)[k] === 'function');
}

/**
 * Any accepted input as a CheckpointSource: "http(s)://..." strings and URL
 * objects are base URLs, other strings are local paths, File lists are picked
 * files, plain objects and Maps are in-memory files, and a CheckpointSource is
 * returned as it is (`opts` cannot reach inside it: it honours what it was made with).
 * `opts.signal` cancels reads of every kind; `fetchFn` and `timeoutMs` are for URLs.
 */
export function openSource(x: SourceInput, opts: SourceOptions = {}): CheckpointSource {
  checkSourceOptions('openSource', opts);
  if (typeof x === 'string') {
    if (x.startsWith(BUNDLED_PREFIX)) {
      const url = bundledModelUrl(x);
      if (url.protocol !== 'file:') return fromUrl(url.href, opts);
      if (!folderReader) throw new Error(`openSource: "${x}" is in a folder (${url.href}), which needs Node.js to read`);
      return folderReader(url, opts);
    }
    if (/^https?:\/\//i.test(x)) return fromUrl(x, opts);
    if (/^[a-z][a-z0-9+.-]+:\/\//i.test(x)) throw new Error(`openSource: unsupported URL "${x}" (expected http(s):// or a local path)`);
    if (!folderReader) {
      throw new Error(`openSource: "${x}" is a folder path, which needs Node.js; in a browser, pass picked Files, a map of file names to Blobs, or an http(s) URL`);
    }
    return folderReader(x, opts);
  }
  if (x instanceof URL) return fromUrl(x, opts);
  if (isSource(x)) return x;
  if (Array.isArray(x) || (typeof FileList !== 'undefined' && x instanceof FileList)) return fromFiles(x, opts);
  if (x instanceof Map) return fromMap(x, opts);
  if (typeof x === 'object' && x !== null && (Object.getPrototypeOf(x) === Object.prototype || Object.getPrototypeOf(x) === null)) return fromMap(x as Record<string, FileData>, opts);
  throw new Error(`openSource: expected a path, a URL, picked Files, a map of file names to data, or a CheckpointSource; got ${x === null ? 'null' : typeof x}`);
}
