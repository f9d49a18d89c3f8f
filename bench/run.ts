// npm run bench [-- --suite <name>] [--preset 135m|tiny] [--quick] [--sweep] [--f16]
// Prints Markdown tables (adapter first) to paste into bench/RESULTS.md. Without
// --suite it runs the comparison of the architectures (compare/), which also
// writes its reports under bench/results/.

import '../src/node'; // a Node program: Dawn for WebGPU
import { Gpu } from '../src/runtime/gpu';
import { writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { adapterSuite } from './suites/adapter';
import { kernelsSuite } from './suites/kernels';
import { attentionSuite } from './suites/attention';
import { retentionSuite } from './suites/retention';
import { moeSuite } from './suites/moe';
import { bundledSuite } from './suites/bundled';
import { compareSuite } from './compare/node';
import { setTableSink, type BenchOptions, type Row } from './harness';

const suites: Record<string, (gpu: Gpu, opts: BenchOptions) => Promise<void>> = {
  adapter: adapterSuite,
  kernels: kernelsSuite,
  attention: attentionSuite,
  retention: retentionSuite,
  moe: moeSuite,
  bundled: bundledSuite,
  compare: compareSuite,
};

function parseArgs(argv: string[]): { suite: string; opts: BenchOptions; json: string | null; f16: boolean; browser: boolean } {
  let suite = 'compare';
  let f16 = false;
  let browser = false;
  let json: string | null = null;
  const opts: BenchOptions = { quick: false };
  const list = (v: string | undefined, flag: string) => {
    const xs = (v ?? '').split(',').map(Number);
    if (!xs.length || !xs.every((x) => Number.isInteger(x) && x > 0)) throw new Error(`bench: ${flag} takes positive integers separated by commas, got '${v}'`);
    return xs;
  };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--quick') opts.quick = true;
    else if (a === '--f16') f16 = true;
    else if (a === '--browser') browser = true;
    else if (a === '--profile') opts.profile = true;
    else if (a === '--peer') opts.peer = (argv[++i] ?? '').split(',');
    else if (a === '--sweep') opts.sweep = true;
    else if (a.startsWith('--sweep=')) {
      opts.sweep = a.slice(8).split(',').map((t) => {
        const m = /^(\d+)x(\d+)$/.exec(t);
        if (!m) throw new Error(`bench: --sweep= takes tunings WGxTPR separated by commas (64x1,64x8), got '${t}'`);
        return { WG: Number(m[1]), TPR: Number(m[2]) };
      });
    }
    else if (a === '--vocab') opts.vocab = list(argv[++i], a)[0];
    else if (a === '--suite') suite = argv[++i] ?? '';
    else if (a.startsWith('--suite=')) suite = a.slice(8);
    else if (a === '--layers') opts.layers = list(argv[++i], a)[0];
    else if (a === '--depth') {
      const v = argv[++i] ?? '';
      const m = /^1\/(\d+)$/.exec(v);
      opts.depth = m ? 1 / Number(m[1]) : Number(v);
      if (!(opts.depth > 0 && opts.depth <= 1)) throw new Error(`bench: --depth takes a fraction of each preset's layers in (0, 1], as 0.2 or 1/6, got '${v}'`);
    }
    else if (a === '--prompts') opts.prompts = list(argv[++i], a);
    else if (a === '--contexts') opts.contexts = list(argv[++i], a);
    else if (a === '--repeats') opts.repeats = list(argv[++i], a)[0];
    else if (a === '--json') json = argv[++i] ?? '';
    else if (a === '--preset') opts.preset = argv[++i] ?? '';
    else if (a === '--archs') opts.archs = (argv[++i] ?? '').split(',');
    else if (a === '--out') opts.out = argv[++i] ?? '';
    else throw new Error(`bench: unknown argument '${a}' (use [--suite ${Object.keys(suites).join('|')}] [--preset 135m|tiny] [--archs a,b] [--out DIR] [--profile] [--peer COLUMNS|none (webgpu, wasm, transformers-webgpu, transformers-wasm, transformers-cpu)] [--browser] [--quick] [--sweep] [--layers N] [--depth F] [--prompts a,b] [--contexts a,b] [--repeats N] [--vocab N] [--f16] [--json FILE])`);
  }
  if (!suites[suite]) throw new Error(`bench: --suite must be one of ${Object.keys(suites).join(', ')}; got '${suite}'`);
  if (json === '') throw new Error('bench: --json needs a file name');
  if (browser && suite !== 'compare') throw new Error(`bench: --browser runs the comparison (the Bench page), not --suite ${suite}`);
  return { suite, opts, json, f16, browser };
}

async function main() {
  const { suite, opts, json, f16, browser } = parseArgs(process.argv.slice(2));
  if (browser) {
    // The same suite code in headless Chromium; SwiftShader where Dawn finds no GPU here either.
    const probe = await Gpu.create();
    const software = probe.report.software;
    probe.destroy();
    // Imported here: vite and playwright-core are needed only for this (the GPU kit carries neither).
    const { compareInBrowser } = await import('./compare/browser');
    return compareInBrowser(fileURLToPath(new URL('../../', import.meta.url)), opts, software);
  }
  // --f16: f16 activations and KV cache where the adapter has shader-f16 (the header says which ran).
  const gpu = await Gpu.create({ preferF16: f16 });
  const r = gpu.report;
  if (json) {
    // Rewritten after every table, so a run cut short keeps what it measured.
    const record = { suite, args: process.argv.slice(2), date: new Date().toISOString(), report: r, tables: [] as { title: string; rows: Row[] }[] };
    const write = () => writeFileSync(json, JSON.stringify(record, null, 1));
    write();
    setTableSink((title, rows) => {
      record.tables.push({ title, rows });
      write();
    });
  }
  console.log(`## ${suite}${opts.quick ? ' (quick)' : ''} ${process.argv.slice(2).join(' ')}\n`);
  console.log(`Adapter: ${r.adapter} (${r.backend}${r.software ? ', software: timings are CPU figures, compare ratios only' : ''}); ${r.driverNote}`);
  console.log(`Features: shader-f16 ${r.features.shaderF16}, subgroups ${r.features.subgroups}, timestamp-query ${r.features.timestampQuery}; ${r.precisionReason}`);
  console.log(`Date: ${new Date().toISOString().slice(0, 10)}\n`);
  try {
    opts.repeats ??= r.software ? 1 : 2;
    await suites[suite](gpu, opts);
  } finally {
    gpu.destroy();
  }
}

main().then(
  () => process.exit(0),
  (e) => {
    console.error(e instanceof Error ? e.message : e);
    process.exit(1);
  },
);
