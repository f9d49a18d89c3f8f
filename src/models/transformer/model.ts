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
import { addInplace } from '../../kernels/add_inplace';
import { attnPrefill } from '../../kernels/attn_prefill';
import { attnDecode } from '../../kernels/attn_decode';
import { prefillChunkOf, type BufferSpec } from '../blocks/workspace';
import { BaseModel } from '../base_model';
import { feedForwardWorkspace } from '../blocks/feed_forward';
import type { TransformerConfig } from './config';
import { TransformerState } from './state';
import { transformerFeedForward, type TransformerWeights } from './weights';
import { llama3InvFreq } from './rope_scaling';

/** Scratch activations for up to C tokens, allocated once with the model. */
export function transformerWorkspace(cfg: TransformerConfig, C: number) {
  const { hiddenSize: D, nHeads: H, nKvHeads: Hkv, headDim: Dh } = cfg;
  const ffns = Array.from({ length: cfg.nLayers }, (_, l) => transformerFeedForward(cfg, l).spec);
  return {
    ...feedForwardWorkspace(ffns, C),
    ...((cfg.qkNorm ? { qk: { shape: [C, H * Dh] } } : {}) as Record<string, BufferSpec>), // q or k before OLMoE's norm
    x: { shape: [C, D] },          // residual stream
    n: { shape: [C, D] },          // normed input / block output
    q: { shape: [C, H * Dh] },
    k: { shape: [C, Hkv * Dh] },
    v: { shape: [C, Hkv * Dh] },
    attn: { shape: [C, H * Dh] },
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

export class TransformerModel extends BaseModel<TransformerState, keyof ReturnType<typeof transformerWorkspace> & string> {
  private readonly invFreq: Float32Array;

  constructor(gpu: Gpu, readonly cfg: TransformerConfig, private readonly w: TransformerWeights, opts: TransformerOptions) {
    const maxContext = Math.min(opts.maxContext, cfg.maxPositionEmbeddings);
    const chunk = prefillChunkOf(opts.prefillChunk, maxContext);
    const { hiddenSize: D, nLayers: L, vocabSize: V, nHeads: H, nKvHeads: Hkv, headDim: Dh } = cfg;
    const ffns = Array.from({ length: L }, (_, l) => transformerFeedForward(cfg, l).spec);
    const qkNorms = cfg.qkNorm ? H * Dh + Hkv * Dh : 0;
    const rest = V * D * (cfg.tieWordEmbeddings ? 1 : 2) + L * (D * H * Dh * 2 + D * Hkv * Dh * 2 + 2 * D + qkNorms) + D;
    const params = { total: rest + ffns.reduce((s, f) => s + f.params.total, 0), activePerToken: rest + ffns.reduce((s, f) => s + f.params.active, 0) };
    const ffn = ffns.some((f) => f.kind === 'moe') ? 'moe' : 'dense';
    super(gpu, {
      info: { family: 'transformer', ffn, modelType: cfg.modelType, vocabSize: V, nLayers: L, dModel: D, maxContext, params },
      weights: w.all,
      layerWeight: w.layers[0].q.weight,
      embed: w.embed,
      lmHead: w.lmHead,
      norm: w.norm,
      eps: cfg.rmsNormEps,
      workspace: transformerWorkspace(cfg, chunk),
      chunk,
    });
    this.invFreq = cfg.ropeScaling ? llama3InvFreq(ropeInvFreq(cfg.headDim, cfg.ropeTheta), cfg.ropeScaling) : ropeInvFreq(cfg.headDim, cfg.ropeTheta);
  }

  protected newState(opts: { maxTokens?: number }): TransformerState {
    const cap = opts.maxTokens ?? this.info.maxContext!;
    if (!Number.isInteger(cap) || cap < 1 || cap > this.info.maxContext!) {
      throw new Error(`createState: maxTokens ${cap} must be an integer in 1..${this.info.maxContext} (the model's context)`);
    }
    return new TransformerState(this.gpu, this.cfg, cap);
  }

  protected forward(rec: Recorder, state: TransformerState, ids: Tensor): { x: Tensor; scratch: Tensor } {
    const T = ids.shape[0];
    const { hiddenSize: D, nHeads: H, nKvHeads: Hkv, headDim: Dh } = this.cfg;
    const pos0 = state.position;
    const ws = this.ws;
    rec.write(ws.rope.view([T, Dh / 2, 2]), ropeTable(this.invFreq, pos0, T));

    const x = ws.x.view([T, D]);
    const n = ws.n.view([T, D]);
    const q = ws.q.view([T, H * Dh]);
    const k = ws.k.view([T, Hkv * Dh]);
    const v = ws.v.view([T, Hkv * Dh]);
    const attn = ws.attn.view([T, H * Dh]);
    const table = ws.rope.view([T, Dh / 2, 2]);

    this.embed.lookup(rec, ids, x);

    for (let l = 0; l < this.cfg.nLayers; l++) {
      const lw = this.w.layers[l];
      // attention block
      rmsnorm(rec, x, lw.inputNorm, n, this.cfg.rmsNormEps);
      if (lw.qNorm && lw.kNorm) {
        // OLMoE: one RMSNorm over each token's whole q and k rows, before rotary.
        const raw = this.scratch.qk;
        lw.q.forward(rec, n, raw.view([T, H * Dh]));
        rmsnorm(rec, raw.view([T, H * Dh]), lw.qNorm, q, this.cfg.rmsNormEps);
        lw.k.forward(rec, n, raw.view([T, Hkv * Dh]));
        rmsnorm(rec, raw.view([T, Hkv * Dh]), lw.kNorm, k, this.cfg.rmsNormEps);
      } else {
        lw.q.forward(rec, n, q);
        lw.k.forward(rec, n, k);
      }
      lw.v.forward(rec, n, v);
      rope(rec, q.view([T, H, Dh]), table, 'neox');
      rope(rec, k.view([T, Hkv, Dh]), table, 'neox');
      rec.copy(k, state.k[l].view([T, Hkv, Dh], pos0 * Hkv * Dh));
      rec.copy(v, state.v[l].view([T, Hkv, Dh], pos0 * Hkv * Dh));
      const qh = q.view([T, H, Dh]);
      const oh = attn.view([T, H, Dh]);
      const scale = this.cfg.multipliers.attention ?? undefined; // GraniteMoE's replaces 1/sqrt(Dh)
      if (T === 1) attnDecode(rec, qh, state.k[l], state.v[l], oh, { len: pos0 + 1, scale }, state.decodeScratch);
      else attnPrefill(rec, qh, state.k[l], state.v[l], oh, { pos0, scale });
      lw.o.forward(rec, attn, n);
      addInplace(rec, x, n);
      // feed-forward block
      rmsnorm(rec, x, lw.postNorm, n, this.cfg.rmsNormEps);
      lw.ffn.forward(rec, n, n, this.scratch);
      addInplace(rec, x, n);
    }
    return { x, scratch: n };
  }

  /** Copies the KV cache rows in use (a snapshot or a fork of a conversation). */
  protected copyContents(rec: Recorder, from: TransformerState, to: TransformerState): void {
    const n = from.position;
    if (n > to.capacity!) throw new Error(`copyState: ${n} cached tokens do not fit a state of capacity ${to.capacity}`);
    if (n === 0) return;
    const shape = [n, this.cfg.nKvHeads, this.cfg.headDim];
    for (let l = 0; l < this.cfg.nLayers; l++) {
      rec.copy(from.k[l].view(shape), to.k[l].view(shape));
      rec.copy(from.v[l].view(shape), to.v[l].view(shape));
    }
  }
}
