// A real HTTP server on 127.0.0.1 for tests of URL loading. Handlers may
// stall on purpose; `hold` bounds every such stall, and close() destroys
// every open connection, so a test file never leaves a socket behind.

import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';

export interface TestServer {
  /** `http://127.0.0.1:<port>/` */
  readonly url: string;
  /** `METHOD /path range?` for each request, in arrival order. */
  readonly log: string[];
  /**
   * Runs `then` after `ms` (a stall's end: send the rest, or drop the socket),
   * or never if the server closes first.
   */
  hold(ms: number, then: () => void): void;
  close(): Promise<void>;
}

export type Handler = (req: IncomingMessage, res: ServerResponse, server: TestServer) => void;

export async function startServer(handler: Handler): Promise<TestServer> {
  const timers = new Set<ReturnType<typeof setTimeout>>();
  const log: string[] = [];
  const http = createServer((req, res) => {
    log.push(`${req.method} ${req.url}${req.headers.range ? ` ${req.headers.range}` : ''}`);
    handler(req, res, server);
  });
  await new Promise<void>((ok) => http.listen(0, '127.0.0.1', ok));
  const server: TestServer = {
    url: `http://127.0.0.1:${(http.address() as { port: number }).port}/`,
    log,
    hold(ms, then) {
      const t = setTimeout(() => {
        timers.delete(t);
        then();
      }, ms);
      timers.add(t);
    },
    async close() {
      for (const t of timers) clearTimeout(t);
      timers.clear();
      http.closeAllConnections();
      await new Promise<void>((ok) => http.close(() => ok()));
    },
  };
  return server;
}
