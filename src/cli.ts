// The command line: `tessera-llm generate|score <model> [flags]` (see USAGE).
// Text goes to stdout, progress and statistics to stderr. Every flag and value
// is checked before the model loads, with the same rules as the API
// (options.ts), so a typo costs no load; the exit code tells a usage error (2)
// from a failure to run (1).

import { readFile } from 'node:fs/promises';
import { loadModel, type LM } from './node';
import { checkGenerateOptions, checkLoadOptions } from './options';
import { scoreTokens } from './score';
import { BUNDLED_MODELS, BUNDLED_PREFIX, bundledModelName } from './bundled';

/** What a bundled model continues when no --prompt is given. */
const BUNDLED_PROMPT = 'ROMEO:';

type LoadOptions = NonNullable<Parameters<typeof loadModel>[1]>;
type GenerateOptions = NonNullable<Parameters<LM['generate']>[1]>;

interface Flag {
  /** The value's placeholder in the usage; a switch (--chat) has none. */
  arg?: string;
  /** The value is a plain decimal number (not 1e3, 0x10 or 12abc). */
  number?: boolean;
  /** The loadModel() or generate() option the flag sets: its check names the option, which the CLI reports as the flag. */
  option?: string;
  help: string;
}

const LOAD_FLAGS: Record<string, Flag> = {
  model: { arg: 'NAME', help: `a bundled model instead of <model>: ${BUNDLED_MODELS.join('|')}` },
  weights: { arg: 'q4|f32', option: 'weights', help: 'linear weights: quantized to 4 bits (default) or exact' },
  embeddings: { arg: 'q8|q4|f32', option: 'embeddings', help: 'embedding table and LM head (default q8 beside q4 weights, f32 beside f32)' },
  'max-context': { arg: 'N', number: true, option: 'maxContext', help: "longest context to allocate the state for (default: the model's)" },
  'prefill-chunk': { arg: 'N', number: true, option: 'prefillChunk', help: 'most prompt tokens per prefill submit (default 256); smaller saves memory' },
  f16: { option: 'preferF16', help: 'f16 activations and KV cache where the GPU has shader-f16 (default f32)' },
};

const COMMANDS: Record<'generate' | 'score', Record<string, Flag>> = {
  generate: {
    prompt: { arg: 'TEXT', help: `the text to continue (required, except for a bundled model: '${BUNDLED_PROMPT}')` },
    chat: { help: "send the prompt as a user message through the checkpoint's chat template" },
    'max-new-tokens': { arg: 'N', number: true, option: 'maxNewTokens', help: 'most tokens to generate (default 128)' },
    temperature: { arg: 'T', number: true, option: 'temperature', help: '0 decodes greedily (default); above 0 samples' },
    'top-k': { arg: 'K', number: true, option: 'topK', help: 'sample among the K likeliest tokens (0: all)' },
    'top-p': { arg: 'P', number: true, option: 'topP', help: 'sample among the likeliest tokens holding mass P, in (0, 1]' },
    seed: { arg: 'S', number: true, option: 'seed', help: 'sampling seed, an integer in [0, 2^32): the same seed gives the same text' },
    ...LOAD_FLAGS,
  },
  score: {
    text: { arg: 'FILE', help: 'the text file whose perplexity to print (required)' },
    window: { arg: 'N', number: true, help: "score windows of N tokens, each from a fresh context (default: the model's context, or the whole text)" },
    ...LOAD_FLAGS,
  },
};
type Command = keyof typeof COMMANDS;

const flagList = (flags: Record<string, Flag>) =>
  Object.entries(flags)
    .map(([name, f]) => `  ${`--${name}${f.arg ? ` ${f.arg}` : ''}`.padEnd(24)} ${f.help}`)
    .join('\n');
const only = (cmd: Command) => Object.fromEntries(Object.entries(COMMANDS[cmd]).filter(([name]) => !(name in LOAD_FLAGS)));

const USAGE = `usage:
  tessera-llm generate [<model>] --prompt TEXT [flags]
  tessera-llm score [<model>] --text FILE [flags]
  tessera-llm --help | --version
<model> is a checkpoint folder (config.json, *.safetensors, tokenizer.json), its base URL,
or bundled:NAME; without it (and without --model) the bundled transformer runs.
The bundled models (${BUNDLED_MODELS.join(', ')}) are tiny, trained on Shakespeare, and ship in the package.
A flag's value follows it (--seed 4) or an equals sign (--seed=4); numbers are plain decimals.

generate:
${flagList(only('generate'))}
generate and score:
${flagList(LOAD_FLAGS)}

Text goes to stdout; progress and statistics to stderr. WebGPU in Node.js comes from
Dawn, the optional peer dependency 'webgpu': npm install webgpu (npm install -g tessera-llm webgpu).
exit codes:
  0    success, also when stdout is closed early (| head)
  1    a failure to run: the model folder, the load, the device
  2    a usage error: an unknown or repeated flag, a bad value, a missing --prompt or --text
  130  interrupted (Ctrl-C)`;

