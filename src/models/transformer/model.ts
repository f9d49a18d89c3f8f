// The Llama-family decoder on the GPU (Hugging Face LlamaForCausalLM, and
// Qwen2 / Mistral with their biases), four visible things: config, weights
// (weights.ts), state (state.ts: the KV cache) and the forward pass below.
//
// Glossary: T tokens in this step, D hidden, H heads, Hkv KV heads, Dh head
// dim, I MLP width, V vocab, C the most tokens one prefill call takes.
//
// Per layer (modeling_llama.py LlamaDecoderLayer):
//   h  = x + o_proj(Attention(rope(q_proj(n)), rope(k_proj(n)), v_proj(n))),  n = RMSNorm(x)
//   x' = h + down_proj(silu(gate_proj(m)) * up_proj(m)),                      m = RMSNorm(h)
// then logits = lm_head(RMSNorm(x)).

import type { Gpu } from '../../runtime/gpu';
import type { Recorder } from '../../runtime/recorder';
import type { Tensor } from '../../runtime/tensor';
import { rmsnorm } from '../../kernels/rmsnorm';
import { rope, ropeInvFreq, ropeTable } from '../../kernels/rope';
import { swiglu } from '../../kernels/swiglu';
import { addInplace } from '../../kernels/add_inplace';
import { attnPrefill } from '../../kernels/attn_prefill';
import { attnDecode } from '../../kernels/attn_decode';
import { LmHead } from '../blocks/lm_head';
import { allocateWorkspace, prefillChunkOf, type BufferSpec, type Workspace } from '../blocks/workspace';
import { activationInfo, checkDecodeToken, checkPrefillTokens, type LanguageModel, type ModelInfo } from '../model';
import type { TransformerConfig } from './config';
import { TransformerState } from './state';
import type { TransformerWeights } from './weights';
import { llama3InvFreq } from './rope_scaling';

/** Scratch activations for up to C tokens, allocated once with the model. */
export function transformerWorkspace(cfg: TransformerConfig, C: number) {
  const { hiddenSize: D, nHeads: H, nKvHeads: Hkv, headDim: Dh, intermediateSize: I } = cfg;
  return {
    x: { shape: [C, D] },          // residual stream
    n: { shape: [C, D] },          // normed input / block output
    q: { shape: [C, H * Dh] },
    k: { shape: [C, Hkv * Dh] },
    v: { shape: [C, Hkv * Dh] },
    attn: { shape: [C, H * Dh] },
    gate: { shape: [C, I] },
    up: { shape: [C, I] },
    act: { shape: [C, I] },
    ids: { shape: [C], dtype: 'i32' },
    rope: { shape: [C, Dh / 2, 2], dtype: 'f32' }, // cos, sin per position and frequency
  } satisfies Record<string, BufferSpec>;
}

export interface TransformerOptions {
  /** Context length of states made by createState() without maxTokens. */
  maxContext: number;
  /** Most tokens one prefill call takes (longer prompts are split by the caller). */
  prefillChunk?: number;
}

export class TransformerModel implements LanguageModel<TransformerState> {
  readonly info: ModelInfo;
  private readonly ws: Workspace<keyof ReturnType<typeof transformerWorkspace>>;
  private readonly invFreq: Float32Array;
  private readonly head: LmHead;
  private disposed = false;

  constructor(readonly gpu: Gpu, readonly cfg: TransformerConfig, private readonly w: TransformerWeights, readonly opts: TransformerOptions) {
    const maxContext = Math.min(opts.maxContext, cfg.maxPositionEmbeddings);
    const chunk = prefillChunkOf(opts.prefillChunk, maxContext);
    this.invFreq = cfg.ropeScaling ? llama3InvFreq(ropeInvFreq(cfg.headDim, cfg.ropeTheta), cfg.ropeScaling) : ropeInvFreq(cfg.headDim, cfg.ropeTheta);
    // Allocated last, all or nothing: nothing above may throw once device memory is taken.
    [this.ws, this.head] = gpu.allOrNothing(() => {
      const ws = allocateWorkspace(gpu, 'transformer', chunk, transformerWorkspace(cfg, chunk));
      return [ws, new LmHead(gpu, w.norm, w.lmHead, cfg.rmsNormEps, chunk, 'transformer')] as const;
    });
    const { hiddenSize: D, nLayers: L, vocabSize: V, nHeads: H, nKvHeads: Hkv, headDim: Dh, intermediateSize: I } = cfg;
    const perLayer = D * H * Dh * 2 + D * Hkv * Dh * 2 + 3 * D * I + 2 * D;
    const total = V * D * (cfg.tieWordEmbeddings ? 1 : 2) + L * perLayer + D;
    this.info = {
      family: 'transformer',
      ffn: 'dense',
      modelType: cfg.modelType,
      vocabSize: V,
      nLayers: L,
      dModel: D,
      maxContext,
      params: { total, activePerToken: total },
      weightBytes: w.all.reduce((s, t) => s + t.byteLength, 0),
      weights: w.layers[0].gate.weight.dtype === 'q4' ? 'q4' : 'f32',
      embeddings: w.embed.dtype === 'q4' || w.embed.dtype === 'q8' ? w.embed.dtype : 'f32',
      ...activationInfo(gpu),
    };
  }

