// The demo: a thin client of the package's public API. The engine runs in a
// Web Worker (createWorkerEngine), so this thread only updates the page.

import { createWorkerEngine, listCachedModels, deleteCachedModel, type ChatCompletionChunk, type EngineMemory, type StateSnapshot } from '../src/index';

const $ = <T extends HTMLElement>(id: string) => document.getElementById(id) as T;
const status = $('model-status');
const output = $<HTMLPreElement>('output');
const errorBox = $('error');
const progress = $<HTMLProgressElement>('load-progress');
const buttons = { generate: $<HTMLButtonElement>('generate'), stop: $<HTMLButtonElement>('stop'), save: $<HTMLButtonElement>('save'), restore: $<HTMLButtonElement>('restore') };

const MiB = (b: number) => `${(b / 2 ** 20).toFixed(1)} MiB`;
const showError = (e: unknown) => {
  const err = e as { message?: string; code?: string };
  errorBox.textContent = err.code ? `${err.message} (${err.code})` : String(err.message ?? e);
};

/** No WebGPU here (or no adapter): say so and what to use, and leave the controls off. */
function noWebGpu(detail = ''): void {
  const box = $('no-webgpu');
  box.hidden = false;
  box.textContent = `This browser has no WebGPU${detail ? ` (${detail})` : ''}, which Tessera runs on. Use a recent Chrome or Edge (WebGPU is on by default), Safari 26, or Firefox 141 or later; on Linux, Chrome needs --enable-unsafe-webgpu. Nothing else on this page can run without it.`;
  for (const b of Object.values(buttons)) b.disabled = true;
  status.textContent = 'no WebGPU';
}

if (!('gpu' in navigator)) {
  noWebGpu();
  throw new Error('no WebGPU');
}

// The worker from the sources (an app using the installed package would call createWorkerEngine() alone).
const engine = createWorkerEngine({ worker: new Worker(new URL('../src/worker.ts', import.meta.url), { type: 'module', name: 'tessera-engine' }) });
let snapshot: StateSnapshot | null = null;
let running: AbortController | null = null;

async function load(source: string | File[], label: string): Promise<void> {
  errorBox.textContent = '';
  status.textContent = `loading ${label}…`;
  progress.value = 0;
  buttons.generate.disabled = true;
  snapshot = null;
  buttons.restore.disabled = true;
  try {
    const cache = $<HTMLInputElement>('cache').checked && typeof source === 'string';
    const info = await engine.load(source, {
      cache,
      maxContext: 2048,
      onProgress: (p) => {
        progress.value = p.totalBytes ? p.loadedBytes / p.totalBytes : 0;
        status.textContent = `${p.phase === 'download' ? 'downloading' : 'placing weights'}: ${MiB(p.loadedBytes)} of ${MiB(p.totalBytes)} (${Math.round(100 * progress.value)}%)`;
      },
    });
    status.textContent = `${label}: ${info.modelType}, ${(info.params.total / 1e6).toFixed(2)}M parameters, ${info.weights} weights; ready`;
    buttons.generate.disabled = false;
    await showMemory();
    await showCached();
  } catch (e) {
    status.textContent = `${label}: not loaded`;
    showError(e);
    if ((e as { code?: string }).code === 'NO_WEBGPU') noWebGpu((e as Error).message);
  }
}

async function showMemory(): Promise<void> {
  let m: EngineMemory;
  try {
    m = await engine.memory();
  } catch {
    return;
  }
  const parts: [string, number, string][] = [
    ['weights', m.bytes.weights, '#4a7'],
    ['experts', m.bytes.experts, '#7a4'],
    ['KV cache or state', m.bytes.cache, '#47a'],
    ['activations', m.bytes.activations + m.bytes.scratch, '#a74'],
  ];
  const total = parts.reduce((s, p) => s + p[1], 0) || 1;
  const box = $('memory');
  box.innerHTML = '';
  const bar = document.createElement('div');
  bar.className = 'bar';
  const list = document.createElement('ul');
  for (const [name, bytes, color] of parts) {
    if (!bytes) continue;
    const seg = document.createElement('span');
    seg.style.width = `${(100 * bytes) / total}%`;
    seg.style.background = color;
    bar.append(seg);
    const li = document.createElement('li');
    li.textContent = `${name}: ${MiB(bytes)}`;
    li.style.borderLeft = `0.8rem solid ${color}`;
    li.style.paddingLeft = '0.4rem';
    list.append(li);
  }
  box.append(bar, list);
  box.setAttribute('aria-label', `device memory: ${list.textContent}`);
}

async function showCached(): Promise<void> {
  const ul = $('cached');
  ul.innerHTML = '';
  try {
    for (const m of await listCachedModels()) {
      const li = document.createElement('li');
      const del = document.createElement('button');
      del.type = 'button';
      del.textContent = 'Delete';
      del.setAttribute('aria-label', `delete ${m.url} from the cache`);
      del.onclick = async () => {
        await deleteCachedModel(m.url);
        await showCached();
      };
      li.append(`${m.url} (${MiB(m.bytes)}) `, del);
      ul.append(li);
    }
  } catch (e) {
    ul.textContent = (e as Error).message;
  }
}

