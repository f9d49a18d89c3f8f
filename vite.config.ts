import { defineConfig } from 'vite';
import pkg from './package.json' with { type: 'json' };

// Library build: ESM only. WGSL sources are inlined through `?raw` imports;
// dependencies stay external (the user's bundler resolves them), and Node-only
// modules are never pulled into a browser bundle.
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
      external: [...Object.keys(pkg.dependencies), /^node:/],
    },
  },
});
