// The GPU for tests: one device per test file, real WebGPU (Dawn; SwiftShader
// on machines without a GPU). If no adapter can be had the tests fail with the
// runtime's own message. Only TESSERA_SKIP_GPU=1 skips them, and says so loudly.

import { afterAll, beforeAll, describe } from 'vitest';
import { Gpu } from '../../src/runtime/gpu';
import type { Tensor, DenseDType } from '../../src/runtime/tensor';
import type { MemoryCategory } from '../../src/runtime/ledger';

export const SKIP_GPU = process.env.TESSERA_SKIP_GPU === '1';
if (SKIP_GPU) {
  console.warn('\n*** TESSERA_SKIP_GPU=1: GPU tests are SKIPPED. Nothing on the GPU is being checked. ***\n');
}

/** describe() for GPU tests: skipped only when TESSERA_SKIP_GPU=1 asks for it. */
export const describeGpu = (name: string, fn: () => void) => (SKIP_GPU ? describe.skip : describe)(name, fn);

/** Opens one Gpu for the enclosing describe block and closes it after. */
export function useGpu(): () => Gpu {
  let gpu: Gpu | undefined;
  beforeAll(async () => {
    gpu = await Gpu.create();
  });
  afterAll(() => gpu?.destroy());
  return () => {
    if (!gpu) throw new Error('GPU not ready');
    return gpu;
  };
}

/** A tensor filled with NaN, so an element the kernel fails to write shows up. */
export function poisoned(gpu: Gpu, shape: number[], label = 'out', dtype: DenseDType = 'f32', category: MemoryCategory = 'activations'): Tensor {
  const t = gpu.empty(shape, dtype, label, category);
  const n = shape.reduce((a, b) => a * b, 1);
  if (dtype === 'f32' || dtype === 'f16') gpu.write(t, new Float32Array(n).fill(NaN));
  else gpu.write(t, new Uint32Array(n).fill(0xdeadbeef));
  return t;
}

/**
 * The same device, reporting at most `max` workgroups per grid dimension: grid()
 * then splits a small dispatch over x and y, as it does past 65535 workgroups on
 * a real device (which would take many seconds of SwiftShader). Not to be
 * destroyed: the device belongs to `g`.
 */
export function cappedGrid(g: Gpu, max: number): Gpu {
  const limits = new Proxy(g.device.limits, { get: (t, k) => (k === 'maxComputeWorkgroupsPerDimension' ? max : Reflect.get(t, k)) });
  const device = new Proxy(g.device, {
    get: (t, k) => {
      if (k === 'limits') return limits;
      const v = Reflect.get(t, k);
      return typeof v === 'function' ? v.bind(t) : v;
    },
  });
  return Gpu.fromDevice(device, g.report);
}
