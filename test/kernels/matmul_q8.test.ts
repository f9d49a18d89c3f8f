import { expect, it } from 'vitest';
import { Recorder } from '../../src/runtime/recorder';
import { dequantizeQ8, quantizeQ8 } from '../../src/runtime/q8';
import { quantizeQ4, type Q4GroupSize } from '../../src/runtime/q4';
import { matmulQ8 } from '../../src/kernels/matmul_q8';
import { linear } from '../../src/reference/linear';
import { describeGpu, poisoned, useGpu } from '../helpers/gpu';
import { randn } from '../helpers/random';
import { expectClose } from '../helpers/compare';

const maxAbs = (a: ArrayLike<number>) => Array.from(a).reduce((m, v) => Math.max(m, Math.abs(v)), 0);

/**
 * f32 accumulation of K products (see matvec_q4.test.ts): errors stay below
 * 1e-7 * sqrt(K) * max|x| * max|w|; 2e-6 leaves a 20x margin. The reference
 * uses the dequantized weights, so the 8-bit rounding is not in the error;
 * one wrong code shifts a product by d * |x| ≈ max|w| / 128 * |x|, far above
 * this. Here w = m + q * d is rounded to f32 once more before the fma.
 */
function tolerance(K: number, x: ArrayLike<number>, w: ArrayLike<number>) {
  return { atol: 2e-6 * Math.sqrt(K) * maxAbs(x) * maxAbs(w), rtol: 1e-5 };
}

