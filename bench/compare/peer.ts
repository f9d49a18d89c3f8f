// The peers beside Tessera: onnxruntime-web, and transformers.js over it,
// running the preset's transformer weights (exported to ONNX with 4-bit
// MatMulNBits), and Tessera timed the same way on the same prompt and greedy
// decode length. runner.ts calls peerBeside for each column asked for.

import type { LanguageModel } from '../../src/models/model';
import { Recorder } from '../../src/runtime/recorder';
import { argmax } from '../../src/kernels/argmax';
import { ARCHS, type PresetEntry } from './presets';
import { randomCheckpoint } from './random_checkpoint';
import { OrtPeer, type OrtEp, type OrtModule } from '../peer/ort_runner';
import { tjsGenerate, type TjsDevice, type TjsModule } from '../peer/tjs_runner';
import { openSource, type SourceInput } from '../../src/models/loader/source';
import type { OnnxDecoder } from '../peer/onnx_export';
import type { CompareOptions } from './runner';

/**
 * A column of the comparison: onnxruntime-web on an execution provider
 * ('webgpu', 'wasm'), or transformers.js on a device ('transformers-webgpu'
 * and 'transformers-wasm' in a browser, 'transformers-cpu' in Node, where it
 * runs onnxruntime-node).
 */
export type PeerColumn = OrtEp | `transformers-${TjsDevice}`;
export const PEER_COLUMNS: readonly PeerColumn[] = ['webgpu', 'wasm', 'transformers-webgpu', 'transformers-wasm', 'transformers-cpu'];

/** The runtimes the host imported for the columns it asks for. */
export interface PeerModules {
  ort?: OrtModule;
  transformers?: TjsModule;
}

/** One generation's figures: prefill of the prompt to the first token, then greedy decode steps. */
export interface GenerationFigures {
  prefillTokensPerSecond: number;
  decodeTokensPerSecond: number;
  ttftMs: number;
  /** Shader modules and pipelines compiled from a cold start to the end of the warm-up (null where not counted). */
  compiles: { shaderModules: number; pipelines: number } | null;
}

/** A peer beside Tessera: the same weights (the preset's transformer), prompt and greedy decode length. */
export interface PeerSample {
  runtime: 'onnxruntime-web' | 'transformers.js';
  /** The execution provider (onnxruntime-web) or device (transformers.js). */
  ep: OrtEp | TjsDevice;
  prompt: number;
  decodeSteps: number;
  peer: GenerationFigures & { version: string; warmupRuns: number };
  tessera: GenerationFigures;
  /** Tessera's tokens/s over the peer's. */
  ratio: { prefill: number; decode: number };
}

/**
 * The peer of `column` and Tessera's `model` (the preset's transformer,
 * loaded from `entry`), each warmed up once, then timed on the same prompt
 * (the first prompt length) and the same number of greedy steps. The ONNX
 * graph holds the transformer's weights at 4 bits in onnxruntime's own
 * uint8-zero-point layout (which every EP takes; see peer/matmul_nbits.ts),
 * so both run the same model at the same width, each with its own rounding
 * of the weights. `compiles`: what Tessera's model compiled in the run so far.
 */
export async function peerBeside(model: LanguageModel, compiles: GenerationFigures['compiles'], entry: PresetEntry, opts: CompareOptions, column: PeerColumn, modules: PeerModules): Promise<PeerSample> {
  const n = opts.prompts[0];
  const steps = opts.decodeSteps + 1; // the prefill's token, then decodeSteps more
  const source = entry.kind === 'random' ? randomCheckpoint(entry.config, ARCHS.indexOf('transformer') + 1, entry.init) : opts.bundled(entry.name);
  // Imported here: the exporter's protobuf bindings are needed only for the peer (the GPU kit carries none).
  const { exportOnnxDecoder } = await import('../peer/onnx_export');
  const decoder = await exportOnnxDecoder(source, { weights: 'q4', maxPositions: n + steps });
  const prompt = Array.from({ length: n }, (_, i) => (i * 7919 + 11) % model.info.vocabSize);
  const tjsDevice = column.startsWith('transformers-') ? (column.slice('transformers-'.length) as TjsDevice) : null;
  const peer = tjsDevice ? await viaTransformers(modules, tjsDevice, decoder.bytes, source, prompt, steps) : await viaOnnxruntime(modules, column as OrtEp, decoder, prompt, steps);
  const tessera = await tesseraGeneration(model, Int32Array.from(prompt), steps, compiles);
  return {
    runtime: tjsDevice ? 'transformers.js' : 'onnxruntime-web',
    ep: tjsDevice ?? (column as OrtEp),
    prompt: n,
    decodeSteps: opts.decodeSteps,
    peer,
    tessera,
    ratio: { prefill: tessera.prefillTokensPerSecond / peer.prefillTokensPerSecond, decode: tessera.decodeTokensPerSecond / peer.decodeTokensPerSecond },
  };
}

