// The command line, run for real: the built bin/tessera.js in a child process
// on a fixture checkpoint written to a folder.

import { beforeAll, expect, it } from 'vitest';
import { execFile } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { describeGpu } from '../helpers/gpu';
import { tinyTransformer } from '../helpers/checkpoints';

const run = promisify(execFile);
const root = join(__dirname, '..', '..');

function tessera(args: string[]) {
  return run('node', [join(root, 'bin', 'tessera.js'), ...args], { cwd: root, timeout: 120_000 }).then(
    (r) => ({ code: 0, ...r }),
    (e: { code: number; stdout: string; stderr: string }) => ({ code: e.code, stdout: e.stdout, stderr: e.stderr }),
  );
}

describeGpu('tessera CLI', () => {
  let dir = '';
  beforeAll(async () => {
    await run('npx', ['vite', 'build', '--logLevel', 'error'], { cwd: root, timeout: 120_000 }); // dist/cli.js, as `npm run build` makes it
    dir = mkdtempSync(join(tmpdir(), 'tessera-cli-'));
    for (const [name, bytes] of Object.entries(tinyTransformer({ seed: 2 }).files)) writeFileSync(join(dir, name), bytes);
  });

  it('generate streams text to stdout and stats to stderr; the same seed gives the same text', async () => {
    const args = ['generate', dir, '--prompt', 'the cat', '--max-new-tokens', '6', '--temperature', '0.9', '--seed', '4'];
    const a = await tessera(args);
    expect(a.code, a.stderr).toBe(0);
    expect(a.stderr).toMatch(/llama: 2 layers, .* MiB of q4 weights \(q8 embeddings\)/);
    expect(a.stderr).toMatch(/prompt \d+ tokens, generated \d+ \((length|eos)\); time to first token \d+ ms, prefill [\d.]+ tok\/s, decode [\d.]+ tok\/s/);
    const b = await tessera(args);
    expect(b.stdout).toBe(a.stdout);
  });

  it('score prints the perplexity of a text file', async () => {
    const text = join(dir, 'text.txt');
    writeFileSync(text, 'the quick brown fox jumps over the lazy dog');
    const r = await tessera(['score', dir, '--text', text, '--weights', 'f32']);
    expect(r.code, r.stderr).toBe(0);
    const ppl = Number(/perplexity ([\d.]+) over (\d+) predicted tokens/.exec(r.stdout)?.[1]);
    // Random weights: the perplexity is finite and above 1.
    expect(ppl).toBeGreaterThan(1);
    expect(Number.isFinite(ppl)).toBe(true);
  });

  it('bad usage and a missing model folder exit 1 with a clear message', async () => {
    const r = await tessera(['generate', dir]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/generate needs --prompt/);
    const m = await tessera(['generate', join(dir, 'nope'), '--prompt', 'x']);
    expect(m.code).toBe(1);
    expect(m.stderr).toMatch(/tessera: .*config\.json/);
    const e = await tessera(['generate', dir, '--prompt', 'x', '--embeddings', 'q2']);
    expect(e.code).toBe(1);
    expect(e.stderr).toMatch(/--embeddings must be q8, q4 or f32, got 'q2'/);
  });
});
