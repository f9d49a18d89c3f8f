// The exported decoder (onnx_export.ts) run by onnxruntime-web: one session
// on one execution provider, prefill of a prompt, then greedy decoding one
// token a step with the past/present KV cache, timed. The same code runs in
// Node (WASM EP) and in a browser (WASM or WebGPU EP): the caller passes the
// onnxruntime-web module it imported (`onnxruntime-web` in Node,
// `onnxruntime-web/webgpu` in a page, with env.wasm.wasmPaths pointing at its
// dist/ folder), so this file imports only its types.
//
// What is counted as compilation: onnxruntime-web does not report shader
// compilations, so where the page has WebGPU (GPUDevice on globalThis) the
// runner counts calls to GPUDevice.createShaderModule and
// createComputePipeline(Async) made while the session is created and while it
// runs (pipelineCounter below; it counts any library's calls, so read deltas
// around one runtime's work). The WASM EP compiles nothing: null there.
// Warm-up is explicit: `warmup` prefill+decode runs of the same shapes before
// the timed one, counted in the result.

import type * as Ort from 'onnxruntime-web';

export type OrtModule = typeof Ort;
export type OrtEp = 'wasm' | 'webgpu';

/** What the runner needs to know of the graph (OnnxDecoder has these fields). */
export interface DecoderShape {
  nLayers: number;
  nKvHeads: number;
  headDim: number;
  vocabSize: number;
  maxPositions: number;
}

export interface OrtPeerOptions {
  ep: OrtEp;
  /** Sets ort.env.wasm.numThreads before the first session (WASM EP threads; the bench may want more than the tests). */
  numThreads?: number;
  /** WebGPU: keep present.* on the GPU between steps (default true); logits always come back to the CPU. */
  kvOnGpu?: boolean;
  /**
   * Log verbosely while the session is created, so onnxruntime prints which
   * EP each node was placed on (read them back with parsePlacement from the
   * console lines the host captured; runs still log at warning level).
   */
  logPlacement?: boolean;
}

/** Nodes per execution provider, from onnxruntime's verbose "Node placements" log. */
export type Placement = Record<string, { nodes: number; ops: Record<string, number> }>;

export interface CompileCount {
  shaderModules: number;
  pipelines: number;
}

export interface OrtGenerateResult {
  ep: OrtEp;
  /** The greedy tokens: the prefill's argmax, then one per decode step (`steps` in all). */
  tokens: number[];
  /** Logits of the prompt's tokens, (prompt length, V) row-major. */
  promptLogits: Float32Array;
  /** Logits the last token was chosen from, (V). */
  lastLogits: Float32Array;
  prefillMs: number;
  /** Wall time of all decode steps (steps - 1 of them). */
  decodeMs: number;
  prefillTokensPerS: number;
  decodeTokensPerS: number;
  /** Untimed runs of the same shapes before the timed one. */
  warmupRuns: number;
  /** Shader modules and pipelines created by session creation, by the warm-up, and by the timed run; null without WebGPU. */
  compiles: { session: CompileCount; warmup: CompileCount; timed: CompileCount } | null;
}

/** One onnxruntime-web session of an exported decoder, and its KV cache. */
export class OrtPeer {
  private past: { key: Ort.Tensor; value: Ort.Tensor }[] = [];
  /** Tokens in the KV cache. */
  position = 0;

  private constructor(
    private readonly ort: OrtModule,
    readonly session: Ort.InferenceSession,
    readonly shape: DecoderShape,
    readonly ep: OrtEp,
    /** Wall time of InferenceSession.create. */
    readonly createMs: number,
    readonly createCompiles: CompileCount | null,
  ) {
    this.reset();
  }