function stat(id: string, text: string): void {
  $(id).textContent = text;
}

async function generate(): Promise<void> {
  errorBox.textContent = '';
  running = new AbortController();
  buttons.generate.disabled = true;
  buttons.stop.disabled = false;
  const num = (id: string) => $<HTMLInputElement>(id).value;
  const seed = num('seed') === '' ? undefined : Number(num('seed'));
  const mode = (document.querySelector('input[name=mode]:checked') as HTMLInputElement).value;
  const prompt = $<HTMLTextAreaElement>('prompt').value;
  const continuing = $<HTMLInputElement>('continue').checked && mode === 'completion';
  if (!continuing) output.textContent = '';
  const t0 = performance.now();
  let first = 0;
  let count = 0;
  const onText = (text: string) => {
    if (!first) first = performance.now();
    count++;
    output.textContent += text;
    stat('ttft', `${(first - t0).toFixed(0)} ms`);
    stat('tokens', String(count));
    if (count > 1) stat('decode', `${((count - 1) / ((performance.now() - first) / 1000)).toFixed(1)} tokens/s`);
  };
  try {
    if (mode === 'chat') {
      const stream = await engine.chat.completions.create(
        { messages: [{ role: 'user', content: prompt }], stream: true, max_tokens: Number(num('max-tokens')), temperature: Number(num('temperature')), top_p: Number(num('top-p')), seed },
        { signal: running.signal },
      );
      for await (const chunk of stream as AsyncIterable<ChatCompletionChunk>) {
        const text = chunk.choices[0]?.delta.content;
        if (text) onText(text);
      }
    } else {
      const opts = { maxNewTokens: Number(num('max-tokens')), temperature: Number(num('temperature')), topP: Number(num('top-p')), seed, signal: running.signal, continue: continuing };
      for await (const text of engine.generate(prompt, opts)) onText(text);
    }
  } catch (e) {
    if ((e as Error).name !== 'AbortError') showError(e);
  } finally {
    running = null;
    buttons.generate.disabled = false;
    buttons.stop.disabled = true;
    const s = await engine.stats().catch(() => null);
    if (s) {
      stat('ttft', `${s.timeToFirstTokenMs.toFixed(0)} ms`);
      stat('prefill', `${s.prefillTokensPerSecond.toFixed(1)} tokens/s (${s.promptTokens} tokens)`);
      stat('decode', `${s.decodeTokensPerSecond.toFixed(1)} tokens/s`);
      stat('tokens', `${s.generatedTokens} (${s.stopReason})`);
    }
    await showMemory();
  }
}

buttons.generate.onclick = () => void generate();
buttons.stop.onclick = () => running?.abort();
buttons.save.onclick = async () => {
  try {
    snapshot?.dispose();
    snapshot = await engine.saveState();
    buttons.restore.disabled = false;
    status.textContent = `state saved at token ${snapshot.position} (${MiB(snapshot.bytes)})`;
  } catch (e) {
    showError(e);
  }
};
buttons.restore.onclick = async () => {
  if (!snapshot) return;
  try {
    await engine.restoreState(snapshot);
    $<HTMLInputElement>('continue').checked = true;
    output.textContent = '';
    status.textContent = `state restored to token ${snapshot.position}: Generate continues from there`;
  } catch (e) {
    showError(e);
  }
};
$<HTMLSelectElement>('bundled').onchange = (e) => void load(`bundled:${(e.target as HTMLSelectElement).value}`, (e.target as HTMLSelectElement).selectedOptions[0].text);
$('load-url').onclick = () => void load($<HTMLInputElement>('url').value.trim(), $<HTMLInputElement>('url').value.trim());
$('check-url').onclick = async () => {
  const url = $<HTMLInputElement>('url').value.trim();
  status.textContent = `checking ${url}…`;
  try {
    const est = await engine.estimate(url);
    status.textContent = `${est.modelType}: downloads ${MiB(est.downloadBytes)}, takes ${MiB(est.bytes.total)} on this device (weights ${MiB(est.bytes.weights + est.bytes.experts)}, state ${MiB(est.bytes.state)}): ${est.fits ? 'fits' : `will not fit: ${est.problems.join('; ')}`}`;
  } catch (e) {
    status.textContent = 'not checked';
    showError(e);
  }
};
$<HTMLInputElement>('folder').onchange = (e) => {
  const files = [...((e.target as HTMLInputElement).files ?? [])];
  if (files.length) void load(files, `${files.length} files from this computer`);
};
document.addEventListener('dragover', (e) => e.preventDefault());
document.addEventListener('drop', (e) => {
  e.preventDefault();
  const files = [...(e.dataTransfer?.files ?? [])];
  if (files.length) void load(files, `${files.length} dropped files`);
});

void load('bundled:transformer', 'Transformer (Llama, 0.9M)');
