// The exported decoder (onnx_export.ts) run by transformers.js, Hugging Face's
// runtime over onnxruntime: the same graph the onnxruntime-web peer runs,
// through transformers.js's own model class and generate() loop (its KV-cache
// handling, logits processors and streamer), which is what a web developer who
// uses it gets. The caller passes the module it imported: in a page, the
// self-contained dist/transformers.js with its onnxruntime WASM files served
// beside (env.backends.onnx.wasm.wasmPaths); in Node, the package, which runs
// onnxruntime-node ('cpu').
//
// transformers.js reads a model folder: config.json, generation_config.json
// and onnx/model_q4.onnx (dtype 'q4') or onnx/model.onnx ('fp32'). The files
// are handed to it from memory through its custom-cache hook, so nothing is
// written or served; remote models are switched off, so a missing file fails
// instead of reaching the Hub.

import { pipelineCounter, type CompileCount } from './ort_runner';

export type TjsDevice = 'webgpu' | 'wasm' | 'cpu';

/** The parts of the transformers.js module the runner uses. */
export interface TjsModule {
  env: {
    version?: string;
    allowRemoteModels: boolean;
    allowLocalModels: boolean;
    localModelPath: string;
    useBrowserCache: boolean;
    useFSCache: boolean;
    useCustomCache: boolean;
    customCache: unknown;
  };
  AutoModelForCausalLM: {
    from_pretrained(id: string, options: Record<string, unknown>): Promise<{ generate(args: Record<string, unknown>): Promise<unknown>; dispose(): Promise<unknown> }>;
  };
  Tensor: new (type: 'int64', data: BigInt64Array, dims: number[]) => unknown;
  BaseStreamer: new () => { put(value: unknown): void; end(): void };
}

export interface TjsGenerateResult {
  device: TjsDevice;
  /** The greedy tokens, `steps` of them. */
  tokens: number[];
  /** From the call to generate() to its first new token. */
  prefillMs: number;
  /** From the first new token to the last (steps - 1 of them). */
  decodeMs: number;
  prefillTokensPerS: number;
  decodeTokensPerS: number;
  warmupRuns: number;
  /** Shader modules and pipelines created while loading, warming up and running; null where the host has no WebGPU to count them on. */
  compiles: CompileCount | null;
  version: string;
}

let nextId = 0;

/**
 * Loads `onnx` (the exporter's graph of the checkpoint whose config.json is
 * `config`) into transformers.js on `device`, generates `steps` greedy tokens
 * after `prompt` (`warmup` times untimed, then timed), and frees the session.
 * `dtype` names the graph's weights to transformers.js: 'q4' (MatMulNBits)
 * or 'fp32'. EOS is taken out of the configuration so that every run
 * generates exactly `steps` tokens, as Tessera's timed run does. Sets the
 * module's `env` (local files only, the custom cache) for the whole host.
 */
export async function tjsGenerate(
  tjs: TjsModule,
  onnx: Uint8Array,
  config: Record<string, unknown>,
  opts: { device: TjsDevice; dtype: 'q4' | 'fp32'; prompt: readonly number[]; steps: number; warmup: number },
): Promise<TjsGenerateResult> {
  const { device, dtype, prompt, steps } = opts;
  if (!Number.isInteger(steps) || steps < 1) throw new Error(`tjsGenerate: steps must be a positive integer, got ${steps}`);
  const id = `tessera-peer-${nextId++}`;
  const noEos = { ...config, eos_token_id: null };
  const files = new Map<string, Uint8Array>([
    ['config.json', new TextEncoder().encode(JSON.stringify(noEos))],
    ['generation_config.json', new TextEncoder().encode(JSON.stringify({ eos_token_id: null, bos_token_id: config.bos_token_id ?? null }))],
    [dtype === 'q4' ? 'onnx/model_q4.onnx' : 'onnx/model.onnx', onnx],
  ]);
  const { env } = tjs;
  env.allowRemoteModels = false;
  env.allowLocalModels = true;
  env.useBrowserCache = false;
  env.useFSCache = false;
  env.useCustomCache = true;
  env.customCache = {
    // Keys are the local path (localModelPath/id/file) or the Hub's URL
    // (.../id/resolve/main/file), as a string or a Request.
    match: async (key: string | { url: string }) => {
      const path = typeof key === 'string' ? key : key.url;
      if (!path.includes(`${id}/`)) return undefined;
      const name = [...files.keys()].find((f) => path.endsWith(`/${f}`));
      const bytes = name === undefined ? undefined : files.get(name)!;
      return bytes ? new Response(bytes as Uint8Array<ArrayBuffer>, { headers: { 'content-length': String(bytes.length) } }) : undefined;
    },
    put: async () => {},
  };

  const before = pipelineCounter.snapshot();
  const model = await tjs.AutoModelForCausalLM.from_pretrained(id, { dtype, device, local_files_only: true });
  try {
    const ids = new tjs.Tensor('int64', BigInt64Array.from(prompt, (t) => BigInt(t)), [1, prompt.length]);
    const mask = new tjs.Tensor('int64', new BigInt64Array(prompt.length).fill(1n), [1, prompt.length]);
    const run = async () => {
      // generate() puts the prompt, then each new token as it is chosen.
      const marks: number[] = [];
      const streamer = new (class extends tjs.BaseStreamer {
        override put() {
          marks.push(performance.now());
        }
        override end() {}
      })();
      const t0 = performance.now();
      const out = (await model.generate({ input_ids: ids, attention_mask: mask, do_sample: false, max_new_tokens: steps, streamer })) as { data: BigInt64Array; dims: number[] };
      const t1 = performance.now();
      const tokens = Array.from(out.data.subarray(prompt.length), Number);
      if (tokens.length !== steps || marks.length !== steps + 1) throw new Error(`tjsGenerate: transformers.js generated ${tokens.length} tokens (${marks.length - 1} streamed), asked for ${steps}`);
      return { tokens, prefillMs: marks[1] - t0, decodeMs: t1 - marks[1] };
    };
    for (let i = 0; i < opts.warmup; i++) await run();
    const r = await run();
    return {
      device,
      ...r,
      prefillTokensPerS: prompt.length / (r.prefillMs / 1000),
      decodeTokensPerS: (steps - 1) / (r.decodeMs / 1000),
      warmupRuns: opts.warmup,
      compiles: pipelineCounter.delta(before),
      version: env.version ?? 'unknown',
    };
  } finally {
    await model.dispose();
  }
}
