// Token selection references, as plain loops in float64: greedy argmax, the
// set of tokens Hugging Face generate() keeps after its temperature -> top-k ->
// top-p warpers, and the inverse-CDF draw of kernels/sample.wgsl with the same
// counter-based hash as kernels/lib/random.wgsl. Imports nothing from
// runtime/ or kernels/.

import type { Vec } from './ops';

/** Largest finite f32: a +inf logit counts as this (sample.wgsl does the same). */
const F32_MAX = 3.4028234663852886e38;

/** What sample() returns when no token can be drawn (every logit NaN or -inf). */
export const NO_TOKEN = 0xffffffff;

/**
 * Index of the largest value, as torch.argmax: ties go to the first index, and
 * NaN counts as larger than any number (the first NaN wins).
 */
export function argmaxRef(logits: Vec): number {
  let best = 0;
  for (let i = 0; i < logits.length; i++) {
    // a NaN beats everything but an earlier NaN
    if (Number.isNaN(logits[i])) return i;
    // strictly greater: an equal value later in the row does not replace the first
    if (logits[i] > logits[best]) best = i;
  }
  return best;
}

/** How many values are NaN or ±infinity (what generate() refuses to pick a token from). */
export function countNonfiniteRef(logits: Vec): number {
  let n = 0;
  for (let i = 0; i < logits.length; i++) if (!Number.isFinite(logits[i])) n++;
  return n;
}

/**
 * PCG hash: one step of PCG's LCG and its RXS-M-XS output permutation, a
 * bijection of u32 (Jarzynski & Olano, "Hash Functions for GPU Rendering",
 * JCGT 2020). Mirrors pcg_hash in kernels/lib/random.wgsl.
 */
export function pcgHash(x: number): number {
  const state = (Math.imul(x >>> 0, 747796405) + 2891336453) >>> 0;
  const word = Math.imul(((state >>> ((state >>> 28) + 4)) ^ state) >>> 0, 277803737) >>> 0;
  return ((word >>> 22) ^ word) >>> 0;
}

/** A uniform in [0, 1) with 24 random bits from (seed, counter). Mirrors uniform01 in random.wgsl. */
export function uniform01(seed: number, counter: number): number {
  return (pcgHash((counter + pcgHash(seed)) >>> 0) >>> 8) / 16777216;
}

export interface SamplingOptions {
  /** Divides the logits; > 0. */
  temperature: number;
  /** Keep every token scoring at least the k-th largest score; 0 or absent = off. */
  topK?: number;
  /** Keep a token iff the tokens scoring strictly above it hold < topP of the mass; 1 or absent = off. */
  topP?: number;
}

export interface KeptSet {
  /** Kept token ids, ascending. */
  indices: number[];
  /** Their probabilities after renormalising over the kept set (sum 1). */
  probs: Float64Array;
  /**
   * Distance of the top-p cut from the nearest decision: min over the tokens
   * that survive top-k of |mass strictly above / total - topP| (Infinity when
   * top-p is off). A GPU summing in f32 may decide differently only when this is tiny.
   */
  pMargin: number;
}

/**
 * The tokens sample() may draw and their probabilities, following Hugging
 * Face's TemperatureLogitsWarper, TopKLogitsWarper and TopPLogitsWarper. Top-p
 * keeps token x iff the probability mass of tokens with a strictly greater
 * score is < topP: without ties that is HF's rule (sort ascending, drop where
 * the cumulative probability <= 1 - topP); with ties at the cut, HF keeps an
 * arbitrary part of the tied group (torch.sort order) and this keeps all of it.
 * NaN and -inf logits are never kept; +inf counts as the largest finite f32.
 */
export function keptSet(logits: Vec, opts: SamplingOptions): KeptSet {
  const n = logits.length;
  const t = opts.temperature;
  const k = opts.topK ?? 0;
  const p = opts.topP ?? 1;
  // 1. candidates: NaN and -inf can never be drawn; +inf is clamped
  const z = new Float64Array(n);
  const keep = new Uint8Array(n);
  let count = 0;
  for (let i = 0; i < n; i++) {
    const v = logits[i];
    if (Number.isNaN(v) || v === -Infinity) continue;
    z[i] = Math.min(v, F32_MAX);
    keep[i] = 1;
    count++;
  }
  // 2. top-k: the k-th largest score; every token at or above it stays (ties
  //    at the boundary included). Dividing by t > 0 keeps the order, so the
  //    logits themselves are compared.
  if (k > 0 && k < count) {
    const sorted: number[] = [];
    for (let i = 0; i < n; i++) if (keep[i]) sorted.push(z[i]);
    sorted.sort((a, b) => b - a);
    const kth = sorted[k - 1];
    for (let i = 0; i < n; i++) if (keep[i] && z[i] < kth) keep[i] = 0;
  }
  // 3. softmax weights of what is left: exp((z - max) / t)
  let zmax = -Infinity;
  for (let i = 0; i < n; i++) if (keep[i]) zmax = Math.max(zmax, z[i]);
  const e = new Float64Array(n);
  let total = 0;
  for (let i = 0; i < n; i++) {
    if (!keep[i]) continue;
    e[i] = Math.exp((z[i] - zmax) / t);
    total += e[i];
  }
  // 4. top-p: walk the kept tokens from the highest score down, one group of
  //    equal scores at a time; a group stays iff the mass above it is < p
  let pMargin = Infinity;
  if (p < 1) {
    const order: number[] = [];
    for (let i = 0; i < n; i++) if (keep[i]) order.push(i);
    order.sort((a, b) => z[b] - z[a]);
    let above = 0;
    for (let g = 0; g < order.length; ) {
      let end = g;
      let groupMass = 0;
      while (end < order.length && z[order[end]] === z[order[g]]) groupMass += e[order[end++]];
      const frac = above / total;
      pMargin = Math.min(pMargin, Math.abs(frac - p));
      if (!(frac < p)) for (let j = g; j < end; j++) keep[order[j]] = 0;
      above += groupMass;
      g = end;
    }
  }
  // 5. renormalise over the final set, in index order
  const indices: number[] = [];
  let kept = 0;
  for (let i = 0; i < n; i++) {
    if (!keep[i]) continue;
    indices.push(i);
    kept += e[i];
  }
  const probs = Float64Array.from(indices, (i) => e[i] / kept);
  return { indices, probs, pMargin };
}

/**
 * The token sample() draws: u = uniform01(seed, step), then the first kept
 * token in index order whose cumulative probability exceeds u. NO_TOKEN when
 * nothing can be drawn.
 */
export function sampleRef(logits: Vec, opts: SamplingOptions & { seed: number; step: number }): number {
  const { indices, probs } = keptSet(logits, opts);
  if (indices.length === 0) return NO_TOKEN;
  const u = uniform01(opts.seed, opts.step);
  // inverse CDF in index order
  let cum = 0;
  for (let j = 0; j < indices.length; j++) {
    cum += probs[j];
    if (cum > u) return indices[j];
  }
  // u sits above the rounded total: the last kept token
  return indices[indices.length - 1];
}
