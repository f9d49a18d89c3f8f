import { defineConfig } from 'vite';
import pkg from './package.json' with { type: 'json' };

// Library build: ESM only. Three entries: index (browsers and bundlers: no
// Node module anywhere in its graph), node (index plus Dawn and folder
// reading, taken under the "node" export condition) and cli. WGSL sources
// are inlined through `?raw` imports; dependencies stay external (the user's
// bundler resolves them). Declarations are bundled by scripts/build.sh.
/**
 * createWorkerEngine()'s default worker is written `new Worker(new URL('./worker.js',
 * import.meta.url))` with a vite-ignore comment, so this build leaves the URL alone
 * (dist/worker.js is its own entry); the comment is dropped from the output, so the
 * app's bundler (Vite, webpack) sees the plain pattern and packs the worker with its
 * dependencies.
 */
const workerUrlForTheAppBundler = {
  name: 'worker-url-for-the-app-bundler',
  renderChunk(code: string) {
    // Only the comment goes: lines stay where the source map puts them.
    return { code: code.replace(/\/\*\s*@vite-ignore\s*\*\/(\s*"\.\/worker\.js")/g, '$1'), map: null };
  },
};

export default defineConfig({
  plugins: [workerUrlForTheAppBundler],
  build: {
    target: 'es2022',
    outDir: 'dist',
    emptyOutDir: true,
    sourcemap: true,
    minify: false,
    lib: {
      entry: { index: 'src/index.ts', node: 'src/node.ts', cli: 'src/cli.ts', worker: 'src/worker.ts' },
      formats: ['es'],
    },
    rolldownOptions: {
      external: [...Object.keys(pkg.dependencies), ...Object.keys(pkg.peerDependencies), /^node:/],
    },
  },
});
