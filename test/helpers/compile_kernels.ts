// Every kernel's module handed to the device's compiler, in f32 and, where the
// adapter has shader-f16, in f16 (and f16 to f32 for a kernel that casts its
// output): the compiler's messages, each with the file and line it points to.
// Runs in Node and in the browser page alike.

import { KERNELS, type Types } from '../../src/kernels/kernel';

import.meta.glob('../../src/kernels/*.ts', { eager: true }); // each op's module defines its kernel on import

export async function compileAllKernels(device: GPUDevice, shaderF16: boolean): Promise<{ kernels: number; types: string[]; messages: string[] }> {
  const types = shaderF16 ? (['f32', 'f16'] as const) : (['f32'] as const);
  const messages: string[] = [];
  for (const k of KERNELS) {
    const variants: Types[] = types.map((type) => ({ type }));
    if (shaderF16 && k.castsOutput) variants.push({ type: 'f16', out: 'f32' });
    for (const v of variants) {
      const name = `${k.name} ${v.type}${v.out ? ` to ${v.out}` : ''}`;
      const module = device.createShaderModule({ label: name, code: k.code(v) });
      for (const m of (await module.getCompilationInfo()).messages) messages.push(`${name}: ${m.type} at ${k.locate(v, m.lineNum)}: ${m.message}`);
    }
  }
  return { kernels: KERNELS.length, types: [...types], messages };
}
