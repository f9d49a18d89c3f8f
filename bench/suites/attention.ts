// Attention suite: decode attention (src/kernels/attn_decode.ts) and prefill
// attention (attn_prefill.ts) at the 135m transformer's heads (SmolLM2-135M:
// 9 query heads, 3 KV heads, head dim 64) over contexts (--contexts), each in
// both of its forms: workgroups through workgroup memory, and barrier-free
// threads. The form tunings.ts gives this adapter is named in the tables.
// Decode: KV bytes/s counts the keys and values a step must read (f32
// caches), the figure the decode roofline takes for attention. Prefill: one
// chunk of 128 queries ending at the context (pos0 = context - 128), as a
// long prompt's last chunk.
// Both forms are checked against the float64 reference at every context
// before they are timed.

import type { Gpu } from '../../src/runtime/gpu';
import { Recorder } from '../../src/runtime/recorder';
import { attnDecodeScratchShape, attnDecodeThreads, attnDecodeWorkgroups } from '../../src/kernels/attn_decode';
import { attnPrefillThreads, attnPrefillWorkgroups } from '../../src/kernels/attn_prefill';
import { attentionForm } from '../../src/kernels/tunings';
import { attention } from '../../src/reference/attention';
import { GB, logged, printTable, timeGpu, type BenchOptions, type Row } from '../harness';

const H = 9;
const HKV = 3;
const DH = 64;
const CONTEXTS = [128, 512, 2048, 8192];
const QUICK_CONTEXTS = [128, 2048];
const FORMS = { workgroup: attnDecodeWorkgroups, thread: attnDecodeThreads };
const PREFILL_FORMS = { workgroup: attnPrefillWorkgroups, thread: attnPrefillThreads };
const CHUNK = 128; // prefill queries per call (the models' prefill chunk)

/** Checks a form's output against the float64 reference. */
function verify(what: string, got: Float32Array, want: Float64Array | Float32Array): void {
  for (let i = 0; i < want.length; i++) {
    if (!(Math.abs(got[i] - want[i]) <= 1e-4 + 1e-4 * Math.abs(want[i]))) throw new Error(`bench verify ${what}: element ${i} is ${got[i]}, reference ${want[i]}`);
  }
}

function gaussian(n: number, seed: number): Float32Array {
  let s = seed >>> 0;
  const u = () => ((s = (Math.imul(s, 1664525) + 1013904223) >>> 0) + 0.5) / 4294967296;
  return Float32Array.from({ length: n }, () => Math.sqrt(-2 * Math.log(u())) * Math.cos(2 * Math.PI * u()));
}

export async function attentionSuite(gpu: Gpu, opts: BenchOptions): Promise<void> {
  const contexts = opts.contexts ?? (opts.quick ? QUICK_CONTEXTS : CONTEXTS);
  const trials = opts.quick ? 3 : 5;
  const chosen = attentionForm(gpu.report);
  const rows: Row[] = [];
  for (const len of contexts) {
    const host = { q: gaussian(H * DH, len), k: gaussian(len * HKV * DH, len + 1), v: gaussian(len * HKV * DH, len + 2) };
    const q = gpu.upload(host.q, [1, H, DH], { label: 'bench.attn.q' });
    const k = gpu.upload(host.k, [len, HKV, DH], { label: 'bench.attn.k', category: 'cache' });
    const v = gpu.upload(host.v, [len, HKV, DH], { label: 'bench.attn.v', category: 'cache' });
    const out = gpu.empty([1, H, DH], 'f32', 'bench.attn.out');
    const scratch = gpu.empty(attnDecodeScratchShape(len, H, DH), 'f32', 'bench.attn.scratch', 'scratch');
    try {
      const want = attention(host.q, host.k, host.v, { T: 1, S: len, pos0: len - 1, H, Hkv: HKV, Dh: DH, scale: 1 / Math.sqrt(DH) });
      const row: Row = { context: len, 'KV MiB': (2 * len * HKV * DH * 4) / 2 ** 20 };
      const perSubmit = Math.max(2, Math.min(16, Math.round(16384 / len)));
      for (const [form, decode] of Object.entries(FORMS)) {
        const rec = new Recorder(gpu, 'verify');
        decode(rec, q, k, v, out, { len }, scratch);
        verify(`attn_decode (${form}) context ${len}`, (await rec.submitAndRead(out)) as Float32Array, want);
        const t = await timeGpu(gpu, (r) => decode(r, q, k, v, out, { len }, scratch), { perSubmit, trials });
        row[`${form} µs`] = t * 1e6;
        row[`${form} KV GB/s`] = (2 * len * HKV * DH * 4) / t / GB;
      }
      row['workgroup / thread'] = (row['workgroup µs'] as number) / (row['thread µs'] as number);
      rows.push(logged(row));
    } finally {
      [q, k, v, out, scratch].forEach((t) => t.dispose());
    }
  }
  printTable(`decode attention, H ${H} / Hkv ${HKV}, Dh ${DH}, f32 cache (this adapter's form: ${chosen})`, rows);
  printTable(`prefill attention, ${CHUNK} queries ending at the context, H ${H} / Hkv ${HKV}, Dh ${DH} (this adapter's form: ${chosen})`, await prefillRows(gpu, contexts, trials));
}

async function prefillRows(gpu: Gpu, contexts: readonly number[], trials: number): Promise<Row[]> {
  const rows: Row[] = [];
  for (const len of contexts) {
    const T = Math.min(CHUNK, len);
    const pos0 = len - T;
    const host = { q: gaussian(T * H * DH, 3 * len), k: gaussian(len * HKV * DH, 3 * len + 1), v: gaussian(len * HKV * DH, 3 * len + 2) };
    const q = gpu.upload(host.q, [T, H, DH], { label: 'bench.attn.q' });
    const k = gpu.upload(host.k, [len, HKV, DH], { label: 'bench.attn.k', category: 'cache' });
    const v = gpu.upload(host.v, [len, HKV, DH], { label: 'bench.attn.v', category: 'cache' });
    const out = gpu.empty([T, H, DH], 'f32', 'bench.attn.out');
    try {
      const want = attention(host.q, host.k, host.v, { T, S: len, pos0, H, Hkv: HKV, Dh: DH, scale: 1 / Math.sqrt(DH) });
      // multiply-adds of q·k and of the weighted values, over the keys each query sees
      const flops = 2 * 2 * H * DH * (T * pos0 + (T * (T + 1)) / 2);
      const row: Row = { context: len, queries: T };
      for (const [form, prefill] of Object.entries(PREFILL_FORMS)) {
        const rec = new Recorder(gpu, 'verify');
        prefill(rec, q, k, v, out, { pos0 });
        verify(`attn_prefill (${form}) context ${len}`, (await rec.submitAndRead(out)) as Float32Array, want);
        const t = await timeGpu(gpu, (r) => prefill(r, q, k, v, out, { pos0 }), { perSubmit: 1, trials });
        row[`${form} ms`] = t * 1e3;
        row[`${form} GFLOP/s`] = flops / t / 1e9;
      }
      row['workgroup / thread'] = (row['workgroup ms'] as number) / (row['thread ms'] as number);
      rows.push(logged(row));
    } finally {
      [q, k, v, out].forEach((t) => t.dispose());
    }
  }
  return rows;
}
