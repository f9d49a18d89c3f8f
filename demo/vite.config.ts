import { cpSync, readdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vite';

// The demo as a static site (demo/dist) that works from any folder: relative
// asset URLs, the engine's worker as an ES module, and the bundled models
// copied beside the code, where the worker looks for them (../models/ from
// assets/). bench.html is the benchmark's page (bench/page), without the
// peer. `npm run demo` serves the same pages from the sources.
const root = fileURLToPath(new URL('.', import.meta.url));
const models = fileURLToPath(new URL('../models/', import.meta.url));
const outDir = fileURLToPath(new URL('./dist/', import.meta.url));
let builtTo = outDir;
/** The files a load reads; the goldens and training records stay in the repository. */
const SHIPPED = /^(config|generation_config|tokenizer|tokenizer_config)\.json$|\.safetensors$/;

export default defineConfig({
  root,
  base: './',
  worker: { format: 'es' },
  build: { outDir, emptyOutDir: true, target: 'es2022', rolldownOptions: { input: { index: `${root}index.html`, bench: `${root}bench.html` } } },
  plugins: [
    {
      name: 'bundled-models',
      apply: 'build',
      configResolved(c) {
        builtTo = c.build.outDir; // a test builds elsewhere
      },
      closeBundle() {
        for (const name of readdirSync(models)) {
          cpSync(`${models}${name}`, `${builtTo}/models/${name}`, { recursive: true, filter: (src) => !/\.\w+$/.test(src) || SHIPPED.test(src.split('/').pop()!) });
        }
      },
    },
  ],
});
