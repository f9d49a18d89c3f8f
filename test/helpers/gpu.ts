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
