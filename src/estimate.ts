// estimateModel(): "will it fit", before any download. From config.json and
// the safetensors headers alone (a URL source reads a few kilobytes), the
// device bytes a model will take in the chosen formats, by category, the
// bytes a download fetches, and a verdict against this device's limits.
// WebGPU does not say how much memory a device has: the verdict checks what
// it does say (the largest buffer and binding), and the total is reported
// for the caller to weigh against what it knows.

import { Gpu } from './runtime/gpu';
import { largestLayerProblem, readJson, sharedGpu } from './load';
import { familyFor } from './models/registry';
import { openSource, type SourceInput } from './models/loader/source';
import { openCheckpoint } from './models/loader/safetensors';
import { filesToFetch } from './models/loader/cache';
import { planWeights } from './models/loader/plan';
import type { EmbeddingMode, WeightMode } from './models/loader/weights';
import type { LoadModelOptions } from './options';
import { checkLoadOptions } from './options';

export type EstimateOptions = Pick<LoadModelOptions, 'weights' | 'embeddings' | 'maxContext' | 'prefillChunk' | 'device' | 'preferF16' | 'signal' | 'fetchFn' | 'timeoutMs'>;

export interface ModelEstimate {
  modelType: string;
  formats: { weights: WeightMode; embeddings: EmbeddingMode; activations: 'f32' | 'f16' };
  /** The context the state is sized for; null where it does not grow. */
  maxContext: number | null;
  /** Bytes of the checkpoint's files: what a download fetches. */
  downloadBytes: number;
  /** Device bytes once loaded, by category (as the ledger counts them). */
  bytes: { weights: number; experts: number; state: number; workspace: number; total: number };
  /** The device's limits the verdict checks. */
  limits: { maxBufferBytes: number; maxBindingBytes: number; adapter: string };
  fits: boolean;
  /** Why it will not fit (empty when it fits), each with the sizes. */
  problems: string[];
}

export async function estimateModel(source: SourceInput, options: EstimateOptions = {}): Promise<ModelEstimate> {
  checkLoadOptions(options);
  const weights = options.weights ?? 'q4';
  const embeddings = options.embeddings ?? (weights === 'q4' ? 'q8' : 'f32');
  const src = openSource(source, { signal: options.signal, fetchFn: options.fetchFn, timeoutMs: options.timeoutMs });
  const raw = (await readJson(src, 'config.json', true))!;
  const family = familyFor(raw);
  const parsed = family.parse(raw);
  const gpu = options.device instanceof Gpu ? options.device : await sharedGpu(options.preferF16 ?? false);
  const activations = gpu.activationType === 'f16' ? 'f16' : 'f32';
  const plan = family.plan(raw, { maxContext: options.maxContext, prefillChunk: options.prefillChunk, activations });
  const shapes = family.shapes(raw);
  const w = planWeights(shapes, weights, embeddings);

  // The headers: the tensors the config implies must be there (loadModel refuses a checkpoint that lacks any).
  const present = new Set((await openCheckpoint(src)).names);
  const missing = [...shapes.keys()].filter((n) => !present.has(n));
  let downloadBytes = 0;
  for (const name of await filesToFetch(src)) downloadBytes += await src.size(name);

  const maxBuffer = gpu.device.limits.maxBufferSize;
  const limit = Math.min(gpu.maxBinding, maxBuffer);
  const problems: string[] = [];
  if (missing.length) problems.push(`the checkpoint lacks ${missing.length} tensor${missing.length === 1 ? '' : 's'} the config implies (${missing.slice(0, 3).join(', ')}${missing.length > 3 ? ', ...' : ''})`);
  const tooLarge = largestLayerProblem(gpu, parsed, weights);
  if (tooLarge) problems.push(tooLarge);
  if (plan.largestBufferBytes > limit) {
    problems.push(`one buffer of its ${plan.maxContext !== null ? `KV cache (${plan.maxContext} tokens) or ` : ''}workspace needs ${plan.largestBufferBytes} bytes, over this device's ${limit}${plan.maxContext !== null ? '; pass a smaller maxContext' : ''} or a smaller prefillChunk`);
  }
  const bytes = { weights: w.weights, experts: w.experts, state: plan.stateBytes, workspace: plan.workspaceBytes, total: 0 };
  bytes.total = bytes.weights + bytes.experts + bytes.state + bytes.workspace;
  return {
    modelType: String(raw.model_type ?? 'mamba'),
    formats: { weights, embeddings, activations },
    maxContext: plan.maxContext,
    downloadBytes,
    bytes,
    limits: { maxBufferBytes: maxBuffer, maxBindingBytes: gpu.maxBinding, adapter: gpu.report.adapter },
    fits: problems.length === 0,
    problems,
  };
}
