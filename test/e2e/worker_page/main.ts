// The worker engine in a real page: the test drives it through window.__t.
// The page also keeps a timer running and records long tasks, so the test
// can check that the main thread stays free while the worker loads and generates.

import { createWorkerEngine } from '../../../src/engine/worker_engine';
import { deleteCachedModel, listCachedModels } from '../../../src/models/loader/cache';
import type { LoadProgress } from '../../../src/models/loader/weights';

const engine = createWorkerEngine({ worker: new Worker(new URL('../../../src/worker.ts', import.meta.url), { type: 'module' }) });

const ticks: number[] = [];
setInterval(() => ticks.push(performance.now()), 50);
const longTasks: number[] = [];
new PerformanceObserver((list) => {
  for (const e of list.getEntries()) longTasks.push(e.duration);
}).observe({ type: 'longtask', buffered: true });

/** An Error as plain data, with the code it crossed the boundary with. */
const plain = (e: unknown) => ({ name: (e as Error).name, message: (e as Error).message, code: (e as { code?: string }).code });

async function generate(prompt: string, maxNewTokens: number, abortAfter?: number) {
  const ctl = new AbortController();
  const pieces: string[] = [];
  try {
    for await (const p of engine.generate(prompt, { maxNewTokens, signal: ctl.signal })) {
      pieces.push(p);
      if (pieces.length === abortAfter) ctl.abort('stop pressed');
    }
    return { pieces, stats: await engine.stats() };
  } catch (e) {
    return { pieces, error: plain(e) };
  }
}

const t = {
  async load(source: string | Record<string, Uint8Array>, opts: { cache?: boolean } = {}) {
    const progress: LoadProgress['phase'][] = [];
    let last: LoadProgress | null = null;
    try {
      const info = await engine.load(source, { ...opts, maxContext: 128, onProgress: (p) => ((last = p), progress.at(-1) !== p.phase && progress.push(p.phase)) });
      return { info, progress, last };
    } catch (e) {
      return { error: plain(e), progress };
    }
  },
  generate,
  memory: () => engine.memory(),
  list: () => listCachedModels(),
  remove: (name: string) => deleteCachedModel(name),
  /** Ticks of the page's 50 ms timer and the long tasks seen since the last call. */
  mainThread() {
    const r = { ticks: ticks.length, longest: Math.max(0, ...longTasks) };
    ticks.length = 0;
    longTasks.length = 0;
    return r;
  },
};
(window as unknown as { __t: typeof t }).__t = t;
(window as unknown as { __result: string }).__result = 'ready';
