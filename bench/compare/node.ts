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
import { PEER_COLUMNS, type PeerColumn } from './peer';
import type { TjsModule } from '../peer/tjs_runner';
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
    layers: bench.layers ?? (bench.quick && !tiny && !bench.depth ? 4 : undefined),
    depth: bench.depth,
    profile: bench.profile,
    bundled: (name) => join(root, 'models', name),
  };
  // The peers: onnxruntime-web's WASM execution provider, and transformers.js
  // on onnxruntime-node's CPU (their WebGPU columns need the browser: npm run bench:browser).
  const columns = (bench.peer ?? ['wasm', 'transformers-cpu']).filter((c) => c !== 'none');
  const nodeColumns = ['wasm', 'transformers-cpu'];
  const other = columns.find((c) => !nodeColumns.includes(c));
  if (other) throw new Error(`bench: --peer ${other}: in Node the peers are ${nodeColumns.join(', ')} (or none); ${PEER_COLUMNS.filter((c) => !nodeColumns.includes(c)).join(', ')} run in the browser (npm run bench:browser)`);
  if (columns.length) {
    const peer: NonNullable<CompareOptions['peer']> = { columns: [] };
    const load = async <T>(name: string, importer: () => Promise<T>): Promise<T | undefined> => {
      try {
        return await importer();
      } catch (e) {
        console.log(`A peer is left out: ${name} could not be loaded (${(e as Error).message.split('\n')[0]}).\n`);
        return undefined;
      }
    };
    if (columns.includes('wasm')) peer.ort = await load('onnxruntime-web', () => import('onnxruntime-web'));
    if (columns.includes('transformers-cpu')) peer.transformers = (await load('transformers.js', () => import('@huggingface/transformers'))) as TjsModule | undefined;
    peer.columns = columns.filter((c) => (c === 'wasm' ? peer.ort : peer.transformers)) as PeerColumn[];
    if (peer.columns.length) opts.peer = peer;
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
