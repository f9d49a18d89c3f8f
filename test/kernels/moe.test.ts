// The mixture-of-experts kernels against the float64 references of
// src/reference/moe_ops.ts: the router (both modes, ties), the decode path
// (moe_matvec_q4 reading only the routed experts, moe_combine), and the
// prefill path (moe_group's plan, the grouped moe_matmul_q4, moe_combine),
// stage by stage: each stage is compared with the reference run on the
// previous stage's GPU output, so each tolerance is that kernel's own.

import { expect, it } from 'vitest';
import { Recorder } from '../../src/runtime/recorder';
import type { Gpu } from '../../src/runtime/gpu';
import type { Tensor } from '../../src/runtime/tensor';
import { dequantizeQ4, quantizeQ4, type Q4GroupSize } from '../../src/runtime/q4';
import { moeRouter, moeRouterLanes } from '../../src/kernels/moe_router';
import { moeMatvecQ4 } from '../../src/kernels/moe_matvec_q4';
import { MOE_TILE, moeGroup, moePlanLayout, moePlanShape } from '../../src/kernels/moe_group';
import { moeMatmulQ4 } from '../../src/kernels/moe_matmul_q4';
import type { PrefillMatmul } from '../../src/kernels/tunings';
import { moeCombine } from '../../src/kernels/moe_combine';
import { swiglu } from '../../src/kernels/swiglu';
import { MATVEC_TUNINGS, type MatvecTuning } from '../../src/kernels/tunings';
import { MOE_NONE, moeCombineRef, moeExpertsRef, moeGroupRef, moeLinearRef, moeRouterRef, type MoeRouterMode } from '../../src/reference/moe_ops';
import { describeGpu, poisoned, useGpu } from '../helpers/gpu';
import { randint, randn, randu } from '../helpers/random';
import { expectClose } from '../helpers/compare';
import { poisonExperts, unrouted } from '../helpers/moe_poison';

const maxAbs = (a: ArrayLike<number>) => Array.from(a).reduce((m, v) => Math.max(m, Math.abs(v)), 0);

/**
 * A linear layer's f32 accumulation of K products (matvec_q4.test.ts says
 * why): atol 2e-6 sqrt(K) max|x| max|w|, 20x the measured error, far below one
 * wrong code; rtol 1e-5. The references run on the dequantized weights.
 */
const linearTol = (K: number, x: ArrayLike<number>, w: ArrayLike<number>) => ({ atol: 2e-6 * Math.sqrt(K) * maxAbs(x) * maxAbs(w), rtol: 1e-5 });

/**
 * Router weights: ratios of f32 exps, each within (3 + 2|v|) ulp (|v| <= ~20
 * here: ~4e-6 relative), over an f32 sum of at most 128 terms (~1e-5 at the
 * worst ordering, far less in practice): rtol 3e-5, atol 1e-7 for the tiny
 * probabilities of a 128-way softmax. A wrong expert moves a weight by far more.
 */
const ROUTER_TOL = { atol: 1e-7, rtol: 3e-5 };

/**
 * moe_combine: k f32 products and k (or k + 1, with the residual) f32 adds,
 * each rounding within 2^-24 of a value bounded by |base| + sum |w y| <=
 * max|base| + max|y| (the weights sum to 1): atol (2k + 1) 2^-24 of that, rtol 0.
 */
const combineTol = (k: number, y: ArrayLike<number>, base: ArrayLike<number> | null) => ({ atol: (2 * k + 1) * 2 ** -24 * (maxAbs(y) + (base ? maxAbs(base) : 0)), rtol: 0 });


/** E experts of (N, K) stacked as one q4 (E * N, K) weight: uploaded, and dequantized for the references. */
function stacked(g: Gpu, seed: number, E: number, N: number, K: number, G: Q4GroupSize, label: string): { t: Tensor; wd: Float64Array } {
  const q = quantizeQ4(randn(seed, E * N * K, 0.05), E * N, K, G);
  return { t: g.uploadQ4(q, label), wd: dequantizeQ4(q) };
}


