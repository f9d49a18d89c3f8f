// A page that runs exported decoders (onnx_export.ts) through
// onnxruntime-web in the browser, per plan.json, and leaves the results in
// window.__result for the driver (test/bench/onnx_peer.test.ts; the bench
// harness later). The server provides:
//   plan.json   { cases: [{ name, model (URL of the .onnx), shape, ep, prompt, steps, warmup }] }
//   ort/        onnxruntime-web's dist/ folder (ort.webgpu.min.mjs and its .wasm files)
// onnxruntime-web is imported from ort/ at run time, not bundled, so its
// .mjs and .wasm come from one folder as its docs set them up (env.wasm.wasmPaths).

import type * as Ort from 'onnxruntime-web';
import { OrtPeer, parsePlacement, type DecoderShape, type OrtEp } from '../ort_runner';

// onnxruntime's WebAssembly module binds console.log / console.error when it
// starts, so a tee installed before it loads sees its log lines: the
// verbose placement log of each session is read from them.
const captured: string[] = [];
for (const k of ['log', 'info', 'warn', 'error', 'debug'] as const) {
  const orig = console[k].bind(console);
  console[k] = (...args: unknown[]) => {
    captured.push(args.map(String).join(' '));
    if (!/\[V:onnxruntime|\[I:onnxruntime/.test(String(args[0]))) orig(...args);
  };
}

interface PlanCase { name: string; model: string; shape: DecoderShape; ep: OrtEp; prompt: number[]; steps: number; warmup?: number }

const log = (s: string) => (document.getElementById('log')!.textContent += `\n${s}`);

async function main(): Promise<unknown> {
  const base = new URL('ort/', location.href).href;
  const ort = (await import(/* @vite-ignore */ `${base}ort.webgpu.min.mjs`)) as typeof Ort;
  ort.env.wasm.wasmPaths = base;
  const adapter = await navigator.gpu?.requestAdapter();
  const plan = (await (await fetch('plan.json')).json()) as { cases: PlanCase[] };
  const cases = [];
  for (const c of plan.cases) {
    try {
      const bytes = new Uint8Array(await (await fetch(c.model)).arrayBuffer());
      captured.length = 0;
      const peer = await OrtPeer.create(ort, bytes, c.shape, { ep: c.ep, logPlacement: true });
      const placement = parsePlacement(captured);
      const warnings = captured.filter((l) => /\[W:onnxruntime|\[E:onnxruntime/.test(l));
      try {
        const r = await peer.generate(c.prompt, c.steps, { warmup: c.warmup ?? 1 });
        log(`${c.name} [${c.ep}]: tokens ${r.tokens.join(' ')}; prefill ${r.prefillMs.toFixed(1)} ms, decode ${r.decodeMs.toFixed(1)} ms`);
        cases.push({ name: c.name, createMs: peer.createMs, placement, warnings, ...r, promptLogits: Array.from(r.promptLogits), lastLogits: Array.from(r.lastLogits) });
      } finally {
        await peer.release();
      }
    } catch (e) {
      log(`${c.name} [${c.ep}]: ${(e as Error).message}`);
      cases.push({ name: c.name, ep: c.ep, error: String((e as Error).message ?? e) });
    }
  }
  return { adapter: adapter ? adapter.info.architecture || adapter.info.vendor : null, ortVersion: ort.env.versions.web, cases };
}

main().then(
  (r) => ((window as { __result?: unknown }).__result = r),
  (e) => ((window as { __result?: unknown }).__result = { error: String((e as Error)?.stack ?? e) }),
);
