// Bundles the declarations tsc emitted (one .d.ts per source file, with
// extensionless relative imports) into one dist/index.d.ts with rollup-plugin-dts:
// no relative import is left for nodenext or node16 resolution to reject.
import { dts } from 'rollup-plugin-dts';

const types = process.env.TESSERA_TYPES;
const out = process.env.TESSERA_OUT ?? 'dist';

export default {
  input: `${types}/index.d.ts`,
  output: {
    file: `${out}/index.d.ts`,
    format: 'es',
    // The public types name WebGPU's (GPUDevice, GPUBuffer...): @webgpu/types is a dependency.
    banner: '/// <reference types="@webgpu/types" />',
  },
  external: [/^@huggingface\//, /^@webgpu\//],
  plugins: [dts({ respectExternal: false })],
};
