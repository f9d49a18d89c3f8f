import { describe, expect, it } from 'vitest';
import { Recorder } from '../../src/runtime/recorder';
import type { Gpu } from '../../src/runtime/gpu';
import type { Tensor } from '../../src/runtime/tensor';
import { NO_TOKEN, sample, type SampleOptions } from '../../src/kernels/sample';
import { keptSet, pcgHash, sampleRef, uniform01, type SamplingOptions } from '../../src/reference/sampling';
import { describeGpu, poisoned, useGpu } from '../helpers/gpu';
import { randn, rng } from '../helpers/random';
import { expectClose } from '../helpers/compare';

type Opts = SamplingOptions;
interface Draw { seed: number; step: number }

// The GPU sums exp() in f32 (WGSL's exp is good to a few ulp, runs of <= 600
// terms): its CDF and top-p masses sit within ~1e-6 of the float64 reference.
// A draw may legitimately differ only when u, or the top-p cut, lies within
// MARGIN of a boundary; such draws are detected and checked more loosely.
const MARGIN = 1e-5;

/** Records draws[i] into out[i], `batch` dispatches per submit, and reads them back. */
async function drawMany(g: Gpu, logits: Tensor, opts: Opts, draws: Draw[], row?: number, batch = 500): Promise<Uint32Array> {
  const out = poisoned(g, [draws.length], 'tokens', 'u32');
  let got: Uint32Array | undefined;
  for (let b = 0; b < draws.length; b += batch) {
    const rec = new Recorder(g, 'sample-batch');
    for (let i = b; i < Math.min(b + batch, draws.length); i++) sample(rec, logits, out, { ...opts, ...draws[i] }, row, i);
    if (b + batch >= draws.length) got = (await rec.submitAndRead(out)) as Uint32Array;
    else await rec.submit();
  }
  out.dispose();
  return got!;
}

/** n (seed, step) pairs from a seeded stream: full-range u32 seeds, steps like a decode loop's. */
function pairs(seed: number, n: number): Draw[] {
  const u = rng(seed);
  return Array.from({ length: n }, () => ({ seed: Math.floor(u() * 2 ** 32), step: Math.floor(u() * 5000) }));
}

/** The kept set's CDF in index order: token indices[j] covers [cum[j], cum[j + 1]). */
function cdf(probs: Float64Array): Float64Array {
  const cum = new Float64Array(probs.length + 1);
  for (let j = 0; j < probs.length; j++) cum[j + 1] = cum[j] + probs[j];
  return cum;
}

/**
 * Checks each GPU token against sampleRef; returns how many draws sat on a
 * boundary: u within MARGIN of an inner CDF boundary, or the top-p cut within
 * MARGIN of a token's mass-above. Those must still be a token the reference
 * could give within the margin: one whose CDF interval meets [u - MARGIN,
 * u + MARGIN], or (at a top-p cut) a member of the set cut slightly wider.
 */
function checkAgainstRef(got: Uint32Array, x: Float32Array, opts: Opts, draws: Draw[], what: string): number {
  const kept = keptSet(x, opts);
  const cum = cdf(kept.probs);
  const wider = opts.topP !== undefined && opts.topP < 1 ? keptSet(x, { ...opts, topP: Math.min(1, opts.topP + 2 * MARGIN) }).indices : kept.indices;
  let ambiguous = 0;
  draws.forEach((d, i) => {
    const want = sampleRef(x, { ...opts, ...d });
    const u = uniform01(d.seed, d.step);
    let onCdf = false;
    for (let j = 1; j < kept.indices.length; j++) onCdf ||= Math.abs(u - cum[j]) < MARGIN;
    const onCut = kept.pMargin < MARGIN;
    if (!onCdf && !onCut) {
      expect(got[i], `${what}: draw ${i} (seed ${d.seed}, step ${d.step})`).toBe(want);
      return;
    }
    ambiguous++;
    const j = kept.indices.indexOf(got[i]);
    const nearU = j >= 0 && cum[j] <= u + MARGIN && cum[j + 1] >= u - MARGIN;
    expect(nearU || (onCut && wider.includes(got[i])), `${what}: boundary draw ${i} gave ${got[i]}, reference ${want}`).toBe(true);
  });
  return ambiguous;
}

