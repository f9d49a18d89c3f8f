// Every kernel's module handed to the device's compiler, in f32 and, where the
// adapter has shader-f16, in f16: the compiler's messages, each with the file
// and line it points to. Runs in Node and in the browser page alike.

import { KERNELS } from '../../src/kernels/kernel';

import.meta.glob('../../src/kernels/*.ts', { eager: true }); // each op's module defines its kernel on import

export async function compileAllKernels(device: GPUDevice, shaderF16: boolean): Promise<{ kernels: number; types: string[]; messages: string[] }> {
  const types = shaderF16 ? (['f32', 'f16'] as const) : (['f32'] as const);
  const messages: string[] = [];
  for (const k of KERNELS) {
    for (const type of types) {
      const module = device.createShaderModule({ label: `${k.name}_${type}`, code: k.code(type) });
      for (const m of (await module.getCompilationInfo()).messages) messages.push(`${k.name} ${type}: ${m.type} at ${k.locate(type, m.lineNum)}: ${m.message}`);
    }
  }
  return { kernels: KERNELS.length, types: [...types], messages };
}