type PeerFigures = PeerSample['peer'];

async function viaOnnxruntime(modules: PeerModules, ep: OrtEp, decoder: OnnxDecoder, prompt: number[], steps: number): Promise<PeerFigures> {
  const ort = modules.ort;
  if (!ort) throw new Error(`peer ${ep}: onnxruntime-web was not loaded`);
  const peer = await OrtPeer.create(ort, decoder.bytes, decoder, { ep });
  let r;
  try {
    r = await peer.generate(prompt, steps, { warmup: 1 });
  } finally {
    await peer.release();
  }
  const session = r.compiles?.session;
  const warm = r.compiles?.warmup;
  return {
    prefillTokensPerSecond: r.prefillTokensPerS,
    decodeTokensPerSecond: r.decodeTokensPerS,
    ttftMs: r.prefillMs,
    compiles: session && warm ? { shaderModules: session.shaderModules + warm.shaderModules, pipelines: session.pipelines + warm.pipelines } : null,
    version: String(ort.env.versions?.web ?? 'unknown'),
    warmupRuns: r.warmupRuns,
  };
}

async function viaTransformers(modules: PeerModules, device: TjsDevice, onnx: Uint8Array, source: SourceInput, prompt: number[], steps: number): Promise<PeerFigures> {
  const tjs = modules.transformers;
  if (!tjs) throw new Error(`peer transformers-${device}: transformers.js was not loaded`);
  const config = JSON.parse(await openSource(source).text('config.json')) as Record<string, unknown>;
  const r = await tjsGenerate(tjs, onnx, config, { device, dtype: 'q4', prompt, steps, warmup: 1 });
  return {
    prefillTokensPerSecond: r.prefillTokensPerS,
    decodeTokensPerSecond: r.decodeTokensPerS,
    ttftMs: r.prefillMs,
    compiles: r.compiles,
    version: r.version,
    warmupRuns: r.warmupRuns,
  };
}

/** Tessera on a prompt and `steps` greedy tokens, as the peer is timed: one warm-up, then the timed run. */
async function tesseraGeneration(model: LanguageModel, prompt: Int32Array, steps: number, compiles: GenerationFigures['compiles']): Promise<GenerationFigures> {
  const gpu = model.gpu;
  const token = gpu.empty([1], 'u32', 'bench.peer.token', 'scratch');
  const state = model.createState({ maxTokens: model.info.maxContext === null ? undefined : prompt.length + steps - 1 });
  try {
    const run = async () => {
      state.reset();
      const t0 = performance.now();
      let tok = 0;
      for (let i = 0; i < prompt.length; i += model.prefillChunk) {
        const rec = new Recorder(gpu, 'bench.peer.prefill');
        const logits = model.prefill(rec, state, prompt.subarray(i, Math.min(prompt.length, i + model.prefillChunk)));
        if (i + model.prefillChunk >= prompt.length) {
          argmax(rec, logits, token);
          tok = (await rec.submitAndRead(token))[0];
        } else await rec.submit();
      }
      const t1 = performance.now();
      for (let s = 1; s < steps; s++) {
        const rec = new Recorder(gpu, 'bench.peer.decode');
        argmax(rec, model.decode(rec, state, tok), token);
        tok = (await rec.submitAndRead(token))[0];
      }
      return { prefillMs: t1 - t0, decodeMs: performance.now() - t1 };
    };
    await run();
    const t = await run();
    return { prefillTokensPerSecond: prompt.length / (t.prefillMs / 1000), decodeTokensPerSecond: (steps - 1) / (t.decodeMs / 1000), ttftMs: t.prefillMs, compiles };
  } finally {
    state.dispose();
    token.dispose();
  }
}
