// transformers.js as a column of the comparison (bench/peer/tjs_runner.ts):
// the bundled transformer exported to ONNX and run through transformers.js's
// own model class and generate() gives PyTorch's greedy tokens (the model's
// golden.json, written by the trainer) in f32, as Tessera does (its golden
// tests).
// Here in Node, where transformers.js runs onnxruntime-node on the CPU; its
// WASM device in Chromium is compare_page.test.ts's.
import { describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import * as transformers from '@huggingface/transformers';
import { exportOnnxDecoder } from '../../bench/peer/onnx_export';
import { tjsGenerate, type TjsModule } from '../../bench/peer/tjs_runner';

const folder = join(__dirname, '../../models/transformer');
const golden = JSON.parse(readFileSync(join(folder, 'golden.json'), 'utf8')).greedy as { prompt_ids: number[]; ids: number[] };
const config = JSON.parse(readFileSync(join(folder, 'config.json'), 'utf8')) as Record<string, unknown>;
const STEPS = 16;

describe('transformers.js on the exported bundled transformer', () => {
  it('f32: the greedy tokens are PyTorch\'s; q4 (MatMulNBits) generates exactly the tokens asked for', async () => {
    const f32 = await exportOnnxDecoder(folder, { weights: 'f32', maxPositions: 128 });
    const r = await tjsGenerate(transformers as unknown as TjsModule, f32.bytes, config, { device: 'cpu', dtype: 'fp32', prompt: golden.prompt_ids, steps: STEPS, warmup: 1 });
    console.info(`transformers.js ${r.version} [cpu] f32: prefill ${r.prefillMs.toFixed(1)} ms, decode ${r.decodeMs.toFixed(1)} ms`);
    expect(r.tokens).toEqual(golden.ids.slice(0, STEPS));
    expect(r.prefillTokensPerS).toBeGreaterThan(0);
    expect(r.decodeTokensPerS).toBeGreaterThan(0);
    expect(r.warmupRuns).toBe(1);
    expect(r.compiles).toBeNull();

    const q4 = await exportOnnxDecoder(folder, { weights: 'q4', maxPositions: 128 });
    const rq = await tjsGenerate(transformers as unknown as TjsModule, q4.bytes, config, { device: 'cpu', dtype: 'q4', prompt: golden.prompt_ids, steps: STEPS, warmup: 0 });
    expect(rq.tokens).toHaveLength(STEPS);
    // 4-bit rounding may change late tokens; the first ones are the model's.
    expect(rq.tokens.slice(0, 4)).toEqual(golden.ids.slice(0, 4));
  });

  it('a graph that is not ONNX, or no steps, is an error', async () => {
    await expect(tjsGenerate(transformers as unknown as TjsModule, new Uint8Array([1, 2, 3]), config, { device: 'cpu', dtype: 'fp32', prompt: [1, 2], steps: 2, warmup: 0 })).rejects.toThrow();
    await expect(tjsGenerate(transformers as unknown as TjsModule, new Uint8Array(0), config, { device: 'cpu', dtype: 'fp32', prompt: [1, 2], steps: 0, warmup: 0 })).rejects.toThrow(/steps/);
  });
});