/** Chi-square critical value at significance 1e-3 (Wilson-Hilferty, z = 3.09; 37.8 for 15 dof vs 37.7 exact). */
function chi2Crit(df: number): number {
  const a = 2 / (9 * df);
  return df * (1 - a + 3.09 * Math.sqrt(a)) ** 3;
}

/** Pearson's statistic of counts against probabilities, bins expecting < 5 draws pooled. */
function chi2(counts: number[], probs: number[], n: number): { stat: number; df: number } {
  let stat = 0;
  let bins = 0;
  let poolObs = 0;
  let poolExp = 0;
  probs.forEach((p, i) => {
    if (n * p < 5) {
      poolObs += counts[i];
      poolExp += n * p;
      return;
    }
    stat += (counts[i] - n * p) ** 2 / (n * p);
    bins++;
  });
  if (poolExp > 0) {
    stat += (poolObs - poolExp) ** 2 / poolExp;
    bins++;
  }
  return { stat, df: bins - 1 };
}

/**
 * Hugging Face's TopPLogitsWarper, transcribed literally (float64): sort
 * ascending, cumulative softmax, drop where cumsum <= 1 - top_p, always keep
 * the last (min_tokens_to_keep = 1). Returns the kept indices, ascending.
 */
function hfTopP(scores: Float64Array, topP: number): number[] {
  const order = Array.from(scores.keys()).sort((a, b) => scores[a] - scores[b]);
  const m = Math.max(...scores);
  const e = order.map((i) => Math.exp(scores[i] - m));
  const z = e.reduce((a, b) => a + b, 0);
  const kept: number[] = [];
  let cum = 0;
  order.forEach((i, j) => {
    cum += e[j] / z;
    if (!(cum <= 1 - topP) || j === order.length - 1) kept.push(i);
  });
  return kept.sort((a, b) => a - b);
}

