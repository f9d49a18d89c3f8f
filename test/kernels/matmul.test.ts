import { expect, it } from 'vitest';
import { Recorder } from '../../src/runtime/recorder';
import { matmul } from '../../src/kernels/matmul';
import { quantizeQ4 } from '../../src/runtime/q4';
import { linear } from '../../src/reference/linear';
import { describeGpu, poisoned, useGpu } from '../helpers/gpu';
import { randn } from '../helpers/random';
import { expectClose } from '../helpers/compare';

const maxAbs = (a: ArrayLike<number>) => Array.from(a).reduce((m, v) => Math.max(m, Math.abs(v)), 0);

/**
 * f32 accumulation of K products whose partial sums grow like sqrt(K) * |x| |w|
 * (random signs): errors stay below 1e-7 * sqrt(K) * max|x| * max|w|; 2e-6
 * leaves a 20x margin. Inputs are f32 on both sides, so nothing else differs.
 */
function tolerance(K: number, x: ArrayLike<number>, w: ArrayLike<number>) {
  return { atol: 2e-6 * Math.sqrt(K) * maxAbs(x) * maxAbs(w), rtol: 1e-5 };
}

describeGpu('matmul', () => {
  const gpu = useGpu();

  // [T, N, K]: size 1 on each axis, T and N not multiples of the 64 × 64 tile,
  // K not a multiple of the 32-wide k step (nor of 4 or 8).
  const CASES: [number, number, number][] = [
    [1, 1, 1], [1, 7, 5], [3, 1, 33], [64, 64, 32], [65, 70, 100], [2, 130, 257], [100, 9, 64], [7, 3, 1000],
  ];

  it.each(CASES)('T %i × N %i × K %i matches the float64 reference', async (T, N, K) => {
    const g = gpu();
    const seed = T * 104729 + N * 7919 + K;
    const x = randn(seed, T * K);
    const w = randn(seed + 1, N * K, 0.1);
    const tx = g.upload(x, [T, K], { label: 'x' });
    const tw = g.upload(w, [N, K], { label: 'w' });
    const ty = poisoned(g, [T, N], 'y');
    const rec = new Recorder(g);
    matmul(rec, tx, tw, ty);
    expectClose(await rec.submitAndRead(ty), linear(x, w, T, K, N), tolerance(K, x, w), `matmul ${T}×${N}×${K}`);
    [tx, tw, ty].forEach((t) => t.dispose());
  });

  // [T, N, K, yColumn, width of y]: one tile; then 70 tokens and 70 rows (two
  // tile rows and columns, the second partial) with K % 32 = 13.
  it.each([[3, 70, 40, 64, 200, 71], [70, 70, 45, 64, 201, 7170]])('T %i × N %i × K %i writes columns [%i, +N) of a (T, %i) y, and nothing else', async (T, N, K, col, W, seed) => {
    const g = gpu();
    const w = randn(seed, N * K);
    const x = randn(seed + 1, T * K);
    const tw = g.upload(w, [N, K], { label: 'w' });
    const tx = g.upload(x, [T, K], { label: 'x' });
    const ty = poisoned(g, [T, W], 'y');
    const rec = new Recorder(g);
    matmul(rec, tx, tw, ty, col);
    const got = await rec.submitAndRead(ty);
    const want = linear(x, w, T, K, N);
    for (let t = 0; t < T; t++) {
      const row = got.subarray(t * W, (t + 1) * W);
      expectClose(row.subarray(col, col + N), want.subarray(t * N, (t + 1) * N), tolerance(K, x, w), `token ${t}`);
      expect([...row.subarray(0, col), ...row.subarray(col + N)].every(Number.isNaN), `token ${t}: other columns stay unwritten`).toBe(true);
    }
    [tw, tx, ty].forEach((t) => t.dispose());
  });

  it('rejects a q4 or non-f32 weight, a K mismatch, a wrong y and a disposed weight, naming them', async () => {
    const g = gpu();
    const [T, N, K] = [2, 6, 16];
    const w = g.upload(randn(61, N * K), [N, K], { label: 'w' });
    const wq = g.uploadQ4(quantizeQ4(randn(62, N * K), N, K, 32), 'w.q4');
    const w1 = g.upload(randn(63, N * K), [N * K], { label: 'w.1d' });
    const x = g.upload(randn(64, T * K), [T, K], { label: 'x' });
    const xShort = g.upload(randn(65, T * (K - 1)), [T, K - 1], { label: 'x.short' });
    const xi = g.upload(new Int32Array(T * K), [T, K], { label: 'x.i32' });
    const y = g.empty([T, N], 'f32', 'y');
    const yBad = g.empty([N, T], 'f32', 'y.t');
    const rec = new Recorder(g);
    expect(() => matmul(rec, x, wq, y)).toThrow(/matmul: w 'w.q4' \(6, 16\) must be an f32 \(N, K\) weight, got q4/);
    expect(() => matmul(rec, x, w1, y)).toThrow(/matmul: w 'w.1d' \(96\) must be an f32 \(N, K\) weight, got f32 of rank 1/);
    expect(() => matmul(rec, xShort, w, y)).toThrow(/matmul: x 'x.short' has shape \(2, 15\), expected \(T, 16\) to match w 'w' \(6, 16\)/);
    expect(() => matmul(rec, xi, w, y)).toThrow(/matmul: x 'x.i32' \(2, 16\) must be f32 or f16, got i32/);
    expect(() => matmul(rec, x, w, yBad)).toThrow(/matmul: y 'y.t' has shape \(6, 2\), expected \(2, 6\)/);
    w.dispose();
    expect(() => matmul(rec, x, w, y)).toThrow(/matmul: tensor 'w' \(6, 16\) was disposed/);
    [wq, w1, x, xShort, xi, y, yBad].forEach((t) => t.dispose());
  });
});
