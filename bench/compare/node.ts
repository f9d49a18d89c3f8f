// The comparison in Node: the terminal as its sink, and its reports written
// to bench/results/ (or --out): <date>-<adapter>.json with every sample, the
// Markdown summary beside it, and the three SVG charts.

import { execFileSync } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { join } from 'node:path';
import type { Gpu } from '../../src/runtime/gpu';
import type { BenchOptions } from '../harness';
import { ARCHS, type Arch } from './presets';
import { runCompare, type CompareOptions } from './runner';
import { charts, markdown, type RunMeta } from './report';

// bench/dist/run.js -> the project root
const root = fileURLToPath(new URL('../../', import.meta.url));

function meta(gpu: Gpu): RunMeta {
  const version = (dir: string) => {
    try {
      return (JSON.parse(readFileSync(join(root, dir, 'package.json'), 'utf8')) as { version: string }).version;
    } catch {
      return 'unknown';
    }
  };
  let commit: string | null = null;
  try {
    commit = execFileSync('git', ['rev-parse', 'HEAD'], { cwd: root, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim() || null;
  } catch {
    commit = null; // not a clone (the GPU kit): no commit to name
  }
  return {
    date: new Date().toISOString(),
    adapter: gpu.report.adapter,
    software: gpu.report.software,
    host: `Node ${process.version} (${gpu.report.backend})`,
    versions: { tessera: version('.'), webgpu: version('node_modules/webgpu') },
    commit,
  };
}

export async function compareSuite(gpu: Gpu, bench: BenchOptions): Promise<void> {
  const preset = bench.preset ?? '135m';
  const tiny = preset === 'tiny';
  const opts: CompareOptions = {
    preset,
    archs: (bench.archs ?? [...ARCHS]) as Arch[],
    prompts: bench.prompts ?? (bench.quick || tiny ? [128, 512] : [128, 512, 2048, 8192]),
    contexts: bench.contexts ?? (bench.quick || tiny ? [128, 2048] : [128, 2048, 8192, 32768]),
    repeats: bench.repeats ?? 2,
    decodeSteps: bench.quick ? 4 : 16,
    layers: bench.layers ?? (bench.quick && !tiny ? 4 : undefined),
    profile: bench.profile,
    bundled: (name) => join(root, 'models', name),
  };
  // The peer: onnxruntime-web's WASM execution provider (its WebGPU one needs a browser: npm run bench:browser).
  const eps = (bench.peer ?? ['wasm']).filter((ep) => ep !== 'none');
  if (eps.some((ep) => ep !== 'wasm')) throw new Error(`bench: in Node the peer runs on onnxruntime-web's wasm execution provider only (--peer wasm|none); webgpu needs the browser (npm run bench:browser)`);
  if (eps.length) {
    try {
      opts.peer = { ort: await import('onnxruntime-web'), eps: ['wasm'] };
    } catch (e) {
      console.log(`The peer is left out: onnxruntime-web could not be loaded (${(e as Error).message.split('\n')[0]}).\n`);
    }
  }
  const m = meta(gpu);
  const results = await runCompare(gpu, opts, {
    progress: (p) => process.stderr.write(`\r\x1b[K[${p.done}/${p.total}] ${p.stage}; ${(p.elapsedMs / 1000).toFixed(0)} s${p.etaMs !== null ? `, about ${(p.etaMs / 1000).toFixed(0)} s left` : ''}`),
    note: (text) => process.stderr.write(`\r\x1b[K${text}\n`),
  });
  process.stderr.write('\r\x1b[K');
  const out = bench.out ?? join(root, 'bench', 'results');
  mkdirSync(out, { recursive: true });
  const slug = m.adapter.toLowerCase().replace(/[^a-z0-9]+/g, '-').replace(/^-|-$/g, '').slice(0, 40);
  const stem = `${m.date.slice(0, 10)}-${preset}-${slug}`;
  const svgs = charts(results);
  const files: Record<string, string> = {};
  for (const [name, svg] of Object.entries(svgs)) {
    files[name] = `${stem}-${name}.svg`;
    writeFileSync(join(out, files[name]), svg);
  }
  writeFileSync(join(out, `${stem}.json`), JSON.stringify({ meta: m, ...results }, null, 1));
  const md = markdown(results, m, files);
  writeFileSync(join(out, `${stem}.md`), md);
  console.log(md);
  console.log(`Reports: ${join(out, stem)}.{json,md} and ${Object.values(files).join(', ')}`);
}