  /** Most tokens one prefill() call accepts. */
  get prefillChunk(): number {
    return this.ws.chunk;
  }

  get logitsRows(): number {
    return this.head.allRows;
  }

  createState(opts: { maxTokens?: number } = {}): TransformerState {
    this.assertLive('createState');
    const cap = opts.maxTokens ?? this.info.maxContext!;
    if (!Number.isInteger(cap) || cap < 1 || cap > this.info.maxContext!) {
      throw new Error(`createState: maxTokens ${cap} must be an integer in 1..${this.info.maxContext} (the model's context)`);
    }
    return new TransformerState(this.gpu, this.cfg, cap);
  }

  decode(rec: Recorder, state: TransformerState, token: number): Tensor {
    checkDecodeToken(token, this.cfg.vocabSize);
    return this.prefill(rec, state, Int32Array.of(token));
  }

  /** Records the forward pass of `tokens` (at most prefillChunk) after the state's position. */
  prefill(rec: Recorder, state: TransformerState, tokens: Int32Array, opts: { logits: 'last' | 'all' } = { logits: 'last' }): Tensor {
    this.assertLive('prefill');
    const T = tokens.length;
    const { hiddenSize: D, nHeads: H, nKvHeads: Hkv, headDim: Dh, intermediateSize: I, vocabSize: V } = this.cfg;
    checkPrefillTokens(tokens, this.ws.chunk, V);
    state.checkRoom(T);
    const pos0 = state.position;
    const ws = this.ws;
    const g = this.gpu;

    rec.write(ws.ids.view([T]), tokens);
    rec.write(ws.rope.view([T, Dh / 2, 2]), ropeTable(this.invFreq, pos0, T));

    const x = ws.x.view([T, D]);
    const n = ws.n.view([T, D]);
    const q = ws.q.view([T, H * Dh]);
    const k = ws.k.view([T, Hkv * Dh]);
    const v = ws.v.view([T, Hkv * Dh]);
    const attn = ws.attn.view([T, H * Dh]);
    const gate = ws.gate.view([T, I]);
    const up = ws.up.view([T, I]);
    const act = ws.act.view([T, I]);
    const table = ws.rope.view([T, Dh / 2, 2]);

    this.w.embed.lookup(rec, ws.ids.view([T]), x);

    for (let l = 0; l < this.cfg.nLayers; l++) {
      const lw = this.w.layers[l];
      // attention block
      rmsnorm(rec, x, lw.inputNorm, n, this.cfg.rmsNormEps);
      lw.q.forward(rec, n, q);
      lw.k.forward(rec, n, k);
      lw.v.forward(rec, n, v);
      rope(rec, q.view([T, H, Dh]), table, 'neox');
      rope(rec, k.view([T, Hkv, Dh]), table, 'neox');
      rec.copy(k, state.k[l].view([T, Hkv, Dh], pos0 * Hkv * Dh));
      rec.copy(v, state.v[l].view([T, Hkv, Dh], pos0 * Hkv * Dh));
      const qh = q.view([T, H, Dh]);
      const oh = attn.view([T, H, Dh]);
      if (T === 1) attnDecode(rec, qh, state.k[l], state.v[l], oh, { len: pos0 + 1 }, state.decodeScratch);
      else attnPrefill(rec, qh, state.k[l], state.v[l], oh, { pos0 });
      lw.o.forward(rec, attn, n);
      addInplace(rec, x, n);
      // MLP block
      rmsnorm(rec, x, lw.postNorm, n, this.cfg.rmsNormEps);
      lw.gate.forward(rec, n, gate);
      lw.up.forward(rec, n, up);
      swiglu(rec, gate, up, act);
      lw.down.forward(rec, act, n);
      addInplace(rec, x, n);
    }
    state.advance(T);

    return this.head.forward(rec, x, n, opts.logits);
  }

  /** Copies the KV cache rows in use and the position (a snapshot or a fork of a conversation). */
  copyState(rec: Recorder, from: TransformerState, to: TransformerState): void {
    this.assertLive('copyState');
    const n = from.position;
    if (n > to.capacity) throw new Error(`copyState: ${n} cached tokens do not fit a state of capacity ${to.capacity}`);
    if (n > 0) {
      const shape = [n, this.cfg.nKvHeads, this.cfg.headDim];
      for (let l = 0; l < this.cfg.nLayers; l++) {
        rec.copy(from.k[l].view(shape), to.k[l].view(shape));
        rec.copy(from.v[l].view(shape), to.v[l].view(shape));
      }
    }
    to.reset();
    to.advance(n);
  }

  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    this.ws.dispose();
    this.head.dispose();
    for (const t of this.w.all) t.dispose();
  }

  private assertLive(op: string): void {
    if (this.disposed) throw new Error(`${op}: the model was disposed`);
  }
}
