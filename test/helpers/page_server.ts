// A test page built by Vite and served on 127.0.0.1, for the headless
// browsers (helpers/browsers.ts) to open. `route` may answer some paths
// itself (return true); everything else is a file of the built page.

import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { readFile } from 'node:fs/promises';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { extname, join, normalize } from 'node:path';
import { build } from 'vite';

const TYPES: Record<string, string> = { '.html': 'text/html', '.js': 'text/javascript', '.css': 'text/css', '.map': 'application/json', '.json': 'application/json' };

export interface ServedPage {
  /** The page's address, ending in '/'. */
  url: string;
  close(): Promise<void>;
}

export type Route = (path: string, req: IncomingMessage, res: ServerResponse) => boolean;

/** Builds the page whose index.html is in `root` and serves it. */
export async function servePage(root: string, route?: Route): Promise<ServedPage> {
  const outDir = mkdtempSync(join(tmpdir(), 'tessera-page-'));
  await build({ root, logLevel: 'error', build: { outDir, emptyOutDir: true, target: 'es2022' } });
  const served = await serveDir(outDir, route);
  return {
    url: served.url,
    async close() {
      await served.close();
      rmSync(outDir, { recursive: true, force: true });
    },
  };
}

/** Serves the files of `dir` (a built site), `route` answering some paths first. */
export async function serveDir(dir: string, route?: Route): Promise<ServedPage> {
  const server: Server = createServer(async (req, res) => {
    const path = normalize(decodeURIComponent(new URL(req.url ?? '/', 'http://x').pathname)).replace(/^([/\\])+/, '') || 'index.html';
    if (route?.(path, req, res)) return;
    try {
      const body = await readFile(join(dir, path));
      res.writeHead(200, { 'content-type': TYPES[extname(path)] ?? 'application/octet-stream' }).end(body);
    } catch {
      res.writeHead(404).end();
    }
  });
  await new Promise<void>((ok) => server.listen(0, '127.0.0.1', ok));
  const port = (server.address() as { port: number }).port;
  return {
    url: `http://127.0.0.1:${port}/`,
    close: () => new Promise<void>((ok) => server.close(() => ok())),
  };
}
