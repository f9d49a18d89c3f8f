// The demo web app, built as a static site (demo/vite.config.ts) and served
// on 127.0.0.1, in headless Chromium: it opens on the bundled transformer and
// 16 generated tokens appear (PyTorch's greedy text), stats and the memory
// meter update, Stop stops, a saved state restored continues exactly, a
// reload loads from the offline cache with every request for the model's
// files refused, and a corrupt model.safetensors dropped onto the page shows
// an error while the page goes on working with another model. Screenshots go
// to test-artifacts/. The benchmark page it links to runs and draws its charts;
// without WebGPU the page says what to do.

import { mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { build } from 'vite';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { describeGpu } from '../helpers/gpu';
import { launchChromium } from '../helpers/browsers';
import { serveDir, type ServedPage } from '../helpers/page_server';

const root = join(__dirname, '..', '..');
const artifacts = join(root, 'test-artifacts');
const golden = JSON.parse(readFileSync(join(root, 'models', 'transformer', 'golden.json'), 'utf8')) as { greedy: { prompt: string; text: string } };

describeGpu('the demo in headless Chromium', () => {
  let out = '';
  let served: ServedPage;
  let browser: Browser;
  let page: Page;
  const modelRequests: string[] = [];

  beforeAll(async () => {
    out = mkdtempSync(join(tmpdir(), 'tessera-demo-'));
    await build({ configFile: join(root, 'demo', 'vite.config.ts'), logLevel: 'error', build: { outDir: out, emptyOutDir: true } });
    served = await serveDir(out, (path) => {
      if (path.startsWith('models/')) modelRequests.push(path);
      return false;
    });
    browser = await launchChromium();
    page = await (await browser.newContext({ viewport: { width: 420, height: 900 } })).newPage(); // a phone-sized screen
    mkdirSync(artifacts, { recursive: true });
  });

  afterAll(async () => {
    await browser?.close();
    await served?.close();
    if (out) rmSync(out, { recursive: true, force: true });
  });

  const ready = () => page.waitForFunction(() => /ready$/.test(document.querySelector('#model-status')?.textContent ?? ''), undefined, { timeout: 120_000 });
  const text = (sel: string) => page.locator(sel).textContent();
  /** Fills the sampling fields, clicks Generate and waits for the stats of the finished generation. */
  async function generate(prompt: string, maxTokens: number, opts: { continue?: boolean } = {}) {
    await page.fill('#prompt', prompt);
    await page.fill('#max-tokens', String(maxTokens));
    await page.fill('#temperature', '0');
    await page.setChecked('#continue', opts.continue ?? false);
    await page.click('#generate');
    await page.waitForFunction(() => !(document.querySelector('#generate') as HTMLButtonElement).disabled && /\(\w+\)$/.test(document.querySelector('#tokens')?.textContent ?? ''), undefined, { timeout: 120_000 });
    return (await text('#output'))!;
  }

  it('opens on the bundled transformer; 16 tokens appear; stats and the memory meter update; Stop stops', async () => {
    await page.goto(served.url);
    await ready();
    expect(await page.getByLabel('Bundled model').inputValue()).toBe('transformer');
    const out16 = await generate(golden.greedy.prompt, 16);
    expect(out16).toBe(golden.greedy.text.slice(0, 16));
    expect(await text('#tokens')).toBe('16 (length)');
    expect(await text('#decode')).toMatch(/^[\d.]+ tokens\/s$/);
    expect(await text('#ttft')).toMatch(/^\d+ ms$/);
    expect(await page.locator('#memory li').allTextContents()).toEqual(expect.arrayContaining([expect.stringMatching(/^weights: [\d.]+ MiB$/), expect.stringMatching(/^KV cache or state: [\d.]+ MiB$/)]));
    await page.screenshot({ path: join(artifacts, 'demo-generated.png'), fullPage: true });

    await page.fill('#max-tokens', '400');
    await page.fill('#prompt', 'ROMEO:');
    await page.setChecked('#continue', false);
    await page.click('#generate');
    await page.waitForFunction(() => (document.querySelector('#output')?.textContent ?? '').length >= 3);
    await page.click('#stop');
    await page.waitForFunction(() => /\(abort\)$/.test(document.querySelector('#tokens')?.textContent ?? ''));
    expect((await text('#output'))!.length).toBeLessThan(400);
    expect(await text('#error')).toBe('');
  });

  it('a saved state, restored, continues the conversation exactly', async () => {
    await generate('JULIET:', 6);
    await page.click('#save');
    await page.waitForFunction(() => /state saved/.test(document.querySelector('#model-status')?.textContent ?? ''));
    const first = await generate('', 10, { continue: true });
    await generate('Something else entirely.', 5); // the conversation moves on
    await page.click('#restore');
    await page.waitForFunction(() => /state restored/.test(document.querySelector('#model-status')?.textContent ?? ''));
    await page.fill('#prompt', '');
    const again = await generate('', 10, { continue: true });
    expect(again.slice(-10)).toBe(first.slice(-10));
    await page.screenshot({ path: join(artifacts, 'demo-restored.png'), fullPage: true });
  });

  it('a reload loads from the offline cache with the model\'s files refused; a corrupt checkpoint dropped in is an error, and another model still works', async () => {
    await page.route('**/models/**', (r) => r.abort());
    modelRequests.length = 0;
    await page.reload();
    await ready();
    expect(modelRequests).toEqual([]);
    expect(await generate(golden.greedy.prompt, 8)).toBe(golden.greedy.text.slice(0, 8));
    await page.unroute('**/models/**');

    const dir = join(root, 'models', 'transformer');
    const files = Object.fromEntries(['config.json', 'tokenizer.json', 'tokenizer_config.json'].map((f) => [f, [...readFileSync(join(dir, f))]]));
    files['model.safetensors'] = [...new TextEncoder().encode('not a safetensors file')];
    await page.evaluate((fs) => {
      const dt = new DataTransfer();
      for (const [name, bytes] of Object.entries(fs)) dt.items.add(new File([new Uint8Array(bytes)], name));
      document.dispatchEvent(new DragEvent('drop', { dataTransfer: dt, bubbles: true, cancelable: true }));
    }, files);
    await page.waitForFunction(() => /model\.safetensors/.test(document.querySelector('#error')?.textContent ?? ''), undefined, { timeout: 60_000 });
    expect(await text('#error')).toMatch(/LOAD_FAILED/);
    await page.screenshot({ path: join(artifacts, 'demo-corrupt-file.png'), fullPage: true });
    await page.selectOption('#bundled', 'mamba');
    await ready();
    expect((await generate('ROMEO:', 8)).length).toBeGreaterThanOrEqual(8);
  });

  it('links to the benchmark page, which compares the bundled models and draws its charts', async () => {
    await page.goto(served.url);
    const href = await page.getByRole('link', { name: 'The benchmark' }).getAttribute('href');
    await page.goto(new URL(`${href}?preset=tiny&archs=mamba&prompts=8&contexts=16&repeats=1&steps=2`, served.url).href);
    await page.waitForFunction(() => (window as { __result?: unknown }).__result !== undefined, undefined, { timeout: 120_000 });
    const r = (await page.evaluate(() => (window as { __result?: unknown }).__result)) as { error?: string; models: { arch: string }[]; peers: unknown[] };
    expect(r.error, r.error).toBeUndefined();
    expect(r.models.map((m) => m.arch)).toEqual(['mamba']);
    expect(r.peers).toEqual([]);
    expect(await page.locator('#charts svg').count()).toBeGreaterThanOrEqual(3);
    await page.screenshot({ path: join(artifacts, 'demo-bench.png'), fullPage: true });
  });

  it('a browser without WebGPU gets a message saying what to do, not a blank page', async () => {
    const bare = await browser.newPage();
    try {
      await bare.addInitScript(() => delete (Navigator.prototype as { gpu?: unknown }).gpu);
      await bare.goto(served.url);
      const alert = bare.locator('#no-webgpu');
      await alert.waitFor({ state: 'visible' });
      expect(await alert.textContent()).toMatch(/no WebGPU.*Chrome or Edge/);
      expect(await bare.locator('#generate').isDisabled()).toBe(true);
      await bare.screenshot({ path: join(artifacts, 'demo-no-webgpu.png') });
    } finally {
      await bare.close();
    }
  });
});
