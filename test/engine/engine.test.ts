// The engine API, in this thread (createEngine) and across a message port
// with serveEngine() on the other end (what createWorkerEngine() talks to in
// a Web Worker; here a MessageChannel, so the same structured-clone boundary
// is crossed under Dawn): the bundled transformer's greedy text against
// PyTorch's, streaming, stats and memory, snapshots by id, cancellation, and
// errors that keep their code and name across the boundary.

import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { describeGpu } from '../helpers/gpu';
import { createEngine, type Engine } from '../../src/engine/engine';
import { serveEngine } from '../../src/engine/serve';
import { engineOverPort, type WorkerEngine } from '../../src/engine/worker_engine';

const golden = JSON.parse(readFileSync(new URL('../../models/transformer/golden.json', import.meta.url), 'utf8')) as { greedy: { prompt: string; text: string } };

async function collect(gen: AsyncIterable<string>, limit = Infinity): Promise<string[]> {
  const out: string[] = [];
  for await (const piece of gen) {
    out.push(piece);
    if (out.length >= limit) break;
  }
  return out;
}

const channels: MessageChannel[] = [];
function overPort(): WorkerEngine {
  const ch = new MessageChannel();
  channels.push(ch);
  serveEngine(ch.port2 as unknown as Parameters<typeof serveEngine>[0]);
  return engineOverPort(ch.port1 as unknown as Parameters<typeof engineOverPort>[0]);
}
afterAll(() => {
  for (const ch of channels) {
    ch.port1.close();
    ch.port2.close();
  }
});

