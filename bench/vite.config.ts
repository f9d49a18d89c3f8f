import { defineConfig } from 'vite';

// The benchmark is a Node program: built (so `?raw` WGSL imports resolve the
// same way as in the library) into bench/dist/run.js and run with node.
export default defineConfig({
  build: {
    ssr: 'bench/run.ts',
    outDir: 'bench/dist',
    emptyOutDir: true,
    target: 'node20',
    minify: false,
    rolldownOptions: { external: ['webgpu', 'vite', 'playwright-core', 'onnxruntime-web', '@huggingface/transformers', /^node:/], output: { entryFileNames: 'run.js' } },
  },
});
