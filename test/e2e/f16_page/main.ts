// Runs in headless Firefox on lavapipe (which offers shader-f16): every kernel's
// f16 variant against the float64 references (test/helpers/f16_kernel_cases.ts),
// then a check that the cases left no buffer behind. The result goes to
// window.__result for test/e2e/f16_kernels.test.ts to check.

import { Gpu } from '../../../src/index';
import type { MemoryReport } from '../../../src/runtime/ledger';
import { F16_CASES, type CaseResult } from '../../helpers/f16_kernel_cases';

declare global {
  interface Window { __result?: unknown }
}

export interface CaseRow extends CaseResult { name: string; ms: number }

export interface PageResult {
  error?: string;
  adapter: string;
  precision: string;
  cases: CaseRow[];
  /** The ledger before the first case and after the last. */
  ledgerBefore: MemoryReport;
  ledgerAfter: MemoryReport;
  /**
   * Buffers alive after the cases that were not before ('label (bytes, category)'),
   * leaving out what the Gpu keeps by design between steps: its uniform ring and
   * its small readback buffers (category scratch; no case makes a scratch buffer).
   */
  leftovers: string[];
  ms: number;
}

/** The Gpu's own buffers, kept between submits (gpu.ts: uniformRing, takeReadback). */
const keptByGpu = (b: { label: string; category: string }) => b.category === 'scratch' && (b.label === 'uniform-ring' || b.label.endsWith('.readback'));

async function run(): Promise<PageResult | { error: string; adapter?: string }> {
  const t0 = performance.now();
  const gpu = await Gpu.create({ preferF16: true });
  try {
    if (!gpu.report.features.shaderF16) return { error: 'no shader-f16', adapter: gpu.report.adapter };
    const ledgerBefore = gpu.ledger.report();
    const before = new Map<string, number>();
    const key = (b: { label: string; bytes: number; category: string }) => `${b.label} (${b.bytes} bytes, ${b.category})`;
    for (const b of gpu.ledger.liveBuffers()) before.set(key(b), (before.get(key(b)) ?? 0) + 1);
    const cases: CaseRow[] = [];
    for (const c of F16_CASES) {
      const start = performance.now();
      let r: CaseResult;
      try {
        r = await c.run(gpu);
      } catch (e) {
        const err = e as Error;
        r = { checked: 0, failures: [`threw: ${err.message}\n${err.stack}`], worstRatio: Infinity, pipelines: [] };
      }
      cases.push({ name: c.name, ...r, ms: Math.round(performance.now() - start) });
      document.getElementById('out')!.textContent = `${cases.length} of ${F16_CASES.length} cases`;
    }
    const leftovers: string[] = [];
    for (const b of gpu.ledger.liveBuffers()) {
      const k = key(b);
      const n = before.get(k) ?? 0;
      if (n > 0) before.set(k, n - 1);
      else if (!keptByGpu(b)) leftovers.push(k);
    }
    return { adapter: gpu.report.adapter, precision: gpu.report.precision, cases, ledgerBefore, ledgerAfter: gpu.ledger.report(), leftovers, ms: Math.round(performance.now() - t0) };
  } finally {
    gpu.destroy();
  }
}

run().then(
  (r) => { window.__result = r; document.getElementById('out')!.textContent = 'done'; },
  (e: Error) => { window.__result = { error: `${e.message}\n${e.stack}` }; },
);
