// The comparison harness: the same measurements for every architecture of a
// preset, through the model contract only (loadModel, LanguageModel, its
// states, the ledger), in Node or in a browser. Prefill tokens/s and time to
// first token per prompt length, decode tokens/s per context length (reached
// with ModelState.skip), device memory by category at each context, and the
// decode roofline: the bytes a token must read over the bandwidth of a copy
// kernel measured in the same run. Architectures are timed in turns at each
// size, repeat after repeat, so drift in the machine's load hits all alike;
// the median of the repeats is reported with their spread. A failure (a
// context the device cannot hold, a model that does not load) is recorded
// and the run goes on. The two timings are timing.ts's; the peers
// (onnxruntime-web, transformers.js) beside the transformer are peer.ts's.

import type { Gpu } from '../../src/runtime/gpu';
import { openSource, type SourceInput } from '../../src/models/loader/source';
import type { LanguageModel, ModelState } from '../../src/models/model';
import type { MemoryCategory } from '../../src/runtime/ledger';
import { loadModel } from '../../src/load';
import { Recorder } from '../../src/runtime/recorder';
import { copyBandwidth } from '../harness';
import { ARCHS, PRESETS, withLayers, type Arch, type PresetEntry } from './presets';
import { randomCheckpoint } from './random_checkpoint';
import { peerBeside, type PeerColumn, type PeerModules, type PeerSample } from './peer';
import { timeDecode, timePrefill } from './timing';

export type { GenerationFigures, PeerColumn, PeerSample } from './peer';

export interface CompareOptions {
  preset: string;
  archs: readonly Arch[];
  prompts: readonly number[];
  contexts: readonly number[];
  /** Timed runs per figure (after one warm-up). */
  repeats: number;
  /** Decode steps per timed run. */
  decodeSteps: number;
  /** Cut random presets to this many layers. */
  layers?: number;
  /** Or cut each random preset to this fraction of its layers (presets.ts withLayers). */
  depth?: number;
  /** Also time each kernel of one prefill (the first prompt length, one chunk at most) and one decode step (at the first context). */
  profile?: boolean;
  /**
   * The peers: onnxruntime-web and transformers.js (the modules the host
   * imported) in these columns, running the preset's transformer weights
   * exported to ONNX with 4-bit MatMulNBits, for the first prompt length and
   * decodeSteps greedy steps, beside Tessera on the same prompt and steps.
   */
  peer?: PeerModules & { columns: readonly PeerColumn[] };
  /** Where a bundled model's files are (a folder in Node, a URL in a browser). */
  bundled: (name: string) => SourceInput;
}

export interface Progress {
  stage: string;
  done: number;
  total: number;
  elapsedMs: number;
  /** Estimated time left, from the pace so far; null before the first step. */
  etaMs: number | null;
}

/** Where the harness reports as it goes: the terminal, a file, a page. */
export interface Sink {
  progress(p: Progress): void;
  note(text: string): void;
  /** The results so far, after each length is measured for every architecture (a page redraws its charts). */
  update?(results: CompareResults): void;
}

export interface ModelRecord {
  arch: Arch;
  what: string;
  modelType: string;
  family: string;
  params: { total: number; activePerToken: number };
  weightBytes: number;
  expertBytes: number;
  /** Fraction of the expert bytes one token reads (k / E); 0 without experts. */
  expertFraction: number;
  /** Bytes of state per token held (a KV cache), or null for a fixed-size state. */
  stateBytesPerToken: number | null;
  /** Bytes of a fixed-size (recurrent) state, or null. */
  stateBytesFixed: number | null;
  /** Bytes of the workspace (activations and scratch) the model keeps. */
  workspaceBytes: number;
  maxContext: number | null;
  loadSeconds: number;
  /** Shader modules and pipelines its first prefill and first decode step compiled (the device's cache is shared: later architectures reuse what earlier ones compiled). */
  compiles: { shaderModules: number; pipelines: number };
}

