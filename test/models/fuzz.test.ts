// Fuzzing whole checkpoints through loadModel: 500 seeded mutations of a tiny
// model's safetensors file and config.json (byte flips, truncations, header
// and config edits). Every case either throws a plain Error that names what is
// wrong, or loads and gives the logits of a reference run on the weights read
// independently from the mutated bytes (JSON.parse + DataView, not our
// reader). None crashes, hangs or returns NaN logits silently.

import { expect, it } from 'vitest';
import { loadModel } from '../../src/lm';
import { parseTransformerConfig } from '../../src/models/transformer/config';
import { refForward } from '../../src/reference/transformer';
import { describeGpu, useGpu } from '../helpers/gpu';
import { tinyTransformer } from '../helpers/checkpoints';
import { rng } from '../helpers/random';
import { relMaxErr } from '../helpers/models';

const CASES = 500;
const dec = new TextDecoder();
const enc = new TextEncoder();

/** Tensors of an F32 safetensors file, decoded without the project's reader; null if the header is not plain JSON. */
function decodeIndependently(bytes: Uint8Array): Map<string, Float32Array> | null {
  if (bytes.length < 8) return null;
  const n = Number(new DataView(bytes.buffer, bytes.byteOffset).getBigUint64(0, true));
  if (8 + n > bytes.length) return null;
  let header: Record<string, { dtype: string; shape: number[]; data_offsets: [number, number] }>;
  try {
    header = JSON.parse(dec.decode(bytes.subarray(8, 8 + n)));
  } catch {
    return null;
  }
  const out = new Map<string, Float32Array>();
  const view = new DataView(bytes.buffer, bytes.byteOffset + 8 + n);
  for (const [name, t] of Object.entries(header)) {
    if (name === '__metadata__') continue;
    const [a, b] = t.data_offsets;
    out.set(name, Float32Array.from({ length: (b - a) / 4 }, (_, i) => view.getFloat32(a + 4 * i, true)));
  }
  return out;
}

describeGpu('checkpoint fuzzing', () => {
  const gpu = useGpu();

  it(`${CASES} mutated checkpoints: each loads and matches the reference, or throws a clear Error`, async () => {
    const ck = tinyTransformer({ seed: 31, hidden: 32, heads: 2, kvHeads: 1, intermediate: 48, layers: 1 });
    const st = ck.files['model.safetensors'];
    const headerEnd = 8 + Number(new DataView(st.buffer, st.byteOffset).getBigUint64(0, true));
    const configText = dec.decode(ck.files['config.json']);
    const ids = [5, 77, 200, 13];
    const tally = { loaded: 0, rejected: 0 };
    for (let c = 0; c < CASES; c++) {
      const r = rng(1000 + c);
      const pick = (n: number) => Math.floor(r() * n);
      const files = { ...ck.files };
      let bytes = st.slice();
      const kind = c % 5;
      if (kind === 0) bytes[pick(bytes.length)] ^= 1 << pick(8); // a flip anywhere
      else if (kind === 1) bytes[8 + pick(headerEnd - 8)] ^= 1 << pick(8); // a flip in the header
      else if (kind === 2) bytes = bytes.subarray(0, pick(bytes.length)); // truncation
      else if (kind === 3) {
        // a header edit: a digit or punctuation swapped, length kept
        const h = dec.decode(bytes.subarray(8, headerEnd));
        const at = pick(h.length);
        const chars = '0123456789,:[]{}"FIB ';
        bytes.set(enc.encode(h.slice(0, at) + chars[pick(chars.length)] + h.slice(at + 1)).subarray(0, headerEnd - 8), 8);
      } else {
        // a config.json edit: one number changed, or a key dropped
        const cfg = JSON.parse(configText);
        const keys = Object.keys(cfg);
        const key = keys[pick(keys.length)];
        if (r() < 0.3) delete cfg[key];
        else if (typeof cfg[key] === 'number') cfg[key] = [0, -1, 1, 3, cfg[key] * 2, 1.5][pick(6)];
        else cfg[key] = [null, 'x', 7][pick(3)];
        files['config.json'] = enc.encode(JSON.stringify(cfg));
      }
      files['model.safetensors'] = bytes;

      let logits: Float32Array | null = null;
      try {
        const lm = await loadModel(files, { weights: 'f32', device: gpu(), maxContext: 16 });
        try {
          logits = await lm.logits(ids);
        } finally {
          lm.dispose();
        }
      } catch (e) {
        tally.rejected++;
        expect(e, `case ${c}: ${String(e)}`).toBeInstanceOf(Error);
        expect((e as Error).constructor, `case ${c}: ${(e as Error).message}`).toBe(Error);
        expect((e as Error).message, `case ${c}`).toMatch(/config\.json|model\.safetensors|tensor|checkpoint|context|maxContext|non-finite/);
        if (/non-finite value at token/.test((e as Error).message)) {
          // Refusing finite logits would be a bug: only a weight flipped to a huge value may overflow.
          const w = decodeIndependently(bytes);
          const largest = Math.max(...[...(w?.values() ?? [])].map((a) => a.reduce((m, v) => Math.max(m, Math.abs(v)), 0)));
          expect(largest, `case ${c}: refused logits without an overflowing weight`).toBeGreaterThan(1e15);
        }
        continue;
      }
      tally.loaded++;
      // It loaded: the logits must be what the mutated checkpoint says, computed independently.
      const weights = decodeIndependently(bytes);
      expect(weights, `case ${c} loaded but its header is not plain JSON`).not.toBeNull();
      const cfg = parseTransformerConfig(JSON.parse(dec.decode(files['config.json'])));
      const want = refForward(cfg, (n) => weights!.get(n)!, ids);
      expect(logits.every(Number.isFinite), `case ${c}: non-finite logits`).toBe(true);
      expect(relMaxErr(logits, want), `case ${c}`).toBeLessThan(1e-4);
    }
    // Both outcomes must actually occur, or the fuzzer is not exercising anything.
    expect(tally.loaded).toBeGreaterThan(20);
    expect(tally.rejected).toBeGreaterThan(200);
  }, 600_000);
});
