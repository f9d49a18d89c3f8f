// Serves the built Bench page on 127.0.0.1, the bundled models under models/
// with HTTP range requests (the loader reads tensors as ranges), and the
// peers' files (the page imports them from there at run time, each runtime's
// .mjs and .wasm from one folder), for `npm run bench:browser` and its test.

import { createServer, type Server } from 'node:http';
import { readFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { extname, join, normalize } from 'node:path';

const TYPES: Record<string, string> = { '.html': 'text/html', '.js': 'text/javascript', '.mjs': 'text/javascript', '.wasm': 'application/wasm', '.json': 'application/json', '.svg': 'image/svg+xml' };

/**
 * The peers' folders in a project whose node_modules is `modules`:
 * onnxruntime-web's dist/ under ort/, transformers.js's dist/ under tjs/, and
 * the onnxruntime-web build transformers.js bundles (its own version, nested
 * under it where it differs from the project's) under tjs-ort/.
 */
export function peerFolders(modules: string): Record<string, string> {
  const tjs = join(modules, '@huggingface', 'transformers');
  const nested = join(tjs, 'node_modules', 'onnxruntime-web', 'dist');
  return { 'ort/': join(modules, 'onnxruntime-web', 'dist'), 'tjs/': join(tjs, 'dist'), 'tjs-ort/': existsSync(nested) ? nested : join(modules, 'onnxruntime-web', 'dist') };
}

/** `folders`: URL prefixes ('ort/') and the folders served under them. */
export async function serveBench(pageDir: string, modelsDir: string, folders: Record<string, string> = {}): Promise<{ url: string; close(): Promise<void> }> {
  const server: Server = createServer(async (req, res) => {
    const path = normalize(decodeURIComponent(new URL(req.url ?? '/', 'http://x').pathname)).replace(/^[/\\]+/, '') || 'index.html';
    if (path.split(/[/\\]/).includes('..')) return void res.writeHead(403).end();
    const prefix = Object.keys(folders).find((p) => path.startsWith(p));
    const file = path.startsWith('models/') ? join(modelsDir, path.slice(7)) : prefix ? join(folders[prefix], path.slice(prefix.length)) : join(pageDir, path);
    let body: Buffer;
    try {
      body = await readFile(file);
    } catch {
      return void res.writeHead(404).end();
    }
    const type = TYPES[extname(file)] ?? 'application/octet-stream';
    const m = /^bytes=(\d+)-(\d*)$/.exec(req.headers.range ?? '');
    if (!m) return void res.writeHead(200, { 'content-type': type, 'content-length': body.length, 'accept-ranges': 'bytes' }).end(req.method === 'HEAD' ? undefined : body);
    const a = Number(m[1]);
    const b = Math.min(m[2] ? Number(m[2]) : body.length - 1, body.length - 1);
    if (a > b) return void res.writeHead(416, { 'content-range': `bytes */${body.length}` }).end();
    res.writeHead(206, { 'content-type': type, 'content-range': `bytes ${a}-${b}/${body.length}`, 'content-length': b - a + 1 }).end(req.method === 'HEAD' ? undefined : body.subarray(a, b + 1));
  });
  await new Promise<void>((ok) => server.listen(0, '127.0.0.1', ok));
  return {
    url: `http://127.0.0.1:${(server.address() as { port: number }).port}/`,
    close: () => new Promise<void>((ok) => server.close(() => ok())),
  };
}
