// loadModel(): a checkpoint folder (path, URL, picked Files or a name -> bytes
// map) onto the GPU, behind the LM handle. Everything that can be refused is
// refused before the weights are read: options, config.json, what the
// safetensors headers hold, and what cannot fit the device's buffers.

import { Gpu } from './runtime/gpu';
import { abortError, TesseraError } from './runtime/errors';
import { Tokenizer } from './runtime/tokenizer';
import { familyFor, type ParsedConfig } from './models/registry';
import type { WeightMode } from './models/loader/weights';
import { openSource, type CheckpointSource, type SourceInput } from './models/loader/source';
import { cachedSource } from './models/loader/cache';
import { BUNDLED_PREFIX, bundledModelUrl } from './bundled';
import { openCheckpoint } from './models/loader/safetensors';
import { checkLoadOptions, type LoadModelOptions } from './options';
import { LM } from './lm';

/** The shared devices, one per precision asked for (f16 activations or not). */
const shared = new Map<boolean, Promise<Gpu>>();

/**
 * The device models share when loadModel() is not given one, opened on first
 * use. A failed open is not kept (the next load tries again), nor is a lost
 * device (the next load opens a fresh one).
 */
export async function sharedGpu(preferF16: boolean): Promise<Gpu> {
  const current = shared.get(preferF16);
  const gpu = await current?.catch(() => null);
  if (gpu && !gpu.lost) return gpu;
  // The first caller to find none opens it; the others wait for that one.
  if (shared.get(preferF16) === current) shared.set(preferF16, Gpu.create({ preferF16 }));
  const opening = shared.get(preferF16)!;
  try {
    return await opening;
  } catch (e) {
    if (shared.get(preferF16) === opening) shared.delete(preferF16);
    throw e;
  }
}

/** Opens a checkpoint folder (path, URL, File list or name -> bytes map) and loads it onto the GPU. */
export async function loadModel(source: SourceInput, options: LoadModelOptions = {}): Promise<LM> {
  checkLoadOptions(options);
  const { signal } = options;
  const cancelled = (when: string) => {
    if (signal?.aborted) throw abortError(`loadModel: cancelled ${when}`, signal.reason);
  };
  cancelled('before it started');
  const weights = options.weights ?? 'q4';
  const embeddings = options.embeddings ?? (weights === 'q4' ? 'q8' : 'f32');
  const net = { signal, fetchFn: options.fetchFn, timeoutMs: options.timeoutMs };
  const cacheBase = options.cache ? httpBase(source) : null;
  const src = cacheBase ? await cachedSource(cacheBase, { ...net, onProgress: options.onProgress }) : openSource(source, net);
  const raw = (await readJson(src, 'config.json', true))!;
  const family = familyFor(raw);
  const parsed = family.parse(raw);
  const tokJson = await readJson(src, 'tokenizer.json', false);
  const tokConfig = (await readJson(src, 'tokenizer_config.json', false)) ?? {};
  // Hugging Face generate() stops on generation_config.json's eos ids (chat
  // models list their end-of-turn token there): stop on those too.
  const genConfig = await readJson(src, 'generation_config.json', false);
  const stopIds = [...parsed.eosTokenIds, ...(genConfig ? eosIdsOf(genConfig.eos_token_id, `${src.describe}: generation_config.json: 'eos_token_id'`) : [])];
  cancelled('before building the tokenizer');
  const tokenizer = tokJson ? new Tokenizer(tokJson, tokConfig, stopIds) : null;

  const gpu = options.device ?? (await sharedGpu(options.preferF16 ?? false));
  gpu.assertAlive('loadModel');
  // Refuse a model whose largest layer cannot be bound, before reading any weight.
  const tooLarge = largestLayerProblem(gpu, parsed, weights);
  if (tooLarge) throw new TesseraError('WILL_NOT_FIT', `loadModel: ${tooLarge}`);
  const checkpoint = await openCheckpoint(src);
  // A config that claims far more tensors than the headers hold (10^9 layers) is refused
  // here, from the counts; a near miss goes on to the loader's list of missing names.
  if (parsed.tensorCount > 2 * checkpoint.names.length + 1000) {
    throw new Error(
      `${src.describe}: config.json (${parsed.nLayers} layers) implies ${parsed.tensorCount} tensors, but the checkpoint holds ${checkpoint.names.length}: the config and the weights disagree`,
    );
  }
  cancelled('before reading the weights');
  const model = await family.load(gpu, raw, checkpoint, { weights, embeddings, maxContext: options.maxContext, onProgress: options.onProgress, prefillChunk: options.prefillChunk, signal });
  try {
    // A buffer the device could not hold is reported now, not at the first step.
    await gpu.checkErrors('loadModel');
    cancelled('after loading');
    return new LM(model, tokenizer);
  } catch (e) {
    model.dispose();
    throw e;
  }
}

/**
 * Why the largest layer weight cannot be bound on this device, or null (the
 * vocabulary matrix is split into parts that fit, so it is not counted).
 */
export function largestLayerProblem(gpu: Gpu, parsed: ParsedConfig, weights: WeightMode): string | null {
  const [rows, cols] = parsed.largestMatrix;
  const bytes = weights === 'q4' ? rows * cols * 0.625 : rows * cols * 4;
  return bytes > gpu.maxBinding ? `a (${rows}, ${cols}) layer weight needs ${bytes} bytes in one binding, over this device's ${gpu.maxBinding}` : null;
}

/** The http(s) base URL a source is fetched from (a bundled model's, in a browser), or null for a local one. */
function httpBase(source: SourceInput): string | null {
  let url: string | null = null;
  if (source instanceof URL) url = source.href;
  else if (typeof source === 'string') url = source.startsWith(BUNDLED_PREFIX) ? bundledModelUrl(source).href : source;
  return url !== null && /^https?:\/\//i.test(url) ? url : null;
}

/** eos_token_id as Hugging Face writes it: absent, one id, or a list of ids. */
function eosIdsOf(v: unknown, where: string): number[] {
  if (v == null) return [];
  const ids = Array.isArray(v) ? v : [v];
  if (!ids.every((id) => Number.isInteger(id) && id >= 0)) throw new Error(`${where} must be a token id or a list of them, got ${JSON.stringify(v)}`);
  return ids as number[];
}

export async function readJson(src: CheckpointSource, name: string, required: boolean): Promise<Record<string, unknown> | null> {
  if (!(await src.has(name))) {
    if (required) throw new Error(`${src.describe}: ${name} is missing`);
    return null;
  }
  const text = await src.text(name);
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch (e) {
    throw new Error(`${src.describe}: ${name} is not valid JSON (${(e as Error).message})`);
  }
  if (!v || typeof v !== 'object' || Array.isArray(v)) throw new Error(`${src.describe}: ${name} must hold a JSON object`);
  return v as Record<string, unknown>;
}
