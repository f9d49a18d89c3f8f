import { defineConfig } from 'vite';

// Library build: ESM only. WGSL sources are inlined through `?raw` imports;
// Node-only modules stay external so the browser bundle never pulls them in.
export default defineConfig({
  build: {
    target: 'es2022',
    outDir: 'dist',
    emptyOutDir: true,
    sourcemap: true,
    minify: false,
    lib: {
      entry: { index: 'src/index.ts', cli: 'src/cli.ts' },
      formats: ['es'],
    },
    rolldownOptions: {
      external: ['webgpu', /^node:/],
    },
  },
});
