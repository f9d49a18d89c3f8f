// Float64 CPU references of RetNet's retention (Sun et al. 2023, "Retentive
// Network", eqs. 1-8; torchscale's MultiScaleRetention), in two of its three
// forms, as plain loops: the recurrent form (eq. 6) and the parallel form
// (eq. 5, with the decay mask D[n, m] = γ^(n-m) for n >= m). Each checks the
// other; the GPU's recurrent, parallel and chunkwise forms must agree with both.
//
// Per head h, decay γ = decay[h], tokens t = 0 .. T-1 of this call, S0 the state
// carried from earlier tokens (zeros at a sequence start):
//   S_t = γ S_{t-1} + k_tᵀ v_t            (S_{-1} = S0)
//   o_t = scale · q_t S_t
// which unrolls to
//   o_t = scale · Σ_{m<=t} γ^(t-m) (q_t · k_m) v_m + scale · γ^(t+1) (q_t S0)
//   S_T-1 = γ^T S0 + Σ_{m<T} γ^(T-1-m) k_mᵀ v_m.
// No group norm, no gate, no xPos: those belong to the model around the op.
// Glossary: T tokens, H heads, Dk key (and query) head dim, Dv value head dim.
// This folder imports nothing from runtime/ or kernels/.

import type { Vec } from './ops';

export interface RetentionRefArgs {
  q: Vec;        // (T, H, Dk)
  k: Vec;        // (T, H, Dk)
  v: Vec;        // (T, H, Dv)
  decay: Vec;    // (H) γ per head, 0 < γ < 1
  state: Vec;    // (H, Dk, Dv) S0, the state before the first token
  scale: number; // the model passes Dk^-0.5
  T: number; H: number; Dk: number; Dv: number;
}

export interface RetentionRefResult {
  o: Float64Array;     // (T, H, Dv)
  state: Float64Array; // (H, Dk, Dv) the state after the last token
}

/** The recurrent form: one token at a time, the state updated in place (decode). */
export function retentionRecurrentRef(a: RetentionRefArgs): RetentionRefResult {
  const { T, H, Dk, Dv, scale } = a;
  const o = new Float64Array(T * H * Dv);
  const S = Float64Array.from(a.state);
  for (let h = 0; h < H; h++) {
    const g = a.decay[h];
    const Sh = S.subarray(h * Dk * Dv, (h + 1) * Dk * Dv); // (Dk, Dv) of head h
    for (let t = 0; t < T; t++) {
      const qk = (t * H + h) * Dk;
      const vo = (t * H + h) * Dv;
      // S = γ S + k_tᵀ v_t
      for (let i = 0; i < Dk; i++) {
        for (let j = 0; j < Dv; j++) Sh[i * Dv + j] = g * Sh[i * Dv + j] + a.k[qk + i] * a.v[vo + j];
      }
      // o_t = scale · q_t S
      for (let j = 0; j < Dv; j++) {
        let acc = 0;
        for (let i = 0; i < Dk; i++) acc += a.q[qk + i] * Sh[i * Dv + j];
        o[vo + j] = scale * acc;
      }
    }
  }
  return { o, state: S };
}

/**
 * The parallel form, naive O(T²): every output from the scores of all earlier
 * tokens with the decay mask, plus the carried state's term; the new state as
 * a decayed sum of outer products. γ powers come from Math.pow, never from
 * repeated multiplication.
 */
export function retentionParallelRef(a: RetentionRefArgs): RetentionRefResult {
  const { T, H, Dk, Dv, scale } = a;
  const o = new Float64Array(T * H * Dv);
  const S = new Float64Array(H * Dk * Dv);
  for (let h = 0; h < H; h++) {
    const g = a.decay[h];
    const S0 = h * Dk * Dv;
    for (let n = 0; n < T; n++) {
      const qn = (n * H + h) * Dk;
      const on = (n * H + h) * Dv;
      // Σ_{m<=n} γ^(n-m) (q_n · k_m) v_m
      for (let m = 0; m <= n; m++) {
        const km = (m * H + h) * Dk;
        let score = 0;
        for (let i = 0; i < Dk; i++) score += a.q[qn + i] * a.k[km + i];
        const w = score * Math.pow(g, n - m);
        for (let j = 0; j < Dv; j++) o[on + j] += w * a.v[(m * H + h) * Dv + j];
      }
      // + γ^(n+1) q_n S0
      const gs = Math.pow(g, n + 1);
      for (let j = 0; j < Dv; j++) {
        let acc = 0;
        for (let i = 0; i < Dk; i++) acc += a.q[qn + i] * a.state[S0 + i * Dv + j];
        o[on + j] = scale * (o[on + j] + gs * acc);
      }
    }
    // S_T = γ^T S0 + Σ_m γ^(T-1-m) k_mᵀ v_m
    const gT = Math.pow(g, T);
    for (let i = 0; i < Dk; i++) {
      for (let j = 0; j < Dv; j++) {
        let acc = gT * a.state[S0 + i * Dv + j];
        for (let m = 0; m < T; m++) acc += Math.pow(g, T - 1 - m) * a.k[(m * H + h) * Dk + i] * a.v[(m * H + h) * Dv + j];
        S[S0 + i * Dv + j] = acc;
      }
    }
  }
  return { o, state: S };
}