describe('sampling reference (CPU)', () => {
  it('keptSet matches hand-checked values: temperature, top-k with boundary ties, top-p', () => {
    // softmax of [0, 1, 2, 3] / 1: e^k / (1 + e + e^2 + e^3)
    const z = 1 + Math.E + Math.E ** 2 + Math.E ** 3;
    const all = keptSet([0, 1, 2, 3], { temperature: 1 });
    expect(all.indices).toEqual([0, 1, 2, 3]);
    expectClose(all.probs, [1 / z, Math.E / z, Math.E ** 2 / z, Math.E ** 3 / z], { atol: 0, rtol: 1e-15 }, 'softmax');
    // temperature 2 halves the logits: weights 1, e^0.5, e, e^1.5
    const t2 = keptSet([0, 1, 2, 3], { temperature: 2 });
    expect(t2.probs[3] / t2.probs[2]).toBeCloseTo(Math.exp(0.5), 14);
    // top-2 of [5, 1, 5, 3, 5]: the 2nd largest is 5, so all three 5s stay
    expect(keptSet([5, 1, 5, 3, 5], { temperature: 1, topK: 2 }).indices).toEqual([0, 2, 4]);
    expect(keptSet([5, 1, 4, 3, 2], { temperature: 1, topK: 2 }).indices).toEqual([0, 2]);
    // probabilities ~ [0.644, 0.237, 0.087, 0.032] for logits [3, 2, 1, 0]:
    // top-p 0.6 keeps only the first (mass above it 0 < 0.6; above the 2nd 0.644);
    // top-p 0.7 keeps two (0.644 < 0.7), 0.9 three (0.881 < 0.9)
    expect(keptSet([3, 2, 1, 0], { temperature: 1, topP: 0.6 }).indices).toEqual([0]);
    expect(keptSet([3, 2, 1, 0], { temperature: 1, topP: 0.7 }).indices).toEqual([0, 1]);
    expect(keptSet([3, 2, 1, 0], { temperature: 1, topP: 0.9 }).indices).toEqual([0, 1, 2]);
    // NaN and -inf are never kept; +inf takes all the mass (two of them: half each)
    const odd = keptSet([NaN, -Infinity, Infinity, 0, Infinity], { temperature: 1 });
    expect(odd.indices).toEqual([2, 3, 4]);
    expect(Array.from(odd.probs)).toEqual([0.5, 0, 0.5]);
  });

  it('top-p as "mass strictly above < p" equals HF TopPLogitsWarper without ties, and keeps the whole boundary group with ties', () => {
    let onCut = 0;
    for (let c = 0; c < 300; c++) {
      const V = 2 + (c % 40);
      const x = randn(9000 + c, V, 2);
      const p = 0.05 + 0.9 * rng(c)();
      const ours = keptSet(x, { temperature: 1, topP: p });
      // within float64 rounding of the cut, 1 - cumsum and the mass above may disagree
      if (ours.pMargin < 1e-12) {
        onCut++;
        continue;
      }
      expect(ours.indices, `case ${c}`).toEqual(hfTopP(Float64Array.from(x), p));
    }
    expect(onCut).toBeLessThanOrEqual(3);
    // ties: HF keeps the tied tokens that torch.sort puts last; ours keeps the group.
    // [2, 1, 1, 1, 0] with p = 0.75: mass above the 1s is 0.447 < 0.75, so all stay;
    // HF (this sort order) keeps two of the three 1s.
    const tied = [2, 1, 1, 1, 0];
    const hf = hfTopP(Float64Array.from(tied), 0.75);
    expect(keptSet(tied, { temperature: 1, topP: 0.75 }).indices).toEqual([0, 1, 2, 3]);
    expect(hf.length).toBe(3);
    expect(hf.every((i) => [0, 1, 2, 3].includes(i))).toBe(true);
  });

  it('pcgHash matches a BigInt transcription of the PCG hash; uniform01 is in [0, 1) with 24 bits', () => {
    const M = 2n ** 32n;
    const pcg = (x: bigint) => {
      const state = (x * 747796405n + 2891336453n) % M;
      const word = (((state >> ((state >> 28n) + 4n)) ^ state) * 277803737n) % M;
      return Number((word >> 22n) ^ word);
    };
    const u = rng(5);
    for (let i = 0; i < 1000; i++) {
      const x = i < 4 ? [0, 1, 0xffffffff, 0x80000000][i] : Math.floor(u() * 2 ** 32);
      expect(pcgHash(x)).toBe(pcg(BigInt(x)));
      const v = uniform01(x, i);
      expect(v >= 0 && v < 1 && Number.isInteger(v * 2 ** 24)).toBe(true);
    }
  });
});

