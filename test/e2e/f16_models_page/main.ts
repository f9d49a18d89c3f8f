// Runs in headless Firefox on lavapipe, which offers shader-f16: the tiny
// models of each family loaded twice on the same adapter, once with f16
// activations (preferF16) and once with f32, from the same checkpoint files.
// The page returns the f16 logits of a prompt (all positions, through a
// prefill split into chunks), greedy tokens in both precisions (prefill, then
// decode steps), text generated through the public API and continued from a
// snapshot of the f16 state, and what each state holds; the Node side (f16_models.test.ts) checks them against the float64
// references. Results go to window.__result.

import { Gpu, loadModel } from '../../../src/index';
import { greedyGpu } from '../../helpers/models';
import { F16_MODEL_CASES, PROMPT, GREEDY_TOKENS, PREFILL_CHUNK } from '../../helpers/f16_models';

declare global {
  interface Window { __result?: unknown }
}

const blobs = (files: Record<string, Uint8Array>) => Object.fromEntries(Object.entries(files).map(([name, bytes]) => [name, new Blob([bytes as Uint8Array<ArrayBuffer>])]));

async function run() {
  const start = performance.now();
  const f16 = await Gpu.create({ preferF16: true });
  const f32 = await Gpu.create();
  if (!f16.report.features.shaderF16) return { error: `no shader-f16 on ${f16.report.adapter}` };
  const models = [];
  for (const c of F16_MODEL_CASES) {
    const files = blobs(c.checkpoint().files);
    const options = { weights: c.weights, prefillChunk: PREFILL_CHUNK, maxContext: 64 } as const;
    const half = await loadModel(files, { ...options, device: f16 });
    const full = await loadModel(files, { ...options, device: f32 });
    const logits = Array.from(await half.logits(PROMPT));
    const [s16, s32] = [half.model.createState(), full.model.createState()];
    const tokens16 = await greedyGpu(half.model, s16, Int32Array.from(PROMPT), GREEDY_TOKENS);
    const tokens32 = await greedyGpu(full.model, s32, Int32Array.from(PROMPT), GREEDY_TOKENS);
    s16.dispose();
    s32.dispose();
    let text = '';
    for await (const piece of half.generate('the cat', { maxNewTokens: 8, seed: 3, temperature: 0.8 })) text += piece;
    // A snapshot of the f16 state (KV cache or conv state copied on the device): the continuation from
    // the live state, then from the snapshot restored, twice.
    const snap = await half.saveState();
    const resumed: string[] = [];
    for (let k = 0; k < 3; k++) {
      if (k > 0) await half.restoreState(snap);
      let more = '';
      for await (const piece of half.generate(' and', { continue: true, maxNewTokens: 6 })) more += piece;
      resumed.push(more);
    }
    snap.dispose();
    const [stateBytes16, stateBytes32] = [half.memory().stateBytes, full.memory().stateBytes];
    models.push({ name: c.name, info: half.info, info32: full.info, logits, tokens16, tokens32, text, resumed, stateBytes16, stateBytes32 });
    half.dispose();
    full.dispose();
  }
  // What each device still holds once every model and state is disposed: its own uniform ring and kept readback buffers.
  const left = [...f16.ledger.liveBuffers(), ...f32.ledger.liveBuffers()].map((b) => `${b.category} ${b.label}`);
  const report = f16.report;
  f16.destroy();
  f32.destroy();
  const ledger = { f16: f16.ledger.report().total, f32: f32.ledger.report().total };
  return { adapter: report.adapter, features: report.features, models, left, ledger, ms: performance.now() - start };
}

run().then(
  (r) => { window.__result = r; document.getElementById('out')!.textContent = 'done'; },
  (e: Error) => { window.__result = { error: `${e.message}\n${e.stack}` }; },
);
