// loadModel() over the network and under cancellation, end to end: a gated
// server reached through the fetchFn option, a server that stalls in the
// middle of the weights (the timeoutMs option), and an AbortSignal that
// cancels a load from memory or from a stalled server. After each failure
// the ledger is where it was and a good load gives the same text.

import type { IncomingMessage, ServerResponse } from 'node:http';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { loadModel, type LM } from '../../src/lm';
import { describeGpu, useGpu } from '../helpers/gpu';
import { tinyTransformer } from '../helpers/checkpoints';
import { startServer, type TestServer } from '../helpers/http_server';

const files = tinyTransformer({ seed: 91, layers: 1 }).files;
const TOKEN = 'Bearer secret';

async function text(lm: LM): Promise<string> {
  let out = '';
  for await (const p of lm.generate('the cat', { maxNewTokens: 5 })) out += p;
  return out;
}

/** Serves `files` under /good/, /gated/ (needs the token) and /stall/ (weights stall after their header). */
function serve(req: IncomingMessage, res: ServerResponse, server: TestServer): void {
  const [, mode, name] = new URL(req.url ?? '/', 'http://x').pathname.split('/');
  const body = files[name];
  if (mode === 'gated' && req.headers.authorization !== TOKEN) return void res.writeHead(401).end();
  if (!body) return void res.writeHead(404).end();
  if (req.method === 'HEAD') return void res.writeHead(200, { 'content-length': body.length }).end();
  const m = /^bytes=(\d+)-(\d+)$/.exec(req.headers.range ?? '');
  if (!m) return void res.writeHead(200, { 'content-length': body.length }).end(body);
  const [a, b] = [Number(m[1]), Number(m[2])];
  if (mode === 'stall' && name === 'model.safetensors' && a > 1000) return server.hold(5000, () => req.socket.destroy());
  res.writeHead(206, { 'content-range': `bytes ${a}-${b}/${body.length}`, 'content-length': b - a + 1 }).end(body.subarray(a, b + 1));
}

describeGpu('loadModel over the network and under cancellation', () => {
  const gpu = useGpu();
  let server: TestServer;
  let expected = '';
  let baseline = 0;

  beforeAll(async () => {
    server = await startServer(serve);
    const lm = await loadModel(`${server.url}good/`, { device: gpu(), maxContext: 64 });
    expected = await text(lm);
    lm.dispose();
    baseline = gpu().ledger.report().total;
  });
  afterAll(() => server.close());

  async function unharmed(): Promise<void> {
    expect(gpu().ledger.report().total).toBe(baseline);
    const lm = await loadModel(files, { device: gpu(), maxContext: 64 });
    expect(await text(lm)).toBe(expected);
    lm.dispose();
  }

  it('a gated server: the Error names the fetchFn option, and a fetchFn that adds the token loads the model', async () => {
    const url = `${server.url}gated/`;
    await expect(loadModel(url, { device: gpu() })).rejects.toThrow(/HTTP 401 Unauthorized; a gated or private repository needs an access token: pass loadModel\(url, \{ fetchFn \}\)/);
    const fetchFn = (u: string, init?: RequestInit) => fetch(u, { ...init, headers: { ...(init?.headers as Record<string, string>), Authorization: TOKEN } });
    const lm = await loadModel(url, { device: gpu(), maxContext: 64, fetchFn });
    expect(await text(lm)).toBe(expected);
    lm.dispose();
  });

  it('a server that stalls in the middle of the weights fails the load within timeoutMs, naming the URL and the bytes', async () => {
    const t0 = performance.now();
    await expect(loadModel(`${server.url}stall/`, { device: gpu(), maxContext: 64, timeoutMs: 300 }))
      .rejects.toThrow(/GET http:\/\/127\.0\.0\.1:\d+\/stall\/model\.safetensors \(bytes=\d+-\d+\) failed: no response headers came for 300 ms \(the timeoutMs option\), after 0 of \d+ bytes/);
    expect(performance.now() - t0).toBeLessThan(3000);
    await unharmed();
  });

  it('an AbortSignal cancels a load part-way, from memory or from a stalled server, and frees what it made', async () => {
    const ctl = new AbortController();
    let tensors = 0;
    const onProgress = () => {
      if (++tensors === 3) ctl.abort(new Error('closed the tab'));
    };
    await expect(loadModel(files, { device: gpu(), maxContext: 64, signal: ctl.signal, onProgress }))
      .rejects.toMatchObject({ name: 'AbortError', message: expect.stringMatching(/^loadModel: cancelled before reading tensor '[\w.]+' \(closed the tab\)$/) });
    expect(gpu().ledger.report().total).toBe(baseline);

    const stalled = new AbortController();
    const t0 = performance.now();
    const load = loadModel(`${server.url}stall/`, { device: gpu(), maxContext: 64, signal: stalled.signal });
    setTimeout(() => stalled.abort(), 200);
    await expect(load).rejects.toMatchObject({ name: 'AbortError', message: expect.stringContaining('the load was cancelled') });
    expect(performance.now() - t0).toBeLessThan(2000);
    await expect(loadModel(files, { device: gpu(), signal: AbortSignal.abort() })).rejects.toThrow(/loadModel: cancelled before it started/);
    await unharmed();
  });
});
