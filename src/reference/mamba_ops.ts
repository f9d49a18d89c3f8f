// Float64 CPU references of the Mamba-1 mixer's two sequence ops, as plain
// loops: the causal depthwise conv (with its carried state) and the selective
// scan (Gu & Dao 2023, Algorithm 2; Hugging Face MambaMixer.slow_forward and
// state-spaces selective_scan_ref / selective_state_update_ref). The scan here
// is the serial recurrence, one token after another: the GPU's chunked form
// must agree with it. Glossary: T tokens, Di inner channels, N state size,
// Kc conv kernel width. This folder imports nothing from runtime/ or kernels/.

import type { Vec } from './ops';

/** torch.nn.functional.softplus(x) with beta 1 and threshold 20: x itself above the threshold. */
export function softplus(x: number): number {
  return x > 20 ? x : Math.log1p(Math.exp(x));
}

/** x * sigmoid(x) (torch SiLU). */
export function silu(x: number): number {
  return x / (1 + Math.exp(-x));
}

/**
 * Causal depthwise conv1d over time with SiLU, continuing from a carried state.
 * x (T, Di); weight (Di, Kc) (HF conv1d.weight (Di, 1, Kc) squeezed); bias (Di) or null;
 * state (Di, Kc-1): the Kc-1 inputs before x, oldest first (zeros at a sequence start).
 * Returns out (T, Di) and the new state: the last Kc-1 rows of [state; x].
 */
export function conv1dCausalRef(x: Vec, weight: Vec, bias: Vec | null, state: Vec, T: number, Di: number, Kc: number): { out: Float64Array; state: Float64Array } {
  const K1 = Kc - 1;
  const out = new Float64Array(T * Di);
  const next = new Float64Array(Di * K1);
  for (let d = 0; d < Di; d++) {
    // the padded input of channel d: the carried state as time steps -K1 .. -1, then x
    const xpad = new Float64Array(K1 + T);
    for (let j = 0; j < K1; j++) xpad[j] = state[d * K1 + j];
    for (let t = 0; t < T; t++) xpad[K1 + t] = x[t * Di + d];
    // out[t] = silu(bias + sum_k w[k] * xpad[t + k]): tap Kc-1 meets the current token
    for (let t = 0; t < T; t++) {
      let acc = bias ? bias[d] : 0;
      for (let k = 0; k < Kc; k++) acc += weight[d * Kc + k] * xpad[t + k];
      out[t * Di + d] = silu(acc);
    }
    // the new state: the last K1 padded inputs (part of the old state when T < K1)
    for (let j = 0; j < K1; j++) next[d * K1 + j] = xpad[T + j];
  }
  return { out, state: next };
}

export interface SelectiveScanRefArgs {
  u: Vec;      // (T, Di) the conv output
  delta: Vec;  // (T, Di) dt_proj output incl. bias, before softplus
  A: Vec;      // (Di, N) -exp(A_log)
  B: Vec;      // (T, N)
  C: Vec;      // (T, N)
  D: Vec;      // (Di)
  z: Vec;      // (T, Di) the gate
  state: Vec;  // (Di, N) h before the first token
  T: number; Di: number; N: number;
}

/**
 * The selective scan, serially: per channel d and state n,
 *   dt = softplus(delta[t, d])
 *   h[d, n] = exp(dt * A[d, n]) * h[d, n] + dt * B[t, n] * u[t, d]
 *   y[t, d] = (sum_n C[t, n] * h[d, n] + D[d] * u[t, d]) * silu(z[t, d])
 * Returns y (T, Di) and the state after the last token (Di, N).
 */
export function selectiveScanRef(a: SelectiveScanRefArgs): { y: Float64Array; state: Float64Array } {
  const { u, delta, A, B, C, D, z, T, Di, N } = a;
  const y = new Float64Array(T * Di);
  const h = Float64Array.from(a.state as ArrayLike<number>);
  for (let t = 0; t < T; t++) {
    for (let d = 0; d < Di; d++) {
      // discretise: the step size of this token and channel
      const dt = softplus(delta[t * Di + d]);
      const ut = u[t * Di + d];
      let acc = 0;
      for (let n = 0; n < N; n++) {
        // h = exp(dt A) h + dt B u  (zero-order hold on A, Euler on B, as the paper's code)
        const i = d * N + n;
        h[i] = Math.exp(dt * A[i]) * h[i] + dt * B[t * N + n] * ut;
        // read out through C
        acc += C[t * N + n] * h[i];
      }
      // skip connection D, then the gate
      y[t * Di + d] = (acc + D[d] * ut) * silu(z[t * Di + d]);
    }
  }
  return { y, state: h };
}
