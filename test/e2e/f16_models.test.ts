// The f16 path of every model family, for real: headless Firefox ESR on
// Mesa's lavapipe offers shader-f16 (Node's Dawn on SwiftShader does not), so
// the page (f16_models_page/) loads the tiny models there with preferF16 and
// with f32, and this side checks what it returns against the float64
// references: the f16 logits within a stated bound, greedy generation equal to
// f32's or diverging only where f32's own top two logits are within that bound
// (the divergence point is reported), a snapshot of the f16 state resumed
// exactly, the state smaller, nothing left on the device.

import { afterAll, beforeAll, expect, it } from 'vitest';
import { join } from 'node:path';
import { describeGpu } from '../helpers/gpu';
import { openBrowser, type BrowserSession } from '../helpers/browsers';
import { servePage, type ServedPage } from '../helpers/page_server';
import { F16_MODEL_CASES, GREEDY_TOKENS, PROMPT } from '../helpers/f16_models';
import { argmaxOf, relMaxErr } from '../helpers/models';
import type { ModelInfo } from '../../src/models/model';

/**
 * f16 logits against the float64 reference, as max |error| / max |logit|.
 * Each f16 rounding of an activation is relative 2^-11 (4.9e-4); a forward
 * pass rounds every op's output, the residual stream at each block, and the
 * KV cache, about 10 roundings per layer on the path to a logit, partly
 * cancelling. Measured on these 2-layer models: transformer and Mamba 2.6e-4
 * to 5.7e-4, RetNet 1.6e-3 to 1.8e-3 (its per-head norm and gate add three
 * f16 roundings per layer, and the norm divides by the head's own RMS); the
 * test logs each. Bounded at 5e-3, about three times the worst.
 */
const F16_LOGIT_BOUND = 5e-3;

interface ModelResult {
  name: string; info: ModelInfo; info32: ModelInfo; logits: number[]; tokens16: number[]; tokens32: number[]; text: string; resumed: string[]; stateBytes16: number; stateBytes32: number;
}

describeGpu('f16 activations in headless Firefox (lavapipe, shader-f16)', () => {
  let page: ServedPage;
  let browser: BrowserSession;
  let r: { error?: string; adapter: string; features: { shaderF16: boolean }; models: ModelResult[]; left: string[]; ledger: { f16: number; f32: number }; ms: number };

  beforeAll(async () => {
    page = await servePage(join(__dirname, 'f16_models_page'));
    browser = await openBrowser('firefox');
    r = (await browser.result(page.url, 300_000)) as typeof r;
    expect(r.error, r.error).toBeUndefined();
  }, 400_000);

  afterAll(async () => {
    await browser?.close();
    await page?.close();
  });

  it('the adapter has shader-f16, and every device was left empty', () => {
    expect(r.features.shaderF16).toBe(true);
    expect(r.models.map((m) => m.name)).toEqual(F16_MODEL_CASES.map((c) => c.name));
    // Once the models are disposed, only each device's own buffers remain (the uniform ring, small readback buffers); none after destroy().
    expect(r.left.length).toBeGreaterThan(0);
    for (const b of r.left) expect(b).toMatch(/^scratch (uniform-ring|.*readback)$/);
    expect(r.ledger).toEqual({ f16: 0, f32: 0 });
    console.log(`f16 models page: ${(r.ms / 1000).toFixed(1)} s in Firefox on ${r.adapter}`);
  });

  it.each(F16_MODEL_CASES.map((c, i) => [c.name, i] as const))('%s: info says f16 and why; logits within the f16 bound of the reference; greedy tokens as f32 up to a near tie', (name, i) => {
    const m = r.models[i];
    const c = F16_MODEL_CASES[i];
    expect([m.info.activations, m.info.activationsReason]).toEqual(['f16', expect.stringMatching(/^f16: preferF16 was asked for and the adapter has shader-f16/)]);
    expect(m.info32.activations).toBe('f32');
    const err = relMaxErr(m.logits, c.reference(PROMPT));
    console.log(`${name}: f16 logits max error ${err.toExponential(2)} of the largest logit (bound ${F16_LOGIT_BOUND})`);
    expect(err).toBeLessThan(F16_LOGIT_BOUND);

    expect(m.tokens16).toHaveLength(GREEDY_TOKENS);
    expect(m.tokens32).toHaveLength(GREEDY_TOKENS);
    const split = m.tokens16.findIndex((t, j) => t !== m.tokens32[j]);
    if (split < 0) {
      console.log(`${name}: greedy f16 and f32 agree on all ${GREEDY_TOKENS} tokens`);
    } else {
      // Where they part, the reference must see a near tie between the two choices.
      const ref = c.reference([...PROMPT, ...m.tokens32.slice(0, split)]);
      const V = m.info.vocabSize;
      const last = ref.subarray(ref.length - V);
      const scale = Math.max(...Array.from(last, Math.abs));
      const margin = (last[m.tokens32[split]] - last[m.tokens16[split]]) / scale;
      console.log(`${name}: greedy f16 and f32 agree on ${split} of ${GREEDY_TOKENS} tokens, then pick ${m.tokens16[split]} and ${m.tokens32[split]}, whose reference logits differ by ${margin.toExponential(2)} of the largest`);
      expect(argmaxOf(last)).toBe(m.tokens32[split]);
      expect(Math.abs(margin)).toBeLessThan(2 * F16_LOGIT_BOUND);
    }
    expect(m.text.length).toBeGreaterThan(0);
    // The greedy continuation from the live f16 state, then twice from its snapshot restored: the same text.
    expect(m.resumed).toHaveLength(3);
    expect(m.resumed[0].length).toBeGreaterThan(0);
    expect(m.resumed.slice(1)).toEqual([m.resumed[0], m.resumed[0]]);
    // f16 KV cache or conv state: the state is smaller (Mamba's h stays f32, as does the transformer's decode
    // scratch); RetNet's state is S alone, f32 in every precision.
    if (c.stateShrinks) expect(m.stateBytes16).toBeLessThan(m.stateBytes32);
    else expect(m.stateBytes16).toBe(m.stateBytes32);
  });
});
