// Adapter suite: what the device offers. The GPU kit runs it first, to check
// that Dawn sees the real GPU through its driver (not SwiftShader) and to
// record its limits and features beside the figures; then it times two
// ceilings the kernels are measured against: the f32 multiply-add rate
// (fma_peak.wgsl) and the bandwidth of a copy (as the comparison measures it).

import type { Gpu } from '../../src/runtime/gpu';
import { Params, Recorder } from '../../src/runtime/recorder';
import { defineKernel } from '../../src/kernels/kernel';
import fmaSource from './fma_peak.wgsl?raw';
import { copyBandwidth, GB, printTable, timeGpu, type BenchOptions, type Row } from '../harness';

const fmaPeak = defineKernel({ name: 'fma_peak', source: fmaSource });
const FMA_WG = 64;
const FMA_FLOPS_PER_STEP = 256; // fma_peak.wgsl: 8 chains x 4 fmas x 4 lanes x 2

export async function adapterSuite(gpu: Gpu, opts: BenchOptions): Promise<void> {
  const info = (gpu.device as { adapterInfo?: GPUAdapterInfo }).adapterInfo;
  const subgroups = info as (GPUAdapterInfo & { subgroupMinSize?: number; subgroupMaxSize?: number }) | undefined;
  printTable('adapter', [{
    adapter: gpu.report.adapter,
    backend: gpu.report.backend,
    software: String(gpu.report.software),
    driver: gpu.report.driverNote || '-',
    'subgroup sizes': subgroups?.subgroupMinSize ? `${subgroups.subgroupMinSize}..${subgroups.subgroupMaxSize}` : '-',
  }]);
  printTable('features', [...gpu.device.features].sort().map((feature): Row => ({ feature })));
  const limits: Row[] = [];
  for (const key in gpu.device.limits) {
    const v = (gpu.device.limits as unknown as Record<string, unknown>)[key];
    if (typeof v === 'number') limits.push({ limit: key, value: v });
  }
  printTable('limits', limits);
  printTable('ceilings', await ceilings(gpu, opts.quick));
}

/** The f32 multiply-add rate and a copy's bandwidth, each the median of a few timed runs. */
async function ceilings(gpu: Gpu, quick: boolean): Promise<Row[]> {
  // a GPU needs far more threads and steps than a CPU for the run to outlast a submit's overhead
  const soft = gpu.report.software;
  const groups = soft ? 256 : 4096;
  const threads = groups * FMA_WG;
  const iters = quick ? 64 : soft ? 1024 : 16384;
  const sink = gpu.empty([threads, 4], 'f32', 'bench.fma.sink', 'scratch');
  try {
    const params = new Params(1).u32(iters).buffer;
    const fma = (rec: Recorder) => fmaPeak.dispatch(rec, { overrides: { WG: FMA_WG } }, [sink], params, [groups]);
    // First a check that the chains ran their steps: the sums against float64 (f32 rounding
    // stays far inside 1e-3; a tenth of the steps missing does not).
    const rec = new Recorder(gpu, 'verify');
    fma(rec);
    const out = (await rec.submitAndRead(sink)) as Float32Array;
    for (const i of [0, threads - 1]) {
      for (let j = 0; j < 4; j++) {
        const want = fmaPeakSum(i, j, 4 * iters);
        if (!(Math.abs(out[4 * i + j] - want) <= 1e-3 * Math.abs(want))) throw new Error(`bench fma_peak: thread ${i} lane ${j} holds ${out[4 * i + j]}, float64 says ${want}`);
      }
    }
    const tFma = await timeGpu(gpu, fma, { perSubmit: 1, trials: 5 });
    return [
      { ceiling: 'f32 multiply-add (vec4 fma chains in registers)', value: (threads * iters * FMA_FLOPS_PER_STEP) / tFma / 1e9, unit: 'GFLOP/s' },
      { ceiling: 'copy (bytes read + written)', value: (await copyBandwidth(gpu, 5)) / GB, unit: 'GB/s' },
    ];
  } finally {
    sink.dispose();
  }
}

/** Component j of thread i's sum in fma_peak.wgsl after n steps of a = a * b + c on each of its 8 chains, in float64. */
function fmaPeakSum(i: number, j: number, n: number): number {
  const b = Math.fround(0.999);
  const c = Math.fround(1e-3);
  const fixed = c / (1 - b); // where every chain converges
  const x = Math.fround(Math.fround(i) * Math.fround(1e-9));
  let sum = 0;
  for (let k = 0; k < 8; k++) sum += b ** n * (Math.fround(Math.fround(x + j) + Math.fround(0.1 * k)) - fixed) + fixed;
  return sum;
}
