// Every kernel assembles (prelude, snippets, its own source) into a module the
// compiler takes without a message, in f32 and, where the adapter has
// shader-f16, in f16; and a module that does not compile is reported with the
// compiler's message and the file and line it points to.

import { expect, it } from 'vitest';
import { defineKernel, KERNELS } from '../../src/kernels/kernel';
import { lib } from '../../src/kernels/lib';
import { Recorder } from '../../src/runtime/recorder';
import { describeAdapter } from '../../src/runtime/device';
import { describeGpu, useGpu } from '../helpers/gpu';
import { compileAllKernels } from '../helpers/compile_kernels';

describeGpu('kernel compilation', () => {
  const gpu = useGpu();

  it('every kernel compiles with no message, in f32 and, where the adapter has it, in f16 (and f16 to f32 where it casts)', async () => {
    const g = gpu();
    const { kernels, messages } = await compileAllKernels(g.device, g.report.features.shaderF16);
    expect(kernels).toBeGreaterThan(20);
    expect(messages).toEqual([]);
  });

  it("a kernel that does not compile is an Error with the compiler's message and the file and line", async () => {
    const g = gpu();
    const broken = defineKernel({ name: 'broken_for_test', libs: [lib.common], source: '@compute @workgroup_size(1)\nfn main() {\n  let x: i32 = 1.5;\n}\n' });
    const rec = new Recorder(g, 'broken');
    broken.dispatch(rec, {}, [], null, [1]);
    const lines = lib.common.split('\n').length;
    await expect(rec.submit()).rejects.toThrow(new RegExp(`pipeline 'broken_for_test_f32' failed to build: [\\s\\S]*; error at broken_for_test\\.wgsl:3:\\d+: `));
    const f32 = { type: 'f32' } as const;
    expect(broken.locate(f32, 1)).toBe('prelude:1');
    expect(broken.locate(f32, 4)).toBe('common.wgsl:1');
    expect(broken.locate(f32, 3 + lines + 2)).toBe('broken_for_test.wgsl:2');
    KERNELS.splice(KERNELS.indexOf(broken), 1);
  });

  it('an output type other than the input type is refused by a kernel that does not cast, and needs shader-f16 where it is f16', () => {
    const g = gpu();
    const k = KERNELS.find((k) => k.name === 'add_inplace')!;
    const cast = KERNELS.find((k) => k.castsOutput)!;
    const rec = new Recorder(g, 'types');
    expect(() => k.dispatch(rec, { type: 'f32', out: 'f16' }, [], null, [1])).toThrow(/add_inplace: its output must be of its input's type \(f32\), got f16/);
    if (!g.report.features.shaderF16) expect(() => cast.dispatch(rec, { type: 'f16', out: 'f32' }, [], null, [1])).toThrow(new RegExp(`${cast.name}: f16 needs the shader-f16 feature`));
    expect(cast.key({ type: 'f16', out: 'f32' }, { WG: 64 })).toBe(`${cast.name}_f16_to_f32_WG64`);
    expect(cast.key({ type: 'f32' }, { WG: 64 })).toBe(`${cast.name}_f32_WG64`);
  });
});

it('an adapter that gives no names is described by what is known of it', () => {
  const empty = { vendor: '', architecture: '', device: '', description: '', isFallbackAdapter: true } as unknown as GPUAdapterInfo;
  expect(describeAdapter(empty, new Set(['shader-f16', 'timestamp-query']))).toBe('a fallback (software) adapter that gives no name (features: shader-f16, timestamp-query)');
  expect(describeAdapter(undefined, new Set())).toBe('an adapter that gives no name (features: none of shader-f16, subgroups, timestamp-query)');
  const named = { vendor: 'nvidia', architecture: 'hopper', device: '', description: 'NVIDIA H200' } as unknown as GPUAdapterInfo;
  expect(describeAdapter(named, new Set())).toBe('nvidia / hopper / NVIDIA H200');
});
