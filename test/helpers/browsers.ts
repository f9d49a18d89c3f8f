// The headless browsers the tests run the library in, both driven from Node:
// Debian's Chromium (Dawn, Tint) through playwright-core, and Debian's Firefox
// ESR (wgpu, Naga) through puppeteer-core over WebDriver BiDi, which stock
// Firefox speaks (Playwright drives only its own Firefox build). Chromium
// runs WebGPU on SwiftShader; Firefox on Mesa's lavapipe, which offers
// shader-f16 and ran the same page three times faster than SwiftShader there.

import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium, type Browser } from 'playwright-core';
import puppeteer from 'puppeteer-core';

export type Engine = 'chromium' | 'firefox';
export const ENGINES: readonly Engine[] = ['chromium', 'firefox'];

/** The Vulkan driver Firefox's WebGPU runs on: Mesa's lavapipe (mesa-vulkan-drivers). */
const LAVAPIPE = '/usr/share/vulkan/icd.d/lvp_icd.x86_64.json';

export interface BrowserSession {
  engine: Engine;
  /** Opens `url`, waits for the page to set window.__result, returns it. */
  result(url: string, timeoutMs?: number): Promise<unknown>;
  close(): Promise<void>;
}

/** The part of a Playwright or Puppeteer page the tests use: the two APIs agree on these. */
interface Page {
  goto(url: string): Promise<unknown>;
  evaluate<T>(fn: () => T): Promise<T>;
  close(): Promise<void>;
}

/** Opens `url` in a new page and waits (polling) until it has set window.__result. */
async function resultOf(page: Page, url: string, timeoutMs: number): Promise<unknown> {
  try {
    await page.goto(url);
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const result = await page.evaluate(() => (window as { __result?: unknown }).__result);
      if (result !== undefined) return result;
      if (Date.now() > deadline) throw new Error(`the page at ${url} set no result within ${timeoutMs} ms`);
      await new Promise((r) => setTimeout(r, 200));
    }
  } finally {
    await page.close();
  }
}

/** Debian's Chromium, headless, with WebGPU on SwiftShader, for tests that drive a page themselves. */
export function launchChromium(): Promise<Browser> {
  return chromium.launch({
    executablePath: '/usr/bin/chromium',
    args: ['--no-sandbox', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--enable-unsafe-webgpu', '--use-webgpu-adapter=swiftshader'],
  });
}

export async function openBrowser(engine: Engine): Promise<BrowserSession> {
  if (engine === 'chromium') {
    const browser = await launchChromium();
    return { engine, result: async (url, timeoutMs = 120_000) => resultOf(await browser.newPage(), url, timeoutMs), close: () => browser.close() };
  }
  const profile = mkdtempSync(join(tmpdir(), 'tessera-firefox-'));
  const browser = await puppeteer.launch({
    browser: 'firefox',
    executablePath: '/usr/bin/firefox-esr',
    headless: true,
    userDataDir: profile,
    // WebGPU is off by default in Firefox ESR, and blocklisted on software drivers.
    extraPrefsFirefox: { 'dom.webgpu.enabled': true, 'gfx.webgpu.ignore-blocklist': true },
    env: { ...process.env, VK_ICD_FILENAMES: LAVAPIPE },
  });
  return {
    engine,
    result: async (url, timeoutMs = 120_000) => resultOf(await browser.newPage(), url, timeoutMs),
    async close() {
      await browser.close();
      rmSync(profile, { recursive: true, force: true });
    },
  };
}
