// The headless browsers the tests run the library in, both driven from Node:
// Debian's Chromium (Dawn, Tint) through playwright-core, and Debian's Firefox
// ESR (wgpu, Naga) through puppeteer-core over WebDriver BiDi, which stock
// Firefox speaks (Playwright drives only its own Firefox build). Chromium
// runs WebGPU on SwiftShader; Firefox on Mesa's lavapipe, which offers
// shader-f16 and ran the same page three times faster than SwiftShader there.

import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium } from 'playwright-core';
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

export async function openBrowser(engine: Engine): Promise<BrowserSession> {
  if (engine === 'chromium') {
    const browser = await chromium.launch({
      executablePath: '/usr/bin/chromium',
      args: ['--no-sandbox', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--enable-unsafe-webgpu', '--use-webgpu-adapter=swiftshader'],
    });
    return {
      engine,
      async result(url, timeoutMs = 120_000) {
        const page = await browser.newPage();
        try {
          await page.goto(url);
          await page.waitForFunction(() => (window as { __result?: unknown }).__result !== undefined, undefined, { timeout: timeoutMs });
          return await page.evaluate(() => (window as { __result?: unknown }).__result);
        } finally {
          await page.close();
        }
      },
      close: () => browser.close(),
    };
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
    async result(url, timeoutMs = 120_000) {
      const page = await browser.newPage();
      try {
        await page.goto(url);
        await page.waitForFunction(() => (window as { __result?: unknown }).__result !== undefined, { timeout: timeoutMs });
        return await page.evaluate(() => (window as { __result?: unknown }).__result);
      } finally {
        await page.close();
      }
    },
    async close() {
      await browser.close();
      rmSync(profile, { recursive: true, force: true });
    },
  };
}
