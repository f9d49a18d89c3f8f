// RetNet (Sun et al. 2023) on the GPU, as flash-linear-attention computes its
// RetNetForCausalLM (fla/models/retnet/modeling_retnet.py,
// fla/layers/multiscale_retention.py): config, weights (weights.ts), state
// (state.ts: S per layer and head) and the forward pass below.
//
// Glossary: T tokens in this step, D hidden, H heads, Dk and Dv the key and
// value dims per head, I MLP width, V vocab, C the most tokens one prefill
// call takes; S (Dk, Dv) the retention state of a head, γ_h its decay.
//
// Per layer (RetNetBlock.forward):
//   n = RMSNorm(x);  q, k = rotary(q_proj(n)), rotary(k_proj(n));  v, g = v_proj(n), g_proj(n)
//   o = Retention(q, k, v) per head,  S_t = γ_h S_{t-1} + k_tᵀ v_t,  o_t = Dk^-0.5 q_t S_t
//   h = x + o_proj(RMSNorm_head(o) * swish(g))        per head over its Dv values, one shared weight
//   x' = h + down_proj(silu(gate_proj(m)) * up_proj(m)),  m = RMSNorm(h)
// then logits = lm_head(RMSNorm(x)).

import type { Gpu } from '../../runtime/gpu';
import type { Recorder } from '../../runtime/recorder';
import type { Tensor } from '../../runtime/tensor';
import { rmsnorm } from '../../kernels/rmsnorm';
import { rope, ropeInvFreq, ropeTable } from '../../kernels/rope';
import { swiglu } from '../../kernels/swiglu';
import { addInplace } from '../../kernels/add_inplace';
import { retentionRecurrent } from '../../kernels/retention_recurrent';
import { retentionParallel } from '../../kernels/retention_parallel';
import { retentionChunkwise, retentionChunkwiseScratchShape } from '../../kernels/retention_chunkwise';
import { prefillChunkOf, type BufferSpec } from '../blocks/workspace';
import { BaseModel } from '../base_model';
import { DenseFeedForward, feedForwardWorkspace } from '../blocks/feed_forward';
import type { RetNetConfig } from './config';
import { RetNetState } from './state';
import type { RetNetWeights } from './weights';

/** fla's RotaryEmbedding base: fixed, not a config key. */
const ROPE_BASE = 10000;

/**
 * Longest prompt part that takes the parallel form; longer ones take the
 * chunkwise form (linear in length), one token the recurrent form. Set from
 * the crossover on SwiftShader via Dawn (2-core CPU, shared), first with the
 * earlier whole-model bench (1 layer of the hidden-768 shape: parallel ahead
 * up to 128 tokens, chunkwise from 192), then with the kernels alone at that
 * model's heads (`npm run bench -- --suite retention`: parallel 1755 ms vs
 * chunkwise 1764 ms at 128 tokens, 1508 vs 1215 ms at 192; another run had
 * chunkwise 1.11× ahead at 128). The forms differ by up to ~10% through
 * ~128 tokens, within the noise of that shared machine (bench/RESULTS.md);
 * a GPU may put the crossover elsewhere (by work alone it is near the chunk, 64).
 */
export const RETNET_PARALLEL_MAX_T = 128;

/** γ_h = 1 - 2^(-5-h), as fla builds it (fla/ops/retention: g_gamma = log(1 - 2^(-5 - arange(H)))). */
export function retnetDecays(H: number): Float32Array {
  return Float32Array.from({ length: H }, (_, h) => 1 - 2 ** (-5 - h));
}

/** Parameters of the checkpoint: 1,351,727,104 for fla-hub/retnet-1.3B-100B. */
export function retnetParamCount(cfg: RetNetConfig): number {
  const { hiddenSize: D, nHeads: H, keyDim: Dk, valueDim: Dv, intermediateSize: I, vocabSize: V, nLayers: L } = cfg;
  const perLayer = 2 * D + 2 * H * Dk * D + 3 * H * Dv * D + Dv + new DenseFeedForward(D, I).params.total;
  return V * D * (cfg.tieWordEmbeddings ? 1 : 2) + L * perLayer + D;
}

/** Scratch activations for up to C tokens, allocated once with the model. */
export function retnetWorkspace(cfg: RetNetConfig, C: number) {
  const { hiddenSize: D, nHeads: H, keyDim: Dk, valueDim: Dv } = cfg;
  return {
    ...feedForwardWorkspace([new DenseFeedForward(D, cfg.intermediateSize)], C),
    x: { shape: [C, D] },             // residual stream
    n: { shape: [C, D] },             // normed input / block output
    q: { shape: [C, H * Dk] },
    k: { shape: [C, H * Dk] },
    v: { shape: [C, H * Dv] },
    g: { shape: [C, H * Dv] },        // output gate
    o: { shape: [C, H * Dv] },        // retention output, then the gated heads
    normed: { shape: [C, H * Dv] },   // per-head normed output
    ids: { shape: [C], dtype: 'i32' },
    rope: { shape: [C, Dk / 2, 2], dtype: 'f32' }, // cos, sin per position and frequency
    decay: { shape: [H], dtype: 'f32', category: 'weights' }, // γ per head, written once
    chunks: { shape: retentionChunkwiseScratchShape(C, H, Dk, Dv), dtype: 'f32', category: 'scratch' }, // chunk start states
  } satisfies Record<string, BufferSpec>;
}