describeGpu('sample', () => {
  const gpu = useGpu();

  // [V, logit scale, options, draws, kept-set size the case is about]. The
  // kernel takes different roads: V <= 1024 ranks every token in workgroup
  // memory; larger V searches the key range until <= 1024 candidates are left
  // (then ranks them), or to the exact threshold when more stay (kept > 1024).
  // Large vocabularies get peakier logits: a flat softmax over 150k tokens
  // puts a CDF boundary within MARGIN of almost every u.
  it.each<[number, number, Opts, number, string]>([
    [1, 3, { temperature: 1 }, 8, 'all'],
    [7, 3, { temperature: 1 }, 40, 'all'],
    [7, 3, { temperature: 0.5, topK: 3 }, 40, '<= 1024'],
    [1000, 3, { temperature: 1 }, 48, 'all'],
    [1000, 3, { temperature: 0.7, topK: 40 }, 48, '<= 1024'],
    [1000, 3, { temperature: 1.3, topP: 0.9 }, 48, '<= 1024'],
    [4097, 3, { temperature: 0.8, topK: 50, topP: 0.95 }, 48, '<= 1024'],
    [4097, 3, { temperature: 1, topK: 5000 }, 16, 'all'],
    [4097, 3, { temperature: 2, topK: 1 }, 16, '<= 1024'],
    [4097, 1, { temperature: 1, topK: 2000 }, 24, '> 1024'],
    [4097, 1, { temperature: 1, topK: 1500, topP: 0.5 }, 24, '<= 1024'],
    [8192, 1, { temperature: 1, topP: 0.5 }, 24, '> 1024'],
    [50280, 8, { temperature: 1, topK: 50, topP: 0.9 }, 12, '<= 1024'],
    [151936, 8, { temperature: 0.9, topP: 0.8 }, 4, '<= 1024'],
    [151936, 8, { temperature: 1.5 }, 4, 'all'],
  ])('V = %i, scale %i, %j, %i draws: the GPU draws sampleRef\'s token for each (seed, step) (kept: %s)', async (V, scale, opts, n, regime) => {
    const g = gpu();
    const x = randn(V * 13 + n, V, scale);
    const kept = keptSet(x, opts).indices.length;
    if (regime === 'all') expect(kept).toBe(V);
    else if (regime === '> 1024') expect(kept).toBeGreaterThan(1024);
    else expect(kept).toBeLessThanOrEqual(1024);
    const draws = pairs(V + 7 * n, n);
    const t = g.upload(x, [V], { label: 'logits' });
    const got = await drawMany(g, t, opts, draws);
    const ambiguous = checkAgainstRef(got, x, opts, draws, `V ${V}`);
    expect(ambiguous, 'boundary draws (expected rare)').toBeLessThanOrEqual(Math.floor(n / 8));
    t.dispose();
  });

  it('keeps every token tied with the k-th score, and draws them as the reference does', async () => {
    const g = gpu();
    const V = 64;
    const x = randn(4242, V, 2);
    const order = Array.from(x.keys()).sort((a, b) => x[b] - x[a]);
    // tokens ranked 3..7 all take the 3rd score: top-3 keeps 2 + 5 tied tokens
    for (let r = 3; r < 8; r++) x[order[r]] = x[order[2]];
    const opts = { temperature: 3, topK: 3 };
    const kept = keptSet(x, opts);
    expect(kept.indices).toEqual(order.slice(0, 8).sort((a, b) => a - b));
    const draws = pairs(99, 300);
    const t = g.upload(x, [V], { label: 'logits' });
    const got = await drawMany(g, t, opts, draws);
    expect(checkAgainstRef(got, x, opts, draws, 'ties')).toBeLessThanOrEqual(30);
    expect(new Set(got).size, 'several of the 8 kept tokens drawn').toBeGreaterThanOrEqual(6);
    t.dispose();
  });

  // V > 4 * WG = 1024 but at most 1024 drawable logits (the rest NaN or -inf): the
  // kernel ranks the candidates in workgroup memory from the start, gathering
  // them from a strided pass over all V. V = 1024 and 1025: either side of that.
  it.each<[number, number, Opts]>([
    [3000, 2300, { temperature: 1, topK: 30, topP: 0.9 }],
    [3000, 2300, { temperature: 0.8, topP: 0.8 }],
    [3000, 2300, { temperature: 1.1, topK: 600 }],
    [1024, 0, { temperature: 1, topK: 100, topP: 0.9 }],
    [1025, 0, { temperature: 1, topK: 100, topP: 0.9 }],
    [1025, 0, { temperature: 1, topP: 0.7 }],
  ])('V = %i with %i masked (NaN, -inf), %j: the GPU draws sampleRef\'s token', async (V, masked, opts) => {
    const g = gpu();
    const seed = V * 7 + masked + (opts.topK ?? 0) + Math.round((opts.topP ?? 1) * 100);
    const x = randn(seed, V, 2);
    const u = rng(seed + 1);
    for (let m = 0; m < masked; ) {
      const i = Math.floor(u() * V);
      if (!Number.isFinite(x[i])) continue;
      x[i] = m % 10 === 0 ? NaN : -Infinity;
      m++;
    }
    expect(keptSet(x, { temperature: 1 }).indices.length).toBe(V - masked);
    const draws = pairs(seed + 2, 24);
    const t = g.upload(x, [V], { label: 'logits' });
    const got = await drawMany(g, t, opts, draws);
    expect(checkAgainstRef(got, x, opts, draws, `V ${V}, ${masked} masked`)).toBeLessThanOrEqual(3);
    for (const tok of got) expect(Number.isFinite(x[tok]), `token ${tok} has logit ${x[tok]}`).toBe(true);
    t.dispose();
  });

  // topK at or above the number of drawable logits is off (HF keeps them all);
  // one below it cuts one token; topP = 1 given explicitly is off too. A high
  // temperature makes the softmax nearly flat, so the one token cut moves the
  // CDF enough to change some draws.
  it('topK = drawable count is off, topK = count - 1 drops the lowest, topP = 1 is off', async () => {
    const g = gpu();
    const V = 1500;
    const x = randn(1501, V, 1);
    for (let i = 0; i < V; i += 4) x[i] = -Infinity; // 1125 drawable: more than 1024
    const count = V - V / 4;
    const t = g.upload(x, [V], { label: 'logits' });
    const lowest = Array.from(x.keys()).filter((i) => Number.isFinite(x[i])).reduce((a, b) => (x[b] < x[a] ? b : a));
    const draws = pairs(1502, 24);
    const off = draws.map((d) => sampleRef(x, { temperature: 20, ...d }));
    const cut = draws.map((d) => sampleRef(x, { temperature: 20, topK: count - 1, ...d }));
    expect(cut.some((tok, i) => tok !== off[i]), 'the cut changes some reference draws').toBe(true);
    for (const opts of [{ temperature: 20, topK: count, topP: 1 }, { temperature: 20, topK: count - 1 }, { temperature: 20, topK: V }] as Opts[]) {
      const kept = keptSet(x, opts).indices;
      expect(kept.length, JSON.stringify(opts)).toBe(opts.topK === count - 1 ? count - 1 : count);
      expect(kept.includes(lowest)).toBe(opts.topK !== count - 1);
      const got = await drawMany(g, t, opts, draws);
      expect(checkAgainstRef(got, x, opts, draws, JSON.stringify(opts))).toBeLessThanOrEqual(3);
    }
    t.dispose();
  });

  // A group of equal logits straddling the top-p cut stays whole (sample.wgsl's
  // rule, and keptSet's): with <= 1024 candidates the cut is read off in rank(),
  // with more the 8-way search finds it.
  it.each<[number, number]>([[200, 10], [5000, 1500]])('top-p keeps the whole tied group at the cut (V = %i, %i tied), and draws as the reference does', async (V, tied) => {
    const g = gpu();
    const x = randn(V + tied, V, 1);
    const order = Array.from(x.keys()).sort((a, b) => x[b] - x[a]);
    const first = 5;
    for (let r = first; r < first + tied; r++) x[order[r]] = x[order[first]];
    // p halfway through the tied group's mass: the mass above the group is < p,
    // so all of it stays, though HF (sorted cumsum) would keep only part
    const w = Array.from(x, (v) => Math.exp(v - x[order[0]]));
    const z = w.reduce((a, b) => a + b, 0);
    const above = order.slice(0, first).reduce((a, i) => a + w[i], 0) / z;
    const group = order.slice(first, first + tied).reduce((a, i) => a + w[i], 0) / z;
    const opts = { temperature: 1, topP: above + group / 2 };
    const kept = keptSet(x, opts);
    expect(kept.indices).toEqual(order.slice(0, first + tied).sort((a, b) => a - b));
    expect(kept.pMargin).toBeGreaterThan(MARGIN);
    const draws = pairs(V + tied + 1, 40);
    const t = g.upload(x, [V], { label: 'logits' });
    const got = await drawMany(g, t, opts, draws);
    expect(checkAgainstRef(got, x, opts, draws, `tied cut, V ${V}`)).toBeLessThanOrEqual(5);
    const tiedSet = new Set(order.slice(first, first + tied));
    expect(got.filter((tok) => tiedSet.has(tok)).length, 'tied tokens are drawn').toBeGreaterThan(0);
    t.dispose();
  });

  // More than 1024 tokens tied with the k-th score: the search cannot hand the
  // candidates to rank() and must end exactly on the tied key.
  it('keeps all of > 1024 tokens tied with the k-th score (V = 4097, top-10), alone and then with top-p', async () => {
    const g = gpu();
    const V = 4097;
    const x = randn(40971, V, 1);
    const order = Array.from(x.keys()).sort((a, b) => x[b] - x[a]);
    for (let r = 9; r < 2009; r++) x[order[r]] = x[order[9]];
    const t = g.upload(x, [V], { label: 'logits' });
    for (const opts of [{ temperature: 1, topK: 10 }, { temperature: 1, topK: 10, topP: 0.6 }] as Opts[]) {
      const kept = keptSet(x, opts);
      if (opts.topP === undefined) expect(kept.indices.length).toBe(2009);
      else expect(kept.indices.length).toBeGreaterThan(9);
      const draws = pairs(40972 + (opts.topP ? 1 : 0), 24);
      const got = await drawMany(g, t, opts, draws);
      expect(checkAgainstRef(got, x, opts, draws, JSON.stringify(opts))).toBeLessThanOrEqual(3);
    }
    t.dispose();
  });

  // Logits rounded to a coarse grid (as low-precision logits are): groups of
  // hundreds of equal values everywhere, through both top-k and top-p searches.
  it.each<Opts>([
    { temperature: 1, topP: 0.5 },
    { temperature: 0.7, topK: 3000, topP: 0.9 },
    { temperature: 1, topK: 700 },
  ])('logits on a grid of 1/4 (V = 8192, many ties), %j: the GPU draws sampleRef\'s token', async (opts) => {
    const g = gpu();
    const V = 8192;
    const seed = 8192 + (opts.topK ?? 0) + Math.round((opts.topP ?? 1) * 10);
    const x = randn(seed, V, 1.5).map((v) => Math.round(v * 4) / 4);
    const draws = pairs(seed + 1, 24);
    const t = g.upload(x, [V], { label: 'logits' });
    const got = await drawMany(g, t, opts, draws);
    expect(checkAgainstRef(got, x, opts, draws, JSON.stringify(opts))).toBeLessThanOrEqual(3);
    t.dispose();
  });

  // logitsRow binds from the 256-byte boundary at or before the row: a view at
  // an element offset off that grid, rows starting off it (and row 1 exactly on
  // it, base 0), the row's first and last element, and larger values just
  // outside the row that must never be read.
  it('selects rows of a view at an element offset (3) of a larger buffer, never reading past the row', async () => {
    const g = gpu();
    const [rows, V, off] = [3, 61, 3]; // row r starts at element 3 + 61 r: row 1 at 64 (byte 256)
    const big = new Float32Array(off + rows * V + 5).fill(50); // outside the rows: far above every logit
    const x = randn(6161, rows * V, 1);
    x[V - 1] = 4; // row 0: its last element is the largest
    x[V] = 4; // row 1: its first
    big.set(x, off);
    const tb = g.upload(big, [big.length], { label: 'big' });
    const view = tb.view([rows, V], off, 'logits');
    const opts = { temperature: 1, topK: 5 };
    const draws = pairs(616, 16);
    for (let r = 0; r < rows; r++) {
      const row = x.subarray(r * V, (r + 1) * V);
      const got = await drawMany(g, view, opts, draws, r);
      checkAgainstRef(got, row, opts, draws, `row ${r}`);
      for (const tok of got) expect(tok, `row ${r}`).toBeLessThan(V);
    }
    // a 1-D view of row 2 alone, and its last row by default
    const one = tb.view([V], off + 2 * V, 'row2');
    const gotOne = await drawMany(g, one, opts, draws);
    expect(Array.from(gotOne)).toEqual(Array.from(await drawMany(g, view, opts, draws)));
    checkAgainstRef(gotOne, x.subarray(2 * V), opts, draws, 'row 2 view');
    tb.dispose();
  });

  it('top-k never draws outside the k best; top-p never outside the reference kept set', async () => {
    const g = gpu();
    const V = 1000;
    const x = randn(5151, V, 2);
    const t = g.upload(x, [V], { label: 'logits' });
    const best10 = new Set(Array.from(x.keys()).sort((a, b) => x[b] - x[a]).slice(0, 10));
    const gotK = await drawMany(g, t, { temperature: 2, topK: 10 }, pairs(1, 300));
    for (const tok of gotK) expect(best10.has(tok), `token ${tok} outside the 10 best`).toBe(true);
    expect(new Set(gotK).size).toBeGreaterThan(5);
    const optsP = { temperature: 1, topP: 0.5 };
    const kept = keptSet(x, optsP);
    expect(kept.pMargin).toBeGreaterThan(MARGIN); // this row's cut is clear of ties with rounding
    const gotP = await drawMany(g, t, optsP, pairs(2, 300));
    for (const tok of gotP) expect(kept.indices.includes(tok), `token ${tok} outside the top-p set`).toBe(true);
    expect(new Set(gotP).size).toBeGreaterThan(1);
    t.dispose();
  });

  it.each<[string, Opts, number]>([
    ['plain softmax', { temperature: 1 }, 2000],
    ['top-k 6 then top-p 0.85', { temperature: 0.9, topK: 6, topP: 0.85 }, 1200],
  ])('frequencies over many steps follow the kept softmax (%s), chi-square at 1e-3', async (_name, opts, n) => {
    const g = gpu();
    const V = 16;
    const x = randn(1616, V, 1.5);
    const t = g.upload(x, [V], { label: 'logits' });
    const draws = Array.from({ length: n }, (_, step) => ({ seed: 2024, step }));
    const got = await drawMany(g, t, opts, draws);
    const kept = keptSet(x, opts);
    const counts = new Array<number>(V).fill(0);
    for (const tok of got) counts[tok]++;
    const probs = new Array<number>(V).fill(0);
    kept.indices.forEach((i, j) => (probs[i] = kept.probs[j]));
    // tokens outside the kept set are never drawn
    counts.forEach((c, i) => (probs[i] === 0 ? expect(c, `token ${i} is filtered out`).toBe(0) : undefined));
    const { stat, df } = chi2(kept.indices.map((i) => counts[i]), kept.indices.map((i) => probs[i]), n);
    expect(df).toBeGreaterThanOrEqual(opts.topK ? 2 : 8);
    expect(stat, `chi-square with ${df} dof`).toBeLessThan(chi2Crit(df));
    t.dispose();
  });

  it('is deterministic: the same seed and step give the same token in separate submits, on the selected row', async () => {
    const g = gpu();
    const rows = 3;
    const V = 777;
    const x = randn(31337, rows * V, 3);
    const t = g.upload(x, [rows, V], { label: 'logits' });
    const opts = { temperature: 1.2, topK: 100, topP: 0.97 };
    const draws = pairs(7, 24);
    const a = await drawMany(g, t, opts, draws, 1);
    const b = await drawMany(g, t, opts, draws, 1);
    expect(Array.from(b)).toEqual(Array.from(a));
    checkAgainstRef(a, x.subarray(V, 2 * V), opts, draws, 'row 1');
    const last = await drawMany(g, t, opts, draws); // default: the last row
    checkAgainstRef(last, x.subarray(2 * V), opts, draws, 'last row');
    t.dispose();
  });

  it('never draws NaN or -inf logits, treats +inf as the largest value, and writes NO_TOKEN when nothing is drawable', async () => {
    const g = gpu();
    const V = 300;
    const x = randn(808, V, 1);
    for (let i = 0; i < V; i += 3) x[i] = -Infinity;
    for (let i = 1; i < V; i += 7) x[i] = NaN;
    const inf = new Float32Array(V).fill(-Infinity);
    inf[5] = Infinity;
    inf[200] = Infinity;
    inf[100] = 3;
    const dead = new Float32Array(V).fill(-Infinity);
    dead[17] = NaN;
    const opts = { temperature: 1, topP: 0.99 };
    const draws = pairs(3, 64);
    const tx = g.upload(x, [V], { label: 'masked' });
    const ti = g.upload(inf, [V], { label: 'inf' });
    const td = g.upload(dead, [V], { label: 'dead' });
    const gotX = await drawMany(g, tx, opts, draws);
    checkAgainstRef(gotX, x, opts, draws, 'masked');
    for (const tok of gotX) expect(Number.isFinite(x[tok]), `token ${tok} has logit ${x[tok]}`).toBe(true);
    const gotI = await drawMany(g, ti, { temperature: 1 }, draws);
    for (const tok of gotI) expect([5, 200]).toContain(tok); // the two +inf split the mass
    expect(new Set(gotI).size).toBe(2);
    const gotD = await drawMany(g, td, opts, draws.slice(0, 2));
    expect(Array.from(gotD)).toEqual([NO_TOKEN, NO_TOKEN]);
    expect(sampleRef(dead, { ...opts, ...draws[0] })).toBe(NO_TOKEN);
    [tx, ti, td].forEach((t) => t.dispose());
  });

  it('rejects bad options and tensors, naming them', async () => {
    const g = gpu();
    const x = g.upload(randn(1, 12), [3, 4], { label: 'x' });
    const out = g.empty([2], 'u32', 'out');
    const rec = new Recorder(g);
    const ok: SampleOptions = { temperature: 1, seed: 1, step: 0 };
    const bad = (o: Partial<SampleOptions>) => () => sample(rec, x, out, { ...ok, ...o });
    expect(bad({ temperature: 0 })).toThrow(/sample: temperature must be a finite number > 0, got 0; for greedy decoding \(temperature 0\) use argmax\(\)/);
    expect(bad({ temperature: -1 })).toThrow(/sample: temperature must be a finite number > 0, got -1/);
    expect(bad({ temperature: NaN })).toThrow(/sample: temperature must be a finite number > 0, got NaN/);
    expect(bad({ temperature: 1e-45 })).toThrow(/sample: temperature 1e-45 is too small/);
    expect(bad({ topK: -1 })).toThrow(/sample: topK must be an integer >= 0 \(0 = off\), got -1/);
    expect(bad({ topK: 2.5 })).toThrow(/sample: topK must be an integer >= 0 \(0 = off\), got 2.5/);
    expect(bad({ topP: 0 })).toThrow(/sample: topP must be in \(0, 1\] \(1 = off\), got 0/);
    expect(bad({ topP: 1.5 })).toThrow(/sample: topP must be in \(0, 1\] \(1 = off\), got 1.5/);
    expect(bad({ topP: NaN })).toThrow(/sample: topP must be in \(0, 1\] \(1 = off\), got NaN/);
    expect(bad({ seed: -1 })).toThrow(/sample: seed must be an integer in \[0, 2\^32\), got -1/);
    expect(bad({ step: 2 ** 32 })).toThrow(/sample: step must be an integer in \[0, 2\^32\), got 4294967296/);
    expect(() => sample(rec, x, out, ok, 5)).toThrow(/sample: row 5 is out of range for logits 'x' \(3, 4\) \(3 rows\)/);
    expect(() => sample(rec, x, out, ok, 0, 2)).toThrow(/sample: outIndex 2 is out of range for out 'out' \(2\)/);
    const of = g.empty([2], 'f32', 'outf');
    expect(() => sample(rec, x, of, ok)).toThrow(/sample: out 'outf' \(2\) f32 must be a \(n\) u32 tensor/);
    const xi = g.upload(new Int32Array(4), [4], { label: 'xi' });
    expect(() => sample(rec, xi, out, ok)).toThrow(/sample: logits 'xi' \(4\) must be f32 or f16, got i32/);
    x.dispose();
    expect(() => sample(rec, x, out, ok)).toThrow(/sample: tensor 'x' \(3, 4\) was disposed/);
    [out, of, xi].forEach((t) => t.dispose());
  });
});