/** A mistake in the command line: exit code 2, printed with the usage. */
class UsageError extends Error {}

/** Levenshtein distance: how many one-letter edits turn a into b. */
function editDistance(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const row = [i];
    for (let j = 1; j <= b.length; j++) row[j] = Math.min(prev[j] + 1, row[j - 1] + 1, prev[j - 1] + (a[i - 1] === b[j - 1] ? 0 : 1));
    prev = row;
  }
  return prev[b.length];
}

/** The known word a near miss meant: the same up to case, '_' for '-' and leading dashes, or an edit or two away. */
function nearest(word: string, known: readonly string[]): string | undefined {
  const w = word.replace(/^-+/, '').replace(/_/g, '-').toLowerCase();
  let best: string | undefined;
  let bestDistance = Infinity;
  for (const k of known) {
    const d = editDistance(w, k);
    if (d < bestDistance && d <= (k.length > 5 ? 2 : 1)) [best, bestDistance] = [k, d];
  }
  return best;
}

type Parsed = { kind: 'help' } | { kind: 'version' } | { kind: 'run'; cmd: Command; model: string | undefined; values: Map<string, string | true> };

/**
 * Splits argv into the command, the model and the flags' raw values. --help
 * (-h, `tessera-llm help`) and --version win wherever they stand as a flag, even
 * after a mistake; otherwise the first mistake is thrown.
 */
function parse(argv: readonly string[]): Parsed {
  if (argv.length === 0) throw new UsageError('');
  let problem: string | undefined;
  const fail = (message: string) => void (problem ??= message);
  const first = argv[0];
  let cmd: Command | undefined;
  if (first === 'help') return { kind: 'help' };
  if (first === 'generate' || first === 'score') cmd = first;
  else if (!first.startsWith('-')) {
    const near = nearest(first, Object.keys(COMMANDS));
    fail(`unknown command '${first}'${near ? ` (did you mean ${near}?)` : ''}`);
  }
  const flags = cmd ? COMMANDS[cmd] : {};
  let model: string | undefined;
  const values = new Map<string, string | true>();
  for (let i = first.startsWith('-') ? 0 : 1; i < argv.length; i++) {
    const arg = argv[i];
    if (arg === '--help' || arg === '-h') return { kind: 'help' };
    if (arg === '--version') return { kind: 'version' };
    if (!arg.startsWith('-') || arg === '-') {
      if (!cmd) fail(`the command (generate or score) comes first, before '${arg}'`);
      else if (model === undefined) model = arg;
      else fail(`unexpected argument '${arg}' (the model is '${model}'; quote a prompt that has spaces)`);
      continue;
    }
    const eq = arg.indexOf('=');
    const name = arg.slice(arg.startsWith('--') ? 2 : 1, eq < 0 ? undefined : eq);
    const flag = arg.startsWith('--') ? Object.hasOwn(flags, name) && flags[name] : undefined;
    if (!flag) {
      const owner = (Object.keys(COMMANDS) as Command[]).find((c) => c !== cmd && Object.hasOwn(COMMANDS[c], name));
      if (!cmd) fail(`the command (generate or score) comes first, before '${arg}'`);
      else if (owner && arg.startsWith('--')) fail(`--${name} is a flag of ${owner}, not of ${cmd}`);
      else {
        const near = nearest(name, Object.keys(flags));
        fail(`unknown flag '${eq < 0 ? arg : arg.slice(0, eq)}'${near ? ` (did you mean --${near}?)` : ''}`);
      }
      continue;
    }
    let value: string | true = true;
    if (flag.arg === undefined) {
      if (eq >= 0) fail(`--${name} takes no value`);
    } else if (eq >= 0) value = arg.slice(eq + 1);
    else if (i + 1 < argv.length) value = argv[++i]; // taken as is, so `--temperature -1` is checked as a value
    else fail(`--${name} needs a value`);
    if (values.has(name)) fail(`--${name} is given twice`);
    values.set(name, value);
  }
  if (problem !== undefined) throw new UsageError(problem);
  if (!cmd) throw new UsageError(`the command (generate or score) comes first`);
  return { kind: 'run', cmd, model, values };
}