export interface Sample {
  arch: Arch;
  metric: 'prefill' | 'decode';
  /** Prompt length (prefill) or context length (decode). */
  tokens: number;
  /** Seconds of each timed run: a whole prompt, or one decode step. */
  seconds: number[];
  tokensPerSecond: number;
  /** (max - min) / median of the runs' tokens/s. */
  spread: number;
  /** Prefill: time to first token, the prompt through to the first token read back (ms, median). */
  ttftMs?: number;
}

export interface MemorySample {
  arch: Arch;
  context: number;
  bytes: { weights: number; experts: number; state: number; workspace: number; peak: number };
}

export interface RooflineSample {
  arch: Arch;
  context: number;
  bytesPerToken: number;
  boundTokensPerSecond: number;
  achievedTokensPerSecond: number;
  fraction: number;
}

/** GPU time per op of one step, summed over its dispatches. */
export interface Profile {
  arch: Arch;
  phase: 'prefill' | 'decode';
  tokens: number;
  /** 'timestamps': GPU timestamp queries; 'host': each dispatch submitted alone and timed around a wait. */
  method: 'timestamps' | 'host';
  ops: { op: string; calls: number; ms: number }[];
  totalMs: number;
}

export interface Failure {
  arch: Arch;
  stage: string;
  tokens?: number;
  message: string;
}

export interface CompareResults {
  schema: 1;
  preset: string;
  options: Omit<CompareOptions, 'bundled' | 'peer'> & { peer?: readonly PeerColumn[] };
  copyBandwidthBytesPerSecond: number;
  models: ModelRecord[];
  samples: Sample[];
  memory: MemorySample[];
  roofline: RooflineSample[];
  profiles: Profile[];
  peers: PeerSample[];
  failures: Failure[];
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor((xs.length - 1) / 2)];
const message = (e: unknown) => (e instanceof Error ? e.message : String(e));

export function checkCompareOptions(o: CompareOptions): void {
  if (!Object.hasOwn(PRESETS, o.preset)) throw new Error(`bench: unknown preset '${o.preset}' (presets: ${Object.keys(PRESETS).join(', ')})`);
  for (const a of o.archs) if (!(ARCHS as readonly string[]).includes(a)) throw new Error(`bench: unknown architecture '${a}' (architectures: ${ARCHS.join(', ')})`);
  for (const [name, xs] of [['prompt', o.prompts], ['context', o.contexts]] as const) {
    for (const n of xs) if (!(Number.isSafeInteger(n) && n >= 1)) throw new Error(`bench: a ${name} length must be a positive whole number of tokens, got ${n}`);
  }
  if (!(Number.isSafeInteger(o.repeats) && o.repeats >= 1)) throw new Error(`bench: repeats must be at least 1, got ${o.repeats}`);
  if (!(Number.isSafeInteger(o.decodeSteps) && o.decodeSteps >= 1)) throw new Error(`bench: decode steps must be at least 1, got ${o.decodeSteps}`);
}

interface Loaded {
  arch: Arch;
  model: LanguageModel;
  dispose(): void;
  record: ModelRecord;
}

/** Loads one architecture of the preset, counting what it added to the ledger. */
async function load(gpu: Gpu, arch: Arch, entry: PresetEntry, opts: CompareOptions, maxContext: number): Promise<Loaded> {
  const before = gpu.ledger.report().bytes;
  const t0 = performance.now();
  const source = entry.kind === 'random' ? randomCheckpoint(entry.config, ARCHS.indexOf(arch) + 1, entry.init) : opts.bundled(entry.name);
  const config = entry.kind === 'random' ? entry.config : (JSON.parse(await openSource(source).text('config.json')) as Record<string, unknown>);
  // A KV cache is sized at load: as long as the longest case, within what the model allows.
  const lm = await loadModel(source, { device: gpu, maxContext, prefillChunk: 512 });
  const after = gpu.ledger.report().bytes;
  const added = (c: MemoryCategory) => after[c] - before[c];
  const model = lm.model;
  const probe = model.createState({ maxTokens: model.info.maxContext === null ? undefined : 2 });
  const fixed = model.info.maxContext === null;
  const stateBytes = probe.bytes;
  probe.dispose();
  // Of the experts, a token reads k of E (Mixtral's and Granite's keys, then OLMoE's and Qwen2-MoE's).
  const k = Number(config.num_experts_per_tok);
  const E = Number(config.num_local_experts ?? config.num_experts);
  return {
    arch,
    model,
    dispose: () => lm.dispose(),
    record: {
      arch,
      what: entry.what,
      modelType: model.info.modelType,
      family: model.info.family,
      params: model.info.params,
      weightBytes: model.info.weightBytes,
      expertBytes: added('experts'),
      expertFraction: added('experts') === 0 ? 0 : k / E,
      stateBytesPerToken: fixed ? null : stateBytes / 2,
      stateBytesFixed: fixed ? stateBytes : null,
      workspaceBytes: added('activations') + added('scratch'),
      maxContext: model.info.maxContext,
      loadSeconds: (performance.now() - t0) / 1000,
      compiles: { shaderModules: 0, pipelines: 0 },
    },
  };
}

