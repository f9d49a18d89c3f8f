// Kernel suite: 4-bit matvec (decode) and matmul (prefill) at the layer shapes
// of a 135M-parameter model (SmolLM2-135M: D 576, MLP 1536, vocab 49152),
// beside a plain copy kernel's bandwidth on the same adapter in the same run.
//
// Effective weight bandwidth = bytes of packed weights (codes + scales) read
// per second. Copy bandwidth counts bytes read + bytes written, as STREAM does.
// Each timed repetition reads a different copy of the weights, cycling over
// 256 MiB of copies (more than the last-level cache of any GPU we target:
// 50 MB on an H100, 72 MB on an RTX 4090, 96 MB on an RX 7900 XTX), so nothing
// is served from cache that a real model would fetch from memory.
//
// The 8-bit matvec of the LM head (the default beside 4-bit layers) is timed
// too, at the LM head shape, against the same copy.
//
// --sweep also times the matvec at other tunings (threads per workgroup, lanes
// per team of 4 rows): the GPU default was chosen without a GPU to time it.

import type { Gpu } from '../../src/runtime/gpu';
import { dequantizeQ4, quantizeQ4 } from '../../src/runtime/q4';
import { dequantizeQ8, quantizeQ8 } from '../../src/runtime/q8';
import type { Tensor } from '../../src/runtime/tensor';
import { Recorder } from '../../src/runtime/recorder';
import { copy } from '../../src/kernels/copy';
import { matvecQ4, type MatvecQ4Tuning } from '../../src/kernels/matvec_q4';
import { adapterClass, matvecTuning } from '../../src/kernels/tunings';
import { matvecQ8 } from '../../src/kernels/matvec_q8';
import { matmulQ4, matmulQ4Tiled } from '../../src/kernels/matmul_q4';
import { matmulQ4Rows } from '../../src/kernels/matmul_q4_rows';
import { linear } from '../../src/reference/linear';
import { GB, printTable, timeGpu, type BenchOptions, type Row } from '../harness';

/** (N, K) = (out, in) of the layers; the LM head is the largest read of a decode step. */
const SHAPES: [string, number, number][] = [
  ['mlp up/gate', 1536, 576],
  ['mlp down', 576, 1536],
  ['lm head', 49152, 576],
];
const QUICK_SHAPES: [string, number, number][] = [
  ['mlp up/gate', 1536, 576],
  ['mlp down', 576, 1536],
  ['lm head (cut)', 8192, 576],
];

/** Tunings --sweep times: one thread per 4 rows up to a 32-lane team (a subgroup on most GPUs). */
const SWEEP: MatvecQ4Tuning[] = [
  { WG: 64, TPR: 1 }, { WG: 256, TPR: 1 },
  { WG: 64, TPR: 4 }, { WG: 128, TPR: 4 },
  { WG: 64, TPR: 8 }, { WG: 128, TPR: 8 }, { WG: 256, TPR: 8 },
  { WG: 64, TPR: 16 }, { WG: 128, TPR: 16 },
  { WG: 64, TPR: 32 }, { WG: 256, TPR: 32 },
];

const fmtTune = (t: MatvecQ4Tuning) => `WG ${t.WG} TPR ${t.TPR}`;

function gaussian(n: number, seed: number): Float32Array {
  let s = seed >>> 0;
  const u = () => ((s = (Math.imul(s, 1664525) + 1013904223) >>> 0) + 0.5) / 4294967296;
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) out[i] = Math.sqrt(-2 * Math.log(u())) * Math.cos(2 * Math.PI * u()) * 0.05;
  return out;
}

/** Checks the kernel against the float64 reference once, before any timing. */
function verify(name: string, got: Float32Array, want: Float64Array): void {
  for (let i = 0; i < want.length; i++) {
    const err = Math.abs(got[i] - want[i]);
    if (!(err <= 1e-4 + 1e-3 * Math.abs(want[i]))) throw new Error(`bench verify ${name}: element ${i} is ${got[i]}, reference ${want[i]}`);
  }
}