/** A command line turned into checked API options: what runs once the model has loaded. */
type Job = { model: string; load: LoadOptions } & (
  | { cmd: 'generate'; prompt: Parameters<LM['generate']>[0]; options: GenerateOptions }
  | { cmd: 'score'; file: string; text: string; window: number | null }
);
type JobOf<C extends Command> = Extract<Job, { cmd: C }>;

/** Option name -> flag, to report the API's checks in the CLI's words. */
const FLAG_OF = new Map(Object.values(COMMANDS).flatMap((flags) => Object.entries(flags).flatMap(([name, f]) => (f.option ? [[f.option, name] as const] : []))));

/** Runs an options check of the API, turning its 'generate: topP must be ...' into '--top-p must be ...'. */
function checked(check: () => void): void {
  try {
    check();
  } catch (e) {
    const message = e instanceof Error ? e.message : String(e);
    const m = /^(?:loadModel|generate): (\w+) ([\s\S]*)$/.exec(message);
    const flag = m && FLAG_OF.get(m[1]);
    throw new UsageError(flag ? `--${flag} ${m[2]}` : message);
  }
}

/** Turns the flags into checked API options, and reads --text, all before any model is loaded. */
async function prepare(cmd: Command, given: string | undefined, values: Map<string, string | true>): Promise<Job> {
  const named = values.get('model');
  if (named !== undefined && given !== undefined) throw new UsageError(`give the model once: '${given}' or --model ${named}`);
  let model = given ?? `${BUNDLED_PREFIX}${named ?? BUNDLED_MODELS[0]}`;
  if (model.startsWith(BUNDLED_PREFIX)) {
    try {
      model = BUNDLED_PREFIX + bundledModelName(model, named !== undefined ? '--model' : 'model');
    } catch (e) {
      throw new UsageError((e as Error).message);
    }
  }
  const load: Record<string, unknown> = {};
  const options: Record<string, unknown> = { maxNewTokens: 128 };
  for (const [name, value] of values) {
    const flag = COMMANDS[cmd][name];
    if (!flag.option) continue;
    if (flag.number && !/^-?(\d+\.?\d*|\.\d+)$/.test(value as string)) throw new UsageError(`--${name} must be a decimal number, got '${value}'`);
    (name in LOAD_FLAGS ? load : options)[flag.option] = flag.number ? Number(value) : value;
  }
  checked(() => checkLoadOptions(load as LoadOptions));
  if (cmd === 'generate') {
    const prompt = values.get('prompt') ?? (model.startsWith(BUNDLED_PREFIX) ? BUNDLED_PROMPT : undefined);
    if (typeof prompt !== 'string') throw new UsageError('generate needs --prompt TEXT');
    checked(() => checkGenerateOptions(options as GenerateOptions));
    const input = values.has('chat') ? [{ role: 'user', content: prompt }] : prompt;
    return { cmd, model, load: load as LoadOptions, prompt: input, options: options as GenerateOptions };
  }
  const file = values.get('text');
  if (typeof file !== 'string') throw new UsageError('score needs --text FILE');
  const raw = values.get('window');
  const w = typeof raw === 'string' && /^\d+$/.test(raw) ? Number(raw) : raw === undefined ? null : NaN;
  if (w !== null && !(Number.isSafeInteger(w) && w >= 2)) throw new UsageError(`--window must be a whole number of tokens, at least 2; got '${values.get('window')}'`);
  const text = await readFile(file, 'utf8').catch((e: Error) => {
    throw new UsageError(`--text ${file}: ${e.message}`);
  });
  if (text.length === 0) throw new UsageError(`--text ${file}: the file is empty`);
  return { cmd, model, load: load as LoadOptions, file, text, window: w };
}

/** stdout that notices its reader leaving (EPIPE from `| head`): from then on nothing is written and write() resolves false. */
function watchStdout(stream: NodeJS.WritableStream) {
  let error: (Error & { code?: string }) | null = null;
  // Stays attached for the process's life: an error event with no listener is thrown, with a stack trace.
  stream.on('error', (e: Error) => void (error ??= e));
  return {
    /** Resolves once the text is handed to the system (so exiting cannot cut it), false when stdout has failed. */
    write: (text: string) =>
      new Promise<boolean>((resolve) => {
        if (error) return resolve(false);
        stream.write(text, (e) => {
          if (e) error ??= e;
          resolve(!error);
        });
      }),
    /** Why stdout failed, unless its reader just left (EPIPE), which is no failure. */
    failure: () => (error && error.code !== 'EPIPE' && error.code !== 'ERR_STREAM_DESTROYED' ? error : null),
  };
}
type Stdout = ReturnType<typeof watchStdout>;

