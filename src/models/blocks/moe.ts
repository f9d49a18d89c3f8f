// The sparse mixture-of-experts feed-forward (Mixtral, OLMoE, Qwen2-MoE,
// GraniteMoE), behind the feed-forward interface. Per token: router logits
// (f32 router weight), the top k experts and their weights on the GPU, only
// those experts' SwiGLU MLPs (4-bit, the E experts of a projection stacked as
// one (E * rows, cols) matrix), and their weighted sum; plus Qwen2-MoE's
// shared expert, gated by sigmoid(shared_expert_gate · x). Nothing of the
// routing goes back to the CPU. One token takes moe_matvec_q4 (only the
// routed experts' rows are read); several are grouped by expert first
// (moe_group) so each expert's matmul runs over its own tokens only.
//
// The names each layout's checkpoints store (Hugging Face modeling_*.py):
//   layout      prefix             router                 experts (e = 0..E-1)
//   mixtral     block_sparse_moe.  gate.weight            experts.e.{w1 gate, w3 up, w2 down}.weight
//   olmoe       mlp.               gate.weight            experts.e.{gate_proj, up_proj, down_proj}.weight
//   qwen2_moe   mlp.               gate.weight            experts.e.{gate_proj, up_proj, down_proj}.weight,
//                                                         shared_expert.{gate,up,down}_proj.weight, shared_expert_gate.weight
//   granitemoe  block_sparse_moe.  router.layer.weight    input_linear.weight (E, 2I, D): gate rows then up; output_linear.weight (E, D, I)

import type { Recorder } from '../../runtime/recorder';
import type { Tensor } from '../../runtime/tensor';
import { swiglu } from '../../kernels/swiglu';
import { gatedAdd } from '../../kernels/gated_add';
import { moeRouter } from '../../kernels/moe_router';
import { moeMatvecQ4 } from '../../kernels/moe_matvec_q4';
import { moeGroup, moePlanShape } from '../../kernels/moe_group';
import { moeMatmulQ4 } from '../../kernels/moe_matmul_q4';
import { moeCombine } from '../../kernels/moe_combine';
import { Linear } from './linear';
import { DenseFeedForward, type FeedForward, type FeedForwardSpec } from './feed_forward';
import type { BufferSpec } from './workspace';
import type { WeightUploader } from '../loader/weights';
import type { MoeConfig } from '../transformer/config';

/** The prefix of a layout's block under a layer ('model.layers.N.' + this). */
export function moePrefix(layout: MoeConfig['layout']): string {
  return layout === 'mixtral' || layout === 'granitemoe' ? 'block_sparse_moe.' : 'mlp.';
}

/** A loaded MoE block: its stacked 4-bit experts stay reachable (the tests poison the unrouted ones). */
export interface MoeWeights extends FeedForward {
  readonly experts: { readonly gate: Tensor; readonly up: Tensor; readonly down: Tensor };
}

export class MoeFeedForward implements FeedForwardSpec {
  readonly kind = 'moe';
  readonly params: { total: number; active: number };
  private readonly shared: DenseFeedForward | null;

  /** `downScale` multiplies the experts' (and shared expert's) down projections: GraniteMoE's residual_multiplier, folded in. */
  constructor(readonly hidden: number, readonly cfg: MoeConfig, readonly downScale = 1) {
    const { nExperts: E, topK: k, expertSize: I, sharedExpertSize: Is } = cfg;
    const D = hidden;
    this.shared = Is > 0 ? new DenseFeedForward(D, Is) : null;
    const router = E * D;
    const shared = this.shared ? this.shared.params.total + D : 0;
    this.params = { total: router + E * 3 * D * I + shared, active: router + k * 3 * D * I + shared };
  }

  /** Per expert: where its gate, up and down rows come from. */
  private pieces(prefix: string): { gate: { name: string; row: number }[]; up: { name: string; row: number }[]; down: { name: string; row: number }[] } {
    const { nExperts: E, expertSize: I, layout } = this.cfg;
    const es = Array.from({ length: E }, (_, e) => e);
    if (layout === 'granitemoe') {
      const input = prefix + 'input_linear.weight';
      const output = prefix + 'output_linear.weight';
      return { gate: es.map((e) => ({ name: input, row: 2 * I * e })), up: es.map((e) => ({ name: input, row: 2 * I * e + I })), down: es.map((e) => ({ name: output, row: this.hidden * e })) };
    }
    const [g, u, d] = layout === 'mixtral' ? ['w1', 'w3', 'w2'] : ['gate_proj', 'up_proj', 'down_proj'];
    const at = (p: string) => es.map((e) => ({ name: `${prefix}experts.${e}.${p}.weight`, row: 0 }));
    return { gate: at(g), up: at(u), down: at(d) };
  }

