// Attention suite: decode attention (src/kernels/attn_decode.ts) at the 135m
// transformer's heads (SmolLM2-135M: 9 query heads, 3 KV heads, head dim 64)
// over contexts (--contexts), in both of its forms: a workgroup per chunk of
// keys (tiles through workgroup memory) and two barrier-free passes of
// threads. The form tunings.ts gives this adapter is named in the table. KV
// bytes/s counts the keys and values a step must read (f32 caches), the
// figure the decode roofline takes for attention.
// Both forms are checked against the float64 reference at every context
// before it is timed.

import type { Gpu } from '../../src/runtime/gpu';
import { Recorder } from '../../src/runtime/recorder';
import { attnDecodeScratchShape, attnDecodeThreads, attnDecodeWorkgroups } from '../../src/kernels/attn_decode';
import { decodeAttention } from '../../src/kernels/tunings';
import { attention } from '../../src/reference/attention';
import { GB, logged, printTable, timeGpu, type BenchOptions, type Row } from '../harness';

const H = 9;
const HKV = 3;
const DH = 64;
const CONTEXTS = [128, 512, 2048, 8192];
const QUICK_CONTEXTS = [128, 2048];
const FORMS = { workgroup: attnDecodeWorkgroups, thread: attnDecodeThreads };

function gaussian(n: number, seed: number): Float32Array {
  let s = seed >>> 0;
  const u = () => ((s = (Math.imul(s, 1664525) + 1013904223) >>> 0) + 0.5) / 4294967296;
  return Float32Array.from({ length: n }, () => Math.sqrt(-2 * Math.log(u())) * Math.cos(2 * Math.PI * u()));
}

export async function attentionSuite(gpu: Gpu, opts: BenchOptions): Promise<void> {
  const contexts = opts.contexts ?? (opts.quick ? QUICK_CONTEXTS : CONTEXTS);
  const trials = opts.quick ? 3 : 5;
  const chosen = decodeAttention(gpu.report);
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
        const got = (await rec.submitAndRead(out)) as Float32Array;
        for (let i = 0; i < want.length; i++) {
          if (!(Math.abs(got[i] - want[i]) <= 1e-4 + 1e-4 * Math.abs(want[i]))) throw new Error(`bench verify attn_decode (${form}) context ${len}: element ${i} is ${got[i]}, reference ${want[i]}`);
        }
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
}
