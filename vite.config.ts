import { defineConfig } from 'vite';
import pkg from './package.json' with { type: 'json' };

// Library build: ESM only. Three entries: index (browsers and bundlers: no
// Node module anywhere in its graph), node (index plus Dawn and folder
// reading, taken under the "node" export condition) and cli. WGSL sources
// are inlined through `?raw` imports; dependencies stay external (the user's
// bundler resolves them). Declarations are bundled by scripts/build.sh.
export default defineConfig({
  build: {
    target: 'es2022',
    outDir: 'dist',
    emptyOutDir: true,
    sourcemap: true,
    minify: false,
    lib: {
      entry: { index: 'src/index.ts', node: 'src/node.ts', cli: 'src/cli.ts' },
      formats: ['es'],
    },
    rolldownOptions: {
      external: [...Object.keys(pkg.dependencies), ...Object.keys(pkg.peerDependencies), /^node:/],
    },
  },
});
