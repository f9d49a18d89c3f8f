// The GPU kit (scripts/gpu-check.sh), checked here on this machine's adapter:
// the working tree as the device tool sends it (tracked and not-ignored files)
// is copied to a fresh folder, the kit is packed into it (--local: no Node
// binary, no Vulkan loader), and its run half goes through every phase on a
// tiny selection. Every output file must be there and parse.

import { execFile } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, expect, it } from 'vitest';
import { describeGpu } from '../helpers/gpu';

const root = join(__dirname, '..', '..');
const sh = (args: string[], env: Record<string, string> = {}) =>
  promisify(execFile)('bash', args, { cwd: root, env: { ...process.env, ...env }, timeout: 300_000, maxBuffer: 64 << 20 }).then(
    (r) => ({ code: 0, out: r.stdout + r.stderr }),
    (e: { code?: number; stdout?: string; stderr?: string }) => ({ code: e.code ?? -1, out: `${e.stdout ?? ''}${e.stderr ?? ''}` }),
  );

interface BenchFile { report: { adapter: string; software: boolean; features: { shaderF16: boolean }; precisionReason: string }; tables: { title: string; rows: Record<string, string | number>[] }[] }

describeGpu('the GPU kit, run here on a tiny selection', () => {
  const work = mkdtempSync(join(tmpdir(), 'tessera-gpu-kit-'));
  afterAll(() => rmSync(work, { recursive: true, force: true }));

  it('packs, then runs every phase, writing each result file as it goes', async () => {
    const repo = join(work, 'repo');
    const files = (await promisify(execFile)('git', ['ls-files', '-co', '--exclude-standard', '-z'], { cwd: root })).stdout.split('\0').filter(Boolean);
    for (const f of files) {
      if (!existsSync(join(root, f))) continue; // deleted, not yet committed
      mkdirSync(dirname(join(repo, f)), { recursive: true });
      cpSync(join(root, f), join(repo, f));
    }
    const kit = join(repo, '.gpu-kit');
    const packed = await sh(['scripts/gpu-check.sh', 'pack', '--local', '--kit', kit]);
    expect(packed.code, packed.out).toBe(0);
    expect(packed.out).toMatch(/GPU kit in .*: [\d.]+ MiB/);
    expect(existsSync(join(kit, 'node.xz'))).toBe(false); // --local: this machine's Node

    const out = join(work, 'out');
    const run = await sh([join(kit, 'gpu-check.sh'), 'run', '--local', '--tiny'], { OUT: out });
    expect(run.code, run.out).toBe(0);

    const summary = JSON.parse(readFileSync(join(out, 'summary.json'), 'utf8')) as { phase: string; exit: number }[];
    expect(summary.map((p) => [p.phase, p.exit])).toEqual([['adapter', 0], ['tests', 0], ['kernels', 0], ['attention', 0], ['compare', 0], ['retention', 0], ['f16', 0]]);
    const read = (name: string) => JSON.parse(readFileSync(join(out, name), 'utf8')) as BenchFile;
    const adapter = read('adapter.json');
    expect(adapter.report.adapter.length).toBeGreaterThan(0);
    expect(adapter.tables.map((t) => t.title)).toEqual(['adapter', 'features', 'limits', 'ceilings']);
    expect(adapter.tables[2].rows.find((r) => r.limit === 'maxStorageBufferBindingSize')?.value).toBeGreaterThan(0);
    expect(adapter.tables[3].rows.map((r) => r.unit)).toEqual(['GFLOP/s', 'GB/s']);
    for (const r of adapter.tables[3].rows) expect(r.value, String(r.ceiling)).toBeGreaterThan(0);
    const tests = JSON.parse(readFileSync(join(out, 'tests.json'), 'utf8')) as { success: boolean; numPassedTests: number; numFailedTests: number };
    expect(tests.success).toBe(true);
    expect(tests.numPassedTests).toBeGreaterThan(5);
    expect(tests.numFailedTests).toBe(0);
    const kernels = read('bench-kernels.json');
    const titles = kernels.tables.map((t) => t.title).join('\n');
    expect(titles).toMatch(/4-bit linear kernels/);
    expect(titles).toMatch(/fastest matvec tuning per layer on .* \(for src\/kernels\/tunings\.ts, class \w+\)/);
    // The comparisons (f32, then f16): bundled models side by side, each JSON report in its folder.
    for (const [dir, archs] of [['compare', ['transformer', 'mamba']], ['compare-f16', ['transformer']]] as const) {
      const report = readdirSync(join(out, dir)).find((f) => f.endsWith('.json'))!;
      const compared = JSON.parse(readFileSync(join(out, dir, report), 'utf8')) as { models: { arch: string }[]; samples: { tokensPerSecond: number }[] };
      expect(compared.models.map((m) => m.arch), dir).toEqual(archs);
      expect(compared.samples.length, dir).toBeGreaterThan(0);
      for (const s of compared.samples) expect(s.tokensPerSecond, dir).toBeGreaterThan(0);
    }
    // Attention: both forms timed at each context asked for (16: one chunk; 160: two, merged),
    // decode in one table, a prefill chunk in the other.
    const [decodeAttention, prefillAttention] = read('bench-attention.json').tables;
    expect(decodeAttention.title).toMatch(/^decode attention/);
    expect(prefillAttention.title).toMatch(/^prefill attention/);
    expect(decodeAttention.rows.map((r) => r.context)).toEqual([16, 160]);
    for (const r of decodeAttention.rows) for (const c of ['workgroup µs', 'thread µs']) expect(r[c], c).toBeGreaterThan(0);
    expect(prefillAttention.rows.map((r) => [r.context, r.queries])).toEqual([[16, 16], [160, 128]]);
    for (const r of prefillAttention.rows) for (const c of ['workgroup ms', 'thread ms']) expect(r[c], c).toBeGreaterThan(0);
    // The retention kernels: both forms timed at each length asked for.
    const retention = read('bench-retention.json').tables.flatMap((t) => t.rows);
    expect(retention.map((r) => r.T)).toEqual([32, 64]);
    for (const r of retention) for (const c of ['parallel ms', 'chunkwise ms']) expect(r[c], c).toBeGreaterThan(0);
    const log = readFileSync(join(out, 'run.log'), 'utf8');
    expect(log).toMatch(/== adapter[\s\S]*== tests[\s\S]*== kernels[\s\S]*== attention[\s\S]*== compare[\s\S]*== retention[\s\S]*Crossover: [\s\S]*RETNET_PARALLEL_MAX_T is \d+[\s\S]*== f16[\s\S]*gpu-check: done/);
    // Without shader-f16 the f16 run says it ran in f32, and why.
    const f16 = read('bench-compare-f16.json');
    if (!f16.report.features.shaderF16) expect(f16.report.precisionReason).toBe('f32: preferF16 was asked for, but the adapter lacks shader-f16');
  }, 300_000); // every phase: the tests, and each benchmark suite on a tiny selection
});
