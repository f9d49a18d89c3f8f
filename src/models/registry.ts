// model_type -> how to parse its config and load it. One entry per family;
// the architecture is read from config.json, never guessed from shapes.

import type { Gpu } from '../runtime/gpu';
import type { Tensor } from '../runtime/tensor';
import type { LanguageModel } from './model';
import type { TensorSource, UploadOptions } from './loader/weights';
import { checkWorkspace, prefillChunkOf, type BufferSpec } from './blocks/workspace';
import { DTYPE_BYTES } from '../runtime/tensor';
import { attnDecodeScratchShape } from '../kernels/attn_decode';
import { LmHead } from './blocks/lm_head';
import { parseTransformerConfig } from './transformer/config';
import { checkTransformerCheckpoint, loadTransformerWeights, transformerTensorShapes } from './transformer/weights';
import { TransformerModel, transformerWorkspace } from './transformer/model';
import { TransformerState } from './transformer/state';
import { isStateSpacesMamba, parseMambaConfig } from './mamba/config';
import { checkMambaCheckpoint, loadMambaWeights, mambaTensorShapes } from './mamba/weights';
import { MambaModel, mambaWorkspace } from './mamba/model';
import { parseRetNetConfig } from './retnet/config';
import { checkRetNetCheckpoint, loadRetNetWeights, retnetTensorShapes } from './retnet/weights';
import { RetNetModel, retnetWorkspace } from './retnet/model';
import { TesseraError } from '../runtime/errors';

export interface LoadOptions extends UploadOptions {
  /** Longest context to allocate for (KV cache families); defaults to the model's maximum. */
  maxContext?: number;
  /** Most tokens one prefill call takes (default 256): bounds the workspace. */
  prefillChunk?: number;
}

export interface ParsedConfig {
  eosTokenIds: number[];
  /** The largest weight that is not the vocabulary matrix (which is split to fit a binding), checked before any weight is read. */
  largestMatrix: [number, number];
  /** How many tensors the config implies: a checkpoint with fewer is refused from its headers alone. */
  tensorCount: number;
  nLayers: number;
}

/** Device bytes a model takes besides its weights, from its config alone. */
export interface FamilyPlan {
  /** The context its state is sized for; null where the state does not grow with it. */
  maxContext: number | null;
  /** The conversation's state: the KV cache at maxContext, or the recurrent state. */
  stateBytes: number;
  /** Activations and scratch for a prefill chunk, and the LM head's. */
  workspaceBytes: number;
  /** The largest single buffer of the state or the workspace (one K or V layer, one activation), against the device's per-buffer limit. */
  largestBufferBytes: number;
}

export interface PlanOptions {
  maxContext?: number;
  prefillChunk?: number;
  /** 'f16' where the device runs f16 activations. */
  activations: 'f32' | 'f16';
}

export interface FamilyEntry {
  /** Parses config.json; throws a clear Error naming the key for anything unsupported. */
  parse(raw: Record<string, unknown>): ParsedConfig;
  /** The tensors a checkpoint of this config holds: names as its published checkpoints store them, with their shapes. */
  shapes(raw: Record<string, unknown>): Map<string, number[]>;
  /** Sizes the state and workspace (see FamilyPlan); throws on a maxContext the model does not allow. */
  plan(raw: Record<string, unknown>, opts: PlanOptions): FamilyPlan;
  /** Checks what fits the device (state, workspace) before any weight is read, then loads. */
  load(gpu: Gpu, raw: Record<string, unknown>, src: TensorSource, opts: LoadOptions): Promise<LanguageModel>;
}

/**
 * The number of tensors a config implies, from a zero- and a one-layer copy
 * of it: a config may claim 10^9 layers, and listing their names would take
 * minutes and gigabytes before anything could be compared.
 */
function tensorCount<C extends { nLayers: number }>(cfg: C, shapes: (c: C) => Map<string, unknown>): number {
  const base = shapes({ ...cfg, nLayers: 0 }).size;
  return base + cfg.nLayers * (shapes({ ...cfg, nLayers: 1 }).size - base);
}

