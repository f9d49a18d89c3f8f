// Float64 reference of Mamba-1 (MambaForCausalLM), as plain loops following
// Hugging Face modeling_mamba.py MambaMixer.slow_forward and the paper's
// Algorithm 2. A = -exp(A_log) is rounded to float32 as Hugging Face computes
// it; everything else is float64. The recurrent form is the only form here:
// a prompt is the same loop as decoding, so it is also the check for the
// GPU's parallel scan.
//
// Glossary: D hidden, Di inner channels, N state size, Kc conv kernel, R dt rank.

import type { MambaConfig } from '../models/mamba/config';

export type RefWeights = (name: string) => ArrayLike<number>;

/** Per layer: the last Kc-1 conv inputs (Kc-1, Di) and h (Di, N). */
export interface RefMambaState { conv: Float64Array[]; ssm: Float64Array[]; position: number }

export function createRefMambaState(cfg: MambaConfig): RefMambaState {
  return {
    conv: Array.from({ length: cfg.nLayers }, () => new Float64Array((cfg.convKernel - 1) * cfg.intermediateSize)),
    ssm: Array.from({ length: cfg.nLayers }, () => new Float64Array(cfg.intermediateSize * cfg.stateSize)),
    position: 0,
  };
}

const silu = (v: number) => v / (1 + Math.exp(-v));
const softplus = (v: number) => (v > 20 ? v : Math.log1p(Math.exp(v))); // torch threshold 20

function rmsnorm(x: Float64Array, w: ArrayLike<number>, eps: number): Float64Array {
  let ss = 0;
  for (const v of x) ss += v * v;
  const inv = 1 / Math.sqrt(ss / x.length + eps);
  return Float64Array.from(x, (v, i) => v * inv * w[i]);
}

/** y = W x (+ b) for W (n, x.length) row-major, rows from `row0`. */
function linear(x: ArrayLike<number>, w: ArrayLike<number>, n: number, row0 = 0, b?: ArrayLike<number>): Float64Array {
  const k = x.length;
  const y = new Float64Array(n);
  for (let r = 0; r < n; r++) {
    let acc = b ? b[row0 + r] : 0;
    for (let c = 0; c < k; c++) acc += w[(row0 + r) * k + c] * x[c];
    y[r] = acc;
  }
  return y;
}

/** Runs `tokens` from `state` (updated in place); returns logits (T, V) flattened. */
export function refMambaForward(cfg: MambaConfig, w: RefWeights, tokens: ArrayLike<number>, state = createRefMambaState(cfg)): Float64Array {
  const { hiddenSize: D, intermediateSize: Di, stateSize: N, convKernel: Kc, timeStepRank: R, vocabSize: V } = cfg;
  const emb = w(cfg.layout === 'hf' ? 'backbone.embeddings.weight' : 'backbone.embedding.weight');
  const head = cfg.tieWordEmbeddings ? emb : w('lm_head.weight');
  const logits = new Float64Array(tokens.length * V);
  for (let t = 0; t < tokens.length; t++) {
    const id = tokens[t];
    if (!(id >= 0 && id < V)) throw new Error(`refMambaForward: token ${id} outside the vocabulary (${V})`);
    let x = Float64Array.from({ length: D }, (_, i) => emb[id * D + i]);
    for (let l = 0; l < cfg.nLayers; l++) {
      const p = `backbone.layers.${l}.mixer.`;
      const n = rmsnorm(x, w(`backbone.layers.${l}.norm.weight`), cfg.eps);
      // 1. in_proj -> u (first Di rows) and the gate z (next Di rows)
      const inB = cfg.useBias ? w(p + 'in_proj.bias') : undefined;
      const u0 = linear(n, w(p + 'in_proj.weight'), Di, 0, inB);
      const z = linear(n, w(p + 'in_proj.weight'), Di, Di, inB);
      // 2. causal depthwise conv over [last Kc-1 inputs; u0], then SiLU; shift the conv state
      const conv = state.conv[l];
      const cw = w(p + 'conv1d.weight');
      const cb = cfg.useConvBias ? w(p + 'conv1d.bias') : undefined;
      const u = new Float64Array(Di);
      for (let d = 0; d < Di; d++) {
        let acc = cb ? cb[d] : 0;
        for (let k = 0; k < Kc - 1; k++) acc += cw[d * Kc + k] * conv[k * Di + d];
        acc += cw[d * Kc + Kc - 1] * u0[d];
        u[d] = silu(acc);
      }
      conv.copyWithin(0, Di); // drop the oldest input
      conv.set(u0, (Kc - 2) * Di);
      // 3. x_proj -> dt (R), B (N), C (N); 4. delta = softplus(dt_proj(dt) + bias)
      const xw = w(p + 'x_proj.weight');
      const dt = linear(u, xw, R, 0);
      const B = linear(u, xw, N, R);
      const C = linear(u, xw, N, R + N);
      const delta = linear(dt, w(p + 'dt_proj.weight'), Di, 0, w(p + 'dt_proj.bias')).map(softplus);
      // 5-6. h = exp(delta*A) h + delta*B*u ; y = C.h + D*u ; gated by silu(z)
      const Alog = w(p + 'A_log');
      const Dskip = w(p + 'D');
      const h = state.ssm[l];
      const y = new Float64Array(Di);
      for (let d = 0; d < Di; d++) {
        let acc = 0;
        for (let s = 0; s < N; s++) {
          const A = -Math.fround(Math.exp(Alog[d * N + s]));
          h[d * N + s] = Math.exp(delta[d] * A) * h[d * N + s] + delta[d] * B[s] * u[d];
          acc += C[s] * h[d * N + s];
        }
        y[d] = (acc + Dskip[d] * u[d]) * silu(z[d]);
      }
      // 7. out_proj, residual
      const out = linear(y, w(p + 'out_proj.weight'), D, 0, cfg.useBias ? w(p + 'out_proj.bias') : undefined);
      x = Float64Array.from(x, (v, i) => v + out[i]);
    }
    const xf = rmsnorm(x, w('backbone.norm_f.weight'), cfg.eps);
    logits.set(linear(xf, head, V), t * V);
  }
  state.position += tokens.length;
  return logits;
}
