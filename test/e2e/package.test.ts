// The package as its users install it: built and packed from a staged copy
// (the project's dist/ is left alone), checked by the ecosystem's own tools
// (publint, @arethetypeswrong/cli), then installed from the tarball into a
// fresh project outside this repository, where it must: run a tiny model in
// Node, and say what to install when Dawn is missing; type-check under
// nodenext, node16 and bundler resolution without skipLibCheck; and build
// into a Vite web app with no warning and no Node module, which runs the
// model in headless Chromium; and build the README's web app example, whose
// engine runs in the package's worker and loads offline after a reload.
// Installs come from the npm cache `npm ci` filled.

import { execFile } from 'node:child_process';
import { cpSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import { extname, join, normalize } from 'node:path';
import { promisify } from 'node:util';
import { gzipSync } from 'node:zlib';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { describeGpu } from '../helpers/gpu';
import { launchChromium } from '../helpers/browsers';
import { tinyTransformer } from '../helpers/checkpoints';
import { relMaxErr } from '../helpers/models';
import { refForward } from '../../src/reference/transformer';

const root = join(__dirname, '..', '..');
const bin = join(root, 'node_modules', '.bin');
const env = { ...process.env, PATH: `${bin}:${process.env.PATH}`, npm_config_audit: 'false', npm_config_fund: 'false', npm_config_update_notifier: 'false' };
const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { name: string };
const versionOf = (name: string) => (JSON.parse(readFileSync(join(root, 'node_modules', name, 'package.json'), 'utf8')) as { version: string }).version;

async function sh(cmd: string, args: string[], cwd: string, timeout = 240_000): Promise<{ code: number; out: string }> {
  return promisify(execFile)(cmd, args, { cwd, env, timeout, maxBuffer: 64 << 20 }).then(
    (r) => ({ code: 0, out: r.stdout + r.stderr }),
    (e: { code?: number; stdout?: string; stderr?: string }) => ({ code: typeof e.code === 'number' ? e.code : -1, out: `${e.stdout ?? ''}${e.stderr ?? ''}` }),
  );
}

const ck = tinyTransformer({ seed: 13, layers: 1 });
const IDS = [3, 60, 101, 7];
const expected = refForward(ck.config, (n) => ck.weights.get(n)!, IDS);

/** A consumer's code, using the public types, the WebGPU globals among them. */
const APP_TS = `import { DeviceLostError, Gpu, loadModel, type GenerateOptions, type LM } from '${pkg.name}';
const gpu: Gpu = await Gpu.create();
const device: GPUDevice = gpu.device;
const lm: LM = await loadModel('./model/', { device: gpu, weights: 'f32', signal: AbortSignal.timeout(60_000) });
const opts: GenerateOptions = { maxNewTokens: 4, temperature: 0.5 };
for await (const piece of lm.generate('hi', opts)) console.log(piece);
console.log(device.label, lm.info.family, lm.stats()?.undecodableTokens, DeviceLostError.name);
lm.dispose();
`;

function tsconfig(module: string, resolution: string, types: string[]): string {
  return JSON.stringify({
    compilerOptions: { module, moduleResolution: resolution, target: 'ES2022', lib: ['ES2022', 'DOM'], types, strict: true, noEmit: true, skipLibCheck: false },
    files: ['app.ts'],
  });
}

describeGpu('the package as its users install it', () => {
  let work = '';
  let tarball = '';
  let consumer = '';

  beforeAll(async () => {
    work = mkdtempSync(join(tmpdir(), 'tessera-package-'));
    // Stage and build a copy, as `npm pack` would publish it.
    const stage = join(work, 'stage');
    mkdirSync(stage);
    for (const f of ['package.json', 'README.md', 'bin', 'models']) cpSync(join(root, f), join(stage, f), { recursive: true });
    const built = await sh('bash', [join(root, 'scripts', 'build.sh'), join(stage, 'dist')], root);
    expect(built.code, built.out).toBe(0);
    const packed = await sh('npm', ['pack', '--ignore-scripts', '--pack-destination', work, '--silent'], stage);
    expect(packed.code, packed.out).toBe(0);
    tarball = join(work, packed.out.trim().split('\n').pop()!);

    consumer = join(work, 'consumer');
    mkdirSync(consumer);
    writeFileSync(join(consumer, 'package.json'), JSON.stringify({ name: 'consumer', private: true, type: 'module' }));
    const deps = ['webgpu', 'typescript', 'vite', '@types/node'].map((d) => `${d}@${versionOf(d)}`);
    const installed = await sh('npm', ['install', '--prefer-offline', '--ignore-scripts', '--no-package-lock', tarball, ...deps], consumer);
    expect(installed.code, installed.out).toBe(0);
    mkdirSync(join(consumer, 'model'));
    for (const [name, bytes] of Object.entries(ck.files)) writeFileSync(join(consumer, 'model', name), bytes);
  });

  afterAll(() => {
    if (work) rmSync(work, { recursive: true, force: true });
  });

  it('passes publint and @arethetypeswrong/cli (an ESM-only package)', async () => {
    const lint = await sh(join(bin, 'publint'), ['--strict', join(work, 'stage')], root);
    expect(lint.code, lint.out).toBe(0);
    const attw = await sh(join(bin, 'attw'), [tarball, '--profile', 'esm-only', '--format', 'ascii'], root);
    expect(attw.code, attw.out).toBe(0);
    expect(attw.out).toMatch(/node16 \(from ESM\): 🟢 \(ESM\)\s+bundler: 🟢/);
  });

  it('runs a model in Node, and without Dawn says what to install', async () => {
    const script = `import { loadModel } from '${pkg.name}';
const lm = await loadModel('./model/', { weights: 'f32', maxContext: 32 });
console.log(JSON.stringify(Array.from(await lm.logits(${JSON.stringify(IDS)}))));
lm.dispose();
process.exit(0);`;
    writeFileSync(join(consumer, 'run.mjs'), script);
    const run = await sh(process.execPath, ['run.mjs'], consumer);
    expect(run.code, run.out).toBe(0);
    expect(relMaxErr(JSON.parse(run.out.trim().split('\n').pop()!), expected)).toBeLessThan(1e-4);

    const help = await sh(join(consumer, 'node_modules', '.bin', 'tessera-llm'), ['--help'], consumer);
    expect(help.code, help.out).toBe(0);
    expect(help.out).toMatch(/usage:\s+tessera-llm generate \[<model>\]/);

    // The bundled models came with the package: the library opens one by name, the CLI runs one with no model given.
    writeFileSync(join(consumer, 'bundled.mjs'), `import { loadModel } from '${pkg.name}';
const lm = await loadModel('bundled:mamba', { maxContext: 64 });
let text = '';
for await (const piece of lm.generate('ROMEO:', { maxNewTokens: 24 })) text += piece;
console.log(JSON.stringify({ type: lm.info.modelType, text }));
lm.dispose();
process.exit(0);`);
    const bundled = await sh(process.execPath, ['bundled.mjs'], consumer);
    expect(bundled.code, bundled.out).toBe(0);
    const got = JSON.parse(bundled.out.trim().split('\n').pop()!) as { type: string; text: string };
    expect(got.type).toBe('mamba');
    expect(got.text.length).toBeGreaterThanOrEqual(24); // one character per token
    const cli = await sh(join(consumer, 'node_modules', '.bin', 'tessera-llm'), ['generate', '--max-new-tokens', '16'], consumer);
    expect(cli.code, cli.out).toBe(0);
    expect(cli.out).toMatch(/llama: \d+ layers[\s\S]*decode [\d.]+ tok\/s/);

    // The optional peer dependency left out: the first call that needs a device names the install command.
    const dawn = join(consumer, 'node_modules', 'webgpu');
    renameSync(dawn, `${dawn}.off`);
    try {
      const bare = await sh(process.execPath, ['run.mjs'], consumer);
      expect(bare.code).not.toBe(0);
      expect(bare.out).toMatch(/the optional peer dependency 'webgpu', could not be loaded .*install it with: npm install webgpu/);
    } finally {
      renameSync(`${dawn}.off`, dawn);
    }
  });

  it('type-checks for consumers under nodenext, node16 and bundler resolution, without skipLibCheck', async () => {
    writeFileSync(join(consumer, 'app.ts'), APP_TS);
    const tsc = join(consumer, 'node_modules', 'typescript', 'bin', 'tsc');
    for (const [name, module, resolution, types] of [
      ['nodenext', 'nodenext', 'nodenext', ['node']],
      ['node16', 'node16', 'node16', ['node']],
      ['bundler', 'esnext', 'bundler', []], // a web app: no Node types
    ] as const) {
      writeFileSync(join(consumer, `tsconfig.${name}.json`), tsconfig(module, resolution, [...types]));
      const r = await sh(process.execPath, [tsc, '-p', `tsconfig.${name}.json`], consumer);
      expect(r.code, `${name}:\n${r.out}`).toBe(0);
    }
  });

  it('builds into a Vite web app with no warning and no Node module, which runs the model in headless Chromium', async () => {
    const web = join(consumer, 'web');
    mkdirSync(web, { recursive: true });
    writeFileSync(join(web, 'index.html'), '<!doctype html><html><body><pre id="out">loading</pre><script type="module" src="./main.ts"></script></body></html>');
    writeFileSync(join(web, 'main.ts'), `import { loadModel } from '${pkg.name}';
declare global { interface Window { __result?: unknown } }
try {
  const lm = await loadModel(new URL('model/', location.href).href, { weights: 'f32', maxContext: 32 });
  const logits = Array.from(await lm.logits(${JSON.stringify(IDS)}));
  lm.dispose();
  // A bundled model by name: fetched from the models/ folder beside the app's code (the server maps it to the package's).
  const tiny = await loadModel('bundled:transformer', { maxContext: 64 });
  let bundled = '';
  for await (const piece of tiny.generate('ROMEO:', { maxNewTokens: 12 })) bundled += piece;
  window.__result = { logits, backend: tiny.model.gpu.report.backend, bundled };
  tiny.dispose();
} catch (e) {
  window.__result = { error: String((e as Error).stack ?? e) };
}
`);
    writeFileSync(join(web, 'vite.config.mjs'), "export default { build: { target: 'es2022' } };");
    const vite = join(consumer, 'node_modules', 'vite', 'bin', 'vite.js');
    const built = await sh(process.execPath, [vite, 'build', '--logLevel', 'warn'], web);
    expect(built.code, built.out).toBe(0);
    expect(built.out.trim(), 'vite build warnings').toBe('');
    const assets = join(web, 'dist', 'assets');
    // The engine's worker is emitted beside the page's code (the app bundler finds it from createWorkerEngine,
    // used or not) and loaded only by an app that starts one: the page's size leaves it out.
    const files = readdirSync(assets).filter((f) => f.endsWith('.js'));
    const read = (fs: string[]) => fs.map((f) => readFileSync(join(assets, f), 'utf8')).join('\n');
    const js = read(files.filter((f) => !f.startsWith('worker-')));
    for (const code of [js, read(files)]) {
      expect(code).not.toMatch(/["'`]node:/);
      expect(code).not.toMatch(/from\s*["']webgpu["']|import\(\s*["']webgpu["']\)/);
    }
    const gz = gzipSync(js).length;
    console.log(`browser bundle with the library and its dependencies: ${js.length} bytes minified, ${gz} gzipped`);
    expect(gz).toBeLessThan(150_000);

    const server = await serveApp(join(web, 'dist'), consumer);
    const browser = await launchChromium();
    try {
      const page = await browser.newPage();
      await page.goto(server.url);
      await page.waitForFunction(() => window.__result !== undefined, undefined, { timeout: 120_000 });
      const r = (await page.evaluate(() => window.__result)) as { error?: string; logits: number[]; backend: string; bundled: string };
      expect(r.error, r.error).toBeUndefined();
      expect(r.backend).toBe('browser');
      expect(r.bundled.length).toBeGreaterThanOrEqual(12); // a character-level model: one character per token
      expect(relMaxErr(r.logits, expected)).toBeLessThan(1e-4);
    } finally {
      await browser.close();
      server.close();
    }
  });

  it("builds the README's web app example, whose engine runs in the package's worker and loads offline after a reload", async () => {
    const readme = readFileSync(join(root, 'README.md'), 'utf8');
    const example = /<!-- example: [^>]*-->\n```ts\n([\s\S]*?)```/.exec(readme)?.[1];
    expect(example, 'the README holds the example').toBeTruthy();
    const app = join(consumer, 'webapp');
    mkdirSync(app, { recursive: true });
    writeFileSync(join(app, 'index.html'), '<!doctype html><html><body><progress></progress><pre id="out"></pre><script type="module" src="./main.ts"></script></body></html>');
    writeFileSync(join(app, 'main.ts'), example!);
    writeFileSync(join(app, 'vite.config.mjs'), "export default { build: { target: 'es2022' }, worker: { format: 'es' } };");
    const built = await sh(process.execPath, [join(consumer, 'node_modules', 'vite', 'bin', 'vite.js'), 'build', '--logLevel', 'warn'], app);
    expect(built.code, built.out).toBe(0);
    expect(built.out.trim(), 'vite build warnings').toBe('');
    const assets = readdirSync(join(app, 'dist', 'assets'));
    expect(assets.filter((f) => /^worker-.*\.js$/.test(f)), 'the app bundler packed the engine\'s worker').toHaveLength(1);

    const server = await serveApp(join(app, 'dist'), consumer);
    const browser = await launchChromium();
    try {
      const page = await browser.newPage();
      const errors: string[] = [];
      page.on('pageerror', (e) => errors.push(String(e)));
      const answered = async () => {
        await page.waitForFunction(() => (document.querySelector('#out')?.textContent ?? '').length >= 16, undefined, { timeout: 120_000 }).catch((e) => {
          throw new Error(`${(e as Error).message}; page errors: ${errors.join('; ')}`);
        });
        return page.evaluate(() => ({ text: document.querySelector('#out')!.textContent!, progress: document.querySelector('progress')!.value }));
      };
      await page.goto(server.url);
      const first = await answered();
      expect(first.progress).toBe(1);
      expect(server.requests.some((r) => r.startsWith('models/transformer/'))).toBe(true);
      // Reloaded with the model's files refused: it answers from the cache.
      await page.route('**/models/**', (r) => r.abort());
      server.requests.length = 0;
      await page.reload();
      const second = await answered();
      expect(second.text.length).toBeGreaterThanOrEqual(16);
      expect(server.requests.filter((r) => r.startsWith('models/'))).toEqual([]);
      expect(errors).toEqual([]);
    } finally {
      await browser.close();
      server.close();
    }
  });
});

/**
 * Serves a built web app on 127.0.0.1: its files, the test checkpoint under
 * model/ and the package's bundled models under models/ (as an app copies
 * them), with byte ranges. Records the paths asked for.
 */
async function serveApp(dist: string, consumer: string): Promise<{ url: string; requests: string[]; close(): void }> {
  const requests: string[] = [];
  const server: Server = createServer((req, res) => {
    const path = normalize(decodeURIComponent(new URL(req.url ?? '/', 'http://x').pathname)).replace(/^[/\\]+/, '') || 'index.html';
    requests.push(path);
    const [dir, file] = path.startsWith('model/') ? [join(consumer, 'model'), path.slice(6)]
      : path.startsWith('models/') ? [join(consumer, 'node_modules', pkg.name, 'models'), path.slice(7)]
      : [dist, path];
    let body: Buffer;
    try {
      body = readFileSync(join(dir, file));
    } catch {
      return void res.writeHead(404).end();
    }
    const m = /^bytes=(\d+)-(\d+)$/.exec(req.headers.range ?? '');
    const type = { '.html': 'text/html', '.js': 'text/javascript' }[extname(file)] ?? 'application/octet-stream';
    if (!m) return void res.writeHead(200, { 'content-type': type, 'content-length': body.length }).end(req.method === 'HEAD' ? undefined : body);
    const [a, b] = [Number(m[1]), Math.min(Number(m[2]), body.length - 1)];
    res.writeHead(206, { 'content-range': `bytes ${a}-${b}/${body.length}`, 'content-length': b - a + 1 }).end(body.subarray(a, b + 1));
  });
  await new Promise<void>((ok) => server.listen(0, '127.0.0.1', ok));
  return { url: `http://127.0.0.1:${(server.address() as { port: number }).port}/`, requests, close: () => server.close() };
}

declare global {
  interface Window { __result?: unknown }
}