export interface RetNetOptions {
  /** Most tokens one prefill call takes (longer prompts are split by the caller). */
  prefillChunk?: number;
  /** The form a prompt of several tokens takes: by its length (default), or always one (the benchmark's crossover). */
  form?: 'auto' | 'parallel' | 'chunkwise';
}

export class RetNetModel extends BaseModel<RetNetState, keyof ReturnType<typeof retnetWorkspace> & string> {
  private readonly invFreq: Float32Array;
  private readonly form: NonNullable<RetNetOptions['form']>;

  constructor(gpu: Gpu, readonly cfg: RetNetConfig, private readonly w: RetNetWeights, opts: RetNetOptions = {}) {
    const chunk = prefillChunkOf(opts.prefillChunk);
    const { hiddenSize: D, nHeads: H, keyDim: Dk, valueDim: Dv, vocabSize: V, nLayers: L } = cfg;
    const total = retnetParamCount(cfg);
    super(gpu, {
      info: { family: 'retnet', ffn: 'dense', modelType: 'retnet', vocabSize: V, nLayers: L, dModel: D, maxContext: null, params: { total, activePerToken: total } },
      weights: w.all,
      layerWeight: w.layers[0].o.weight,
      embed: w.embed,
      lmHead: w.lmHead,
      norm: w.norm,
      eps: cfg.normEps,
      workspace: retnetWorkspace(cfg, chunk),
      chunk,
    });
    gpu.write(this.ws.decay, retnetDecays(H));
    this.invFreq = ropeInvFreq(Dk, ROPE_BASE);
    this.form = opts.form ?? 'auto';
  }

  /** A zeroed state; maxTokens does not apply (the state does not grow). */
  protected newState(): RetNetState {
    return new RetNetState(this.gpu, this.cfg);
  }

  protected forward(rec: Recorder, state: RetNetState, ids: Tensor): { x: Tensor; scratch: Tensor } {
    const T = ids.shape[0];
    const { hiddenSize: D, nHeads: H, keyDim: Dk, valueDim: Dv, normEps: eps } = this.cfg;
    const ws = this.ws;
    rec.write(ws.rope.view([T, Dk / 2, 2]), ropeTable(this.invFreq, state.position, T));

    const x = ws.x.view([T, D]);
    const n = ws.n.view([T, D]);
    const q = ws.q.view([T, H, Dk]);
    const k = ws.k.view([T, H, Dk]);
    const v = ws.v.view([T, H, Dv]);
    const g = ws.g.view([T, H * Dv]);
    const o = ws.o.view([T, H, Dv]);
    const normed = ws.normed.view([T, H * Dv]);
    const table = ws.rope.view([T, Dk / 2, 2]);
    const flat = (t: Tensor, cols: number) => t.view([T, cols]);

    this.embed.lookup(rec, ids, x);

    for (let l = 0; l < this.cfg.nLayers; l++) {
      const lw = this.w.layers[l];
      // retention block
      rmsnorm(rec, x, lw.attnNorm, n, eps);
      lw.q.forward(rec, n, flat(q, H * Dk));
      lw.k.forward(rec, n, flat(k, H * Dk));
      lw.v.forward(rec, n, flat(v, H * Dv));
      lw.g.forward(rec, n, g);
      rope(rec, q, table, 'neox');
      rope(rec, k, table, 'neox');
      const args = { q, k, v, decay: ws.decay, state: state.S[l], out: o, scale: 1 / Math.sqrt(Dk) };
      const form = T === 1 ? 'recurrent' : this.form !== 'auto' ? this.form : T <= RETNET_PARALLEL_MAX_T ? 'parallel' : 'chunkwise';
      if (form === 'recurrent') retentionRecurrent(rec, args);
      else if (form === 'parallel') retentionParallel(rec, args);
      else retentionChunkwise(rec, { ...args, scratch: ws.chunks });
      // per-head RMSNorm over Dv with the shared weight, then times swish(g)
      rmsnorm(rec, o.view([T * H, Dv]), lw.gateNorm, normed.view([T * H, Dv]), eps);
      swiglu(rec, g, normed, flat(o, H * Dv));
      lw.o.forward(rec, flat(o, H * Dv), n);
      addInplace(rec, x, n);
      // feed-forward block
      rmsnorm(rec, x, lw.mlpNorm, n, eps);
      lw.ffn.forward(rec, n, n, this.scratch);
      addInplace(rec, x, n);
    }
    return { x, scratch: n };
  }

  protected copyContents(rec: Recorder, from: RetNetState, to: RetNetState): void {
    for (let l = 0; l < this.cfg.nLayers; l++) rec.copy(from.S[l], to.S[l]);
  }
}
