// The comparison harness on the tiny preset (the bundled models) at the
// shortest lengths: its JSON is checked against the schema, every
// architecture gives a finite, positive figure for every metric, the charts
// hold one series per architecture, and a context one model cannot hold is
// recorded as its wall while the others are measured there; onnxruntime-web
// (WASM provider) and transformers.js (onnxruntime-node's CPU) run beside the
// transformer. No speed is asserted.

import { join } from 'node:path';
import { readFileSync } from 'node:fs';
import { expect, it } from 'vitest';
import Ajv from 'ajv';
import { describeGpu, useGpu } from '../helpers/gpu';
import { runCompare, type CompareOptions, type CompareResults } from '../../bench/compare/runner';
import { charts, markdown } from '../../bench/compare/report';
import { ARCHS } from '../../bench/compare/presets';
import * as ort from 'onnxruntime-web';
import * as transformers from '@huggingface/transformers';
import type { TjsModule } from '../../bench/peer/tjs_runner';

const root = join(__dirname, '..', '..');
const schema = JSON.parse(readFileSync(join(root, 'bench', 'compare', 'results.schema.json'), 'utf8'));
const meta = { date: '2026-01-01T00:00:00.000Z', adapter: 'test', software: true, host: 'vitest', versions: {}, commit: null };

describeGpu('the comparison harness', () => {
  const gpu = useGpu();

  it('tiny preset at the shortest lengths: schema-valid JSON, a positive figure for every architecture and metric, charts with a series each; a context past the transformer is its wall', async () => {
    const opts: CompareOptions = { preset: 'tiny', archs: [...ARCHS], prompts: [16], contexts: [16, 8192], repeats: 1, decodeSteps: 2, peer: { ort, transformers: transformers as unknown as TjsModule, columns: ['wasm', 'transformers-cpu'] }, bundled: (name) => join(root, 'models', name) };
    const stages: string[] = [];
    const notes: string[] = [];
    const r: CompareResults = await runCompare(gpu(), opts, { progress: (p) => stages.push(p.stage), note: (t) => notes.push(t) });
    const validate = new Ajv({ allErrors: true }).compile(schema);
    const ok = validate({ meta, ...r });
    expect(ok, JSON.stringify(validate.errors)).toBe(true);
    expect(r.models.map((m) => m.arch)).toEqual([...ARCHS]);
    for (const arch of ARCHS) {
      const prefill = r.samples.find((s) => s.arch === arch && s.metric === 'prefill' && s.tokens === 16);
      const decode = r.samples.find((s) => s.arch === arch && s.metric === 'decode' && s.tokens === 16);
      for (const v of [prefill?.tokensPerSecond, prefill?.ttftMs, decode?.tokensPerSecond]) expect(v, arch).toBeGreaterThan(0);
      const mem = r.memory.find((m) => m.arch === arch && m.context === 16)!;
      expect(mem.bytes.weights + mem.bytes.state, arch).toBeGreaterThan(0);
      const roof = r.roofline.find((x) => x.arch === arch && x.context === 16)!;
      expect(Number.isFinite(roof.fraction) && roof.fraction > 0, arch).toBe(true);
    }
    // 8192 tokens: past the bundled transformers' 4096 positions, a wall recorded; the recurrent models decode there.
    for (const arch of ['transformer', 'moe'] as const) expect(r.failures.some((f) => f.arch === arch && f.tokens === 8192), JSON.stringify(r.failures)).toBe(true);
    for (const arch of ['mamba', 'retnet'] as const) expect(r.samples.some((s) => s.arch === arch && s.metric === 'decode' && s.tokens === 8192)).toBe(true);
    // The peers beside the transformer, on the same weights, prompt and steps.
    expect(r.peers.map((p) => [p.runtime, p.ep, p.prompt, p.decodeSteps])).toEqual([['onnxruntime-web', 'wasm', 16, 2], ['transformers.js', 'cpu', 16, 2]]);
    for (const p of r.peers) for (const v of [p.ratio.prefill, p.ratio.decode, p.peer.ttftMs, p.tessera.ttftMs]) expect(v).toBeGreaterThan(0);
    expect(r.peers[1].peer.version).toMatch(/^\d+\.\d+\.\d+/);
    expect(r.models[0].compiles.pipelines).toBeGreaterThan(0);
    expect(stages.slice(-2)).toEqual(['peer wasm beside the transformer', 'peer transformers-cpu beside the transformer']);
    const svgs = charts(r);
    for (const name of ['decode', 'prefill', 'memory'] as const) {
      const series = [...svgs[name].matchAll(/data-series="([^"]+)"/g)].map((m) => m[1]);
      expect(series, name).toEqual(name === 'memory' ? [...ARCHS] : [...ARCHS, 'onnxruntime-web wasm', 'transformers.js cpu']);
      expect(svgs[name]).toMatch(/^<svg [^>]*xmlns="http:\/\/www\.w3\.org\/2000\/svg"[\s\S]*<\/svg>$/);
    }
    const md = markdown(r, meta);
    expect(md).toMatch(/### Tessera and its peers[\s\S]*\| onnxruntime-web 1\.30\.0 \(wasm\) \| 16 \| 2 \|[\s\S]*\| transformers\.js 4\.3\.2 \(cpu\) \| 16 \| 2 \|[\s\S]*### Ratios/);
    expect(md).toMatch(/\| transformer \| .*wall/);
  });

  it('bad input: an unknown preset or architecture, or a length that is not a token count, is refused naming it', async () => {
    const base: CompareOptions = { preset: 'tiny', archs: ['mamba'], prompts: [16], contexts: [16], repeats: 1, decodeSteps: 1, bundled: (n) => join(root, 'models', n) };
    await expect(runCompare(gpu(), { ...base, preset: 'huge' }, { progress() {}, note() {} })).rejects.toThrow(/unknown preset 'huge' \(presets: 135m, tiny\)/);
    await expect(runCompare(gpu(), { ...base, archs: ['gpt' as never] }, { progress() {}, note() {} })).rejects.toThrow(/unknown architecture 'gpt'/);
    await expect(runCompare(gpu(), { ...base, contexts: [0] }, { progress() {}, note() {} })).rejects.toThrow(/context length must be a positive whole number/);
  });
});
