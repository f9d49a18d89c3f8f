// Float64 references of the mixture-of-experts ops, as plain loops: the
// router (top-k of E experts per token), the grouping of (token, slot)
// entries by expert, one expert's linear layer in a stack of E, and the whole
// MoE feed-forward block. The GPU kernels (kernels/moe_*.ts) are checked
// against these. Letters: T tokens, E experts, K top-k (here `k`), D model
// dim, I expert hidden dim.

import type { Vec } from './ops';
import { silu } from './ops';

/**
 * How the router turns gate logits into k weights:
 *   'softmax-topk': p = softmax(logits) over all E in float, then the k largest
 *     p (Mixtral, OLMoE, Qwen2-MoE); with `renormalize` the k weights are
 *     divided by their sum (Mixtral always; OLMoE and Qwen2-MoE when
 *     norm_topk_prob is set).
 *   'topk-softmax': the k largest logits, then softmax over those k (Granite
 *     MoE); the same numbers as 'softmax-topk' renormalised.
 */
export type MoeRouterMode = 'softmax-topk' | 'topk-softmax';

export interface MoeRouting {
  /** (T, k) chosen experts per token, in descending weight, ties by lower index. */
  ids: Int32Array;
  /** (T, k) their weights. */
  weights: Float64Array;
}

/**
 * Whether logit a (at index ia) ranks before b (at ib): larger first; equal
 * values (and -0 = +0) by lower index (torch.topk promises no order among
 * ties; this is the rule reference/moe.ts fixes too, as ONNX TopK specifies);
 * a NaN ranks above every number (as torch.sort orders it), NaNs by index.
 */
export function ranksBefore(a: number, ia: number, b: number, ib: number): boolean {
  const na = Number.isNaN(a);
  const nb = Number.isNaN(b);
  if (na || nb) return na && nb ? ia < ib : na;
  return a > b || (a === b && ia < ib);
}

/** The router on logits (T, E): per token the top k experts and their weights. */
export function moeRouterRef(logits: Vec, T: number, E: number, k: number, mode: MoeRouterMode, renormalize = false): MoeRouting {
  if (logits.length !== T * E) throw new Error(`moeRouterRef: ${logits.length} logits for (${T}, ${E})`);
  if (!(Number.isInteger(k) && k >= 1 && k <= E)) throw new Error(`moeRouterRef: k = ${k} must be in 1 .. E = ${E}`);
  const ids = new Int32Array(T * k);
  const weights = new Float64Array(T * k);
  for (let t = 0; t < T; t++) {
    const row = Array.from({ length: E }, (_, e) => logits[t * E + e]);
    // order the experts: larger logit first, ties by lower index (softmax is
    // monotone, so this is the order of the probabilities as well)
    const order = Array.from({ length: E }, (_, e) => e).sort((a, b) => (ranksBefore(row[a], a, row[b], b) ? -1 : 1));
    const top = order.slice(0, k);
    // softmax with the max subtracted; the denominator runs over all E
    // ('softmax-topk'), or over the chosen k (renormalised, or 'topk-softmax')
    const max = row[top[0]];
    const overTopK = mode === 'topk-softmax' || renormalize;
    let denom = 0;
    for (const e of overTopK ? top : order) denom += Math.exp(row[e] - max);
    top.forEach((e, j) => {
      ids[t * k + j] = e;
      weights[t * k + j] = Math.exp(row[e] - max) / denom;
    });
  }
  return { ids, weights };
}

/**
 * The grouping of the T * k (token, slot) entries by expert, as kernels/moe_group
 * lays it out: `offsets` (E + 1), expert e's entries at positions
 * offsets[e] .. offsets[e + 1]; `perm` (T * k), the entry t * k + j at each
 * position, ascending within an expert (entries with an id outside 0 .. E
 * placed nowhere, perm NONE past the valid ones); `tiles`, per tile of
 * `tile` rows the pair (expert, first position), experts in order, each
 * expert's segment cut from its start; NONE pairs after the last.
 */
export const MOE_NONE = 0xffffffff;