describeGpu('moe', () => {
  const gpu = useGpu();

  // ---------------------------------------------------------------- router

  /** Logits (T, E) with deliberate ties: all equal, the max repeated, -0 and +0, values on a coarse grid; then random rows. */
  function routerLogits(seed: number, T: number, E: number): Float32Array {
    const x = randn(seed, T * E, 2);
    const row = (t: number) => x.subarray(t * E, (t + 1) * E);
    row(0).fill(0.25); // every expert tied: experts 0 .. k-1 in order, equal weights
    const r1 = row(1); // the largest value at 3 places, the next largest at 2
    const top = maxAbs(r1) + 1;
    [E - 1, 1, Math.floor(E / 2)].forEach((i) => (r1[i] = top));
    [0, E - 2].forEach((i) => (r1[i] = top - 0.5));
    const r2 = row(2); // zeros of both signs above a negative row
    r2.forEach((v, i) => (r2[i] = -Math.abs(v) - 1));
    [3 % E, 0, E - 1].forEach((i, j) => (r2[i] = j === 1 ? -0 : 0));
    row(3).forEach((v, i, a) => (a[i] = Math.round(v))); // a coarse grid: many ties at every rank
    return x;
  }

  const ROUTINGS: [MoeRouterMode, boolean][] = [['softmax-topk', false], ['softmax-topk', true], ['topk-softmax', false]];

  // The two algorithms: 1 lane per token (serial, SwiftShader's default), 8
  // lanes (each ranking several experts), and a lane per expert (a GPU's default).
  const lanesFor = (E: number) => [...new Set([1, 8, moeRouterLanes({ software: false }, E)])];

  it.each([4, 8, 60, 128])('router, E = %i: top-k ids and weights match the reference for k = 1, 2, 8, both modes, renormalised or not, ties to the lower index, serial and ranked', async (E) => {
    const g = gpu();
    const T = 7;
    const logits = routerLogits(E * 131, T, E);
    const tl = g.upload(logits, [T, E], { label: 'logits' });
    const ks = [1, 2, 8].filter((k) => k <= E);
    const outs: { k: number; mode: MoeRouterMode; renorm: boolean; lanes: number; ids: Tensor; w: Tensor }[] = [];
    const rec = new Recorder(g);
    for (const k of ks) {
      for (const [mode, renorm] of ROUTINGS) {
        for (const lanes of lanesFor(E)) {
          const o = { k, mode, renorm, lanes, ids: poisoned(g, [T, k], 'ids', 'u32'), w: poisoned(g, [T, k], 'weights') };
          moeRouter(rec, tl, o.ids, o.w, { mode, renormalize: renorm, lanes });
          outs.push(o);
        }
      }
    }
    await rec.submit();
    for (const o of outs) {
      const want = moeRouterRef(logits, T, E, o.k, o.mode, o.renorm);
      const what = `E ${E} k ${o.k} ${o.mode}${o.renorm ? ' renormalised' : ''} lanes ${o.lanes}`;
      expect(Array.from(await g.read(o.ids)), `${what}: ids`).toEqual(Array.from(want.ids));
      expectClose(await g.read(o.w), want.weights, ROUTER_TOL, `${what}: weights`);
      o.ids.dispose();
      o.w.dispose();
    }
    // the planted ties, as the reference orders them
    const top2 = moeRouterRef(logits, T, E, Math.min(E, 5), 'softmax-topk');
    const k5 = Math.min(E, 5);
    expect(Array.from(top2.ids.subarray(0, k5))).toEqual([0, 1, 2, 3, 4].slice(0, k5));
    expect(Array.from(top2.ids.subarray(k5, 2 * k5))).toEqual(E === 4 ? [1, 3, 0, 2] : [1, Math.floor(E / 2), E - 1, 0, E - 2]);
    tl.dispose();
  });

  it.each([1, 16])('router over many tokens (lanes %i) and one expert (k = E = 1: weight 1), and NaN ranking first', async (lanes) => {
    const g = gpu();
    const [T, E, k] = [300, 16, 2];
    const logits = randn(77, T * E, 3);
    logits[5 * E + 9] = NaN; // token 5: the NaN ranks first (as torch.sort orders it), its weights are NaN
    const tl = g.upload(logits, [T, E], { label: 'logits' });
    const ids = poisoned(g, [T, k], 'ids', 'u32');
    const w = poisoned(g, [T, k], 'weights');
    const one = g.upload(randn(78, 3), [3, 1], { label: 'logits.1' });
    const ids1 = poisoned(g, [3, 1], 'ids.1', 'u32');
    const w1 = poisoned(g, [3, 1], 'weights.1');
    const rec = new Recorder(g);
    moeRouter(rec, tl, ids, w, { mode: 'softmax-topk', renormalize: true, lanes });
    moeRouter(rec, one, ids1, w1, { mode: 'softmax-topk', lanes });
    await rec.submit();
    const want = moeRouterRef(logits, T, E, k, 'softmax-topk', true);
    expect(Array.from(await g.read(ids))).toEqual(Array.from(want.ids));
    expect(want.ids[5 * k]).toBe(9);
    const gotW = await g.read(w);
    expect(Number.isNaN(gotW[5 * k]) && Number.isNaN(gotW[5 * k + 1]), 'token 5 has NaN weights').toBe(true);
    const others = (a: ArrayLike<number>) => Array.from(a).filter((_, i) => Math.floor(i / k) !== 5);
    expectClose(others(gotW), others(want.weights), ROUTER_TOL, 'router T 300');
    expect(Array.from(await g.read(ids1))).toEqual([0, 0, 0]);
    expect(Array.from(await g.read(w1))).toEqual([1, 1, 1]);
    [tl, ids, w, one, ids1, w1].forEach((t) => t.dispose());
  });

  // ---------------------------------------------------------------- decode

  // [E, k, D, I, G]: K % 32 != 0 for gate/up (D 72: a tail word) and down (I 40);
  // 60 experts with k 4 (OLMoE-like), 8 with 2 (Mixtral-like), one with k 8
  const DECODE: [number, number, number, number, Q4GroupSize][] = [[8, 2, 64, 96, 32], [60, 4, 72, 40, 64], [16, 8, 128, 64, 128]];

  it.each(DECODE)('decode, E %i k %i D %i I %i G %i: only the routed experts are read (the others poisoned), each stage matches the reference', async (E, k, D, I, G) => {
    const g = gpu();
    const seed = E * 1009 + k * 101 + D + I + G;
    const x = randn(seed, D);
    const base = randn(seed + 1, D); // the residual stream the block adds into
    const logits = randn(seed + 2, E, 2);
    const routing = moeRouterRef(logits, 1, E, k, 'softmax-topk', true);
    const gate = stacked(g, seed + 3, E, I, D, G, 'gate');
    const up = stacked(g, seed + 4, E, I, D, G, 'up');
    const down = stacked(g, seed + 5, E, D, I, G, 'down');
    const cold = unrouted(E, routing.ids);
    poisonExperts(g, gate.t, I, cold);
    poisonExperts(g, up.t, I, cold);
    poisonExperts(g, down.t, D, cold);
    const tx = g.upload(x, [1, D], { label: 'x' });
    const tl = g.upload(logits, [1, E], { label: 'logits' });
    const ids = poisoned(g, [1, k], 'ids', 'u32');
    const wts = poisoned(g, [1, k], 'weights');
    const yg = poisoned(g, [k, I], 'gate.y');
    const yu = poisoned(g, [k, I], 'up.y');
    const act = poisoned(g, [k, I], 'act');
    const yd = poisoned(g, [k, D], 'down.y');
    const out = g.upload(base, [1, D], { label: 'out' });
    const rec = new Recorder(g);
    moeRouter(rec, tl, ids, wts, { mode: 'softmax-topk', renormalize: true });
    moeMatvecQ4(rec, gate.t, tx, ids, yg, E);
    moeMatvecQ4(rec, up.t, tx, ids, yu, E);
    swiglu(rec, yg, yu, act);
    moeMatvecQ4(rec, down.t, act, ids, yd, E);
    moeCombine(rec, yd, ids, wts, out, { experts: E, accumulate: true });
    const got = await rec.submitAndRead(out);
    expect(Array.from(await g.read(ids))).toEqual(Array.from(routing.ids));
    const w = await g.read(wts);
    expectClose(w, routing.weights, ROUTER_TOL, 'weights');
    expectClose(await g.read(yg), moeLinearRef(x, gate.wd, routing.ids, k, I, D, 'token'), linearTol(D, x, gate.wd), 'gate');
    expectClose(await g.read(yu), moeLinearRef(x, up.wd, routing.ids, k, I, D, 'token'), linearTol(D, x, up.wd), 'up');
    const a = await g.read(act);
    const y = await g.read(yd);
    expectClose(y, moeLinearRef(a, down.wd, routing.ids, k, D, I, 'entry'), linearTol(I, a, down.wd), 'down');
    expectClose(got, moeCombineRef(y, routing.ids, w, base, 1, k, D, E), combineTol(k, y, base), 'combine');
    expect(got.every(Number.isFinite)).toBe(true);
    // and the block as a whole, against the float64 reference end to end
    // (silu's exp, f32 products: the stage tolerances compounded, loosely)
    const whole = moeExpertsRef(x, routing, { E, D, I, gate: gate.wd, up: up.wd, down: down.wd }, 1, k).map((v, i) => v + base[i]);
    expectClose(got, whole, { atol: 1e-4 * maxAbs(whole), rtol: 1e-4 }, 'moe block');
    [gate.t, up.t, down.t, tx, tl, ids, wts, yg, yu, act, yd, out].forEach((t) => t.dispose());
  });

  const TUNINGS: MatvecTuning[] = [MATVEC_TUNINGS.software.tuning, MATVEC_TUNINGS.gpu.tuning, { WG: 16, TPR: 2 }, { WG: 32, TPR: 32 }];

  it('decode matvec: every tuning agrees; x shared or one per slot; an id >= E gives NaN rows (and a NaN token in moe_combine)', async () => {
    const g = gpu();
    const [E, k, N, K] = [6, 3, 70, 104]; // N: a partial workgroup; K % 32 = 8
    const w = stacked(g, 901, E, N, K, 64, 'w');
    const xs = randn(902, k * K);
    const ids = Uint32Array.from([5, 0, 2]);
    const tids = g.upload(ids, [k], { label: 'ids' });
    const txs = g.upload(xs, [k, K], { label: 'x.slots' });
    const tx1 = g.upload(xs.subarray(0, K), [K], { label: 'x' });
    for (const tune of TUNINGS) {
      const y1 = poisoned(g, [k, N], 'y.shared');
      const yk = poisoned(g, [k, N], 'y.slots');
      const rec = new Recorder(g);
      moeMatvecQ4(rec, w.t, tx1, tids, y1, E, tune);
      moeMatvecQ4(rec, w.t, txs, tids, yk, E, tune);
      await rec.submit();
      const what = `WG${tune.WG} TPR${tune.TPR}`;
      expectClose(await g.read(y1), moeLinearRef(xs.subarray(0, K), w.wd, ids, k, N, K, 'token'), linearTol(K, xs, w.wd), `shared x ${what}`);
      expectClose(await g.read(yk), moeLinearRef(xs, w.wd, ids, k, N, K, 'entry'), linearTol(K, xs, w.wd), `x per slot ${what}`);
      [y1, yk].forEach((t) => t.dispose());
    }
    // a bad id (as from an unwritten router output): its row is NaN, the others exact
    const bad = g.upload(Uint32Array.from([1, E, 0xdeadbeef]), [1, k], { label: 'ids.bad' });
    const yb = poisoned(g, [k, N], 'y.bad');
    const out = poisoned(g, [1, N], 'out');
    const wts = g.upload(Float32Array.from([0.5, 0.3, 0.2]), [1, k], { label: 'weights' });
    const rec = new Recorder(g);
    moeMatvecQ4(rec, w.t, tx1, bad, yb, E);
    moeCombine(rec, yb, bad, wts, out, { experts: E });
    const y = await rec.submitAndRead(yb);
    expectClose(y.subarray(0, N), moeLinearRef(xs.subarray(0, K), w.wd, [1], 1, N, K, 'token'), linearTol(K, xs, w.wd), 'routed row');
    expect(Array.from(y.subarray(N)).every(Number.isNaN)).toBe(true);
    expect(Array.from(await g.read(out)).every(Number.isNaN)).toBe(true);
    [w.t, tids, txs, tx1, bad, yb, out, wts].forEach((t) => t.dispose());
  });

  // ---------------------------------------------------------------- prefill

  /** Random distinct experts per token from `pool` (k of them), as a router would give. */
  function randomRouting(seed: number, T: number, k: number, pool: number[]): Uint32Array {
    const ids = new Uint32Array(T * k);
    const r = randu(seed, T * pool.length, 0, 1);
    for (let t = 0; t < T; t++) {
      const order = pool.map((e, i) => [r[t * pool.length + i], e] as const).sort((a, b) => a[0] - b[0]);
      for (let j = 0; j < k; j++) ids[t * k + j] = order[j][1];
    }
    return ids;
  }

  /** Weights (T, k): positive, summing to 1 per token. */
  function randomWeights(seed: number, T: number, k: number): Float32Array {
    const w = randu(seed, T * k, 0.1, 1);
    for (let t = 0; t < T; t++) {
      let s = 0;
      for (let j = 0; j < k; j++) s += w[t * k + j];
      for (let j = 0; j < k; j++) w[t * k + j] /= s;
    }
    return w;
  }

  interface PrefillCase { name: string; T: number; E: number; k: number; D: number; I: number; G: Q4GroupSize; ids: (seed: number) => Uint32Array }
  const range = (n: number) => Array.from({ length: n }, (_, i) => i);
  const PREFILL: PrefillCase[] = [
    { name: 'T 1', T: 1, E: 8, k: 2, D: 64, I: 96, G: 32, ids: (s) => randomRouting(s, 1, 2, range(8)) },
    { name: 'T 7, 60 experts, random', T: 7, E: 60, k: 4, D: 72, I: 40, G: 32, ids: (s) => randomRouting(s, 7, 4, range(60)) },
    { name: 'T 64, every token to one expert (2 full tiles)', T: 64, E: 8, k: 1, D: 64, I: 96, G: 32, ids: () => new Uint32Array(64).fill(5) },
    { name: 'T 64, every token to the same two experts', T: 64, E: 8, k: 2, D: 72, I: 40, G: 128, ids: () => Uint32Array.from({ length: 128 }, (_, i) => (i % 2 ? 1 : 6)) },
    { name: 'T 200, 10 of 16 experts used (six with no tokens)', T: 200, E: 16, k: 2, D: 72, I: 96, G: 32, ids: (s) => randomRouting(s, 200, 2, [0, 2, 3, 5, 7, 8, 9, 12, 14, 15]) },
  ];

  /** Records the prefill block: group, gate and up, swiglu, down, combine into out. Returns the scratch for inspection. */
  function recordPrefill(g: Gpu, rec: Recorder, c: PrefillCase, w: { gate: Tensor; up: Tensor; down: Tensor }, tx: Tensor, tids: Tensor, twts: Tensor, out: Tensor, kernel: PrefillMatmul) {
    const { T, E, k, D, I } = c;
    const s = {
      plan: poisoned(g, moePlanShape(T, k, E), 'plan', 'u32'),
      yg: poisoned(g, [T * k, I], 'gate.y'),
      yu: poisoned(g, [T * k, I], 'up.y'),
      act: poisoned(g, [T * k, I], 'act'),
      yd: poisoned(g, [T * k, D], 'down.y'),
    };
    const route = moeGroup(rec, tids, E, s.plan);
    moeMatmulQ4(rec, tx, w.gate, s.yg, route, kernel);
    moeMatmulQ4(rec, tx, w.up, s.yu, route, kernel);
    swiglu(rec, s.yg, s.yu, s.act);
    moeMatmulQ4(rec, s.act, w.down, s.yd, route, kernel);
    moeCombine(rec, s.yd, tids, twts, out, { experts: E, accumulate: true });
    return { ...s, dispose: () => Object.values(s).forEach((t) => t.dispose()) };
  }

  // Both expert matmuls: the tiled one (GPUs) and the barrier-free one (software adapters; tunings.ts).
  const PREFILL_KERNELS = PREFILL.flatMap((c) => (['tiled', 'rows'] as const).map((kernel) => ({ ...c, kernel })));
  it.each(PREFILL_KERNELS)('prefill ($kernel), $name: the plan, each stage and the block match the references, bit-identical on a second run', async (c) => {
    const g = gpu();
    const { T, E, k, D, I, G } = c;
    const seed = T * 7919 + E * 31 + k * 7 + D + I;
    const ids = c.ids(seed);
    const wts = randomWeights(seed + 1, T, k);
    const x = randn(seed + 2, T * D);
    const base = randn(seed + 3, T * D);
    const gate = stacked(g, seed + 4, E, I, D, G, 'gate');
    const up = stacked(g, seed + 5, E, I, D, G, 'up');
    const down = stacked(g, seed + 6, E, D, I, G, 'down');
    const cold = unrouted(E, ids);
    for (const [w, n] of [[gate.t, I], [up.t, I], [down.t, D]] as const) poisonExperts(g, w, n, cold);
    const tids = g.upload(ids, [T, k], { label: 'ids' });
    const twts = g.upload(wts, [T, k], { label: 'weights' });
    const tx = g.upload(x, [T, D], { label: 'x' });
    const runs: Float32Array[] = [];
    for (let run = 0; run < 2; run++) {
      const out = g.upload(base, [T, D], { label: 'out' });
      const rec = new Recorder(g);
      const s = recordPrefill(g, rec, c, { gate: gate.t, up: up.t, down: down.t }, tx, tids, twts, out, c.kernel);
      const got = (await rec.submitAndRead(out)) as Float32Array;
      runs.push(got);
      if (run === 0) {
        // the plan, exactly
        const layout = moePlanLayout(T, k, E);
        const plan = await g.read(s.plan);
        const want = moeGroupRef(ids, E, MOE_TILE, layout.maxTiles);
        expect(Array.from(plan.subarray(layout.offsets, layout.offsets + E + 1)), 'offsets').toEqual(Array.from(want.offsets));
        expect(Array.from(plan.subarray(layout.perm, layout.perm + T * k)), 'perm').toEqual(Array.from(want.perm));
        expect(Array.from(plan.subarray(layout.tiles, layout.tiles + 2 * layout.maxTiles)), 'tiles').toEqual(Array.from(want.tiles));
        // each stage on the previous stage's GPU output
        expectClose(await g.read(s.yg), moeLinearRef(x, gate.wd, ids, k, I, D, 'token'), linearTol(D, x, gate.wd), 'gate');
        expectClose(await g.read(s.yu), moeLinearRef(x, up.wd, ids, k, I, D, 'token'), linearTol(D, x, up.wd), 'up');
        const a = await g.read(s.act);
        const y = await g.read(s.yd);
        expectClose(y, moeLinearRef(a, down.wd, ids, k, D, I, 'entry'), linearTol(I, a, down.wd), 'down');
        expectClose(got, moeCombineRef(y, ids, wts, base, T, k, D, E), combineTol(k, y, base), 'combine');
        const whole = moeExpertsRef(x, { ids: Int32Array.from(ids), weights: Float64Array.from(wts) }, { E, D, I, gate: gate.wd, up: up.wd, down: down.wd }, T, k).map((v, i) => v + base[i]);
        expectClose(got, whole, { atol: 1e-4 * maxAbs(whole), rtol: 1e-4 }, 'moe block');
      }
      s.dispose();
      out.dispose();
    }
    const bits = runs.map((r) => new Uint32Array(r.buffer, r.byteOffset, r.length));
    expect(bits[1].every((b, i) => b === bits[0][i]), 'the second run gives the same bits').toBe(true);
    [gate.t, up.t, down.t, tids, twts, tx].forEach((t) => t.dispose());
  });

  it('prefill from the GPU router (T 37, E 12, k 3): nothing of the routing on the CPU; a smaller T reuses a plan sized for more', async () => {
    const g = gpu();
    const [T, E, k, D, I] = [37, 12, 3, 64, 48];
    const G = 32;
    const logits = randn(4242, T * E, 2);
    const routing = moeRouterRef(logits, T, E, k, 'topk-softmax');
    const x = randn(4243, T * D);
    const gate = stacked(g, 4244, E, I, D, G, 'gate');
    const up = stacked(g, 4245, E, I, D, G, 'up');
    const down = stacked(g, 4246, E, D, I, G, 'down');
    const tl = g.upload(logits, [T, E], { label: 'logits' });
    const tx = g.upload(x, [T, D], { label: 'x' });
    const ids = poisoned(g, [T, k], 'ids', 'u32');
    const wts = poisoned(g, [T, k], 'weights');
    const plan = poisoned(g, moePlanShape(64, k, E), 'plan', 'u32'); // sized for a 64-token chunk
    const yg = poisoned(g, [T * k, I], 'gate.y');
    const yu = poisoned(g, [T * k, I], 'up.y');
    const act = poisoned(g, [T * k, I], 'act');
    const yd = poisoned(g, [T * k, D], 'down.y');
    const out = poisoned(g, [T, D], 'out');
    const rec = new Recorder(g);
    moeRouter(rec, tl, ids, wts, { mode: 'topk-softmax' });
    const route = moeGroup(rec, ids, E, plan);
    moeMatmulQ4(rec, tx, gate.t, yg, route);
    moeMatmulQ4(rec, tx, up.t, yu, route);
    swiglu(rec, yg, yu, act);
    moeMatmulQ4(rec, act, down.t, yd, route);
    moeCombine(rec, yd, ids, wts, out, { experts: E });
    const got = await rec.submitAndRead(out);
    const whole = moeExpertsRef(x, routing, { E, D, I, gate: gate.wd, up: up.wd, down: down.wd }, T, k);
    expectClose(got, whole, { atol: 1e-4 * maxAbs(whole), rtol: 1e-4 }, 'moe block from the GPU router');
    [gate.t, up.t, down.t, tl, tx, ids, wts, plan, yg, yu, act, yd, out].forEach((t) => t.dispose());
  });

  // ---------------------------------------------------------------- f16, errors

  it('runs with f16 activations where the adapter has shader-f16, and says so where it has not', async () => {
    const g = gpu();
    const [T, E, k, D, I] = [3, 4, 2, 32, 16];
    const gate = stacked(g, 5001, E, I, D, 32, 'gate');
    const logits = g.upload(randn(5002, T * E), [T, E], { label: 'logits', dtype: 'f16' });
    const x = g.upload(randn(5003, T * D), [T, D], { label: 'x', dtype: 'f16' });
    const x1 = g.upload(randn(5004, D), [1, D], { label: 'x1', dtype: 'f16' });
    const ids = g.upload(Uint32Array.from([0, 3, 1, 2, 3, 2]), [T, k], { label: 'ids' });
    const ids1 = g.upload(Uint32Array.from([0, 3]), [1, k], { label: 'ids1' });
    const wts = g.upload(randomWeights(5005, T, k), [T, k], { label: 'weights' });
    const plan = g.empty(moePlanShape(T, k, E), 'u32', 'plan');
    const y = g.empty([T * k, I], 'f16', 'y');
    const y1 = g.empty([k, I], 'f16', 'y1');
    const yd = g.empty([T * k, D], 'f16', 'yd');
    const out = g.empty([T, D], 'f16', 'out');
    const rid = g.empty([T, k], 'u32', 'router.ids');
    const rw = g.empty([T, k], 'f32', 'router.weights');
    const rec = new Recorder(g);
    const route = moeGroup(rec, ids, E, plan);
    const calls: [string, () => void][] = [
      ['moe_router', () => moeRouter(rec, logits, rid, rw, { mode: 'softmax-topk' })],
      ['moe_matvec_q4', () => moeMatvecQ4(rec, gate.t, x1, ids1, y1, E)],
      ['moe_matmul_q4', () => moeMatmulQ4(rec, x, gate.t, y, route)],
      ['moe_combine', () => moeCombine(rec, yd, ids, wts, out, { experts: E })],
    ];
    if (!g.report.features.shaderF16) {
      // (the expert matmul named by the kernel the adapter runs: moe_matmul_q4 or moe_matmul_q4_rows)
      for (const [op, call] of calls) expect(call).toThrow(new RegExp(`${op}(_rows)?: f16 needs the shader-f16 feature`));
    } else {
      // run for real in test/e2e/f16_kernels.test.ts (test/helpers/f16_kernel_cases.ts); here, that they record
      for (const [, call] of calls) call();
      await rec.submit();
    }
    [gate.t, logits, x, x1, ids, ids1, wts, plan, y, y1, yd, out, rid, rw].forEach((t) => t.dispose());
  });

  it('rejects k > E, E > 128, mismatched expert shapes, wrong dtypes and shapes, a small plan and aliasing, naming them', () => {
    const g = gpu();
    const [T, E, k, D, I] = [4, 4, 2, 32, 16];
    const w = stacked(g, 6001, E, I, D, 32, 'w.gate');
    const wf = g.upload(randn(6002, E * I * D), [E * I, D], { label: 'w.f32' });
    const logits = g.upload(randn(6003, T * E), [T, E], { label: 'logits' });
    const wide = g.upload(randn(6004, 129), [1, 129], { label: 'logits.129' });
    const li = g.upload(new Int32Array(T * E), [T, E], { label: 'logits.i32' });
    const ids = g.upload(new Uint32Array(T * k), [T, k], { label: 'ids' });
    const ids5 = g.empty([T, 5], 'u32', 'ids.k5');
    const idsI = g.upload(new Int32Array(T * k), [T, k], { label: 'ids.i32' });
    const wts = g.empty([T, k], 'f32', 'weights');
    const wtsH = g.empty([T, k], 'u32', 'weights.u32');
    const x = g.upload(randn(6005, T * D), [T, D], { label: 'x' });
    const x1 = g.upload(randn(6006, D), [D], { label: 'x1' });
    const xBad = g.upload(randn(6007, 3 * D), [3, D], { label: 'x.3rows' });
    const y1 = g.empty([k, I], 'f32', 'y1');
    const y1Bad = g.empty([k, I + 8], 'f32', 'y1.wide');
    const y = g.empty([T * k, I], 'f32', 'y');
    const yBad = g.empty([T * k, 12], 'f32', 'y.12');
    const plan = g.empty(moePlanShape(T, k, E), 'u32', 'plan');
    const small = g.empty([10], 'u32', 'plan.small');
    const planF = g.empty(moePlanShape(T, k, E), 'f32', 'plan.f32');
    const out = g.empty([T, D], 'f32', 'out');
    const w5 = g.empty([T, 5], 'f32', 'w5');
    const i12 = g.empty([1, 2], 'u32', 'i');
    const w12 = g.empty([1, 2], 'f32', 'w');
    const rec = new Recorder(g);
    // router
    expect(() => moeRouter(rec, logits, ids5, w5, { mode: 'softmax-topk' })).toThrow(/moe_router: k = 5 \(ids 'ids.k5' \(4, 5\)\) exceeds the E = 4 experts of logits 'logits' \(4, 4\)/);
    expect(() => moeRouter(rec, wide, i12, w12, { mode: 'softmax-topk' })).toThrow(/moe_router: logits 'logits.129' \(1, 129\) has E = 129 experts, over the 128 supported/);
    expect(() => moeRouter(rec, li, ids, wts, { mode: 'softmax-topk' })).toThrow(/moe_router: logits 'logits.i32' \(4, 4\) must be f32 or f16, got i32/);
    expect(() => moeRouter(rec, logits, idsI, wts, { mode: 'softmax-topk' })).toThrow(/moe_router: ids 'ids.i32' \(4, 2\) i32 must be \(T, k\) u32/);
    expect(() => moeRouter(rec, logits, ids, wtsH, { mode: 'softmax-topk' })).toThrow(/moe_router: weights 'weights.u32' \(4, 2\) must be f32, got u32/);
    expect(() => moeRouter(rec, logits, ids, wts, { mode: 'softmax' as MoeRouterMode })).toThrow(/moe_router: mode 'softmax' is not/);
    expect(() => moeRouter(rec, logits, ids, wts, { mode: 'softmax-topk', lanes: 3 })).toThrow(/moe_router: lanes = 3 must be a power of two in 1 .. 128/);
    // decode
    const id1 = ids.view([k], 0, 'ids.row');
    expect(() => moeMatvecQ4(rec, wf, x1, id1, y1, E)).toThrow(/moe_matvec_q4: w 'w.f32' \(64, 32\) must be a q4 weight/);
    expect(() => moeMatvecQ4(rec, w.t, x1, id1, y1Bad, E)).toThrow(/moe_matvec_q4: w 'w.gate' \(64, 32\) is not E = 4 experts of N = 24 rows \(y 'y1.wide' \(2, 24\)\): expected \(96, 32\)/);
    expect(() => moeMatvecQ4(rec, w.t, x1, id1, y1, 8)).toThrow(/moe_matvec_q4: w 'w.gate' \(64, 32\) is not E = 8 experts of N = 16 rows/);
    expect(() => moeMatvecQ4(rec, w.t, xBad, id1, y1, E)).toThrow(/moe_matvec_q4: x 'x.3rows' has shape \(3, 32\), expected \(32\) or \(1, 32\) shared by the slots, or \(2, 32\) one per slot/);
    expect(() => moeMatvecQ4(rec, w.t, x1, idsI.view([k], 0, 'ids.i32.row'), y1, E)).toThrow(/moe_matvec_q4: ids 'ids.i32.row' \(2\) i32 must be \(k\) or \(1, k\) u32/);
    expect(() => moeMatvecQ4(rec, w.t, x1, id1, y1, 1)).toThrow(/moe_matvec_q4: k = 2 .* exceeds the E = 1 experts/);
    // group and prefill
    expect(() => moeGroup(rec, ids, 1, plan)).toThrow(/moe_group: k = 2 \(ids 'ids' \(4, 2\)\) exceeds the E = 1 experts/);
    expect(() => moeGroup(rec, ids, 200, plan)).toThrow(/moe_group: experts = 200 must be an integer in 1 .. 128/);
    expect(() => moeGroup(rec, idsI, E, plan)).toThrow(/moe_group: ids 'ids.i32' \(4, 2\) i32 must be \(T, k\) u32/);
    expect(() => moeGroup(rec, ids, E, small)).toThrow(new RegExp(`moe_group: plan 'plan.small' \\(10\\) u32 must be u32 with at least ${moePlanLayout(T, k, E).size} elements for T 4, k 2, E 4`));
    expect(() => moeGroup(rec, ids, E, planF)).toThrow(/moe_group: plan 'plan.f32' .* f32 must be u32/);
    const route = moeGroup(rec, ids, E, plan);
    expect(() => moeMatmulQ4(rec, x, wf, y, route)).toThrow(/moe_matmul_q4: w 'w.f32' \(64, 32\) must be a q4 weight/);
    expect(() => moeMatmulQ4(rec, x, w.t, yBad, route)).toThrow(/moe_matmul_q4: w 'w.gate' \(64, 32\) is not E = 4 experts of N = 12 rows \(y 'y.12' \(8, 12\)\): expected \(48, 32\)/);
    expect(() => moeMatmulQ4(rec, xBad, w.t, y, route)).toThrow(/moe_matmul_q4: x 'x.3rows' has shape \(3, 32\), expected \(4, 32\) \(one row per token\) or \(8, 32\) \(one per token and slot\)/);
    expect(() => moeMatmulQ4(rec, x, w.t, y1, route)).toThrow(/moe_matmul_q4: y 'y1' \(2, 16\) f32 must be \(T \* k, N\) = \(8, N\) f32/);
    // combine
    expect(() => moeCombine(rec, y, ids, wtsH, out, { experts: E })).toThrow(/moe_combine: weights 'weights.u32' \(4, 2\) must be f32, got u32/);
    expect(() => moeCombine(rec, y, ids, wts, out, { experts: E })).toThrow(/moe_combine: y 'y' \(8, 16\) f32 must be \(T \* k, D\) = \(8, 32\) f32/);
    expect(() => moeCombine(rec, y, idsI, wts, out, { experts: E })).toThrow(/moe_combine: ids 'ids.i32' \(4, 2\) i32 must be \(T, k\) u32/);
    const yo = g.empty([T * k + T, D], 'f32', 'y.and.out');
    expect(() => moeCombine(rec, yo.view([T * k, D]), ids, wts, yo.view([T, D], T * k * D, 'out.view'), { experts: E })).toThrow(/moe_combine: out 'out.view' shares a buffer with y/);
    w.t.dispose();
    expect(() => moeMatmulQ4(rec, x, w.t, y, route)).toThrow(/moe_matmul_q4: tensor 'w.gate' \(64, 32\) was disposed/);
    [wf, logits, wide, li, ids, ids5, idsI, wts, wtsH, x, x1, xBad, y1, y1Bad, y, yBad, plan, small, planF, out, yo, w5, i12, w12].forEach((t) => t.dispose());
  });

  it('the plan references: moeGroupRef on hand-checked ids, and the tile bound', () => {
    // 5 tokens × 2 slots over 4 experts; tile 2: expert 1 has 3 entries (2 tiles), 3 has none
    const ids = [1, 0, 2, 1, 1, 2, 0, 2, 2, 0];
    const { offsets, perm, tiles } = moeGroupRef(ids, 4, 2, 7);
    expect(Array.from(offsets)).toEqual([0, 3, 6, 10, 10]);
    expect(Array.from(perm)).toEqual([1, 6, 9, 0, 3, 4, 2, 5, 7, 8]);
    expect(Array.from(tiles)).toEqual([0, 0, 0, 2, 1, 3, 1, 5, 2, 6, 2, 8, MOE_NONE, MOE_NONE]);
    // maxTiles covers the worst case: every expert one entry past a full tile
    for (const [T, k, E] of [[1, 1, 1], [1, 8, 128], [64, 8, 8], [200, 2, 16], [33, 1, 128]]) {
      const { maxTiles } = moePlanLayout(T, k, E);
      const N = T * k;
      const m = Math.min(E, N);
      const counts = range(m).map((e) => Math.floor(N / m) + (e < N % m ? 1 : 0));
      expect(counts.reduce((s, c) => s + Math.ceil(c / MOE_TILE), 0)).toBeLessThanOrEqual(maxTiles);
    }
    // the router reference: all tied picks the first k, weights equal
    const r = moeRouterRef([1, 1, 1, 1], 1, 4, 2, 'softmax-topk');
    expect(Array.from(r.ids)).toEqual([0, 1]);
    expect(Array.from(r.weights)).toEqual([0.25, 0.25]);
    expect(Array.from(moeRouterRef([1, 1, 1, 1], 1, 4, 2, 'topk-softmax').weights)).toEqual([0.5, 0.5]);
  });
});
