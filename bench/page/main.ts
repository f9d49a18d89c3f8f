// The Bench page: the comparison harness (../compare/runner.ts) in the
// browser, on the browser's WebGPU, with the page as its sink: progress, the
// charts redrawn as each length is measured, and the Markdown summary. The
// results are left on window.__result for `npm run bench:browser` (and the
// test) to save. The bundled models come from models/ beside the page.

import { Gpu } from '../../src/runtime/gpu';
import { ARCHS, type Arch } from '../compare/presets';
import { runCompare, type CompareOptions, type CompareResults } from '../compare/runner';
import { charts, markdown, type RunMeta } from '../compare/report';
import pkg from '../../package.json';
import type { OrtModule } from '../peer/ort_runner';
import type { TjsModule } from '../peer/tjs_runner';
import { PEER_COLUMNS, type PeerColumn } from '../compare/peer';
import './style.css';

declare global {
  interface Window { __result?: unknown }
}

const q = new URLSearchParams(location.search);
// A page may set its default peers (the demo's ships neither runtime: data-peer="none").
const defaultPeer = document.body.dataset.peer ?? 'webgpu,wasm,transformers-webgpu,transformers-wasm';

// The page's parts, after whatever its HTML holds (the demo's link back).
document.body.insertAdjacentHTML('beforeend', `
  <h1>Transformer, Mamba, RetNet and MoE on this GPU</h1>
  <p>Query parameters: <code>preset</code> (tiny, 135m), <code>archs</code>, <code>prompts</code>, <code>contexts</code>, <code>repeats</code>, <code>steps</code>, <code>layers</code>, <code>depth</code> (a fraction of each preset's layers), <code>profile=1</code>, <code>peer</code> (${defaultPeer} by default; webgpu, wasm, transformers-webgpu, transformers-wasm or none).</p>
  <p id="progress" role="status" aria-live="polite">starting</p>
  <ul id="notes"></ul>
  <section id="charts" aria-label="charts"></section>
  <pre id="summary"></pre>`);
const $ = (id: string) => document.getElementById(id)!;
const list = (name: string, fallback: number[]) => (q.get(name) ? q.get(name)!.split(',').map(Number) : fallback);

function draw(r: CompareResults): void {
  const svgs = charts(r);
  $('charts').innerHTML = Object.entries(svgs).map(([name, svg]) => `<figure data-chart="${name}">${svg}</figure>`).join('');
}

async function main(): Promise<void> {
  const preset = q.get('preset') ?? 'tiny';
  const opts: CompareOptions = {
    preset,
    archs: (q.get('archs')?.split(',') ?? [...ARCHS]) as Arch[],
    prompts: list('prompts', [128, 512]),
    contexts: list('contexts', [128, 2048]),
    repeats: Number(q.get('repeats') ?? 2),
    decodeSteps: Number(q.get('steps') ?? 8),
    layers: q.get('layers') ? Number(q.get('layers')) : undefined,
    depth: q.get('depth') ? Number(q.get('depth')) : undefined,
    profile: q.get('profile') === '1',
    bundled: (name) => new URL(`models/${name}/`, location.href).href,
  };
  // The peers, from the server's folders: onnxruntime-web from ort/ (its
  // .mjs and .wasm together); transformers.js's self-contained build from
  // tjs/, pointed at the onnxruntime WASM files of its own version in tjs-ort/
  // (by default it would fetch them from a CDN).
  const columns = (q.get('peer') ?? defaultPeer).split(',').filter((c) => c !== 'none') as PeerColumn[];
  const unknown = columns.find((c) => !PEER_COLUMNS.includes(c) || c === 'transformers-cpu');
  if (unknown) throw new Error(`peer=${unknown}: the page's peers are webgpu, wasm, transformers-webgpu, transformers-wasm or none`);
  if (columns.length) {
    const peer: NonNullable<CompareOptions['peer']> = { columns };
    if (columns.some((c) => !c.startsWith('transformers-'))) {
      const base = new URL('ort/', location.href).href;
      peer.ort = (await import(/* @vite-ignore */ `${base}ort.webgpu.min.mjs`)) as OrtModule;
      peer.ort.env.wasm.wasmPaths = base;
    }
    if (columns.some((c) => c.startsWith('transformers-'))) {
      const tjs = (await import(/* @vite-ignore */ new URL('tjs/transformers.min.js', location.href).href)) as TjsModule & { env: { backends: { onnx: { wasm: { wasmPaths: unknown } } } } };
      const ortFiles = new URL('tjs-ort/', location.href).href;
      tjs.env.backends.onnx.wasm.wasmPaths = { mjs: `${ortFiles}ort-wasm-simd-threaded.asyncify.mjs`, wasm: `${ortFiles}ort-wasm-simd-threaded.asyncify.wasm` };
      peer.transformers = tjs;
    }
    opts.peer = peer;
  }
  const gpu = await Gpu.create();
  try {
    const meta: RunMeta = {
      date: new Date().toISOString(),
      adapter: gpu.report.adapter,
      software: gpu.report.software,
      host: navigator.userAgent,
      versions: { tessera: pkg.version },
      commit: q.get('commit'),
    };
    const results = await runCompare(gpu, opts, {
      progress: (p) => void ($('progress').textContent = `[${p.done}/${p.total}] ${p.stage}; ${(p.elapsedMs / 1000).toFixed(0)} s${p.etaMs !== null ? `, about ${(p.etaMs / 1000).toFixed(0)} s left` : ''}`),
      note: (text) => $('notes').insertAdjacentHTML('beforeend', `<li>${text.replace(/</g, '&lt;')}</li>`),
      update: draw,
    });
    draw(results);
    const md = markdown(results, meta);
    $('summary').textContent = md;
    $('progress').textContent = 'done';
    window.__result = { meta, ...results, markdown: md, svgs: charts(results) };
  } finally {
    gpu.destroy();
  }
}

main().catch((e) => {
  $('progress').textContent = `failed: ${(e as Error).message}`;
  window.__result = { error: String((e as Error).stack ?? e) };
});
