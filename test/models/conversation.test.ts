// The conversation a handle holds, under interruption and misuse: an aborted
// generation (during a step, between steps, in the middle of a chunked
// prompt) continues exactly as if it had not been interrupted; a reset(),
// restoreState() or new generate() ends a suspended generation, which then
// says so instead of diverging; an abandoned iterator never blocks the handle.

import { beforeAll, expect, it } from 'vitest';
import { loadModel, type LM } from '../../src/lm';
import type { GenerateOptions } from '../../src/options';
import { describeGpu, useGpu } from '../helpers/gpu';
import { tinyMamba, tinyTransformer } from '../helpers/checkpoints';

const FAMILIES = [
  ['transformer', () => tinyTransformer({ seed: 71 }).files],
  ['mamba', () => tinyMamba({ seed: 72 }).files],
] as const;
const PROMPT = 'the cat sat on the mat and then';
const N = 10;
const SAMPLED = { temperature: 0.9, seed: 3 } as const;

async function collect(gen: AsyncGenerator<string>): Promise<string> {
  let out = '';
  for await (const piece of gen) out += piece;
  return out;
}

/** Runs `gen` until the consumer has seen `pieces` pieces, then aborts from inside the loop; returns the text seen. */
async function abortAfter(lm: LM, pieces: number, opts: GenerateOptions): Promise<string> {
  const ctl = new AbortController();
  let out = '';
  let n = 0;
  await expect((async () => {
    for await (const p of lm.generate(PROMPT, { ...opts, signal: ctl.signal })) {
      out += p;
      if (++n === pieces) ctl.abort();
    }
  })()).rejects.toMatchObject({ name: 'AbortError' });
  return out;
}

for (const [name, files] of FAMILIES) describeGpu(`a conversation under interruption (${name})`, () => {
  const gpu = useGpu();
  let lm: LM;
  let whole = '';
  let wholeGreedy = '';

  beforeAll(async () => {
    lm = await loadModel(files(), { weights: 'q4', device: gpu(), maxContext: 128, prefillChunk: 16 });
    wholeGreedy = await collect(lm.generate(PROMPT, { maxNewTokens: N }));
    whole = await collect(lm.generate(PROMPT, { ...SAMPLED, maxNewTokens: N }));
    expect(lm.stats()!.generatedTokens).toBe(N);
    return () => lm.dispose();
  });

  it('aborted between steps, then continued, gives the text of an uninterrupted generation', async () => {
    for (const at of [1, 3]) {
      const first = await abortAfter(lm, at, { ...SAMPLED, maxNewTokens: N });
      expect(lm.stats()!.stopReason).toBe('abort');
      const done = lm.stats()!.generatedTokens;
      const rest = await collect(lm.generate('', { continue: true, maxNewTokens: N - done }));
      expect(first + rest, `abort after ${at} pieces`).toBe(whole);
    }
  });

  it('aborted while a step is on the GPU, then continued, gives the same text', async () => {
    for (const steps of [1, 4]) {
      const ctl = new AbortController();
      const gen = lm.generate(PROMPT, { maxNewTokens: N, signal: ctl.signal });
      let first = '';
      for (let i = 0; i < steps; i++) first += (await gen.next()).value ?? '';
      const pending = gen.next(); // its step is submitted now; the signal fires while it runs
      ctl.abort(new Error('user pressed stop'));
      await expect(pending).rejects.toThrow(/generate: aborted after \d+ generated tokens \(user pressed stop\)/);
      const done = lm.stats()!.generatedTokens;
      const rest = await collect(lm.generate('', { continue: true, maxNewTokens: N - done }));
      expect(first + rest, `abort at step ${steps}`).toBe(wholeGreedy);
    }
  });

  it('aborted in the middle of a prompt fed in chunks, then continued, resumes the prompt exactly', async () => {
    const ctl = new AbortController();
    const gen = lm.generate(PROMPT, { maxNewTokens: N, signal: ctl.signal });
    const pending = gen.next(); // the first 16-token chunk of 20 is submitted
    ctl.abort();
    await expect(pending).rejects.toThrow(/generate: aborted after 0 generated tokens/);
    expect(lm.stats()!.stopReason).toBe('abort');
    expect(await collect(lm.generate('', { continue: true, maxNewTokens: N }))).toBe(wholeGreedy);
  });

  it('reset(), restoreState() and a new generate() end a suspended generation, which then says so', async () => {
    const snap = await lm.saveState();
    for (const takeOver of [() => lm.reset(), () => lm.restoreState(snap), () => collect(lm.generate('x', { maxNewTokens: 2 }))]) {
      const gen = lm.generate(PROMPT, { maxNewTokens: N });
      await gen.next();
      await takeOver();
      await expect(gen.next()).rejects.toThrow(/generate: this generation was ended by a later reset\(\), restoreState\(\) or generate\(\)/);
    }
    snap.dispose();
    expect(await collect(lm.generate(PROMPT, { maxNewTokens: N }))).toBe(wholeGreedy);
  });

  it('an iterator abandoned without return() does not keep the handle busy', async () => {
    for (let i = 0; i < 3; i++) {
      const gen = lm.generate(PROMPT, { maxNewTokens: N });
      await gen.next(); // then dropped
    }
    expect(await collect(lm.generate(PROMPT, { ...SAMPLED, maxNewTokens: N }))).toBe(whole);
  });

  it('logits() and saveState() while a generation is suspended leave it unchanged', async () => {
    const gen = lm.generate(PROMPT, { maxNewTokens: N });
    let text = (await gen.next()).value ?? '';
    const ids = Array.from(lm.tokenizer!.encode(PROMPT));
    const [a, b] = await Promise.all([lm.logits(ids), lm.logits(ids.slice(0, 3))]);
    expect(a.length).toBe(ids.length * lm.info.vocabSize);
    expect(Array.from(b)).toEqual(Array.from(a.subarray(0, 3 * lm.info.vocabSize)));
    const snap = await lm.saveState();
    for await (const p of gen) text += p;
    expect(text).toBe(wholeGreedy);
    snap.dispose();
  });
});