const transformer: FamilyEntry = {
  parse(raw) {
    const cfg = parseTransformerConfig(raw);
    const D = cfg.hiddenSize;
    const wide = Math.max(cfg.moe?.sparse.every(Boolean) ? 0 : cfg.intermediateSize, cfg.moe?.sharedExpertSize ?? 0, cfg.nHeads * cfg.headDim); // MLP or attention projection
    return { eosTokenIds: cfg.eosTokenIds, largestMatrix: [wide, D], tensorCount: tensorCount(cfg, transformerTensorShapes), nLayers: cfg.nLayers };
  },
  shapes: (raw) => transformerTensorShapes(parseTransformerConfig(raw)),
  plan(raw, opts) {
    const cfg = parseTransformerConfig(raw);
    const maxContext = transformerContext(cfg, raw, opts.maxContext);
    const chunk = prefillChunkOf(opts.prefillChunk, maxContext);
    const act = DTYPE_BYTES[opts.activations];
    const perLayer = TransformerState.bytesPerLayer(cfg, maxContext, act);
    const kv = 2 * cfg.nLayers * perLayer;
    const scratch = attnDecodeScratchShape(maxContext, cfg.nHeads, cfg.headDim).reduce((a, b) => a * b, 4);
    const ws = transformerWorkspace(cfg, chunk);
    const largest = Math.max(perLayer, largestSpec(ws, act), cfg.moe ? expertStackBytes(cfg.moe, cfg.hiddenSize) : 0);
    return { maxContext, stateBytes: kv + scratch, workspaceBytes: workspaceBytes(ws, act, cfg.hiddenSize, cfg.vocabSize), largestBufferBytes: largest };
  },
  async load(gpu, raw, src, opts) {
    const cfg = parseTransformerConfig(raw);
    const maxContext = transformerContext(cfg, raw, opts.maxContext);
    // Before any weight is read: the tensors are the config's, the KV cache and the workspace each fit a buffer.
    const shapes = checkTransformerCheckpoint(src, cfg);
    if (cfg.moe) checkExpertStacks(gpu, cfg.moe, cfg.hiddenSize);
    TransformerState.checkFits(gpu, cfg, maxContext);
    const chunk = prefillChunkOf(opts.prefillChunk, maxContext);
    checkWorkspace(gpu, 'transformer', chunk, transformerWorkspace(cfg, chunk));
    const weights = await loadTransformerWeights(gpu, src, cfg, opts, shapes);
    return buildOrFree(weights.all, () => new TransformerModel(gpu, cfg, weights, { maxContext, prefillChunk: chunk }));
  },
};

const mamba: FamilyEntry = {
  parse(raw) {
    const cfg = parseMambaConfig(raw);
    // largestMatrix: a half of in_proj, or out_proj.
    return { eosTokenIds: cfg.eosTokenIds, largestMatrix: [cfg.intermediateSize, cfg.hiddenSize], tensorCount: tensorCount(cfg, mambaTensorShapes), nLayers: cfg.nLayers };
  },
  shapes: (raw) => mambaTensorShapes(parseMambaConfig(raw)),
  plan(raw, opts) {
    const cfg = parseMambaConfig(raw);
    const act = DTYPE_BYTES[opts.activations];
    const { nLayers: L, intermediateSize: Di, stateSize: N, convKernel: Kc } = cfg;
    const stateBytes = L * (Di * Math.max(1, Kc - 1) * act + Di * N * 4); // conv state, then the f32 SSM state
    const ws = mambaWorkspace(cfg, prefillChunkOf(opts.prefillChunk));
    return { maxContext: null, stateBytes, workspaceBytes: workspaceBytes(ws, act, cfg.hiddenSize, cfg.vocabSize), largestBufferBytes: largestSpec(ws, act) };
  },
  async load(gpu, raw, src, opts) {
    const cfg = parseMambaConfig(raw);
    // maxContext (checked by loadModel) does not apply: the state is the same size at any length.
    const chunk = prefillChunkOf(opts.prefillChunk);
    const shapes = checkMambaCheckpoint(src, cfg);
    checkWorkspace(gpu, 'mamba', chunk, mambaWorkspace(cfg, chunk));
    const weights = await loadMambaWeights(gpu, src, cfg, opts, shapes);
    return buildOrFree(weights.all, () => new MambaModel(gpu, cfg, weights, { prefillChunk: chunk }));
  },
};

const retnet: FamilyEntry = {
  parse(raw) {
    const cfg = parseRetNetConfig(raw);
    // largestMatrix: an MLP projection or the value-sized ones (v, g, o); a fused gate_proj is uploaded as two halves.
    const wide = Math.max(cfg.intermediateSize, cfg.nHeads * cfg.valueDim);
    return { eosTokenIds: cfg.eosTokenIds, largestMatrix: [wide, cfg.hiddenSize], tensorCount: tensorCount(cfg, retnetTensorShapes), nLayers: cfg.nLayers };
  },
  shapes: (raw) => retnetTensorShapes(parseRetNetConfig(raw)),
  plan(raw, opts) {
    const cfg = parseRetNetConfig(raw);
    const act = DTYPE_BYTES[opts.activations];
    const stateBytes = cfg.nLayers * cfg.nHeads * cfg.keyDim * cfg.valueDim * 4; // S, f32
    const ws = retnetWorkspace(cfg, prefillChunkOf(opts.prefillChunk));
    return { maxContext: null, stateBytes, workspaceBytes: workspaceBytes(ws, act, cfg.hiddenSize, cfg.vocabSize), largestBufferBytes: largestSpec(ws, act) };
  },
  async load(gpu, raw, src, opts) {
    const cfg = parseRetNetConfig(raw);
    // maxContext (checked by loadModel) does not apply: the state is the same size at any length.
    const chunk = prefillChunkOf(opts.prefillChunk);
    const checked = checkRetNetCheckpoint(src, cfg);
    checkWorkspace(gpu, 'retnet', chunk, retnetWorkspace(cfg, chunk));
    const weights = await loadRetNetWeights(gpu, src, cfg, opts, checked);
    return buildOrFree(weights.all, () => new RetNetModel(gpu, cfg, weights, { prefillChunk: chunk }));
  },
};

