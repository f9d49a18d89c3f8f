// The command line, run for real: the built bin/tessera-llm.js in a child process
// on a fixture checkpoint written to a folder. The package is built into a
// temporary folder (helpers/cli.ts), so the project's dist/ is left as it was.

import { afterAll, beforeAll, expect, it } from 'vitest';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describeGpu } from '../helpers/gpu';
import { tinyTransformer } from '../helpers/checkpoints';
import { fingerprint, root, stageCli, type StagedCli } from '../helpers/cli';

const noStack = /^\s+at /m;

describeGpu('tessera CLI', () => {
  const distBefore = fingerprint(join(root, 'dist'));
  let cli: StagedCli;
  let dir = '';
  beforeAll(async () => {
    cli = await stageCli();
    dir = mkdtempSync(join(tmpdir(), 'tessera-cli-'));
    for (const [name, bytes] of Object.entries(tinyTransformer({ seed: 2 }).files)) writeFileSync(join(dir, name), bytes);
  });
  afterAll(() => {
    cli?.dispose();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('generate streams text to stdout and stats to stderr; the same seed gives the same text, with --flag=value too', async () => {
    const a = await cli.run(['generate', dir, '--prompt', 'the cat', '--max-new-tokens', '6', '--temperature', '0.9', '--seed', '4']);
    expect(a.code, a.stderr).toBe(0);
    expect(a.stderr).toMatch(/llama: 2 layers, .* MiB of q4 weights \(q8 embeddings\), f32 activations, on /);
    expect(a.stderr).toMatch(/prompt \d+ tokens, generated \d+ \((length|eos)\); time to first token \d+ ms, prefill [\d.]+ tok\/s, decode [\d.]+ tok\/s/);
    const b = await cli.run(['generate', '--prompt=the cat', '--max-new-tokens=6', dir, '--temperature=0.9', '--seed=4', '--prefill-chunk=2', '--f16']);
    expect(b.code, b.stderr).toBe(0);
    // --f16 says what it got and why: f16 where the adapter has shader-f16, else f32 (and the same text).
    if (/lacks shader-f16/.test(b.stderr)) {
      expect(b.stderr).toMatch(/f32 activations \(f32: preferF16 was asked for, but the adapter lacks shader-f16\), on /);
      expect(b.stdout).toBe(a.stdout);
    } else expect(b.stderr).toMatch(/f16 activations \(f16: preferF16 was asked for and the adapter has shader-f16/);
  });

  it('score prints the perplexity of a text file', async () => {
    const text = join(dir, 'text.txt');
    writeFileSync(text, 'the quick brown fox jumps over the lazy dog');
    const r = await cli.run(['score', dir, '--text', text, '--weights', 'f32']);
    expect(r.code, r.stderr).toBe(0);
    const ppl = Number(/perplexity ([\d.]+) over (\d+) predicted tokens/.exec(r.stdout)?.[1]);
    // Random weights: the perplexity is finite and above 1.
    expect(ppl).toBeGreaterThan(1);
    expect(Number.isFinite(ppl)).toBe(true);
  });

  it('a usage error exits 2 with the message and the usage; a model that fails to load exits 1 with only the message', async () => {
    const [usage, load, none] = await Promise.all([
      cli.run(['generate', dir]),
      cli.run(['generate', join(dir, 'nope'), '--prompt', 'x']),
      cli.run([]),
    ]);
    expect(usage.code).toBe(2);
    expect(usage.stderr).toMatch(/^tessera-llm: generate needs --prompt TEXT\n\nusage:\n/);
    expect(usage.stderr).toMatch(/exit codes:\n {2}0 .*\n {2}1 .*\n {2}2 .*\n {2}130 /);
    expect(load.code).toBe(1);
    expect(load.stderr).toMatch(/^tessera-llm: .*config\.json.*\n$/);
    expect(load.stderr).not.toMatch(/usage:|^\s+at /m);
    expect(none.code).toBe(2);
    expect(none.stderr).toMatch(/^usage:\n/);
    expect(none.stdout).toBe('');
  });

  it('an unknown flag is an error naming it, with the flag it is near', async () => {
    const cases: [string[], RegExp][] = [
      [['--max_new_tokens', '5'], /^tessera-llm: unknown flag '--max_new_tokens' \(did you mean --max-new-tokens\?\)\n\nusage:/],
      [['--temprature', '0.5'], /unknown flag '--temprature' \(did you mean --temperature\?\)/],
      [['--Seed=3'], /unknown flag '--Seed' \(did you mean --seed\?\)/],
      [['--bogus'], /unknown flag '--bogus'\n/],
      [['--text', 'f.txt'], /--text is a flag of score, not of generate/],
    ];
    const runs = await Promise.all(cases.map(([flags]) => cli.run(['generate', dir, '--prompt', 'x', ...flags])));
    runs.forEach((r, i) => {
      expect(r.code, r.stderr).toBe(2);
      expect(r.stderr).toMatch(cases[i][1]);
      expect(r.stderr).not.toMatch(/loading/);
    });
    const cmd = await cli.run(['generat', dir, '--prompt', 'x']);
    expect(cmd.code).toBe(2);
    expect(cmd.stderr).toMatch(/unknown command 'generat' \(did you mean generate\?\)/);
  });

  it('a repeated flag is an error, in either form', async () => {
    const r = await cli.run(['generate', dir, '--prompt', 'x', '--seed', '1', '--seed=2']);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/^tessera-llm: --seed is given twice\n/);
  });

  it('--help, -h and `tessera-llm help` print the usage to stdout and exit 0, wherever the flag stands', async () => {
    const runs = await Promise.all([['--help'], ['-h'], ['help'], ['generate', dir, '--bogus', '--help'], ['score', '-h']].map((a) => cli.run(a)));
    for (const r of runs) {
      expect(r.code, r.stderr).toBe(0);
      expect(r.stderr).toBe('');
      expect(r.stdout).toMatch(/^usage:\n {2}tessera-llm generate \[<model>\] --prompt TEXT/);
      expect(r.stdout).toMatch(/--prefill-chunk N/);
    }
  });

  it('--version prints the package version', async () => {
    const r = await cli.run(['--version']);
    expect(r.code).toBe(0);
    expect(r.stdout).toBe(`${JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')).version}\n`);
  });

  it('a bad value is refused before the model loads, naming the flag (the model folder does not even exist)', async () => {
    const missing = join(dir, 'no-such-model');
    const cases: [string[], RegExp][] = [
      [['--top-p', '1.5'], /--top-p must be a number in \(0, 1\], got 1\.5/],
      [['--temperature', '-1'], /--temperature must be a finite number >= 0, got -1/],
      [['--max-new-tokens', '1e3'], /--max-new-tokens must be a decimal number, got '1e3'/],
      [['--max-new-tokens', '12abc'], /--max-new-tokens must be a decimal number, got '12abc'/],
      [['--top-k', '0x10'], /--top-k must be a decimal number, got '0x10'/],
      [['--max-new-tokens', '2.5'], /--max-new-tokens must be a positive integer, got 2\.5/],
      [['--seed', '4294967296'], /--seed must be an integer in \[0, 2\^32\), got 4294967296/],
      [['--max-context', '0'], /--max-context must be a positive integer, got 0/],
      [['--prefill-chunk='], /--prefill-chunk must be a decimal number, got ''/],
      [['--embeddings', 'q2'], /--embeddings must be 'q8', 'q4' or 'f32', got "q2"/],
      [['--chat=yes'], /--chat takes no value/],
      [['--seed'], /--seed needs a value/],
    ];
    const runs = await Promise.all(cases.map(([flags]) => cli.run(['generate', missing, '--prompt', 'x', ...flags])));
    runs.forEach((r, i) => {
      expect(r.code, r.stderr).toBe(2);
      expect(r.stderr).toMatch(new RegExp(`^tessera-llm: ${cases[i][1].source}\\n\\nusage:`));
      expect(r.stderr).not.toMatch(/loading/);
    });
    const text = await cli.run(['score', missing, '--text', join(dir, 'no-such-text.txt')]);
    expect(text.code).toBe(2);
    expect(text.stderr).toMatch(/^tessera-llm: --text .*no-such-text\.txt: ENOENT/);
    expect(text.stderr).not.toMatch(/loading/);
  });

  it('stdout closed early (| head) stops generation and exits 0, with nothing on stderr after the model line', async () => {
    // Left alone, these arguments generate all 500 tokens (no eos): about 50 s on a loaded SwiftShader machine.
    const child = cli.spawn(['generate', dir, '--prompt', 'the cat', '--max-new-tokens', '500', '--temperature', '0.8', '--seed', '1']);
    let stderr = '';
    child.stderr!.on('data', (d: Buffer) => (stderr += d));
    const exited = new Promise<number | null>((resolve) => child.on('exit', resolve));
    await new Promise((resolve) => child.stdout!.once('data', resolve));
    child.stdout!.destroy(); // what `head -c 5` does once it has its bytes
    const closed = performance.now();
    const code = await exited;
    expect(code, stderr).toBe(0);
    // Generation stopped at the next token rather than running on to the end.
    expect(performance.now() - closed).toBeLessThan(10_000);
    // The load's progress and the model line came before generation; nothing may follow them (no statistics, message or stack).
    expect(stderr).toMatch(/^(\rloading \d+%)*\rllama: [^\n]*\n$/);
  });

  it('Ctrl-C during generation stops it and exits 130', async () => {
    const child = cli.spawn(['generate', dir, '--prompt', 'the cat', '--max-new-tokens', '500', '--temperature', '0.8', '--seed', '1']);
    let stderr = '';
    child.stderr!.on('data', (d: Buffer) => (stderr += d));
    const exited = new Promise<number | null>((resolve) => child.on('exit', resolve));
    await new Promise((resolve) => child.stdout!.once('data', resolve));
    child.kill('SIGINT');
    const code = await exited;
    expect(code, stderr).toBe(130);
    expect(stderr).not.toMatch(noStack);
    expect(stderr).not.toMatch(/prompt \d+ tokens/);
  });

  it('with no model, generate runs the bundled transformer on a default prompt; --model picks each bundled model; a wrong name lists them', async () => {
    const runs = await Promise.all([
      cli.run(['generate', '--max-new-tokens', '24']),
      ...['mamba', 'retnet', 'moe'].map((name) => cli.run(['generate', '--model', name, '--prompt', 'KING', '--max-new-tokens', '16'])),
      cli.run(['generate', 'bundled:retnet', '--prompt', 'KING', '--max-new-tokens', '4']),
    ]);
    for (const [r, type] of runs.map((r, i) => [r, ['llama', 'mamba', 'retnet', 'mixtral', 'retnet'][i]] as const)) {
      expect(r.code, r.stderr).toBe(0);
      expect(r.stderr).toMatch(new RegExp(`^${type}: \\d+ layers, `, 'm'));
      expect(r.stderr).toMatch(/decode [\d.]+ tok\/s/);
      expect(r.stdout.length, r.stdout).toBeGreaterThan(1); // characters, and the final newline
    }
    const bad: [string[], RegExp][] = [
      [['generate', '--model', 'gpt2'], /^tessera-llm: unknown --model "gpt2": the bundled models are transformer, mamba, retnet, moe\n/],
      [['generate', 'bundled:nope', '--prompt', 'x'], /^tessera-llm: unknown model "nope": the bundled models are transformer, mamba, retnet, moe\n/],
      [['generate', dir, '--model', 'mamba', '--prompt', 'x'], /^tessera-llm: give the model once: '.*' or --model mamba\n/],
      [['score', '--model', 'moe', '--text', 'x.txt', '--window', '1e3'], /^tessera-llm: --window must be a whole number of tokens, at least 2; got '1e3'\n/],
      [['generate', dir], /^tessera-llm: generate needs --prompt TEXT\n/], // a checkpoint folder has no default prompt
    ];
    const refused = await Promise.all(bad.map(([args]) => cli.run(args)));
    refused.forEach((r, i) => {
      expect(r.code, r.stderr).toBe(2);
      expect(r.stderr).toMatch(bad[i][1]);
    });
  });

  it("score, in the training windows, gives each bundled model's loss on its golden validation window as PyTorch computed it (within 1%)", async () => {
    const names = ['transformer', 'mamba', 'retnet', 'moe'];
    const golden = names.map((name) => JSON.parse(readFileSync(join(root, 'models', name, 'golden.json'), 'utf8')) as { window: { start: number; length: number; loss: number } });
    const text = readFileSync(join(root, 'data', 'tinyshakespeare.txt'), 'utf8');
    const heldOut = text.slice(Math.floor(text.length * 0.9));
    const runs = await Promise.all(names.map((name, i) => {
      // The window's characters: one token each in the bundled character-level vocabulary.
      const file = join(dir, `window-${name}.txt`);
      writeFileSync(file, heldOut.slice(golden[i].window.start, golden[i].window.start + golden[i].window.length));
      return cli.run(['score', '--model', name, '--text', file, '--window', '128', '--weights', 'f32', '--embeddings', 'f32']);
    }));
    runs.forEach((r, i) => {
      expect(r.code, r.stderr).toBe(0);
      expect(r.stdout).toMatch(/over 127 predicted tokens/);
      const loss = Number(/loss ([\d.]+) nats per token/.exec(r.stdout)?.[1]);
      expect(Math.abs(loss - golden[i].window.loss) / golden[i].window.loss, `${names[i]}: ${loss} vs ${golden[i].window.loss}`).toBeLessThan(0.01);
    });
  });

  it('leaves dist/ as it was', () => {
    expect(fingerprint(join(root, 'dist'))).toBe(distBefore);
  });
});
