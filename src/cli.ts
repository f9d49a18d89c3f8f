// tessera generate <model> --prompt "..." [--max-new-tokens N --temperature T --top-k K --top-p P --seed S --weights q4|f32 --embeddings q8|q4|f32 --max-context N]
// tessera score <model> --text FILE [--weights q4|f32 --embeddings q8|q4|f32]
// Text goes to stdout, progress and stats to stderr.

import { loadModel, type LM } from './lm';

const USAGE = `usage:
  tessera generate <model> --prompt "text" [--max-new-tokens N] [--temperature T] [--top-k K] [--top-p P] [--seed S] [--chat] [--weights q4|f32] [--embeddings q8|q4|f32] [--max-context N]
  tessera score <model> --text FILE [--weights q4|f32] [--embeddings q8|q4|f32] [--max-context N]
<model> is a checkpoint folder (config.json, *.safetensors, tokenizer.json) or its base URL.`;

type Flags = Record<string, string | boolean>;

function parse(argv: string[]): { cmd: string; model: string; flags: Flags } {
  const [cmd, model, ...rest] = argv;
  if (!cmd || !model || cmd.startsWith('-') || model.startsWith('-')) throw new Error(USAGE);
  const flags: Flags = {};
  for (let i = 0; i < rest.length; i++) {
    const a = rest[i];
    if (!a.startsWith('--')) throw new Error(`unexpected argument '${a}'\n${USAGE}`);
    const key = a.slice(2);
    if (key === 'chat') flags.chat = true;
    else {
      const v = rest[++i];
      if (v === undefined) throw new Error(`--${key} needs a value\n${USAGE}`);
      flags[key] = v;
    }
  }
  return { cmd, model, flags };
}

function num(flags: Flags, key: string): number | undefined {
  const v = flags[key];
  if (v === undefined) return undefined;
  const n = Number(v);
  if (typeof v !== 'string' || !Number.isFinite(n)) throw new Error(`--${key} must be a number, got '${String(v)}'`);
  return n;
}

async function open(model: string, flags: Flags): Promise<LM> {
  const weights = (flags.weights as string | undefined) ?? 'q4';
  if (weights !== 'q4' && weights !== 'f32') throw new Error(`--weights must be q4 or f32, got '${weights}'`);
  const embeddings = flags.embeddings as string | undefined;
  if (embeddings !== undefined && embeddings !== 'q8' && embeddings !== 'q4' && embeddings !== 'f32') throw new Error(`--embeddings must be q8, q4 or f32, got '${embeddings}'`);
  let last = -1;
  const lm = await loadModel(model, {
    weights,
    embeddings,
    maxContext: num(flags, 'max-context'),
    onProgress: ({ loadedBytes, totalBytes }) => {
      const pct = Math.floor((100 * loadedBytes) / totalBytes);
      if (pct >= last + 10 || loadedBytes === totalBytes) {
        last = pct;
        process.stderr.write(`\rloading ${pct}%`);
      }
    },
  });
  process.stderr.write(`\r${lm.info.modelType}: ${lm.info.nLayers} layers, ${(lm.info.params.total / 1e6).toFixed(1)}M parameters, ${(lm.info.weightBytes / 2 ** 20).toFixed(1)} MiB of ${lm.info.weights} weights (${lm.info.embeddings} embeddings) on ${lm.model.gpu.report.adapter}\n`);
  return lm;
}

async function generate(model: string, flags: Flags): Promise<void> {
  const prompt = flags.prompt;
  if (typeof prompt !== 'string') throw new Error(`generate needs --prompt\n${USAGE}`);
  const lm = await open(model, flags);
  try {
    const input = flags.chat ? [{ role: 'user', content: prompt }] : prompt;
    for await (const piece of lm.generate(input, {
      maxNewTokens: num(flags, 'max-new-tokens') ?? 128,
      temperature: num(flags, 'temperature') ?? 0,
      topK: num(flags, 'top-k'),
      topP: num(flags, 'top-p'),
      seed: num(flags, 'seed'),
    })) {
      process.stdout.write(piece);
    }
    process.stdout.write('\n');
    const s = lm.stats()!;
    process.stderr.write(
      `prompt ${s.promptTokens} tokens, generated ${s.generatedTokens} (${s.stopReason}); ` +
        `time to first token ${s.timeToFirstTokenMs.toFixed(0)} ms, prefill ${s.prefillTokensPerSecond.toFixed(1)} tok/s, decode ${s.decodeTokensPerSecond.toFixed(1)} tok/s\n`,
    );
  } finally {
    lm.dispose();
  }
}

async function score(model: string, flags: Flags): Promise<void> {
  const file = flags.text;
  if (typeof file !== 'string') throw new Error(`score needs --text FILE\n${USAGE}`);
  const { readFile } = await import('node:fs/promises');
  const text = await readFile(file, 'utf8').catch((e: Error) => {
    throw new Error(`--text ${file}: ${e.message}`);
  });
  const lm = await open(model, flags);
  try {
    if (!lm.tokenizer) throw new Error(`${model}: no tokenizer.json, cannot score text`);
    const ids = lm.tokenizer.encode(text);
    const max = lm.info.maxContext ?? ids.length;
    // Perplexity over windows of the context length, each scored from its own start.
    let nll = 0;
    let count = 0;
    for (let start = 0; start + 1 < ids.length; start += max) {
      const window = ids.subarray(start, Math.min(ids.length, start + max));
      const logits = await lm.logits(window);
      const V = lm.info.vocabSize;
      for (let t = 0; t + 1 < window.length; t++) {
        const row = logits.subarray(t * V, (t + 1) * V);
        let m = -Infinity;
        for (const v of row) m = Math.max(m, v);
        let z = 0;
        for (const v of row) z += Math.exp(v - m);
        nll += Math.log(z) + m - row[window[t + 1]];
        count++;
      }
    }
    if (count === 0) throw new Error(`--text ${file}: needs at least two tokens to score`);
    process.stdout.write(`perplexity ${Math.exp(nll / count).toFixed(4)} over ${count} predicted tokens\n`);
  } finally {
    lm.dispose();
  }
}

export async function main(argv: string[]): Promise<number> {
  try {
    const { cmd, model, flags } = parse(argv);
    if (cmd === 'generate') await generate(model, flags);
    else if (cmd === 'score') await score(model, flags);
    else throw new Error(`unknown command '${cmd}'\n${USAGE}`);
    return 0;
  } catch (e) {
    process.stderr.write(`tessera: ${e instanceof Error ? e.message : String(e)}\n`);
    return 1;
  }
}
