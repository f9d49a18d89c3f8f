// Tessera's public API.

export { loadModel } from './load';
export { estimateModel } from './estimate';
export type { EstimateOptions, ModelEstimate } from './estimate';
export { BUNDLED_MODELS, bundledModelUrl } from './bundled';
export type { BundledModelName } from './bundled';
export { LM } from './lm';
export { createEngine } from './engine/engine';
export type { Engine, EngineEstimateOptions, EngineLoadOptions, EngineMemory, EngineSource } from './engine/engine';
export { createWorkerEngine } from './engine/worker_engine';
export type { WorkerEngine, WorkerEngineOptions } from './engine/worker_engine';
export type * from './engine/openai';
export type { GenerationStats, StateSnapshot } from './lm';
export type { LoadModelOptions, GenerateOptions, Prompt, FetchFn } from './options';
export type { ModelInfo, ModelState, LanguageModel } from './models/model';
export type { EmbeddingMode, LoadProgress, WeightMode } from './models/loader/weights';
export type { SourceInput } from './models/loader/source';
export { listCachedModels, deleteCachedModel, MODEL_CACHE } from './models/loader/cache';
export type { CachedModel } from './models/loader/cache';

export { Gpu } from './runtime/gpu';
export { DeviceLostError, TesseraError, ERROR_CODES } from './runtime/errors';
export type { ErrorCode } from './runtime/errors';
export { requestDevice } from './runtime/device';
export type { DeviceReport, DeviceOptions } from './runtime/device';
export type { MemoryReport, MemoryCategory } from './runtime/ledger';
export { Tensor } from './runtime/tensor';
export type { DType } from './runtime/tensor';
export { Recorder } from './runtime/recorder';
export { Tokenizer } from './runtime/tokenizer';
export type { ChatMessage } from './runtime/tokenizer';
export { quantizeQ4, dequantizeQ4, Q4_GROUP_SIZES } from './runtime/q4';
export type { Q4Weights, Q4GroupSize } from './runtime/q4';
