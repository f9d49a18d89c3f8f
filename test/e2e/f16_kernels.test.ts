// Every kernel's f16 variant (T = f16), run for real and compared with the
// float64 references at stated f16 tolerances (test/helpers/f16_kernel_cases.ts
// says how each is derived). Node's WebGPU here (Dawn on SwiftShader) lacks
// shader-f16, so the cases run in headless Firefox ESR (wgpu) on Mesa's
// lavapipe, which has it: the page (f16_page/) runs them all once, and each
// case is one test below. Then: every kernel with a T variant ran in f16 in
// some case, and the cases left no buffer behind.

import { beforeAll, expect, it } from 'vitest';
import { join } from 'node:path';
import { describeGpu } from '../helpers/gpu';
import { openBrowser } from '../helpers/browsers';
import { servePage } from '../helpers/page_server';
import { F16_CASES } from '../helpers/f16_kernel_cases';
import { KERNELS } from '../../src/kernels/kernel';
import type { PageResult } from './f16_page/main';

import.meta.glob('../../src/kernels/*.ts', { eager: true }); // each op's module defines its kernel on import

/** The cases the page must run, listed here so that one missing from the page fails. */
const CASES = [
  'add_inplace', 'argmax', 'attn_decode', 'attn_prefill', 'binary add', 'binary mul', 'conv1d_causal', 'count_nonfinite',
  'embed', 'embed_q4', 'embed_q8', 'gated_add', 'layernorm', 'matmul', 'matmul_q4', 'matmul_q8', 'matvec', 'matvec_q4', 'matvec_q8',
  'moe_combine', 'moe_matmul_q4', 'moe_matvec_q4', 'moe_router',
  'retention_chunkwise', 'retention_parallel', 'retention_recurrent',
  'rmsnorm f16 to f16', 'rmsnorm f16 to f32', 'rope neox', 'rope interleaved', 'sample', 'selective_scan', 'ssm_step',
  'softmax', 'swiglu', 'unary silu', 'unary gelu', 'unary gelu_tanh',
] as const;

/** Kernels without a T variant, and why. */
const NO_T: Record<string, string> = {
  copy: 'a bandwidth probe that moves bytes as vec4<u32>: it has no element type',
  moe_group: 'groups u32 expert ids into a u32 plan: it has no element type',
};

/** The kernel's own WGSL and snippets, without the prelude (which always names T and O) and comments. */
function bodyOf(code: string): string {
  return code.split('\n').filter((l) => !/^(enable f16;|alias [TO] = )/.test(l)).map((l) => l.replace(/\/\/.*$/, '')).join('\n');
}

describeGpu('every kernel in f16 against the float64 references, in headless Firefox on lavapipe', () => {
  let r: PageResult;

  beforeAll(async () => {
    const page = await servePage(join(__dirname, 'f16_page'));
    try {
      const browser = await openBrowser('firefox');
      try {
        r = (await browser.result(page.url, 280_000)) as PageResult;
      } finally {
        await browser.close();
      }
    } finally {
      await page.close();
    }
    if (r.error) return;
    const slowest = [...r.cases].sort((a, b) => b.ms - a.ms).slice(0, 5).map((c) => `${c.name} ${c.ms} ms`);
    console.log(`f16 kernel page: ${r.cases.length} cases in ${r.ms} ms on ${r.adapter}; slowest: ${slowest.join(', ')}`);
  }, 300_000);

  it('ran on an adapter with shader-f16, with f16 activations, every case and no other', () => {
    expect(r.error, r.error).toBeUndefined();
    expect(r.precision).toBe('f16');
    expect(F16_CASES.map((c) => c.name)).toEqual([...CASES]);
    expect(r.cases.map((c) => c.name)).toEqual([...CASES]);
  });

  it.each(CASES)('%s matches the float64 reference within its f16 tolerance', (name) => {
    const c = r.cases?.find((x) => x.name === name);
    expect(c, `the page has no result for '${name}'`).toBeDefined();
    expect(c!.failures, c!.failures.join('\n')).toEqual([]);
    expect(c!.checked).toBeGreaterThan(0);
    expect(c!.worstRatio).toBeLessThanOrEqual(1);
    expect(c!.pipelines.length).toBeGreaterThan(0);
    expect(c!.pipelines.every((p) => /_f16(_|$)/.test(p)), `pipelines ${c!.pipelines}`).toBe(true);
  });

  it('every kernel with a T variant ran in f16 in some case (and its f16-to-f32 cast where it has one)', () => {
    const ran = r.cases.flatMap((c) => c.pipelines);
    const ranAs = (prefix: string) => ran.some((p) => p === prefix || p.startsWith(`${prefix}_`));
    const missing: string[] = [];
    for (const k of KERNELS) {
      if (k.name in NO_T) {
        expect(bodyOf(k.code({ type: 'f32' })), `${k.name} is excluded as having no T, but uses T or O`).not.toMatch(/\b[TO]\b/);
        continue;
      }
      const f16 = ran.some((p) => (p === `${k.name}_f16` || p.startsWith(`${k.name}_f16_`)) && !p.startsWith(`${k.name}_f16_to_`));
      if (!f16) missing.push(`${k.name} (f16)`);
      if (k.castsOutput && !ranAs(`${k.name}_f16_to_f32`)) missing.push(`${k.name} (f16 to f32)`);
    }
    expect(missing, `kernels no case ran in f16: ${missing.join(', ')}`).toEqual([]);
    expect(KERNELS.length).toBeGreaterThan(20);
  });

  it('the cases disposed every tensor they made', () => {
    const { bytes: before } = r.ledgerBefore;
    const { bytes: after } = r.ledgerAfter;
    expect(r.leftovers).toEqual([]);
    expect({ weights: after.weights, cache: after.cache, activations: after.activations }).toEqual({ weights: before.weights, cache: before.cache, activations: before.activations });
  });
});
