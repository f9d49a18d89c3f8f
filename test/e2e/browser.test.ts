// The library in two real headless browsers, two WebGPU implementations:
// Chromium (Dawn and Tint, on SwiftShader) and Firefox ESR (wgpu and Naga, on
// Mesa's lavapipe); see helpers/browsers.ts. In each: WebGPU from
// navigator.gpu, every kernel compiled with no compiler message (in f16 too
// where the adapter has shader-f16), a kernel run, the tiny transformer loaded
// from in-memory Blobs (f32, and the default 4-bit layers with an 8-bit
// embedding) and over HTTP (Range requests), and the tiny Mamba and RetNet,
// checked against the float64 references.

import { afterAll, beforeAll, expect, it } from 'vitest';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { join } from 'node:path';
import { describeGpu } from '../helpers/gpu';
import { tinyMamba, tinyTransformer } from '../helpers/checkpoints';
import { ENGINES, openBrowser, type BrowserSession } from '../helpers/browsers';
import { refForward } from '../../src/reference/transformer';
import { refMambaForward } from '../../src/reference/mamba';
import { refRetNetForward } from '../../src/reference/retnet';
import { tinyRetnet } from '../helpers/retnet_checkpoint';
import * as ref from '../../src/reference/ops';
import { asLoaded, relMaxErr } from '../helpers/models';
import { transformerTensorShapes } from '../../src/models/transformer/weights';
import { expectClose } from '../helpers/compare';
import { servePage, type ServedPage } from '../helpers/page_server';

for (const engine of ENGINES) describeGpu(`in headless ${engine}`, () => {
  let page: ServedPage;
  let browser: BrowserSession;
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
    page = await servePage(join(__dirname, 'page'), (path, req, res) => {
      if (!path.startsWith('model/')) return false;
      serveCheckpointFile(path.slice(6), req, res);
      return true;
    });
    browser = await openBrowser(engine);
  });

  afterAll(async () => {
    await browser?.close();
    await page?.close();
  });

  it('gets a device from navigator.gpu, compiles every kernel, runs one, loads models from Blobs and from a URL, and generates', async () => {
    const r = (await browser.result(page.url)) as {
      error?: string; report: { backend: string; adapter: string; software: boolean; features: { shaderF16: boolean } }; compiled: { kernels: number; types: string[]; messages: string[] };
      x: number[]; w: number[]; norm: number[]; logits: number[]; urlLogits: number[]; q4Logits: number[]; mambaLogits: number[]; retnetLogits: number[]; text: string; memoryBefore: number; memoryAfter: number;
    };
    expect(r.error, r.error).toBeUndefined();
    expect(r.report.backend).toBe('browser');
    expect(r.report.software).toBe(true);
    // Chromium names SwiftShader; Firefox names no adapter and is described by what it offers (lavapipe: shader-f16).
    expect(r.report.adapter).toMatch(engine === 'chromium' ? /swiftshader/i : /a fallback \(software\) adapter that gives no name \(features: shader-f16/);
    // What each engine offers on its driver here (the README's browser table).
    expect(r.report.features).toEqual(engine === 'chromium' ? { shaderF16: false, subgroups: true, timestampQuery: true } : { shaderF16: true, subgroups: false, timestampQuery: true });
    expect(r.compiled.kernels).toBeGreaterThan(20);
    expect(r.compiled.types).toEqual(r.report.features.shaderF16 ? ['f32', 'f16'] : ['f32']);
    expect(r.compiled.messages).toEqual([]);
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
    const mk = tinyMamba({ seed: 6 });
    expect(relMaxErr(r.mambaLogits, refMambaForward(mk.config, (n) => mk.weights.get(n)!, ids))).toBeLessThan(1e-4);
    const rk = tinyRetnet({ seed: 6 });
    expect(relMaxErr(r.retnetLogits, refRetNetForward(rk.config, (n) => rk.weights.get(n)!, ids))).toBeLessThan(1e-4);
    expect(r.text.length).toBeGreaterThan(0);
    expect(r.memoryBefore).toBeGreaterThan(r.memoryAfter);
  });
});