for (const [mode, make] of [['in this thread', createEngine], ['across a message port', overPort]] as const) {
  describeGpu(`engine, ${mode}`, () => {
    let engine: Engine;
    beforeAll(() => {
      engine = make();
    });
    afterAll(() => engine.dispose());

    it('before load(): NO_MODEL, named by the call', async () => {
      expect(engine.info).toBeNull();
      await expect(collect(engine.generate('x'))).rejects.toMatchObject({ code: 'NO_MODEL', message: expect.stringMatching(/^generate: no model is loaded/) });
      await expect(engine.memory()).rejects.toMatchObject({ code: 'NO_MODEL' });
      expect(await engine.stats()).toBeNull();
    });

    it('loads the bundled transformer with progress, and its greedy text is PyTorch\'s', async () => {
      const seen: { loadedBytes: number; totalBytes: number }[] = [];
      const info = await engine.load('bundled:transformer', { maxContext: 256, onProgress: (p) => seen.push(p) });
      expect(info.modelType).toBe('llama');
      expect(engine.info?.vocabSize).toBe(67);
      expect(engine.modelId).toBe('bundled:transformer');
      expect(seen.length).toBeGreaterThan(0);
      expect(seen.at(-1)!.loadedBytes).toBe(seen.at(-1)!.totalBytes);
      const pieces = await collect(engine.generate(golden.greedy.prompt, { maxNewTokens: 16 }));
      expect(pieces.length).toBeGreaterThan(1); // streamed, not one block
      expect(pieces.join('')).toBe(golden.greedy.text.slice(0, 16)); // one character per token
      const stats = (await engine.stats())!;
      expect(stats).toMatchObject({ generatedTokens: 16, promptTokens: golden.greedy.prompt.length, stopReason: 'length' });
      expect(stats.decodeTokensPerSecond).toBeGreaterThan(0);
      const mem = await engine.memory();
      expect(mem.bytes.weights).toBeGreaterThan(0);
      expect(mem.stateBytes).toBeGreaterThan(0);
    });

    // Snapshots and cancellation are the handle's own in this thread (the conversation tests check them):
    // across the port, what is checked is that they survive the boundary.
    if (mode === 'across a message port') {
      it('a snapshot, restored by its id, continues exactly', async () => {
        await collect(engine.generate('ROMEO:', { maxNewTokens: 6, temperature: 0.9, seed: 5 }));
        const snap = await engine.saveState();
        expect(snap).toMatchObject({ id: expect.any(String), position: expect.any(Number), bytes: expect.any(Number) });
        const first = (await collect(engine.generate('', { continue: true, maxNewTokens: 10 }))).join('');
        await collect(engine.generate('JULIET:', { maxNewTokens: 3 })); // the conversation moves on
        await engine.restoreState(snap.id);
        expect((await collect(engine.generate('', { continue: true, maxNewTokens: 10 }))).join('')).toBe(first);
        snap.dispose();
        await expect(engine.restoreState(snap)).rejects.toMatchObject({ code: 'SNAPSHOT' });
      });

      it('an abort stops the generation with an AbortError; breaking out of the loop stops it too; the engine goes on', async () => {
        const ctl = new AbortController();
        const got: string[] = [];
        const run = (async () => {
          for await (const p of engine.generate('ROMEO:', { maxNewTokens: 200, signal: ctl.signal })) {
            got.push(p);
            if (got.length === 3) ctl.abort('the user pressed stop');
          }
        })();
        await expect(run).rejects.toMatchObject({ name: 'AbortError', code: 'ABORTED', message: expect.stringMatching(/the user pressed stop/) });
        expect(got.length).toBeLessThan(200);
        expect((await engine.stats())!.stopReason).toBe('abort');
        expect(await collect(engine.generate('ROMEO:', { maxNewTokens: 40 }), 2)).toHaveLength(2);
        const again = (await collect(engine.generate(golden.greedy.prompt, { maxNewTokens: 8 }))).join('');
        expect(again).toBe(golden.greedy.text.slice(0, 8));
      });
    }

    it('misuse is an Error with its code; a failed load leaves the engine usable', async () => {
      await expect(collect(engine.generate('x', { maxNewTokens: -1 }))).rejects.toMatchObject({ code: 'INVALID_ARGUMENT', message: expect.stringMatching(/maxNewTokens/) });
      await expect(engine.logits([0, 99999])).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
      const broken = { 'config.json': new TextEncoder().encode('{ not json') };
      await expect(engine.load(broken)).rejects.toMatchObject({ code: 'LOAD_FAILED', message: expect.stringMatching(/config\.json/) });
      expect(engine.info).toBeNull();
      await expect(engine.load('bundled:nope')).rejects.toMatchObject({ code: 'INVALID_ARGUMENT', message: expect.stringMatching(/unknown bundled model "nope"/) });
      // A load replaced by a later one is cancelled; the later one wins.
      const replaced = engine.load('bundled:mamba', { maxContext: 64 }).then(() => null, (e: unknown) => e);
      await engine.load('bundled:transformer', { maxContext: 64 });
      expect(await replaced).toMatchObject({ name: 'AbortError', code: 'ABORTED' });
      expect(engine.info?.modelType).toBe('llama');
      if (mode === 'across a message port') {
        await expect(engine.load('bundled:transformer', { fetchFn: fetch } as never)).rejects.toMatchObject({ code: 'INVALID_ARGUMENT', message: expect.stringMatching(/plain data/) });
        await engine.load('bundled:transformer', { maxContext: 64 });
      }
      // The offline cache: a folder on disk is read as it is; a URL needs Cache Storage, which Node lacks.
      await expect(engine.load('http://127.0.0.1:9/model/', { cache: true })).rejects.toMatchObject({ code: 'CACHE', message: expect.stringMatching(/Cache Storage is not available here/) });
      await expect(engine.load('bundled:transformer', { cache: 'yes' as never })).rejects.toMatchObject({ code: 'INVALID_ARGUMENT', message: expect.stringMatching(/cache must be true or false/) });
      await engine.load('bundled:transformer', { maxContext: 64, cache: true });
      const logits = await engine.logits([1, 2, 3]);
      expect(logits).toBeInstanceOf(Float32Array);
      expect(logits.length).toBe(3 * 67);
      await expect(collect(engine.generate('x'.repeat(80)))).rejects.toMatchObject({ code: 'CONTEXT_OVERFLOW' });
      await engine.dispose();
      expect(engine.info).toBeNull();
      await expect(engine.memory()).rejects.toMatchObject({ code: 'NO_MODEL' });
    });
  });
}