  /** Creates the session on `ep` from the model bytes. */
  static async create(ort: OrtModule, model: Uint8Array, shape: DecoderShape, options: OrtPeerOptions): Promise<OrtPeer> {
    if (!ort || typeof ort.InferenceSession?.create !== 'function') throw new Error('OrtPeer.create: ort must be the onnxruntime-web module (import * as ort from "onnxruntime-web")');
    if (!(model instanceof Uint8Array) || model.length === 0) throw new Error('OrtPeer.create: model must be the exported ONNX bytes (a non-empty Uint8Array)');
    for (const k of ['nLayers', 'nKvHeads', 'headDim', 'vocabSize', 'maxPositions'] as const) {
      if (!(Number.isInteger(shape?.[k]) && shape[k] > 0)) throw new Error(`OrtPeer.create: shape.${k} must be a positive integer, got ${JSON.stringify(shape?.[k])}`);
    }
    const { ep } = options;
    if (ep !== 'wasm' && ep !== 'webgpu') throw new Error(`OrtPeer.create: options.ep must be 'wasm' or 'webgpu', got ${JSON.stringify(ep)}`);
    if (ep === 'webgpu' && (typeof navigator === 'undefined' || !('gpu' in navigator))) {
      throw new Error("OrtPeer.create: the 'webgpu' EP needs a browser with navigator.gpu (onnxruntime-web's WebGPU EP does not run on Node's Dawn); use 'wasm' in Node");
    }
    if (options.numThreads !== undefined) ort.env.wasm.numThreads = options.numThreads;
    const kvOnGpu = ep === 'webgpu' && options.kvOnGpu !== false;
    const preferredOutputLocation: Record<string, 'gpu-buffer'> = {};
    if (kvOnGpu) for (let l = 0; l < shape.nLayers; l++) preferredOutputLocation[`present.${l}.key`] = preferredOutputLocation[`present.${l}.value`] = 'gpu-buffer';
    const before = pipelineCounter.snapshot();
    const t0 = performance.now();
    let session: Ort.InferenceSession;
    try {
      session = await ort.InferenceSession.create(model, {
        executionProviders: [ep],
        graphOptimizationLevel: 'all',
        ...(kvOnGpu ? { preferredOutputLocation } : {}),
        ...(options.logPlacement ? { logSeverityLevel: 0, logVerbosityLevel: 0 } : {}),
      });
    } catch (e) {
      throw new Error(`OrtPeer.create: onnxruntime-web (${ep} EP) refused the model: ${(e as Error).message ?? e}`);
    }
    const createMs = performance.now() - t0;
    return new OrtPeer(ort, session, shape, ep, createMs, pipelineCounter.delta(before));
  }

  /** Empties the KV cache. */
  reset(): void {
    for (const p of this.past) {
      p.key.dispose();
      p.value.dispose();
    }
    const { nLayers, nKvHeads, headDim } = this.shape;
    const empty = () => new this.ort.Tensor('float32', new Float32Array(0), [1, nKvHeads, 0, headDim]);
    this.past = Array.from({ length: nLayers }, () => ({ key: empty(), value: empty() }));
    this.position = 0;
  }

  /** Runs `tokens` after the cache (prefill when many, a decode step when one); returns their logits, (tokens, V). */
  async step(tokens: ArrayLike<number>): Promise<Float32Array> {
    const S = tokens.length;
    const { vocabSize: V, maxPositions, nLayers } = this.shape;
    if (S < 1) throw new Error('OrtPeer.step: tokens must hold at least one token id');
    for (let i = 0; i < S; i++) {
      if (!(Number.isInteger(tokens[i]) && tokens[i] >= 0 && tokens[i] < V)) throw new Error(`OrtPeer.step: tokens[${i}] = ${tokens[i]} is not a token id in [0, ${V})`);
    }
    if (this.position + S > maxPositions) throw new Error(`OrtPeer.step: ${this.position} + ${S} tokens exceed the graph's ${maxPositions}-position rotary cache`);
    const T = this.position + S;
    const { Tensor } = this.ort;
    const feeds: Record<string, Ort.Tensor> = {
      input_ids: new Tensor('int64', BigInt64Array.from({ length: S }, (_, i) => BigInt(tokens[i])), [1, S]),
      attention_mask: new Tensor('int64', new BigInt64Array(T).fill(1n), [1, T]),
      position_ids: new Tensor('int64', BigInt64Array.from({ length: S }, (_, i) => BigInt(this.position + i)), [1, S]),
    };
    for (let l = 0; l < nLayers; l++) {
      feeds[`past_key_values.${l}.key`] = this.past[l].key;
      feeds[`past_key_values.${l}.value`] = this.past[l].value;
    }
    const out = await this.session.run(feeds, { logSeverityLevel: 2 });
    const logits = (await out.logits.getData()) as Float32Array;
    out.logits.dispose();
    for (let l = 0; l < nLayers; l++) {
      this.past[l].key.dispose();
      this.past[l].value.dispose();
      this.past[l] = { key: out[`present.${l}.key`], value: out[`present.${l}.value`] };
    }
    this.position = T;
    if (logits.length !== S * V) throw new Error(`OrtPeer.step: logits hold ${logits.length} values, expected ${S} × ${V}`);
    return logits;
  }