export async function runCompare(gpu: Gpu, opts: CompareOptions, sink: Sink): Promise<CompareResults> {
  checkCompareOptions(opts);
  const started = performance.now();
  const results: CompareResults = {
    schema: 1,
    preset: opts.preset,
    options: { preset: opts.preset, archs: opts.archs, prompts: opts.prompts, contexts: opts.contexts, repeats: opts.repeats, decodeSteps: opts.decodeSteps, layers: opts.layers, depth: opts.depth, profile: opts.profile, peer: opts.peer?.columns },
    copyBandwidthBytesPerSecond: 0,
    models: [],
    samples: [],
    memory: [],
    roofline: [],
    profiles: [],
    peers: [],
    failures: [],
  };
  // Progress counts timed runs (warm-ups included) and loads.
  const total = opts.archs.length * (1 + (opts.prompts.length + opts.contexts.length) * (opts.repeats + 1)) + 1 + (opts.peer?.columns.length ?? 0);
  let done = 0;
  const step = (stage: string) => {
    done++;
    const elapsedMs = performance.now() - started;
    sink.progress({ stage, done, total, elapsedMs, etaMs: done > 0 ? (elapsedMs / done) * (total - done) : null });
  };

  results.copyBandwidthBytesPerSecond = await copyBandwidth(gpu, opts.repeats);
  step('copy bandwidth');
  const longest = Math.max(...opts.contexts, ...opts.prompts) + opts.decodeSteps; // a prompt then decodeSteps (the peer's case), or a context then its steps
  const loaded: Loaded[] = [];
  try {
    for (const arch of opts.archs) {
      const entry = withLayers(PRESETS[opts.preset][arch], opts.layers, opts.depth);
      try {
        const l = await loadAtMost(gpu, arch, entry, opts, longest, results.failures);
        loaded.push(l);
        results.models.push(l.record);
        sink.note(`${arch}: ${l.record.what}; ${(l.record.params.total / 1e6).toFixed(2)} M parameters (${(l.record.params.activePerToken / 1e6).toFixed(2)} M active), ${(l.record.weightBytes / 2 ** 20).toFixed(1)} MiB of weights, loaded in ${l.record.loadSeconds.toFixed(1)} s`);
      } catch (e) {
        results.failures.push({ arch, stage: 'load', message: message(e) });
        sink.note(`${arch}: not loaded: ${message(e)}`);
      }
      step(`load ${arch}`);
    }
    const token = gpu.empty([1], 'u32', 'bench.token', 'scratch');
    try {
      for (const n of opts.prompts) {
        const times = new Map<Arch, number[]>();
        for (let r = 0; r <= opts.repeats; r++) {
          for (const l of loaded) {
            if (results.failures.some((f) => f.arch === l.arch && f.tokens === n && f.stage === 'prefill')) continue;
            try {
              const before = gpu.compiled;
              const t = await timePrefill(l.model, token, n);
              countCompiles(l.record, before, gpu.compiled);
              if (r > 0) times.set(l.arch, [...(times.get(l.arch) ?? []), t]); // r = 0: the warm-up
            } catch (e) {
              results.failures.push({ arch: l.arch, stage: 'prefill', tokens: n, message: message(e) });
            }
            step(`prefill ${n} tokens, ${l.arch}${r === 0 ? ' (warm-up)' : ''}`);
          }
        }
        for (const [arch, secs] of times) {
          const tps = secs.map((s) => n / s);
          results.samples.push({ arch, metric: 'prefill', tokens: n, seconds: secs, tokensPerSecond: median(tps), spread: (Math.max(...tps) - Math.min(...tps)) / median(tps), ttftMs: median(secs) * 1000 });
        }
        sink.update?.(results);
      }
      for (const ctx of opts.contexts) {
        const times = new Map<Arch, number[]>();
        const states = new Map<Arch, ModelState>();
        try {
          for (const l of loaded) {
            if (l.record.maxContext !== null && ctx + opts.decodeSteps > l.record.maxContext) {
              results.failures.push({ arch: l.arch, stage: 'decode', tokens: ctx, message: `context ${ctx} is past the ${l.record.maxContext} tokens this device holds for it` });
              continue;
            }
            const before = gpu.ledger.report();
            gpu.ledger.resetPeak();
            try {
              const state = l.model.createState({ maxTokens: l.record.maxContext === null ? undefined : ctx + opts.decodeSteps });
              states.set(l.arch, state);
              const compiled = gpu.compiled;
              await timeDecode(l.model, state, token, ctx, 1); // touch the state once: its peak is counted; the warm-up
              countCompiles(l.record, compiled, gpu.compiled);
              const peak = gpu.ledger.report().peakTotal - (before.total - staticBytes(l.record));
              results.memory.push({ arch: l.arch, context: ctx, bytes: { weights: l.record.weightBytes - l.record.expertBytes, experts: l.record.expertBytes, state: state.bytes, workspace: l.record.workspaceBytes, peak } });
            } catch (e) {
              results.failures.push({ arch: l.arch, stage: 'decode', tokens: ctx, message: message(e) });
            }
          }
          for (let r = 0; r <= opts.repeats; r++) {
            for (const l of loaded) {
              const state = states.get(l.arch);
              if (!state) continue;
              try {
                const t = await timeDecode(l.model, state, token, ctx, opts.decodeSteps);
                if (r > 0) times.set(l.arch, [...(times.get(l.arch) ?? []), t]);
              } catch (e) {
                results.failures.push({ arch: l.arch, stage: 'decode', tokens: ctx, message: message(e) });
                states.delete(l.arch);
              }
              step(`decode at ${ctx}, ${l.arch}${r === 0 ? ' (warm-up)' : ''}`);
            }
          }
        } finally {
          for (const s of states.values()) s.dispose();
        }
        for (const [arch, secs] of times) {
          const tps = secs.map((s) => 1 / s);
          const sample: Sample = { arch, metric: 'decode', tokens: ctx, seconds: secs, tokensPerSecond: median(tps), spread: (Math.max(...tps) - Math.min(...tps)) / median(tps) };
          results.samples.push(sample);
          const rec = results.models.find((m) => m.arch === arch)!;
          const bytesPerToken = decodeBytes(rec, ctx);
          const bound = results.copyBandwidthBytesPerSecond / bytesPerToken;
          results.roofline.push({ arch, context: ctx, bytesPerToken, boundTokensPerSecond: bound, achievedTokensPerSecond: sample.tokensPerSecond, fraction: sample.tokensPerSecond / bound });
        }
        sink.update?.(results);
      }
      const transformer = loaded.find((l) => l.arch === 'transformer');
      if (opts.peer && transformer) {
        const entry = withLayers(PRESETS[opts.preset].transformer, opts.layers, opts.depth);
        for (const column of opts.peer.columns) {
          try {
            results.peers.push(await peerBeside(transformer.model, transformer.record.compiles, entry, opts, column, opts.peer));
          } catch (e) {
            results.failures.push({ arch: 'transformer', stage: `peer ${column}`, tokens: opts.prompts[0], message: message(e) });
          }
          step(`peer ${column} beside the transformer`);
          sink.update?.(results);
        }
      } else if (opts.peer) results.failures.push({ arch: 'transformer', stage: 'peer', message: 'the peers run the transformer, which is not among the architectures' });
      if (opts.profile) {
        for (const l of loaded) {
          try {
            results.profiles.push(...(await profileSteps(l, Math.min(opts.prompts[0], l.model.prefillChunk), opts.contexts[0])));
          } catch (e) {
            results.failures.push({ arch: l.arch, stage: 'profile', message: message(e) });
          }
          sink.update?.(results);
        }
      }
    } finally {
      token.dispose();
    }
  } finally {
    for (const l of loaded) l.dispose();
  }
  return results;
}

