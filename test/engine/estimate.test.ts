// "Will it fit": estimateModel() from config.json and the safetensors headers
// only, held against what a real load then takes in the ledger, for each
// bundled model in the default and the f32 formats; a model whose KV cache
// cannot be one buffer of a default-limits device is refused with the sizes.

import { readdirSync, statSync } from 'node:fs';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { describeGpu } from '../helpers/gpu';
import { tinyTransformer } from '../helpers/checkpoints';
import { Gpu } from '../../src/runtime/gpu';
import { estimateModel } from '../../src/estimate';
import { loadModel } from '../../src/load';
import { createEngine } from '../../src/engine/engine';
import { serveEngine } from '../../src/engine/serve';
import { engineOverPort } from '../../src/engine/worker_engine';
import { BUNDLED_MODELS } from '../../src/bundled';

describeGpu('estimateModel', () => {
  let gpu: Gpu;
  beforeAll(async () => {
    gpu = await Gpu.create();
  });
  afterAll(() => gpu?.destroy());

  for (const name of BUNDLED_MODELS) {
    it(`${name}: the estimate matches what loading it takes, in q4 and in f32`, async () => {
      const dir = new URL(`../../models/${name}/`, import.meta.url);
      const files = ['config.json', 'generation_config.json', 'model.safetensors', 'tokenizer.json', 'tokenizer_config.json'];
      expect(readdirSync(dir)).toEqual(expect.arrayContaining(files));
      for (const weights of ['q4', 'f32'] as const) {
        const est = await estimateModel(`bundled:${name}`, { weights, maxContext: 512, device: gpu });
        expect(est.fits).toBe(true);
        expect(est.problems).toEqual([]);
        expect(est.downloadBytes).toBe(files.reduce((n, f) => n + statSync(new URL(f, dir)).size, 0));
        const before = gpu.ledger.report().bytes;
        const lm = await loadModel(`bundled:${name}`, { weights, maxContext: 512, device: gpu });
        try {
          const after = gpu.ledger.report().bytes;
          const took = { weights: after.weights - before.weights, experts: after.experts - before.experts, state: lm.memory().stateBytes, workspace: after.activations + after.scratch - before.activations - before.scratch };
          const what = `${name} ${weights}: estimated ${JSON.stringify(est.bytes)}, took ${JSON.stringify(took)}`;
          expect(Math.abs(est.bytes.weights - took.weights) / took.weights, what).toBeLessThan(1e-3); // alignment gaps of split matrices
          expect(Math.abs(est.bytes.experts - took.experts), what).toBeLessThanOrEqual(0.01 * took.experts);
          expect(est.bytes.state, what).toBe(took.state);
          expect(Math.abs(est.bytes.workspace - took.workspace), what).toBeLessThanOrEqual(64); // the handle's own token buffer
          expect(est.maxContext).toBe(lm.info.maxContext);
        } finally {
          lm.dispose();
        }
      }
    });
  }

  it('refuses, with the sizes, a KV cache that cannot be one buffer of this device; also through the engine across a port', async () => {
    const small = await Gpu.create({ limits: 'default' });
    try {
      const ck = tinyTransformer({ maxPositions: 2 ** 21 });
      const est = await estimateModel(ck.files, { device: small });
      expect(est.fits).toBe(false);
      expect(est.problems.join('\n')).toMatch(/KV cache \(2097152 tokens\) or workspace needs 268435456 bytes, over this device's \d+; pass a smaller maxContext/);
      expect(est.bytes.state).toBeGreaterThan(2 * 268435456);
      expect((await estimateModel(ck.files, { device: small, maxContext: 4096 })).fits).toBe(true);
    } finally {
      small.destroy();
    }
    const ch = new MessageChannel();
    serveEngine(ch.port2 as never);
    const remote = engineOverPort(ch.port1 as never);
    try {
      const local = await createEngine().estimate('bundled:mamba');
      const across = await remote.estimate('bundled:mamba');
      expect(across).toEqual(local);
      expect(across.maxContext).toBeNull();
      await expect(remote.estimate({ 'config.json': new TextEncoder().encode('{"model_type":"gpt2"}') })).rejects.toMatchObject({ message: expect.stringMatching(/model_type "gpt2" is not supported/) });
    } finally {
      ch.port1.close();
      ch.port2.close();
    }
  });
});