  /**
   * Greedy generation of `steps` tokens after `prompt` from an empty cache:
   * `warmup` untimed runs of the same prefill and decode first (default 1).
   */
  async generate(prompt: ArrayLike<number>, steps: number, opts: { warmup?: number } = {}): Promise<OrtGenerateResult> {
    if (!(Number.isInteger(steps) && steps >= 1)) throw new Error(`OrtPeer.generate: steps must be a positive integer, got ${steps}`);
    const warmup = opts.warmup ?? 1;
    if (!(Number.isInteger(warmup) && warmup >= 0)) throw new Error(`OrtPeer.generate: warmup must be a non-negative integer, got ${warmup}`);
    const V = this.shape.vocabSize;
    const c0 = pipelineCounter.snapshot();
    for (let w = 0; w < warmup; w++) {
      this.reset();
      const l = await this.step(prompt);
      if (steps > 1) await this.step([argmax(l, l.length - V, V)]);
    }
    const c1 = pipelineCounter.snapshot();
    this.reset();
    let t = performance.now();
    const promptLogits = await this.step(prompt);
    const prefillMs = performance.now() - t;
    let last = promptLogits.subarray(promptLogits.length - V);
    const tokens = [argmax(last, 0, V)];
    t = performance.now();
    while (tokens.length < steps) {
      last = await this.step([tokens[tokens.length - 1]]);
      tokens.push(argmax(last, 0, V));
    }
    const decodeMs = performance.now() - t;
    const c2 = pipelineCounter.snapshot();
    const n = prompt.length;
    return {
      ep: this.ep,
      tokens,
      promptLogits,
      lastLogits: last,
      prefillMs,
      decodeMs,
      prefillTokensPerS: n / (prefillMs / 1000),
      decodeTokensPerS: steps > 1 ? (steps - 1) / (decodeMs / 1000) : NaN,
      warmupRuns: warmup,
      compiles: this.createCompiles && c0 && c1 && c2
        ? { session: this.createCompiles, warmup: diff(c1, c0), timed: diff(c2, c1) }
        : null,
    };
  }

  /** Frees the cache and the session. */
  async release(): Promise<void> {
    for (const p of this.past) {
      p.key.dispose();
      p.value.dispose();
    }
    this.past = [];
    await this.session.release();
  }
}

/**
 * Reads onnxruntime's verbose placement log (session_state.cc,
 * VerifyEachNodeIsAssignedToAnEp): "All nodes placed on [EP]. Number of
 * nodes: n", or per EP " Node(s) placed on [EP]. Number of nodes: n" followed
 * by one "  OpType (node name)" line per node. Null when the lines hold none.
 */
export function parsePlacement(lines: readonly string[]): Placement | null {
  const out: Placement = {};
  let current: Placement[string] | null = null;
  for (const text of lines) {
    for (const line of text.split('\n')) {
      const m = /placed on \[(\w+)\]\. Number of nodes: (\d+)/.exec(line);
      if (m) {
        current = out[m[1]] = { nodes: Number(m[2]), ops: {} };
        continue;
      }
      const node = /^\s{2,}([\w.]+) \(.*\)\s*$/.exec(line.replace(/^.*VerifyEachNodeIsAssignedToAnEp\]/, ''));
      if (node && current) current.ops[node[1]] = (current.ops[node[1]] ?? 0) + 1;
      else if (!/VerifyEachNodeIsAssignedToAnEp/.test(line)) current = null;
    }
  }
  return Object.keys(out).length ? out : null;
}

/** Index of the largest of row[offset .. offset + n) (first on ties, as torch.argmax). */
export function argmax(row: ArrayLike<number>, offset: number, n: number): number {
  let best = 0;
  for (let i = 1; i < n; i++) if (row[offset + i] > row[offset + best]) best = i;
  return best;
}

function diff(a: CompileCount, b: CompileCount): CompileCount {
  return { shaderModules: a.shaderModules - b.shaderModules, pipelines: a.pipelines - b.pipelines };
}

/**
 * Counts GPUDevice.createShaderModule and createComputePipeline(Async) calls
 * made by anyone in this realm, from the first snapshot() on (installed
 * lazily, once). Null where there is no WebGPU (Node without a browser).
 */
export const pipelineCounter = (() => {
  const count: CompileCount = { shaderModules: 0, pipelines: 0 };
  let installed = false;
  const install = (): boolean => {
    if (installed) return true;
    const Device = (globalThis as unknown as { GPUDevice?: { prototype: Record<string, unknown> } }).GPUDevice;
    if (typeof navigator === 'undefined' || !Device) return false;
    const wrap = (name: string, field: keyof CompileCount) => {
      const orig = Device.prototype[name];
      if (typeof orig !== 'function') return;
      Device.prototype[name] = function (this: unknown, ...args: unknown[]) {
        count[field]++;
        return (orig as (...a: unknown[]) => unknown).apply(this, args);
      };
    };
    wrap('createShaderModule', 'shaderModules');
    wrap('createComputePipeline', 'pipelines');
    wrap('createComputePipelineAsync', 'pipelines');
    installed = true;
    return true;
  };
  return {
    snapshot(): CompileCount | null {
      return install() ? { ...count } : null;
    },
    delta(before: CompileCount | null): CompileCount | null {
      const now = this.snapshot();
      return now && before ? diff(now, before) : null;
    },
  };
})();