export async function kernelsSuite(gpu: Gpu, opts: BenchOptions): Promise<void> {
  const shapes = opts.quick ? QUICK_SHAPES : SHAPES;
  const T = opts.quick ? 32 : 128; // prompt tokens for the prefill matmul
  const cacheBust = (opts.quick ? 32 : 256) * 2 ** 20; // bytes cycled through per case
  const trials = opts.quick ? 3 : 7;

  // The yardstick: copy as many bytes as the largest weight, cycled the same way.
  const rows: Row[] = [];
  const sweepRows: Row[] = [];
  const copyBw = new Map<string, number>();
  for (const [name, N, K] of shapes) {
    const q = quantizeQ4(gaussian(N * K, N * 31 + K), N, K, 32);
    const copies = Math.ceil(cacheBust / (q.packed.byteLength + q.scales.byteLength));
    const weights: Tensor[] = Array.from({ length: copies }, (_, i) => gpu.uploadQ4(q, `bench.${name}.w${i}`));
    const wBytes = weights[0].quant!.packedBytes + weights[0].quant!.scalesBytes;
    const x = gpu.upload(gaussian(K, 7), [K], { label: 'bench.x' });
    const y = gpu.empty([N], 'f32', 'bench.y');
    const xs = gpu.upload(gaussian(T * K, 8), [T, K], { label: 'bench.xs' });
    const ys = gpu.empty([T, N], 'f32', 'bench.ys');
    // Copy of the same byte count, between buffers cycled like the weights.
    const copyWords = Math.ceil(wBytes / 16) * 4;
    const srcs = Array.from({ length: copies }, (_, i) => gpu.empty([copyWords], 'u32', `bench.copy.src${i}`, 'scratch'));
    const dst = gpu.empty([copyWords], 'u32', 'bench.copy.dst', 'scratch');
    try {
      // Verify first (llm.c style): one token and T tokens against float64 on the dequantized weights.
      const wd = dequantizeQ4(q);
      const rec = new Recorder(gpu, 'verify');
      matvecQ4(rec, weights[0], x, y);
      verify(`matvec_q4 ${N}×${K}`, (await rec.submitAndRead(y)) as Float32Array, linear(await gpu.read(x), wd, 1, K, N));
      const rec2 = new Recorder(gpu, 'verify');
      matmulQ4(rec2, xs, weights[0], ys);
      verify(`matmul_q4 ${T}×${N}×${K}`, (await rec2.submitAndRead(ys)) as Float32Array, linear(await gpu.read(xs), wd, T, K, N));

      const per = copies;
      const tCopy = await timeGpu(gpu, (r, i) => copy(r, srcs[i % copies], dst), { perSubmit: per, trials });
      const tVec = await timeGpu(gpu, (r, i) => matvecQ4(r, weights[i % copies], x, y), { perSubmit: per, trials });
      // Prefill is compute-bound: a few repetitions suffice.
      const tMat = await timeGpu(gpu, (r, i) => matmulQ4(r, xs, weights[i % copies], ys), { perSubmit: 2, trials: 3 });
      // The two prefill kernels side by side (matmulQ4 above runs the adapter's choice, tunings.ts).
      const tTiled = await timeGpu(gpu, (r, i) => matmulQ4Tiled(r, xs, weights[i % copies], ys), { perSubmit: 2, trials: 3 });
      const tRows = await timeGpu(gpu, (r, i) => matmulQ4Rows(r, xs, weights[i % copies], ys), { perSubmit: 2, trials: 3 });
      const copyGBs = (2 * copyWords * 4) / tCopy / GB;
      copyBw.set(name, copyGBs);
      if (opts.sweep) {
        for (const tune of Array.isArray(opts.sweep) ? opts.sweep : SWEEP) {
          const t = await timeGpu(gpu, (r, i) => matvecQ4(r, weights[i % copies], x, y, tune), { perSubmit: per, trials });
          sweepRows.push({ layer: `${name} ${N}×${K}`, WG: tune.WG, TPR: tune.TPR, 'matvec µs': t * 1e6, 'matvec / copy': wBytes / t / GB / copyGBs });
        }
      }
      rows.push({
        layer: `${name} ${N}×${K}`,
        'q4 bytes': wBytes,
        'copy GB/s (r+w)': copyGBs,
        'matvec µs': tVec * 1e6,
        'matvec weight GB/s': wBytes / tVec / GB,
        'matvec / copy': wBytes / tVec / GB / copyGBs,
        'matvec GFLOP/s': (2 * N * K) / tVec / 1e9,
        [`matmul T=${T} ms`]: tMat * 1e3,
        'matmul GFLOP/s': (2 * T * N * K) / tMat / 1e9,
        'tiled ms': tTiled * 1e3,
        'rows ms': tRows * 1e3,
      });
    } finally {
      [...weights, x, y, xs, ys, ...srcs, dst].forEach((t) => t.dispose());
    }
  }
  printTable('4-bit linear kernels (group 32)', rows);
  await lmHeadQ8(gpu, shapes[shapes.length - 1], copyBw, cacheBust, trials);
  if (opts.sweep) {
    printTable(`matvec tunings (this adapter's default, class ${adapterClass(gpu.report)}: ${fmtTune(matvecTuning(gpu.report))})`, sweepRows);
    // The fastest per layer: what src/kernels/tunings.ts should hold for this class of adapter.
    const best = new Map<string, Row>();
    for (const r of sweepRows) if (!best.has(r.layer as string) || (r['matvec / copy'] as number) > (best.get(r.layer as string)!['matvec / copy'] as number)) best.set(r.layer as string, r);
    printTable(`fastest matvec tuning per layer on ${gpu.report.adapter} (for src/kernels/tunings.ts, class ${adapterClass(gpu.report)})`, [...best.values()]);
  }
  const ratios = rows.map((r) => r['matvec / copy'] as number);
  const minRatio = Math.min(...ratios);
  console.log(`Target: q4 matvec weight bandwidth ≥ 0.5 × copy bandwidth. Lowest ratio here: ${minRatio.toFixed(2)} (${minRatio >= 0.5 ? 'met' : 'NOT met'}).`);
}