export function moeGroupRef(ids: ArrayLike<number>, E: number, tile: number, maxTiles: number): { offsets: Uint32Array; perm: Uint32Array; tiles: Uint32Array } {
  const N = ids.length;
  // count per expert, then an exclusive prefix sum over the experts
  const count = new Array<number>(E).fill(0);
  for (let i = 0; i < N; i++) if (ids[i] >= 0 && ids[i] < E) count[ids[i]]++;
  const offsets = new Uint32Array(E + 1);
  for (let e = 0; e < E; e++) offsets[e + 1] = offsets[e] + count[e];
  // place each entry after the earlier entries of its expert (ascending entry order)
  const perm = new Uint32Array(N).fill(MOE_NONE);
  const cursor = Array.from(offsets.subarray(0, E));
  for (let i = 0; i < N; i++) if (ids[i] >= 0 && ids[i] < E) perm[cursor[ids[i]]++] = i;
  // cut each expert's segment into tiles
  const tiles = new Uint32Array(2 * maxTiles).fill(MOE_NONE);
  let n = 0;
  for (let e = 0; e < E; e++) {
    for (let s = offsets[e]; s < offsets[e + 1]; s += tile) {
      tiles[2 * n] = e;
      tiles[2 * n + 1] = s;
      n++;
    }
  }
  if (n > maxTiles) throw new Error(`moeGroupRef: ${n} tiles exceed maxTiles ${maxTiles}`);
  return { offsets, perm, tiles };
}

/**
 * Rows of one expert's linear layer applied per entry: for each entry i
 * (T * k of them), y[i] = W_e x_i with e = ids[i], W stacked as (E * N, K)
 * (expert e = rows e * N .. e * N + N). xRows picks each entry's input row of
 * x: the token (i / k, x (T, K)) or the entry itself (x (T * k, K)).
 * An id outside 0 .. E gives a row of NaN.
 */
export function moeLinearRef(x: Vec, w: Vec, ids: ArrayLike<number>, k: number, N: number, K: number, xRows: 'token' | 'entry'): Float64Array {
  const entries = ids.length;
  const E = w.length / (N * K);
  const y = new Float64Array(entries * N);
  for (let i = 0; i < entries; i++) {
    const e = ids[i];
    const xr = xRows === 'token' ? Math.floor(i / k) : i;
    for (let n = 0; n < N; n++) {
      if (!(e >= 0 && e < E)) {
        y[i * N + n] = NaN;
        continue;
      }
      // dot product of the entry's input with output row n of expert e
      let s = 0;
      for (let c = 0; c < K; c++) s += x[xr * K + c] * w[(e * N + n) * K + c];
      y[i * N + n] = s;
    }
  }
  return y;
}

/**
 * out[t] = base[t] + sum_j weights[t, j] * y[t * k + j], slots in order;
 * base null for no residual. y (T * k, D). An id outside 0 .. E gives NaN.
 */
export function moeCombineRef(y: Vec, ids: ArrayLike<number>, weights: Vec, base: Vec | null, T: number, k: number, D: number, E: number): Float64Array {
  const out = new Float64Array(T * D);
  for (let t = 0; t < T; t++) {
    for (let d = 0; d < D; d++) {
      let s = 0;
      for (let j = 0; j < k; j++) {
        const e = ids[t * k + j];
        s += e >= 0 && e < E ? weights[t * k + j] * y[(t * k + j) * D + d] : NaN;
      }
      out[t * D + d] = (base ? base[t * D + d] : 0) + s;
    }
  }
  return out;
}

/** The stacked weights of one MoE layer's experts (dequantized), and its sizes. */
export interface MoeExpertsRef {
  E: number;
  D: number;
  I: number;
  gate: Vec; // (E * I, D)
  up: Vec;   // (E * I, D)
  down: Vec; // (E * D, I)
}

/**
 * The MoE feed-forward block on x (T, D) for a given routing: per token,
 * sum over its k experts of weight * down_e(silu(gate_e x) * up_e x)
 * (Mixtral's MixtralSparseMoeBlock, without the router), in float64.
 */
export function moeExpertsRef(x: Vec, routing: MoeRouting, w: MoeExpertsRef, T: number, k: number): Float64Array {
  const { D, I } = w;
  const g = moeLinearRef(x, w.gate, routing.ids, k, I, D, 'token');
  const u = moeLinearRef(x, w.up, routing.ids, k, I, D, 'token');
  const s = silu(g);
  const act = s.map((v, i) => v * u[i]);
  const y = moeLinearRef(act, w.down, routing.ids, k, D, I, 'entry');
  return moeCombineRef(y, routing.ids, routing.weights, null, T, k, D, w.E);
}
