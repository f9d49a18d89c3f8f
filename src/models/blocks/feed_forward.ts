// The feed-forward block of a layer, behind one interface every family takes:
// the dense gated MLP here, the mixture of experts beside it. A spec knows,
// before any weight is read, its tensor names and shapes under a prefix, its
// parameters (all, and those one token uses), and the scratch it needs; its
// load() gives the block that records the forward for one token or many.
// The family keeps the norm before the block and the residual after it.

import type { Recorder } from '../../runtime/recorder';
import type { Tensor } from '../../runtime/tensor';
import { swiglu } from '../../kernels/swiglu';
import { Linear } from './linear';
import type { BufferSpec } from './workspace';
import type { WeightUploader } from '../loader/weights';

export interface FeedForwardSpec {
  readonly kind: 'dense' | 'moe';
  /** Tensor names (under `prefix`, e.g. 'model.layers.3.mlp.') and their shapes. */
  shapes(prefix: string): Map<string, number[]>;
  /** Parameters of one layer's block: all of them, and those one token uses. */
  readonly params: { total: number; active: number };
  /** Scratch for up to C tokens (names unique to the kind; a family merges these into its workspace). */
  workspace(C: number): Record<string, BufferSpec>;
  load(up: WeightUploader, prefix: string, label: string): Promise<FeedForward>;
}

export interface FeedForward {
  /** Records out (T, D) = FFN(x (T, D)); `ws` holds the buffers of the spec's workspace. out may be x: x is read first. */
  forward(rec: Recorder, x: Tensor, out: Tensor, ws: Readonly<Record<string, Tensor>>): void;
}

/** Scratch of several specs (one layer dense, another sparse): each name at its largest size. */
export function feedForwardWorkspace(specs: readonly FeedForwardSpec[], C: number): Record<string, BufferSpec> {
  const merged: Record<string, BufferSpec> = {};
  for (const s of specs) {
    for (const [name, b] of Object.entries(s.workspace(C))) {
      const had = merged[name];
      merged[name] = had && had.shape.reduce((a, d) => a * d, 1) >= b.shape.reduce((a, d) => a * d, 1) ? had : b;
    }
  }
  return merged;
}

/**
 * The gated MLP: down(silu(gate(x)) * up(x)) (Hugging Face LlamaMLP, fla's
 * GatedMLP). Names gate_proj, up_proj, down_proj, with biases where the
 * config has them; or, in older fla checkpoints, one gate_proj of 2I rows,
 * gate rows first, then up rows.
 */
export class DenseFeedForward implements FeedForwardSpec {
  readonly kind = 'dense';
  readonly params: { total: number; active: number };

  constructor(
    readonly hidden: number,
    readonly intermediate: number,
    readonly opts: { bias?: boolean; fusedGateUp?: boolean } = {},
  ) {
    const [D, I] = [hidden, intermediate];
    const total = 3 * D * I + (opts.bias ? 2 * I + D : 0);
    this.params = { total, active: total };
  }

  shapes(prefix: string): Map<string, number[]> {
    const [D, I] = [this.hidden, this.intermediate];
    const m = new Map<string, number[]>();
    if (this.opts.fusedGateUp) m.set(prefix + 'gate_proj.weight', [2 * I, D]);
    else {
      m.set(prefix + 'gate_proj.weight', [I, D]);
      m.set(prefix + 'up_proj.weight', [I, D]);
    }
    m.set(prefix + 'down_proj.weight', [D, I]);
    if (this.opts.bias) {
      m.set(prefix + 'gate_proj.bias', [I]);
      m.set(prefix + 'up_proj.bias', [I]);
      m.set(prefix + 'down_proj.bias', [D]);
    }
    return m;
  }

  workspace(C: number): Record<string, BufferSpec> {
    const I = this.intermediate;
    return { mlp_gate: { shape: [C, I] }, mlp_up: { shape: [C, I] }, mlp_act: { shape: [C, I] } };
  }

  /** `downScale` multiplies down_proj (a residual multiplier folded in). */
  async load(up: WeightUploader, prefix: string, label: string, downScale = 1): Promise<FeedForward> {
    const I = this.intermediate;
    const bias = async (name: string, scale: number) => (this.opts.bias ? up.bias(`${prefix}${name}.bias`, `${label}${name}.bias`, scale) : null);
    const linear = async (name: string, scale = 1) => new Linear(await up.matrix(`${prefix}${name}.weight`, label + name, scale), await bias(name, scale));
    const [gate, upProj] = this.opts.fusedGateUp
      ? (await up.rowSplit(prefix + 'gate_proj.weight', [{ label: label + 'gate', rows: I }, { label: label + 'up', rows: I }])).map((t) => new Linear(t))
      : [await linear('gate_proj'), await linear('up_proj')];
    const down = await linear('down_proj', downScale);
    return {
      forward(rec, x, out, ws) {
        const T = x.shape[0];
        const [g, u, a] = [ws.mlp_gate.view([T, I]), ws.mlp_up.view([T, I]), ws.mlp_act.view([T, I])];
        gate.forward(rec, x, g);
        upProj.forward(rec, x, u);
        swiglu(rec, g, u, a);
        down.forward(rec, a, out);
      },
    };
  }
}
