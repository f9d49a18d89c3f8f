// Mamba-1 (Gu & Dao 2023) on the GPU, as Hugging Face MambaForCausalLM
// computes it (modeling_mamba.py, MambaMixer.slow_forward): config, weights
// (weights.ts), state (state.ts: conv inputs and h per layer) and forward.
//
// Glossary (the paper's names): T tokens, D hidden, Di = expand*D inner
// channels, N state size, Kc conv kernel, R dt rank; u the SSM input, z the
// gate, Δ (delta) the step size, A, B, C, D the SSM parameters, h the state.
//
// Per layer:  x' = x + out_proj(y),  with n = RMSNorm(x) and
//   u = silu(conv1d(in_proj_x(n)))                    causal depthwise, left context = conv state
//   Δ = softplus(dt_proj(x_proj_dt(u)) + bias), B = x_proj_B(u), C = x_proj_C(u)
//   h_t = exp(Δ_t A) ⊙ h_{t-1} + Δ_t B_t u_t,  y_t = (C_t · h_t + D u_t) * silu(z_t),  z = in_proj_z(n)
// then logits = lm_head(RMSNorm_f(x)).

import type { Gpu } from '../../runtime/gpu';
import type { Recorder } from '../../runtime/recorder';
import type { Tensor } from '../../runtime/tensor';
import { rmsnorm } from '../../kernels/rmsnorm';
import { addInplace } from '../../kernels/add_inplace';
import { conv1dCausal } from '../../kernels/conv1d_causal';
import { selectiveScan, selectiveScanScratchShape } from '../../kernels/selective_scan';
import { prefillChunkOf, type BufferSpec } from '../blocks/workspace';
import { BaseModel } from '../base_model';
import type { MambaConfig } from './config';
import { MambaState } from './state';
import type { MambaWeights } from './weights';

/** Scratch activations for up to C tokens, allocated once with the model. */
export function mambaWorkspace(cfg: MambaConfig, C: number) {
  const { hiddenSize: D, intermediateSize: Di, stateSize: N, timeStepRank: R } = cfg;
  return {
    x: { shape: [C, D] },       // residual stream
    n: { shape: [C, D] },       // normed input / mixer output
    ux: { shape: [C, Di] },     // in_proj x half
    z: { shape: [C, Di] },      // in_proj z half
    u: { shape: [C, Di] },      // conv output
    dt: { shape: [C, R] },
    B: { shape: [C, N] },
    C: { shape: [C, N] },
    delta: { shape: [C, Di] },  // dt_proj output, before softplus
    y: { shape: [C, Di] },
    scan: { shape: selectiveScanScratchShape(C, Di, N), dtype: 'f32', category: 'scratch' }, // chunk start states of the parallel scan
    ids: { shape: [C], dtype: 'i32' },
  } satisfies Record<string, BufferSpec>;
}

export class MambaModel extends BaseModel<MambaState, keyof ReturnType<typeof mambaWorkspace>> {
  constructor(gpu: Gpu, readonly cfg: MambaConfig, private readonly w: MambaWeights, opts: { prefillChunk?: number } = {}) {
    const chunk = prefillChunkOf(opts.prefillChunk);
    const { hiddenSize: D, intermediateSize: Di, stateSize: N, timeStepRank: R, convKernel: Kc, vocabSize: V, nLayers: L } = cfg;
    const perLayer = D + 2 * Di * D + Di * Kc + (cfg.useConvBias ? Di : 0) + (R + 2 * N) * Di + Di * R + Di + Di * N + Di + D * Di + (cfg.useBias ? 2 * Di + D : 0);
    const total = V * D * (cfg.tieWordEmbeddings ? 1 : 2) + L * perLayer + D;
    super(gpu, {
      info: { family: 'mamba', ffn: 'dense', modelType: 'mamba', vocabSize: V, nLayers: L, dModel: D, maxContext: null, params: { total, activePerToken: total } },
      weights: w.all,
      layerWeight: w.layers[0].out.weight,
      embed: w.embed,
      lmHead: w.lmHead,
      norm: w.normF,
      eps: cfg.eps,
      workspace: mambaWorkspace(cfg, chunk),
      chunk,
    });
  }

  /** A zeroed state; maxTokens does not apply (the state does not grow). */
  protected newState(): MambaState {
    return new MambaState(this.gpu, this.cfg);
  }

  protected forward(rec: Recorder, state: MambaState, ids: Tensor): { x: Tensor; scratch: Tensor } {
    const T = ids.shape[0];
    const { hiddenSize: D, intermediateSize: Di, stateSize: N, timeStepRank: R } = this.cfg;
    const ws = this.ws;
    const x = ws.x.view([T, D]);
    const n = ws.n.view([T, D]);
    const ux = ws.ux.view([T, Di]);
    const z = ws.z.view([T, Di]);
    const u = ws.u.view([T, Di]);
    const dt = ws.dt.view([T, R]);
    const B = ws.B.view([T, N]);
    const C = ws.C.view([T, N]);
    const delta = ws.delta.view([T, Di]);
    const y = ws.y.view([T, Di]);

    this.embed.lookup(rec, ids, x);

    for (let l = 0; l < this.cfg.nLayers; l++) {
      const lw = this.w.layers[l];
      rmsnorm(rec, x, lw.norm, n, this.cfg.eps);
      lw.inX.forward(rec, n, ux);
      lw.inZ.forward(rec, n, z);
      conv1dCausal(rec, ux, lw.convW, lw.convB, state.conv[l], u);
      lw.xDt.forward(rec, u, dt);
      lw.xB.forward(rec, u, B);
      lw.xC.forward(rec, u, C);
      lw.dtProj.forward(rec, dt, delta);
      selectiveScan(rec, { u, delta, A: lw.A, B, C, D: lw.D, z, state: state.ssm[l], y, scratch: ws.scan });
      lw.out.forward(rec, y, n);
      addInplace(rec, x, n);
    }
    return { x, scratch: n };
  }

  protected copyContents(rec: Recorder, from: MambaState, to: MambaState): void {
    for (let l = 0; l < this.cfg.nLayers; l++) {
      rec.copy(from.conv[l], to.conv[l]);
      rec.copy(from.ssm[l], to.ssm[l]);
    }
  }
}
