// Runs in headless Chromium and Firefox: the library as a browser app would use it.
// WebGPU from navigator.gpu, every kernel compiled, one run, the tiny transformer
// loaded from an in-memory file map (the shape a File picker gives) and from a URL,
// the tiny Mamba and RetNet, then generation. Results go to window.__result for the Node side to check.

import { Gpu, loadModel } from '../../../src/index';
import { Recorder } from '../../../src/runtime/recorder';
import { rmsnorm } from '../../../src/kernels/rmsnorm';
import { compileAllKernels } from '../../helpers/compile_kernels';
import { tinyMamba, tinyTransformer } from '../../helpers/checkpoints';
import { tinyRetnet } from '../../helpers/retnet_checkpoint';

declare global {
  interface Window { __result?: unknown }
}

async function run() {
  const gpu = await Gpu.create();
  const compiled = await compileAllKernels(gpu.device, gpu.report.features.shaderF16);
  const x = Float32Array.from({ length: 3 * 40 }, (_, i) => Math.sin(i));
  const w = Float32Array.from({ length: 40 }, (_, i) => 1 + i / 40);
  const tx = gpu.upload(x, [3, 40], { label: 'x' });
  const tw = gpu.upload(w, [40], { label: 'w' });
  const out = gpu.empty([3, 40], 'f32', 'out');
  const rec = new Recorder(gpu);
  rmsnorm(rec, tx, tw, out, 1e-5);
  const norm = Array.from(await rec.submitAndRead(out));
  [tx, tw, out].forEach((t) => t.dispose());

  const ck = tinyTransformer({ seed: 5 });
  // Blobs, as a browser app holds files it was handed.
  const files = Object.fromEntries(Object.entries(ck.files).map(([name, bytes]) => [name, new Blob([bytes as Uint8Array<ArrayBuffer>])]));
  const lm = await loadModel(files, { weights: 'f32', device: gpu, maxContext: 64 });
  const logits = Array.from(await lm.logits([3, 60, 101, 7]));
  // The default formats: 4-bit layers, 8-bit embedding and LM head.
  const quantized = await loadModel(files, { device: gpu, maxContext: 64 });
  const q4Logits = Array.from(await quantized.logits([3, 60, 101, 7]));
  quantized.dispose();
  // The same checkpoint from this page's server, as from a static host or the hub.
  const remote = await loadModel(new URL('model/', location.href).href, { weights: 'f32', device: gpu, maxContext: 64 });
  const urlLogits = Array.from(await remote.logits([3, 60, 101, 7]));
  remote.dispose();
  // The tiny Mamba too, from Blobs.
  const mk = tinyMamba({ seed: 6 });
  const mambaFiles = Object.fromEntries(Object.entries(mk.files).map(([name, bytes]) => [name, new Blob([bytes as Uint8Array<ArrayBuffer>])]));
  const mamba = await loadModel(mambaFiles, { weights: 'f32', device: gpu });
  const mambaLogits = Array.from(await mamba.logits([3, 60, 101, 7]));
  mamba.dispose();
  // And the tiny RetNet.
  const rk = tinyRetnet({ seed: 6 });
  const retnet = await loadModel(Object.fromEntries(Object.entries(rk.files).map(([name, bytes]) => [name, new Blob([bytes as Uint8Array<ArrayBuffer>])])), { weights: 'f32', device: gpu });
  const retnetLogits = Array.from(await retnet.logits([3, 60, 101, 7]));
  retnet.dispose();
  let text = '';
  for await (const piece of lm.generate('the cat', { maxNewTokens: 6, seed: 3, temperature: 0.9 })) text += piece;
  const memoryBefore = gpu.ledger.report().total;
  lm.dispose();
  return { report: gpu.report, compiled, x: Array.from(x), w: Array.from(w), norm, logits, urlLogits, q4Logits, mambaLogits, retnetLogits, text, memoryBefore, memoryAfter: gpu.ledger.report().total };
}

run().then(
  (r) => { window.__result = r; document.getElementById('out')!.textContent = 'done'; },
  (e: Error) => { window.__result = { error: `${e.message}\n${e.stack}` }; },
);
