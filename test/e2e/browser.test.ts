// The library in real headless Chromium (Debian's chromium, driven by
// playwright-core): WebGPU from navigator.gpu on SwiftShader, a kernel, and a
// model loaded from in-memory Blobs (f32, and the default 4-bit layers with an
// 8-bit embedding) and over HTTP (Range requests), checked
// against the float64 references.

import { afterAll, beforeAll, expect, it } from 'vitest';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { readFile } from 'node:fs/promises';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { extname, join, normalize } from 'node:path';
import { build } from 'vite';
import { chromium, type Browser } from 'playwright-core';
import { describeGpu } from '../helpers/gpu';
import { tinyTransformer } from '../helpers/checkpoints';
import { refForward } from '../../src/reference/transformer';
import * as ref from '../../src/reference/ops';
import { asLoaded, relMaxErr } from '../helpers/models';
import { transformerTensorShapes } from '../../src/models/transformer/weights';
import { expectClose } from '../helpers/compare';

const CHROMIUM = '/usr/bin/chromium';
const TYPES: Record<string, string> = { '.html': 'text/html', '.js': 'text/javascript', '.map': 'application/json' };

describeGpu('in headless Chromium', () => {
  let server: Server;
  let browser: Browser;
  let url = '';
  // The checkpoint the page also loads from Blobs, served under /model/ as a
  // static host or the Hugging Face hub serves it: HEAD, and Range GETs.
  const checkpoint = tinyTransformer({ seed: 5 }).files as Record<string, Uint8Array>;
  const served: { method: string; file: string; range: string | null }[] = [];

  function serveCheckpointFile(name: string, req: IncomingMessage, res: ServerResponse): void {
    const body = checkpoint[name];
    served.push({ method: req.method ?? '', file: name, range: req.headers.range ?? null });
    if (!body) return void res.writeHead(404).end();
    const m = /^bytes=(\d+)-(\d+)$/.exec(req.headers.range ?? '');
    if (!m) return void res.writeHead(200, { 'content-length': body.length, 'accept-ranges': 'bytes' }).end(req.method === 'HEAD' ? undefined : body);
    const [from, to] = [Number(m[1]), Math.min(Number(m[2]), body.length - 1)];
    res.writeHead(206, { 'content-length': to - from + 1, 'content-range': `bytes ${from}-${to}/${body.length}` }).end(body.subarray(from, to + 1));
  }

  beforeAll(async () => {
    const outDir = mkdtempSync(join(tmpdir(), 'tessera-page-'));
    await build({ root: join(__dirname, 'page'), logLevel: 'error', build: { outDir, emptyOutDir: true, target: 'es2022' } });
    server = createServer(async (req, res) => {
      const file = normalize(decodeURIComponent(new URL(req.url ?? '/', 'http://x').pathname)).replace(/^([/\\])+/, '') || 'index.html';
      if (file.startsWith('model/')) return serveCheckpointFile(file.slice(6), req, res);
      try {
        const body = await readFile(join(outDir, file));
        res.writeHead(200, { 'content-type': TYPES[extname(file)] ?? 'application/octet-stream' }).end(body);
      } catch {
        res.writeHead(404).end();
      }
    });
    await new Promise<void>((ok) => server.listen(0, '127.0.0.1', ok));
    const port = (server.address() as { port: number }).port;
    url = `http://127.0.0.1:${port}/`;
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      headless: true,
      args: ['--no-sandbox', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync',
        '--enable-unsafe-webgpu', '--use-webgpu-adapter=swiftshader'],
    });
  });

  afterAll(async () => {
    await browser?.close();
    server?.close();
  });

  it('gets a device from navigator.gpu, runs a kernel, loads a model from Blobs and from a URL, and generates', async () => {
    const page = await browser.newPage();
    await page.goto(url);
    await page.waitForFunction(() => window.__result !== undefined, undefined, { timeout: 120_000 });
    const r = (await page.evaluate(() => window.__result)) as {
      error?: string; report: { backend: string; adapter: string }; x: number[]; w: number[]; norm: number[]; logits: number[]; urlLogits: number[]; q4Logits: number[]; text: string; memoryBefore: number; memoryAfter: number;
    };
    expect(r.error, r.error).toBeUndefined();
    expect(r.report.backend).toBe('browser');
    expect(r.report.adapter).toMatch(/swiftshader/i);
    expectClose(r.norm, ref.rmsnorm(r.x, r.w, 3, 40, 1e-5), { atol: 1e-6, rtol: 1e-5 }, 'rmsnorm in the browser');
    const ck = tinyTransformer({ seed: 5 });
    const ids = [3, 60, 101, 7];
    const want = refForward(ck.config, (n) => ck.weights.get(n)!, ids);
    expect(relMaxErr(r.logits, want)).toBeLessThan(1e-4);
    // The default formats (4-bit layers, 8-bit embedding), against the reference on the same quantized weights.
    expect(relMaxErr(r.q4Logits, refForward(ck.config, asLoaded(ck.weights, transformerTensorShapes(ck.config), 'q4'), ids))).toBeLessThan(1e-4);
    // Fetched over HTTP: the same logits, and the weights came by Range requests, never one whole-file GET.
    expect(relMaxErr(r.urlLogits, want)).toBeLessThan(1e-4);
    const weightGets = served.filter((s) => s.file.endsWith('.safetensors') && s.method === 'GET');
    expect(weightGets.length).toBeGreaterThan(1);
    expect(weightGets.every((s) => s.range !== null), JSON.stringify(weightGets)).toBe(true);
    expect(r.text.length).toBeGreaterThan(0);
    expect(r.memoryBefore).toBeGreaterThan(r.memoryAfter);
    await page.close();
  });
});
