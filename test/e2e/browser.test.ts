// The library in real headless Chromium (Debian's chromium, driven by
// playwright-core): WebGPU from navigator.gpu on SwiftShader, a kernel, and a
// model loaded from in-memory Blobs, checked against the float64 references.

import { afterAll, beforeAll, expect, it } from 'vitest';
import { createServer, type Server } from 'node:http';
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
import { relMaxErr } from '../helpers/models';
import { expectClose } from '../helpers/compare';

const CHROMIUM = '/usr/bin/chromium';
const TYPES: Record<string, string> = { '.html': 'text/html', '.js': 'text/javascript', '.map': 'application/json' };

describeGpu('in headless Chromium', () => {
  let server: Server;
  let browser: Browser;
  let url = '';

  beforeAll(async () => {
    const outDir = mkdtempSync(join(tmpdir(), 'tessera-page-'));
    await build({ root: join(__dirname, 'page'), logLevel: 'error', build: { outDir, emptyOutDir: true, target: 'es2022' } });
    server = createServer(async (req, res) => {
      const file = normalize(decodeURIComponent(new URL(req.url ?? '/', 'http://x').pathname)).replace(/^([/\\])+/, '') || 'index.html';
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

  it('gets a device from navigator.gpu, runs a kernel, loads a model from Blobs and generates', async () => {
    const page = await browser.newPage();
    await page.goto(url);
    await page.waitForFunction(() => window.__result !== undefined, undefined, { timeout: 120_000 });
    const r = (await page.evaluate(() => window.__result)) as {
      error?: string; report: { backend: string; adapter: string }; x: number[]; w: number[]; norm: number[]; logits: number[]; text: string; memoryBefore: number; memoryAfter: number;
    };
    expect(r.error, r.error).toBeUndefined();
    expect(r.report.backend).toBe('browser');
    expect(r.report.adapter).toMatch(/swiftshader/i);
    expectClose(r.norm, ref.rmsnorm(r.x, r.w, 3, 40, 1e-5), { atol: 1e-6, rtol: 1e-5 }, 'rmsnorm in the browser');
    const ck = tinyTransformer({ seed: 5 });
    const ids = [3, 60, 101, 7];
    expect(relMaxErr(r.logits, refForward(ck.config, (n) => ck.weights.get(n)!, ids))).toBeLessThan(1e-4);
    expect(r.text.length).toBeGreaterThan(0);
    expect(r.memoryBefore).toBeGreaterThan(r.memoryAfter);
    await page.close();
  });
});