async function open(job: Job, signal: AbortSignal): Promise<LM> {
  let last = -1;
  const lm = await loadModel(job.model, {
    ...job.load,
    signal,
    onProgress: ({ loadedBytes, totalBytes }) => {
      const pct = Math.floor((100 * loadedBytes) / totalBytes);
      if (pct >= last + 10 || loadedBytes === totalBytes) {
        last = pct;
        process.stderr.write(`\rloading ${pct}%`);
      }
    },
  });
  const { info } = lm;
  process.stderr.write(`\r${info.modelType}: ${info.nLayers} layers, ${(info.params.total / 1e6).toFixed(1)}M parameters, ${(info.weightBytes / 2 ** 20).toFixed(1)} MiB of ${info.weights} weights (${info.embeddings} embeddings), ${info.activations} activations${job.load.preferF16 ? ` (${info.activationsReason})` : ''}, on ${lm.model.gpu.report.adapter}\n`);
  return lm;
}

async function generate(lm: LM, job: JobOf<'generate'>, out: Stdout, signal: AbortSignal): Promise<void> {
  for await (const piece of lm.generate(job.prompt, { ...job.options, signal })) {
    // The reader has gone: leaving the loop ends generate() now, so the GPU stops with it.
    if (!(await out.write(piece))) return;
  }
  if (!(await out.write('\n'))) return;
  const s = lm.stats()!;
  process.stderr.write(
    `prompt ${s.promptTokens} tokens, generated ${s.generatedTokens} (${s.stopReason}); ` +
      `time to first token ${s.timeToFirstTokenMs.toFixed(0)} ms, prefill ${s.prefillTokensPerSecond.toFixed(1)} tok/s, decode ${s.decodeTokensPerSecond.toFixed(1)} tok/s\n`,
  );
}

async function score(lm: LM, job: JobOf<'score'>, out: Stdout, signal: AbortSignal): Promise<void> {
  const { file, text } = job;
  if (!lm.tokenizer) throw new Error(`${job.model}: no tokenizer.json, cannot score text`);
  const ids = lm.tokenizer.encode(text);
  // Perplexity over windows (--window, or the context length), each scored from its own start.
  const { loss, count } = await scoreTokens(lm, ids, job.window ?? Math.max(2, lm.info.maxContext ?? ids.length), signal);
  if (count === 0) throw new Error(`--text ${file}: needs at least two tokens to score`);
  await out.write(`perplexity ${Math.exp(loss).toFixed(4)} over ${count} predicted tokens (loss ${loss.toFixed(4)} nats per token)\n`);
}

/** Runs the command line; resolves to the exit code (see USAGE). `version` is the package's, which the bin reads. */
export async function main(argv: readonly string[], { version = 'unknown' }: { version?: string } = {}): Promise<number> {
  const out = watchStdout(process.stdout);
  process.stderr.on('error', () => {}); // `2>&1 | head`: nowhere left to report to
  // Ctrl-C stops the load or the generation at its next step, which then frees the model; a second one leaves at once.
  const interrupt = new AbortController();
  const onSigint = () => {
    if (interrupt.signal.aborted) process.exit(130);
    interrupt.abort(new Error('interrupted'));
  };
  process.on('SIGINT', onSigint);
  try {
    const parsed = parse(argv);
    if (parsed.kind !== 'run') {
      await out.write(`${parsed.kind === 'help' ? USAGE : version}\n`);
      return 0;
    }
    const job = await prepare(parsed.cmd, parsed.model, parsed.values);
    const lm = await open(job, interrupt.signal);
    try {
      if (job.cmd === 'generate') await generate(lm, job, out, interrupt.signal);
      else await score(lm, job, out, interrupt.signal);
    } finally {
      lm.dispose();
    }
    const failure = out.failure();
    if (failure) throw new Error(`stdout: ${failure.message}`);
    return 0;
  } catch (e) {
    if (interrupt.signal.aborted) return 130;
    if (e instanceof UsageError) {
      process.stderr.write(`${e.message ? `tessera-llm: ${e.message}\n\n` : ''}${USAGE}\n`);
      return 2;
    }
    process.stderr.write(`tessera-llm: ${e instanceof Error ? e.message : String(e)}\n`);
    return 1;
  } finally {
    process.off('SIGINT', onSigint);
  }
}
