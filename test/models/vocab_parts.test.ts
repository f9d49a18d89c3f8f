// A vocabulary matrix larger than one binding (a 1B model's embedding on a
// device with WebGPU's default 128 MiB, as on many phones) is held in row
// parts. Here a 2048-token vocabulary meets a 32 KiB binding cap, so the
// embedding and LM head come in 6 parts at 8 bits, 3 at 4 bits and 16 in
// f32, and logits for every position fit only 4 tokens per call.

import { afterAll, beforeAll, expect, it } from 'vitest';
import { loadModel, type LM } from '../../src/lm';
import { Gpu } from '../../src/runtime/gpu';
import { Recorder } from '../../src/runtime/recorder';
import type { VocabMatrix } from '../../src/models/blocks/vocab';
import { refForward } from '../../src/reference/transformer';
import { refMambaForward } from '../../src/reference/mamba';
import { transformerTensorShapes } from '../../src/models/transformer/weights';
import { mambaTensorShapes } from '../../src/models/mamba/weights';
import { describeGpu, SKIP_GPU } from '../helpers/gpu';
import { tinyMamba, tinyTransformer } from '../helpers/checkpoints';
import { randint } from '../helpers/random';
import { asLoaded, greedyGpu, mambaQuantized, relMaxErr } from '../helpers/models';

const V = 2048;
const CAP = 32 * 1024;
const REL = 1e-4; // as the model tests: f32 rounding only

/** The embedding and LM head the model holds (a test looks inside). */
const vocabOf = (lm: LM) => (lm.model as unknown as { w: { embed: VocabMatrix; lmHead: VocabMatrix } }).w;

describeGpu('a vocabulary split in row parts to fit a small binding', () => {
  let small: Gpu;
  let big: Gpu;
  beforeAll(async () => {
    if (SKIP_GPU) return;
    small = await Gpu.create({ maxBindingBytes: CAP });
    big = await Gpu.create();
  });
  afterAll(() => {
    small?.destroy();
    big?.destroy();
  });

  // Rows per part: 384 at 8 bits (72 bytes a row), 768 at 4 bits (40), 128 in f32 (256).
  it.each([
    ['tied, 4-bit layers, 8-bit vocabulary', 'q4', 'q8', true, 6],
    ['untied, 4-bit vocabulary', 'q4', 'q4', false, 3],
    ['tied, f32', 'f32', 'f32', true, 16],
  ] as const)('transformer %s: logits match the reference, and greedy tokens match the unsplit model', async (_name, mode, embeddings, tie, parts) => {
    const ck = tinyTransformer({ seed: 61, tie, extra: { vocab_size: V } });
    const lm = await loadModel(ck.files, { weights: mode, embeddings, device: small, maxContext: 64, prefillChunk: 8 });
    const whole = await loadModel(ck.files, { weights: mode, embeddings, device: big, maxContext: 64, prefillChunk: 8 });
    try {
      const { embed, lmHead } = vocabOf(lm);
      expect(embed.parts.length).toBe(parts);
      expect(lmHead.parts.length).toBe(parts);
      expect(tie ? lmHead === embed : lmHead !== embed).toBe(true);
      expect(vocabOf(whole).embed.parts.length).toBe(1);
      expect(lm.model.logitsRows).toBe(CAP / (4 * V));
      // 11 positions: three calls of at most 4 for logits 'all'; ids on both sides of the part edges.
      const ids = Array.from(randint(62, 11, V));
      ids[2] = 767; ids[5] = 768; ids[8] = V - 1;
      const want = refForward(ck.config, asLoaded(ck.weights, transformerTensorShapes(ck.config), mode, undefined, embeddings), ids);
      expect(relMaxErr(await lm.logits(ids), want)).toBeLessThan(REL);
      // The last position's logits (a matvec per part into its columns) equal the whole matrix's, every column.
      const prompt = Int32Array.from(ids.slice(0, 5));
      const lastLogits = async (m: LM) => {
        const state = m.model.createState();
        const rec = new Recorder(m.model.gpu);
        const out = await rec.submitAndRead(m.model.prefill(rec, state, prompt));
        state.dispose();
        return out;
      };
      expect(relMaxErr(await lastLogits(lm), await lastLogits(whole))).toBeLessThan(1e-6);
      // Then decoding, token for token.
      const [a, b] = [lm.model.createState(), whole.model.createState()];
      expect(await greedyGpu(lm.model, a, prompt, 12)).toEqual(await greedyGpu(whole.model, b, prompt, 12));
      a.dispose();
      b.dispose();
    } finally {
      lm.dispose();
      whole.dispose();
    }
  });

  it('mamba, 4-bit layers and 8-bit vocabulary (tied): logits match the reference', async () => {
    const ck = tinyMamba({ seed: 63, extra: { vocab_size: V } });
    const lm = await loadModel(ck.files, { weights: 'q4', device: small, prefillChunk: 8 });
    try {
      expect(vocabOf(lm).embed.parts.length).toBe(6);
      const ids = Array.from(randint(64, 9, V));
      ids[0] = 1536; ids[4] = 1535;
      const want = refMambaForward(ck.config, asLoaded(ck.weights, mambaTensorShapes(ck.config), 'q4', mambaQuantized), ids);
      expect(relMaxErr(await lm.logits(ids), want)).toBeLessThan(REL);
    } finally {
      lm.dispose();
    }
  });

  it('a layer that cannot be split and does not fit is refused before any weight is read, naming its size', async () => {
    const ck = tinyTransformer({ seed: 65, extra: { vocab_size: V } });
    const before = small.ledger.report().total;
    let read = 0;
    const tiny = await Gpu.create({ maxBindingBytes: 16 * 1024 });
    try {
      // f32: the (96, 64) MLP weights are 24 KiB.
      await expect(loadModel(ck.files, { weights: 'f32', device: tiny, onProgress: () => read++ })).rejects.toThrow(/loadModel: a \(96, 64\) layer weight needs 24576 bytes in one binding, over this device's 16384/);
      expect(read).toBe(0);
      expect(tiny.ledger.report().total).toBe(0);
    } finally {
      tiny.destroy();
    }
    expect(small.ledger.report().total).toBe(before);
    await expect(Gpu.create({ maxBindingBytes: 100 })).rejects.toThrow(/maxBindingBytes must be an integer >= 4096, got 100/);
  });
});
