// createWorkerEngine() in headless Chromium: the runtime in a Web Worker,
// the page's main thread free while it loads and generates (a timer keeps
// firing, no long task over 200 ms), the bundled transformer's greedy text
// against PyTorch's, the offline cache (a reload loads with every request
// for the model's files blocked; list, delete; a quota too small is a clear
// Error and stores nothing), and errors that keep their code and name
// across the worker's message boundary.

import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { describeGpu } from '../helpers/gpu';
import { launchChromium } from '../helpers/browsers';
import { servePage, type ServedPage } from '../helpers/page_server';

const root = new URL('../../', import.meta.url);
const golden = JSON.parse(readFileSync(new URL('models/transformer/golden.json', root), 'utf8')) as { greedy: { prompt: string; text: string } };

type T = Record<string, (...args: never[]) => Promise<unknown> | unknown>;
declare global {
  interface Window { __t: T; __result?: unknown }
}

describeGpu('the worker engine in headless Chromium', () => {
  let served: ServedPage;
  let browser: Browser;
  let page: Page;
  /** Requests for the model's files since the last look. */
  const modelRequests: string[] = [];

  beforeAll(async () => {
    served = await servePage(join(__dirname, 'worker_page'), (path, _req, res) => {
      if (!path.startsWith('models/')) return false;
      modelRequests.push(path);
      try {
        const body = readFileSync(new URL(path, root));
        res.writeHead(200, { 'content-length': body.length, 'accept-ranges': 'bytes' }).end(body);
      } catch {
        res.writeHead(404).end();
      }
      return true;
    });
    browser = await launchChromium();
    page = await (await browser.newContext()).newPage();
  });

  afterAll(async () => {
    await browser?.close();
    await served?.close();
  });

  const open = async () => {
    await page.goto(served.url);
    await page.waitForFunction(() => window.__result === 'ready');
  };
  const call = <R>(name: string, ...args: unknown[]) => page.evaluate(([n, a]) => window.__t[n as string](...(a as never[])), [name, args] as const) as Promise<R>;

  it('loads into the cache and generates in the worker while the page stays responsive; a reload loads offline', async () => {
    await open();
    call('mainThread');
    const started = Date.now();
    const first = await call<{ info: { modelType: string }; progress: string[]; last: { loadedBytes: number; totalBytes: number }; error?: unknown }>('load', 'bundled:transformer', { cache: true });
    expect(first.error).toBeUndefined();
    expect(first.info.modelType).toBe('llama');
    expect(first.progress).toEqual(['download', 'weights']);
    expect(first.last.loadedBytes).toBe(first.last.totalBytes);
    expect(modelRequests.length).toBeGreaterThan(0);
    const g = await call<{ pieces: string[]; stats: { generatedTokens: number } }>('generate', golden.greedy.prompt, 16);
    expect(g.pieces.join('')).toBe(golden.greedy.text.slice(0, 16));
    expect(g.stats.generatedTokens).toBe(16);
    const main = await call<{ ticks: number; longest: number }>('mainThread');
    const seconds = (Date.now() - started) / 1000;
    expect(main.longest).toBeLessThanOrEqual(200);
    expect(main.ticks).toBeGreaterThan(seconds * 20 * 0.5); // a 50 ms timer: half its ticks at least
    const mem = await call<{ bytes: { weights: number }; stateBytes: number }>('memory');
    expect(mem.bytes.weights).toBeGreaterThan(0);
    const cached = await call<{ url: string; bytes: number; files: Record<string, number> }[]>('list');
    expect(cached).toHaveLength(1);
    expect(cached[0].url).toMatch(/\/models\/transformer\/$/);
    expect(Object.keys(cached[0].files).sort()).toEqual(['config.json', 'generation_config.json', 'model.safetensors', 'tokenizer.json', 'tokenizer_config.json']);

    // A reload, with every request for the model's files refused: it loads from the cache.
    await page.route('**/models/**', (r) => r.abort());
    modelRequests.length = 0;
    await open();
    const offline = await call<{ progress: string[]; error?: unknown }>('load', 'bundled:transformer', { cache: true });
    expect(offline.error).toBeUndefined();
    expect(offline.progress).toEqual(['weights']);
    expect(modelRequests).toEqual([]);
    const again = await call<{ pieces: string[] }>('generate', golden.greedy.prompt, 16);
    expect(again.pieces.join('')).toBe(golden.greedy.text.slice(0, 16));

    // Deleted, it is gone: offline, the load fails with the network's error.
    expect(await call('remove', 'bundled:transformer')).toBe(true);
    expect(await call('list')).toEqual([]);
    const gone = await call<{ error: { code: string; message: string } }>('load', 'bundled:transformer', { cache: true });
    expect(gone.error.code).toBe('LOAD_FAILED');
    expect(gone.error.message).toMatch(/models\/transformer/);
    await page.unroute('**/models/**');
  });

  it('a storage quota too small: QUOTA_EXCEEDED, nothing stored, and the engine still works', async () => {
    await open();
    const cdp = await page.context().newCDPSession(page);
    const origin = new URL(served.url).origin;
    await cdp.send('Storage.overrideQuotaForOrigin', { origin, quotaSize: 1_000_000 });
    try {
      const r = await call<{ error: { code: string; message: string } }>('load', 'bundled:transformer', { cache: true });
      expect(r.error.code).toBe('QUOTA_EXCEEDED');
      expect(r.error.message).toMatch(/storage quota is exhausted \(the model needs \d+ bytes/);
      expect(await call('list')).toEqual([]);
    } finally {
      await cdp.send('Storage.overrideQuotaForOrigin', { origin });
    }
    const plain = await call<{ error?: unknown }>('load', 'bundled:transformer');
    expect(plain.error).toBeUndefined();
    expect((await call<{ pieces: string[] }>('generate', golden.greedy.prompt, 4)).pieces.join('')).toBe(golden.greedy.text.slice(0, 4));
  });

  it('errors cross the worker boundary with their code and name: a corrupt checkpoint, a stopped generation', async () => {
    await open();
    const dir = new URL('models/transformer/', root);
    const files: Record<string, number[]> = {};
    for (const f of ['config.json', 'tokenizer.json', 'tokenizer_config.json']) files[f] = [...readFileSync(new URL(f, dir))];
    files['model.safetensors'] = [...new TextEncoder().encode('not a safetensors file at all')];
    const bad = await page.evaluate(async (fs) => {
      const bytes = Object.fromEntries(Object.entries(fs).map(([k, v]) => [k, new Uint8Array(v)]));
      return window.__t.load(bytes as never);
    }, files) as { error: { code: string; message: string } };
    expect(bad.error.code).toBe('LOAD_FAILED');
    expect(bad.error.message).toMatch(/model\.safetensors/);
    expect((await call<{ error?: unknown }>('load', 'bundled:transformer')).error).toBeUndefined();
    const stopped = await call<{ pieces: string[]; error: { name: string; code: string; message: string } }>('generate', 'ROMEO:', 200, 2);
    expect(stopped.error).toMatchObject({ name: 'AbortError', code: 'ABORTED' });
    expect(stopped.error.message).toMatch(/stop pressed/);
    expect(stopped.pieces.length).toBeLessThan(200);
  });
});
