// npm run bench -- --suite <name> [--quick]
// Prints Markdown tables (adapter first) to paste into bench/RESULTS.md.

import { Gpu } from '../src/runtime/gpu';
import { kernelsSuite } from './suites/kernels';
import { transformerSuite } from './suites/transformer';
import { mambaSuite } from './suites/mamba';
import type { BenchOptions } from './harness';

const suites: Record<string, (gpu: Gpu, opts: BenchOptions) => Promise<void>> = {
  kernels: kernelsSuite,
  transformer: transformerSuite,
  mamba: mambaSuite,
};

function parseArgs(argv: string[]): { suite: string; quick: boolean } {
  let suite = '';
  let quick = false;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--quick') quick = true;
    else if (a === '--suite') suite = argv[++i] ?? '';
    else if (a.startsWith('--suite=')) suite = a.slice(8);
    else throw new Error(`bench: unknown argument '${a}' (use --suite ${Object.keys(suites).join('|')} [--quick])`);
  }
  if (!suites[suite]) throw new Error(`bench: --suite must be one of ${Object.keys(suites).join(', ')}; got '${suite}'`);
  return { suite, quick };
}

async function main() {
  const { suite, quick } = parseArgs(process.argv.slice(2));
  const gpu = await Gpu.create();
  const r = gpu.report;
  console.log(`## ${suite}${quick ? ' (quick)' : ''}\n`);
  console.log(`Adapter: ${r.adapter} (${r.backend}${r.software ? ', software: timings are CPU figures, compare ratios only' : ''}); ${r.driverNote}`);
  console.log(`Features: shader-f16 ${r.features.shaderF16}, subgroups ${r.features.subgroups}, timestamp-query ${r.features.timestampQuery}; ${r.precisionReason}`);
  console.log(`Date: ${new Date().toISOString().slice(0, 10)}\n`);
  try {
    await suites[suite](gpu, { quick });
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