describeGpu('matmul_q8', () => {
  const gpu = useGpu();

  // [T, N, K, G]: T = 1, N = 1, K = 4 (one code word), T and N not multiples
  // of the 64 × 64 tile, K % 32 != 0 (a partial k step), K % 8 == 4 (a
  // thread's second word past the row) and K % G != 0 (a short last group).
  const CASES: [number, number, number, Q4GroupSize][] = [
    [1, 1, 4, 32], [1, 70, 76, 32], [5, 33, 200, 64], [64, 64, 256, 128],
    [65, 3, 1000, 128], [3, 130, 100, 64], [130, 67, 132, 32], [17, 1, 580, 128],
    [2, 5, 36, 128],
  ];

  it.each(CASES)('T %i × N %i × K %i, group %i matches the float64 reference on the dequantized weights', async (T, N, K, G) => {
    const g = gpu();
    const seed = T * 104729 + N * 7919 + K * 31 + G;
    const q = quantizeQ8(randn(seed, N * K, 0.05), N, K, G);
    const x = randn(seed + 1, T * K);
    const wd = dequantizeQ8(q);
    const tw = g.uploadQ8(q, 'w');
    const tx = g.upload(x, [T, K], { label: 'x' });
    const ty = poisoned(g, [T, N], 'y');
    const rec = new Recorder(g);
    matmulQ8(rec, tx, tw, ty);
    expectClose(await rec.submitAndRead(ty), linear(x, wd, T, K, N), tolerance(K, x, wd), `matmul_q8 ${T}×${N}×${K} G${G}`);
    [tw, tx, ty].forEach((t) => t.dispose());
  });

  it('row parts write their columns of wider logits (yColumn), and nothing else', async () => {
    const g = gpu();
    // Rows [0, 128) and [128, 300) of one weight, as the LM head splits a vocabulary; y has 20 spare columns.
    const [T, K, V, cut, W] = [5, 100, 300, 128, 320];
    const q0 = quantizeQ8(randn(181, cut * K, 0.05), cut, K, 32);
    const q1 = quantizeQ8(randn(182, (V - cut) * K, 0.05), V - cut, K, 32);
    const x = randn(183, T * K);
    const parts = [g.uploadQ8(q0, 'w.part0'), g.uploadQ8(q1, 'w.part1')];
    const tx = g.upload(x, [T, K], { label: 'x' });
    const ty = poisoned(g, [T, W], 'logits');
    const rec = new Recorder(g);
    matmulQ8(rec, tx, parts[0], ty, 0);
    matmulQ8(rec, tx, parts[1], ty, cut);
    const got = await rec.submitAndRead(ty);
    const wd = [dequantizeQ8(q0), dequantizeQ8(q1)];
    const want = [linear(x, wd[0], T, K, cut), linear(x, wd[1], T, K, V - cut)];
    for (let t = 0; t < T; t++) {
      const row = got.subarray(t * W, (t + 1) * W);
      expectClose(row.subarray(0, cut), want[0].subarray(t * cut, (t + 1) * cut), tolerance(K, x, wd[0]), `token ${t}, part 0`);
      expectClose(row.subarray(cut, V), want[1].subarray(t * (V - cut), (t + 1) * (V - cut)), tolerance(K, x, wd[1]), `token ${t}, part 1`);
      expect(Array.from(row.subarray(V)).every(Number.isNaN), `token ${t}: columns past the parts stay unwritten`).toBe(true);
    }
    // A column off the 256-byte binding grid, or past y's width, is refused.
    const rec2 = new Recorder(g);
    expect(() => matmulQ8(rec2, tx, parts[1], ty, 100)).toThrow(/matmul_q8: 'logits' starts at byte 400, not a multiple of 256/);
    expect(() => matmulQ8(rec2, tx, parts[1], ty, 192)).toThrow(/matmul_q8: y 'logits' has shape \(5, 320\), expected \(5, >= 364\) for columns \[192, 364\)/);
    [...parts, tx, ty].forEach((t) => t.dispose());
  });

  it('runs with f16 activations where the adapter has shader-f16, and says so where it has not', async () => {
    const g = gpu();
    const [T, N, K] = [3, 19, 204];
    const q = quantizeQ8(randn(141, N * K, 0.05), N, K, 64);
    const tw = g.uploadQ8(q, 'w');
    const tx = g.upload(randn(142, T * K), [T, K], { label: 'x', dtype: 'f16' });
    const ty = poisoned(g, [T, N], 'y', 'f16');
    const rec = new Recorder(g);
    if (!g.report.features.shaderF16) {
      expect(() => matmulQ8(rec, tx, tw, ty)).toThrow(/matmul_q8: f16 needs the shader-f16 feature/);
    } else {
      matmulQ8(rec, tx, tw, ty);
      const xh = await g.read(tx);
      const wd = dequantizeQ8(q);
      // f32 accumulation, then one rounding to f16 (relative 2^-11) of y.
      expectClose(await rec.submitAndRead(ty), linear(xh, wd, T, K, N), { atol: tolerance(K, xh, wd).atol + 1e-4, rtol: 1e-3 }, 'matmul_q8 f16');
    }
    [tw, tx, ty].forEach((t) => t.dispose());
  });

  it('rejects a non-q8 weight, a K mismatch, a wrong y and a disposed weight, naming them', async () => {
    const g = gpu();
    const [T, N, K] = [2, 6, 64];
    const w = g.uploadQ8(quantizeQ8(randn(151, N * K), N, K, 32), 'w.q8');
    const wf = g.upload(randn(152, N * K), [N, K], { label: 'w.f32' });
    const w4 = g.uploadQ4(quantizeQ4(randn(156, N * K), N, K, 32), 'w.q4');
    const x = g.upload(randn(153, T * K), [T, K], { label: 'x' });
    const xLong = g.upload(randn(154, T * (K + 4)), [T, K + 4], { label: 'x.long' });
    const x1 = g.upload(randn(155, K), [K], { label: 'x.1d' });
    const y = g.empty([T, N], 'f32', 'y');
    const yBad = g.empty([T, N + 1], 'f32', 'y.wide');
    const rec = new Recorder(g);
    expect(() => matmulQ8(rec, x, wf, y)).toThrow(/matmul_q8: w 'w.f32' \(6, 64\) must be a q8 weight \(gpu.uploadQ8\), got f32/);
    expect(() => matmulQ8(rec, x, w4, y)).toThrow(/matmul_q8: w 'w.q4' \(6, 64\) must be a q8 weight \(gpu.uploadQ8\), got q4/);
    expect(() => matmulQ8(rec, xLong, w, y)).toThrow(/matmul_q8: x 'x.long' has shape \(2, 68\), expected \(T, 64\) to match w 'w.q8' \(6, 64\)/);
    expect(() => matmulQ8(rec, x1, w, y)).toThrow(/matmul_q8: x 'x.1d' has shape \(64\), expected \(T, 64\)/);
    expect(() => matmulQ8(rec, x, w, yBad)).toThrow(/matmul_q8: y 'y.wide' has shape \(2, 7\), expected \(2, 6\)/);
    w.dispose();
    expect(() => matmulQ8(rec, x, w, y)).toThrow(/matmul_q8: tensor 'w.q8' \(6, 64\) was disposed/);
    [wf, w4, x, xLong, x1, y, yBad].forEach((t) => t.dispose());
  });
});