  private routerName(prefix: string): string {
    return prefix + (this.cfg.layout === 'granitemoe' ? 'router.layer.weight' : 'gate.weight');
  }

  shapes(prefix: string): Map<string, number[]> {
    const { nExperts: E, expertSize: I } = this.cfg;
    const D = this.hidden;
    const m = new Map<string, number[]>([[this.routerName(prefix), [E, D]]]);
    if (this.cfg.layout === 'granitemoe') {
      m.set(prefix + 'input_linear.weight', [E, 2 * I, D]);
      m.set(prefix + 'output_linear.weight', [E, D, I]);
    } else {
      const p = this.pieces(prefix);
      for (let e = 0; e < E; e++) {
        m.set(p.gate[e].name, [I, D]);
        m.set(p.up[e].name, [I, D]);
        m.set(p.down[e].name, [D, I]);
      }
    }
    if (this.shared) {
      for (const [name, shape] of this.shared.shapes(prefix + 'shared_expert.')) m.set(name, shape);
      m.set(prefix + 'shared_expert_gate.weight', [1, D]);
    }
    return m;
  }

  workspace(C: number): Record<string, BufferSpec> {
    const { nExperts: E, topK: k, expertSize: I } = this.cfg;
    const D = this.hidden;
    return {
      moe_logits: { shape: [C, E] },
      moe_ids: { shape: [C, k], dtype: 'u32' },
      moe_weights: { shape: [C, k], dtype: 'f32' },
      moe_plan: { shape: moePlanShape(C, k, E), dtype: 'u32', category: 'scratch' },
      moe_gate: { shape: [C * k, I] },
      moe_up: { shape: [C * k, I] },
      moe_act: { shape: [C * k, I] },
      moe_y: { shape: [C * k, D] },
      ...(this.shared && { ...this.shared.workspace(C), moe_shared: { shape: [C, D] }, moe_shared_gate: { shape: [C, 1] } }),
    };
  }

  async load(up: WeightUploader, prefix: string, label: string): Promise<MoeWeights> {
    const { nExperts: E, topK: k, expertSize: I, router: mode, normTopK } = this.cfg;
    const D = this.hidden;
    // The router stays f32: 4-bit rounding would move tokens between experts.
    const router = new Linear(await up.f32(this.routerName(prefix), label + 'router'));
    const p = this.pieces(prefix);
    const gate = await up.experts(label + 'experts.gate', I, D, p.gate);
    const upW = await up.experts(label + 'experts.up', I, D, p.up);
    const down = await up.experts(label + 'experts.down', D, I, p.down, this.downScale);
    const shared = this.shared ? await this.shared.load(up, prefix + 'shared_expert.', label + 'shared.', this.downScale) : null;
    const sharedGate = this.shared ? new Linear(await up.f32(prefix + 'shared_expert_gate.weight', label + 'shared_gate')) : null;
    return {
      experts: { gate, up: upW, down },
      forward(rec: Recorder, x: Tensor, out: Tensor, ws: Readonly<Record<string, Tensor>>): void {
        const T = x.shape[0];
        const logits = ws.moe_logits.view([T, E]);
        const ids = ws.moe_ids.view([T, k]);
        const weights = ws.moe_weights.view([T, k]);
        router.forward(rec, x, logits);
        moeRouter(rec, logits, ids, weights, { mode, renormalize: normTopK });
        const [g, u, a, y] = [ws.moe_gate.view([T * k, I]), ws.moe_up.view([T * k, I]), ws.moe_act.view([T * k, I]), ws.moe_y.view([T * k, D])];
        if (T === 1) {
          // Decode: only the k routed experts' rows are read.
          const slots = ids.view([k]);
          moeMatvecQ4(rec, gate, x, slots, g, E);
          moeMatvecQ4(rec, upW, x, slots, u, E);
          swiglu(rec, g, u, a);
          moeMatvecQ4(rec, down, a, slots, y, E);
        } else {
          const route = moeGroup(rec, ids, E, ws.moe_plan);
          moeMatmulQ4(rec, x, gate, g, route);
          moeMatmulQ4(rec, x, upW, u, route);
          swiglu(rec, g, u, a);
          moeMatmulQ4(rec, a, down, y, route);
        }
        // Every read of x is recorded before out (which may be x) is written.
        let sharedOut: Tensor | null = null;
        let sharedG: Tensor | null = null;
        if (shared && sharedGate) {
          sharedOut = ws.moe_shared.view([T, D]);
          sharedG = ws.moe_shared_gate.view([T, 1]);
          shared.forward(rec, x, sharedOut, ws);
          sharedGate.forward(rec, x, sharedG);
        }
        moeCombine(rec, y, ids, weights, out, { experts: E });
        if (sharedOut && sharedG) gatedAdd(rec, out, sharedG, sharedOut);
      },
    };
  }
}