/** One prefill of `n` tokens and one decode step at context `ctx`, each dispatch timed, grouped by op, largest first. */
async function profileSteps(l: Loaded, n: number, ctx: number): Promise<Profile[]> {
  const { model } = l;
  const fixed = model.info.maxContext === null;
  const state = model.createState({ maxTokens: fixed ? undefined : Math.max(n, ctx) });
  try {
    const out: Profile[] = [];
    for (const phase of ['prefill', 'decode'] as const) {
      state.reset();
      const rec = new Recorder(model.gpu, `bench.profile.${phase}`);
      if (phase === 'prefill') model.prefill(rec, state, Int32Array.from({ length: n }, (_, i) => (i * 7919 + 11) % model.info.vocabSize));
      else {
        state.skip(ctx - 1);
        model.decode(rec, state, 1);
      }
      const { method, times } = await rec.submitProfiled();
      const byOp = new Map<string, { op: string; calls: number; ms: number }>();
      for (const t of times) {
        const e = byOp.get(t.op) ?? { op: t.op, calls: 0, ms: 0 };
        e.calls++;
        e.ms += t.ms;
        byOp.set(t.op, e);
      }
      const ops = [...byOp.values()].sort((a, b) => b.ms - a.ms);
      out.push({ arch: l.arch, phase, tokens: phase === 'prefill' ? n : ctx, method, ops, totalMs: ops.reduce((s, o) => s + o.ms, 0) });
    }
    return out;
  } finally {
    state.dispose();
  }
}

