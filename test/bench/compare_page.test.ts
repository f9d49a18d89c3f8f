// The Bench page (bench/page) in headless Chromium on the tiny preset at the
// shortest lengths: the same harness as in Node, run on the browser's WebGPU
// with onnxruntime-web's WebGPU provider and transformers.js (its WASM device,
// what a machine without a usable GPU gets) beside the transformer, draws its
// three charts with one series per architecture and per peer, and leaves
// results that pass the schema. No speed is asserted.

import { join } from 'node:path';
import { readFileSync, rmSync } from 'node:fs';
import { afterAll, beforeAll, expect, it } from 'vitest';
import Ajv from 'ajv';
import { chromium, type Browser } from 'playwright-core';
import { describeGpu } from '../helpers/gpu';
import { buildBenchPage, CHROMIUM_ARGS } from '../../bench/compare/browser';
import { peerFolders, serveBench } from '../../bench/compare/serve';

const root = join(__dirname, '..', '..');

describeGpu('the Bench page in headless Chromium', () => {
  let page = '';
  let server: Awaited<ReturnType<typeof serveBench>>;
  let browser: Browser;
  beforeAll(async () => {
    page = await buildBenchPage(root);
    server = await serveBench(page, join(root, 'models'), peerFolders(join(root, 'node_modules')));
    browser = await chromium.launch({ executablePath: '/usr/bin/chromium', args: [...CHROMIUM_ARGS, '--use-webgpu-adapter=swiftshader'] });
  });
  afterAll(async () => {
    await browser?.close();
    await server?.close();
    if (page) rmSync(page, { recursive: true, force: true });
  });

  it('runs the tiny preset and draws decode, prefill and memory charts with a series per architecture', async () => {
    const tab = await browser.newPage();
    const errors: string[] = [];
    tab.on('pageerror', (e) => errors.push(e.message));
    const external: string[] = [];
    await tab.route('**/*', (r) => (r.request().url().startsWith(server.url) ? r.continue() : (external.push(r.request().url()), r.abort())));
    await tab.goto(`${server.url}?preset=tiny&prompts=16&contexts=16,64&repeats=1&steps=2&peer=webgpu,transformers-wasm`);
    await tab.waitForFunction(() => (window as { __result?: unknown }).__result !== undefined, undefined, { timeout: 240_000 });
    const result = (await tab.evaluate(() => (window as { __result?: Record<string, unknown> }).__result)) as Record<string, unknown>;
    expect(result.error, String(result.error)).toBeUndefined();
    expect(errors).toEqual([]);
    const charts = await tab.evaluate(() =>
      [...document.querySelectorAll('figure[data-chart]')].map((f) => ({
        name: f.getAttribute('data-chart'),
        svg: f.querySelector('svg') !== null,
        series: [...f.querySelectorAll('g.series')].map((g) => g.getAttribute('data-series')),
        points: f.querySelectorAll('circle').length,
      })),
    );
    expect(charts.map((c) => c.name).sort()).toEqual(['decode', 'memory', 'prefill']);
    for (const c of charts) {
      expect(c.svg, c.name!).toBe(true);
      // A line per architecture; each peer a point on the speed charts.
      expect(c.series, c.name!).toEqual(c.name === 'memory' ? ['transformer', 'mamba', 'retnet', 'moe'] : ['transformer', 'mamba', 'retnet', 'moe', 'onnxruntime-web webgpu', 'transformers.js wasm']);
      expect(c.points, c.name!).toBe(c.name === 'prefill' ? 6 : c.name === 'decode' ? 10 : 8);
    }
    const { markdown: _md, svgs: _svgs, ...json } = result;
    const schema = JSON.parse(readFileSync(join(root, 'bench', 'compare', 'results.schema.json'), 'utf8'));
    const validate = new Ajv({ allErrors: true }).compile(schema);
    expect(validate(json), JSON.stringify(validate.errors)).toBe(true);
    expect((json.meta as { adapter: string }).adapter).toMatch(/swiftshader/i);
    const peers = json.peers as { runtime: string; ep: string; ratio: { prefill: number; decode: number } }[];
    expect(peers.map((p) => `${p.runtime} ${p.ep}`)).toEqual(['onnxruntime-web webgpu', 'transformers.js wasm']);
    for (const p of peers) {
      expect(p.ratio.prefill).toBeGreaterThan(0);
      expect(p.ratio.decode).toBeGreaterThan(0);
    }
    // transformers.js loaded its WASM files from the server, not from a CDN.
    expect(external).toEqual([]);
    await tab.close();
  });
});
