// `npm run bench:browser`: the Bench page (bench/page) built with Vite and
// run in headless Chromium (Debian's /usr/bin/chromium through
// playwright-core, WebGPU on whatever adapter the browser finds: SwiftShader
// on a machine without a GPU). The page's progress is echoed here, and its
// results are saved like the Node run's, with "-browser" in the file names.

import { mkdtempSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execFileSync } from 'node:child_process';
import { build } from 'vite';
import { chromium } from 'playwright-core';
import type { BenchOptions } from '../harness';
import { peerFolders, serveBench } from './serve';


/** Chromium's flags for WebGPU headless (../shared notes): unsafe WebGPU on, SwiftShader where there is no GPU. */
export const CHROMIUM_ARGS = ['--no-sandbox', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--enable-unsafe-webgpu', '--enable-features=Vulkan'];

/** Builds the Bench page (in the project at `root`) into a temporary folder; returns it. */
export async function buildBenchPage(root: string): Promise<string> {
  const outDir = mkdtempSync(join(tmpdir(), 'tessera-bench-page-'));
  await build({ root: join(root, 'bench', 'page'), logLevel: 'error', build: { outDir, emptyOutDir: true, target: 'es2022' } });
  return outDir;
}

/** `root`: the project's folder (the bench bundle knows where it is; this module may be a chunk elsewhere). */
export async function compareInBrowser(root: string, bench: BenchOptions, software: boolean): Promise<void> {
  const page = await buildBenchPage(root);
  const server = await serveBench(page, join(root, 'models'), peerFolders(join(root, 'node_modules')));
  const browser = await chromium.launch({ executablePath: '/usr/bin/chromium', args: [...CHROMIUM_ARGS, ...(software ? ['--use-webgpu-adapter=swiftshader'] : [])] });
  try {
    const q = new URLSearchParams({ preset: bench.preset ?? 'tiny' });
    if (bench.archs) q.set('archs', bench.archs.join(','));
    if (bench.prompts) q.set('prompts', bench.prompts.join(','));
    if (bench.contexts) q.set('contexts', bench.contexts.join(','));
    if (bench.repeats) q.set('repeats', String(bench.repeats));
    if (bench.layers) q.set('layers', String(bench.layers));
    if (bench.depth) q.set('depth', String(bench.depth));
    if (bench.quick) q.set('steps', '4');
    if (bench.profile) q.set('profile', '1');
    if (bench.peer) q.set('peer', bench.peer.join(','));
    try {
      q.set('commit', execFileSync('git', ['rev-parse', 'HEAD'], { cwd: root, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim());
    } catch {
      // not a clone: no commit to name
    }
    const tab = await browser.newPage();
    tab.on('pageerror', (e) => process.stderr.write(`\npage error: ${e.message}\n`));
    await tab.goto(`${server.url}?${q}`);
    let result: Record<string, unknown> | undefined;
    for (;;) {
      result = await tab.evaluate(() => (window as { __result?: Record<string, unknown> }).__result);
      if (result) break;
      const progress = await tab.evaluate(() => document.getElementById('progress')?.textContent ?? '');
      process.stderr.write(`\r\x1b[K${progress}`);
      await new Promise((r) => setTimeout(r, 1000));
    }
    process.stderr.write('\r\x1b[K');
    if (typeof result.error === 'string') throw new Error(`the Bench page failed: ${result.error}`);
    const { markdown, svgs, meta, ...results } = result as { markdown: string; svgs: Record<string, string>; meta: { date: string; adapter: string } } & Record<string, unknown>;
    const out = bench.out ?? join(root, 'bench', 'results');
    mkdirSync(out, { recursive: true });
    const slug = meta.adapter.toLowerCase().replace(/[^a-z0-9]+/g, '-').replace(/^-|-$/g, '').slice(0, 40);
    const stem = `${meta.date.slice(0, 10)}-${bench.preset ?? 'tiny'}-browser-${slug}`;
    for (const [name, svg] of Object.entries(svgs)) writeFileSync(join(out, `${stem}-${name}.svg`), svg);
    writeFileSync(join(out, `${stem}.json`), JSON.stringify({ meta, ...results }, null, 1));
    writeFileSync(join(out, `${stem}.md`), markdown);
    console.log(markdown);
    console.log(`Reports: ${join(out, stem)}.{json,md} and its charts`);
  } finally {
    await browser.close();
    await server.close();
    rmSync(page, { recursive: true, force: true });
  }
}