function countCompiles(r: ModelRecord, before: ModelRecord['compiles'], after: ModelRecord['compiles']): void {
  r.compiles.shaderModules += after.shaderModules - before.shaderModules;
  r.compiles.pipelines += after.pipelines - before.pipelines;
}

/** A model's bytes that do not depend on the context: weights and workspace (its handle's own state aside). */
const staticBytes = (r: ModelRecord) => r.weightBytes + r.workspaceBytes;

/**
 * Bytes one decode step must read at context `ctx`: every weight but the
 * experts once (the tied embedding once, as the LM head), the routed share of
 * the experts, and the state: the KV cache's rows so far, or the recurrent state.
 */
export function decodeBytes(r: ModelRecord, ctx: number): number {
  const weights = r.weightBytes - r.expertBytes + r.expertBytes * r.expertFraction;
  return weights + (r.stateBytesPerToken !== null ? r.stateBytesPerToken * ctx : (r.stateBytesFixed ?? 0));
}

/**
 * Loads an architecture with a KV cache for `longest` tokens, or, where the
 * device cannot hold that, for the longest context of the run that fits (the
 * wall is recorded as a failure at the contexts past it).
 */
async function loadAtMost(gpu: Gpu, arch: Arch, entry: PresetEntry, opts: CompareOptions, longest: number, failures: Failure[]): Promise<Loaded> {
  const tries = [longest, ...[...opts.contexts].sort((a, b) => b - a).map((c) => c + opts.decodeSteps).filter((c) => c < longest)];
  let first: unknown = null;
  for (const maxContext of tries) {
    try {
      const l = await load(gpu, arch, entry, opts, maxContext);
      if (first !== null) failures.push({ arch, stage: 'load', tokens: longest, message: `a ${longest}-token context does not fit: ${message(first)}` });
      return l;
    } catch (e) {
      first ??= e;
      // Only a context too long for the device or the model is worth a shorter try.
      if (!/maxContext|KV cache|exceeds|out of memory/i.test(message(e))) throw e;
    }
  }
  throw first;
}