/**
 * The 8-bit LM head (the default beside 4-bit layers): its matvec at the LM
 * head shape, against the copy bandwidth measured for that shape above.
 */
async function lmHeadQ8(gpu: Gpu, [name, N, K]: [string, number, number], copyBw: Map<string, number>, cacheBust: number, trials: number): Promise<void> {
  const q = quantizeQ8(gaussian(N * K, N * 37 + K), N, K, 32);
  const copies = Math.ceil(cacheBust / (q.packed.byteLength + q.scales.byteLength));
  const weights = Array.from({ length: copies }, (_, i) => gpu.uploadQ8(q, `bench.${name}.q8.w${i}`));
  const wBytes = q.packed.byteLength + q.scales.byteLength;
  const x = gpu.upload(gaussian(K, 9), [K], { label: 'bench.x' });
  const y = gpu.empty([N], 'f32', 'bench.y');
  try {
    const rec = new Recorder(gpu, 'verify');
    matvecQ8(rec, weights[0], x, y);
    verify(`matvec_q8 ${N}×${K}`, (await rec.submitAndRead(y)) as Float32Array, linear(await gpu.read(x), dequantizeQ8(q), 1, K, N));
    const t = await timeGpu(gpu, (r, i) => matvecQ8(r, weights[i % copies], x, y), { perSubmit: copies, trials });
    const copyGBs = copyBw.get(name)!;
    printTable('8-bit LM head (group 32; the default beside 4-bit layers)', [{
      layer: `${name} ${N}×${K}`,
      'q8 bytes': wBytes,
      'copy GB/s (r+w)': copyGBs,
      'matvec µs': t * 1e6,
      'matvec weight GB/s': wBytes / t / GB,
      'matvec / copy': wBytes / t / GB / copyGBs,
    }]);
  } finally {
    [...weights, x, y].forEach((w) => w.dispose());
  }
}