/** The context a transformer's KV cache is sized for: maxContext, checked, or the model's own. */
function transformerContext(cfg: ReturnType<typeof parseTransformerConfig>, raw: Record<string, unknown>, asked: number | undefined): number {
  const maxContext = asked ?? cfg.maxPositionEmbeddings;
  if (!Number.isInteger(maxContext) || maxContext < 1) throw new Error(`loadModel: maxContext must be a positive integer, got ${asked}`);
  if (maxContext > cfg.maxPositionEmbeddings) {
    throw new Error(`loadModel: maxContext ${maxContext} exceeds the model's ${cfg.maxPositionEmbeddings} positions (max_position_embeddings${cfg.maxPositionEmbeddings < (raw.max_position_embeddings as number) ? ', capped by its sliding window' : ''})`);
  }
  return maxContext;
}

const specBytes = (s: BufferSpec, act: number) => s.shape.reduce((a, b) => a * b, 1) * (s.dtype ? DTYPE_BYTES[s.dtype] : act);
const largestSpec = (specs: Record<string, BufferSpec>, act: number) => Math.max(0, ...Object.values(specs).map((s) => specBytes(s, act)));

/** Bytes of a workspace and of the LM head's buffers. */
function workspaceBytes(specs: Record<string, BufferSpec>, act: number, D: number, V: number): number {
  let bytes = LmHead.bytes(D, V, act);
  for (const s of Object.values(specs)) bytes += specBytes(s, act);
  return bytes;
}

/** The experts of a projection are one 4-bit (E * rows, cols) binding: refuse, with the sizes, a stack that does not fit. */
type MoeConfig = NonNullable<ReturnType<typeof parseTransformerConfig>['moe']>;

/** Bytes of one projection's expert stack: 4-bit codes plus an f16 scale and minimum per group of 32, as the q4 format holds them. */
function expertStackBytes(moe: MoeConfig, D: number): number {
  return moe.nExperts * moe.expertSize * D * (0.5 + 4 / 32);
}

function checkExpertStacks(gpu: Gpu, moe: MoeConfig, D: number): void {
  const { nExperts: E, expertSize: I } = moe;
  const bytes = expertStackBytes(moe, D);
  if (bytes > gpu.maxBinding) {
    throw new TesseraError('WILL_NOT_FIT', `loadModel: the ${E} experts of one projection (${E} × (${I}, ${D}) at 4 bits, ${bytes} bytes) exceed this device's ${gpu.maxBinding}-byte binding`);
  }
}

/** Builds a model from loaded weights; if that throws, the weights are freed. */
function buildOrFree(weights: readonly Tensor[], build: () => LanguageModel): LanguageModel {
  try {
    return build();
  } catch (e) {
    for (const t of weights) t.dispose();
    throw e;
  }
}

// A Map, not an object: model_type "__proto__" or "constructor" must not find anything.
const FAMILIES = new Map<string, FamilyEntry>([
  ['llama', transformer],
  ['qwen2', transformer],
  ['mistral', transformer],
  ['mixtral', transformer],
  ['olmoe', transformer],
  ['qwen2_moe', transformer],
  ['granitemoe', transformer],
  ['mamba', mamba],
  ['retnet', retnet],
]);

export function familyFor(raw: Record<string, unknown>, file = 'config.json'): FamilyEntry {
  if (isStateSpacesMamba(raw)) return mamba;
  const type = raw.model_type;
  const entry = typeof type === 'string' ? FAMILIES.get(type) : undefined;
  if (!entry) {
    throw new Error(`${file}: model_type ${JSON.stringify(type ?? null)} is not supported (supported: ${[...FAMILIES.keys()].join(', ')})`);
  }
  return entry;
}

/** The tensors a config.json implies, by name, with their shapes: a checkpoint's layout from its config alone. */
export function checkpointTensorShapes(raw: Record<string, unknown>): Map<string, number[]> {
  return familyFor(raw).shapes(raw);
}
