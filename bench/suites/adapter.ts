// Adapter suite: what the device offers, before anything is timed. The GPU
// kit runs it first, to check that Dawn sees the real GPU through its driver
// (not SwiftShader) and to record its limits and features beside the figures.

import type { Gpu } from '../../src/runtime/gpu';
import { printTable, type BenchOptions, type Row } from '../harness';

export async function adapterSuite(gpu: Gpu, _opts: BenchOptions): Promise<void> {
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
}
