import { expect, it } from 'vitest';
import { Recorder } from '../../src/runtime/recorder';
import { dequantizeQ4, quantizeQ4, type Q4GroupSize } from '../../src/runtime/q4';
import { matmulQ4Tiled } from '../../src/kernels/matmul_q4';
import { matmulQ4Rows } from '../../src/kernels/matmul_q4_rows';
import { linear } from '../../src/reference/linear';
import { describeGpu, poisoned, useGpu } from '../helpers/gpu';
import { randn } from '../helpers/random';
import { expectClose } from '../helpers/compare';

const maxAbs = (a: ArrayLike<number>) => Array.from(a).reduce((m, v) => Math.max(m, Math.abs(v)), 0);

/**
 * f32 accumulation of K products (see matvec_q4.test.ts): errors stay below
 * 1e-7 * sqrt(K) * max|x| * max|w|; 2e-6 leaves a 20x margin, far below one
 * wrong code. Here w = m + q * d is rounded to f32 once more before the fma.
 */
function tolerance(K: number, x: ArrayLike<number>, w: ArrayLike<number>) {
  return { atol: 2e-6 * Math.sqrt(K) * maxAbs(x) * maxAbs(w), rtol: 1e-5 };
}

// The two prefill kernels: the tiled one (GPUs) and the barrier-free one
// (software adapters); matmulQ4 picks between them (tunings.test.ts).
const KERNELS: [string, typeof matmulQ4Tiled][] = [['matmul_q4', matmulQ4Tiled], ['matmul_q4_rows', matmulQ4Rows]];

for (const [op, matmulQ4] of KERNELS) describeGpu(op, () => {
  const gpu = useGpu();

  // [T, N, K, G]: T = 1, N = 1, T and N not multiples of the 64 × 64 tile,
  // K % 32 != 0 (a partial k step of 1, 2 or 3 of its 4 code words per row)
  // and K % G != 0 (a short last group; K < G: one short group).
  const CASES: [number, number, number, Q4GroupSize][] = [
    [1, 1, 8, 32], [1, 70, 72, 32], [5, 33, 200, 64], [64, 64, 256, 128],
    [65, 3, 1000, 128], [3, 130, 96, 64], [130, 67, 136, 32], [17, 1, 576, 128],
    [2, 5, 16, 32], [3, 66, 24, 128], [70, 9, 48, 32], [4, 65, 56, 64], [9, 20, 120, 128], [66, 70, 1016, 64],
  ];

  it.each(CASES)('T %i × N %i × K %i, group %i matches the float64 reference on the dequantized weights', async (T, N, K, G) => {
    const g = gpu();
    const seed = T * 104729 + N * 7919 + K * 31 + G;
    const q = quantizeQ4(randn(seed, N * K, 0.05), N, K, G);
    const x = randn(seed + 1, T * K);
    const wd = dequantizeQ4(q);
    const tw = g.uploadQ4(q, 'w');
    const tx = g.upload(x, [T, K], { label: 'x' });
    const ty = poisoned(g, [T, N], 'y');
    const rec = new Recorder(g);
    matmulQ4(rec, tx, tw, ty);
    expectClose(await rec.submitAndRead(ty), linear(x, wd, T, K, N), tolerance(K, x, wd), `${op} ${T}×${N}×${K} G${G}`);
    [tw, tx, ty].forEach((t) => t.dispose());
  });

  it('row parts write their columns of wider logits (yColumn), and nothing else', async () => {
    const g = gpu();
    // Rows [0, 128) and [128, 300) of one weight, as the LM head splits a vocabulary; y has 20 spare columns.
    const [T, K, V, cut, W] = [5, 96, 300, 128, 320];
    const q0 = quantizeQ4(randn(81, cut * K, 0.05), cut, K, 32);
    const q1 = quantizeQ4(randn(82, (V - cut) * K, 0.05), V - cut, K, 32);
    const x = randn(83, T * K);
    const parts = [g.uploadQ4(q0, 'w.part0'), g.uploadQ4(q1, 'w.part1')];
    const tx = g.upload(x, [T, K], { label: 'x' });
    const ty = poisoned(g, [T, W], 'logits');
    const rec = new Recorder(g);
    matmulQ4(rec, tx, parts[0], ty, 0);
    matmulQ4(rec, tx, parts[1], ty, cut);
    const got = await rec.submitAndRead(ty);
    const want = [linear(x, dequantizeQ4(q0), T, K, cut), linear(x, dequantizeQ4(q1), T, K, V - cut)];
    for (let t = 0; t < T; t++) {
      const row = got.subarray(t * W, (t + 1) * W);
      expectClose(row.subarray(0, cut), want[0].subarray(t * cut, (t + 1) * cut), tolerance(K, x, dequantizeQ4(q0)), `token ${t}, part 0`);
      expectClose(row.subarray(cut, V), want[1].subarray(t * (V - cut), (t + 1) * (V - cut)), tolerance(K, x, dequantizeQ4(q1)), `token ${t}, part 1`);
      expect(Array.from(row.subarray(V)).every(Number.isNaN), `token ${t}: columns past the parts stay unwritten`).toBe(true);
    }
    // A column off the 256-byte binding grid, or past y's width, is refused.
    const rec2 = new Recorder(g);
    expect(() => matmulQ4(rec2, tx, parts[1], ty, 100)).toThrow(new RegExp(`${op}: 'logits' starts at byte 400, not a multiple of 256`));
    expect(() => matmulQ4(rec2, tx, parts[1], ty, 192)).toThrow(new RegExp(`${op}: y 'logits' has shape \\(5, 320\\), expected \\(5, >= 364\\) for columns \\[192, 364\\)`));
    [...parts, tx, ty].forEach((t) => t.dispose());
  });

  it('T beyond one 64-token tile writes columns [yColumn, yColumn + N) of every row of a wider y, and nothing else', async () => {
    const g = gpu();
    // 70 tokens: two tile rows; N = 70: two tile columns, the second partial; K % 32 = 16.
    const [T, N, K, col, W] = [70, 70, 112, 128, 203];
    const q = quantizeQ4(randn(7070, N * K, 0.05), N, K, 64);
    const x = randn(7071, T * K);
    const tw = g.uploadQ4(q, 'w');
    const tx = g.upload(x, [T, K], { label: 'x' });
    const ty = poisoned(g, [T, W], 'logits');
    const rec = new Recorder(g);
    matmulQ4(rec, tx, tw, ty, col);
    const got = await rec.submitAndRead(ty);
    const wd = dequantizeQ4(q);
    const want = linear(x, wd, T, K, N);
    for (let t = 0; t < T; t++) {
      const row = got.subarray(t * W, (t + 1) * W);
      expectClose(row.subarray(col, col + N), want.subarray(t * N, (t + 1) * N), tolerance(K, x, wd), `token ${t}`);
      expect([...row.subarray(0, col), ...row.subarray(col + N)].every(Number.isNaN), `token ${t}: other columns stay unwritten`).toBe(true);
    }
    [tw, tx, ty].forEach((t) => t.dispose());
  });

  it('runs with f16 activations where the adapter has shader-f16, and says so where it has not', async () => {
    const g = gpu();
    const [T, N, K] = [3, 19, 200];
    const q = quantizeQ4(randn(41, N * K, 0.05), N, K, 64);
    const tw = g.uploadQ4(q, 'w');
    const tx = g.upload(randn(42, T * K), [T, K], { label: 'x', dtype: 'f16' });
    const ty = poisoned(g, [T, N], 'y', 'f16');
    const rec = new Recorder(g);
    if (!g.report.features.shaderF16) {
      expect(() => matmulQ4(rec, tx, tw, ty)).toThrow(new RegExp(`${op}: f16 needs the shader-f16 feature`));
    } else {
      matmulQ4(rec, tx, tw, ty);
      const xh = await g.read(tx);
      const wd = dequantizeQ4(q);
      // f32 accumulation, then one rounding to f16 (relative 2^-11) of y.
      expectClose(await rec.submitAndRead(ty), linear(xh, wd, T, K, N), { atol: tolerance(K, xh, wd).atol + 1e-4, rtol: 1e-3 }, `${op} f16`);
    }
    [tw, tx, ty].forEach((t) => t.dispose());
  });

  it('rejects a non-q4 weight, a K mismatch, a wrong y and a disposed weight, naming them', async () => {
    const g = gpu();
    const [T, N, K] = [2, 6, 64];
    const w = g.uploadQ4(quantizeQ4(randn(51, N * K), N, K, 32), 'w.q4');
    const wf = g.upload(randn(52, N * K), [N, K], { label: 'w.f32' });
    const x = g.upload(randn(53, T * K), [T, K], { label: 'x' });
    const xLong = g.upload(randn(54, T * (K + 8)), [T, K + 8], { label: 'x.long' });
    const x1 = g.upload(randn(55, K), [K], { label: 'x.1d' });
    const y = g.empty([T, N], 'f32', 'y');
    const yBad = g.empty([T, N + 1], 'f32', 'y.wide');
    const rec = new Recorder(g);
    expect(() => matmulQ4(rec, x, wf, y)).toThrow(new RegExp(`${op}: w 'w.f32' \\(6, 64\\) must be a q4 weight \\(gpu.uploadQ4\\), got f32`));
    expect(() => matmulQ4(rec, xLong, w, y)).toThrow(new RegExp(`${op}: x 'x.long' has shape \\(2, 72\\), expected \\(T, 64\\) to match w 'w.q4' \\(6, 64\\)`));
    expect(() => matmulQ4(rec, x1, w, y)).toThrow(new RegExp(`${op}: x 'x.1d' has shape \\(64\\), expected \\(T, 64\\)`));
    expect(() => matmulQ4(rec, x, w, yBad)).toThrow(new RegExp(`${op}: y 'y.wide' has shape \\(2, 7\\), expected \\(2, 6\\)`));
    w.dispose();
    expect(() => matmulQ4(rec, x, w, y)).toThrow(new RegExp(`${op}: tensor 'w.q4' \\(6, 64\\) was disposed`));
    [wf, x, xLong, x1, y, yBad].forEach((t) => t.dispose());
  });
});
