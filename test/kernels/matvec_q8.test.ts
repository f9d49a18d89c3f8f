import { expect, it } from 'vitest';
import { Recorder } from '../../src/runtime/recorder';
import { dequantizeQ8, quantizeQ8 } from '../../src/runtime/q8';
import type { Q4GroupSize } from '../../src/runtime/q4';
import { matvecQ8 } from '../../src/kernels/matvec_q8';
import { MATVEC_TUNINGS } from '../../src/kernels/tunings';
import { linear } from '../../src/reference/linear';
import { describeGpu, poisoned, useGpu } from '../helpers/gpu';
import { randn } from '../helpers/random';
import { expectClose } from '../helpers/compare';

const maxAbs = (a: ArrayLike<number>) => Array.from(a).reduce((m, v) => Math.max(m, Math.abs(v)), 0);

/**
 * f32 accumulation of K products: rounding grows with the partial sums,
 * which random signs keep near sqrt(K) * |x| |w|. Measured errors stay below
 * 1.4e-7 * sqrt(K) * max|x| * max|w| on these shapes (every tuning); 1e-6
 * leaves a 7x margin. It is tighter than matvec_q4's 2e-6 because a code off
 * by one here moves y by only d * |x| with d = range / 255: for the median d
 * and |x| that is still 17x (K 1012) to 1000x (K 4) above atol. The reference
 * runs on the dequantized weights, so q8 rounding is not in the error.
 */
function tolerance(K: number, x: ArrayLike<number>, w: ArrayLike<number>) {
  return { atol: 1e-6 * Math.sqrt(K) * maxAbs(x) * maxAbs(w), rtol: 1e-5 };
}

describeGpu('matvec_q8', () => {
  const gpu = useGpu();

  // [N, K, G]: N = 1 and N not a multiple of the rows per workgroup; K = 4 (a
  // lone tail word), K % 16 != 0 (rows not 16-byte aligned; 1, 2 or 3 tail
  // words, more than a team has lanes when TPR < 3) and K % G != 0 (a short last group).
  const CASES: [number, number, Q4GroupSize][] = [
    [1, 4, 32], [1, 576, 128], [7, 72, 32], [5, 20, 64], [9, 28, 128], [33, 200, 64],
    [65, 256, 128], [100, 1000, 128], [41, 1012, 32], [17, 1544, 64], [257, 576, 32], [1536, 96, 32],
    // a thread or team computes 4 rows: N = 4k + 2 with aligned rows (K % 16 == 0)
    [6, 64, 32], [130, 320, 64],
  ];
  const TUNINGS = [MATVEC_TUNINGS.gpu.tuning, MATVEC_TUNINGS.software.tuning, { WG: 64, TPR: 4 }, { WG: 32, TPR: 32 }, { WG: 16, TPR: 2 }];

  it.each(CASES)('N %i × K %i, group %i matches the float64 reference on the dequantized weights', async (N, K, G) => {
    const g = gpu();
    const seed = N * 7919 + K * 31 + G;
    const q = quantizeQ8(randn(seed, N * K, 0.05), N, K, G);
    const x = randn(seed + 1, K);
    const wd = dequantizeQ8(q);
    const want = linear(x, wd, 1, K, N);
    const tw = g.uploadQ8(q, 'w');
    const tx = g.upload(x, [K], { label: 'x' });
    // Each tuning (lanes per row, threads per workgroup) is a different split of the work: all must agree.
    for (const tune of TUNINGS) {
      const ty = poisoned(g, [N], 'y');
      const rec = new Recorder(g);
      matvecQ8(rec, tw, tx, ty, tune);
      expectClose(await rec.submitAndRead(ty), want, tolerance(K, x, wd), `matvec_q8 ${N}×${K} G${G} WG${tune.WG} TPR${tune.TPR}`);
      ty.dispose();
    }
    [tw, tx].forEach((t) => t.dispose());
  });

  it('takes x (1, K) and y (1, N), and uses the adapter default tuning', async () => {
    const g = gpu();
    const [N, K] = [45, 136];
    const q = quantizeQ8(randn(11, N * K, 0.05), N, K, 64);
    const x = randn(12, K, 2);
    const wd = dequantizeQ8(q);
    const tw = g.uploadQ8(q, 'w');
    const tx = g.upload(x, [1, K], { label: 'x' });
    const ty = poisoned(g, [1, N], 'y');
    const rec = new Recorder(g);
    matvecQ8(rec, tw, tx, ty);
    expectClose(await rec.submitAndRead(ty), linear(x, wd, 1, K, N), tolerance(K, x, wd), `matvec_q8 (1, ${K})`);
    [tw, tx, ty].forEach((t) => t.dispose());
  });

  it('runs with f16 activations where the adapter has shader-f16, and says so where it has not', async () => {
    const g = gpu();
    const [N, K] = [19, 200];
    const q = quantizeQ8(randn(21, N * K, 0.05), N, K, 32);
    const x = randn(22, K);
    const tw = g.uploadQ8(q, 'w');
    const tx = g.upload(x, [K], { label: 'x', dtype: 'f16' });
    const ty = poisoned(g, [N], 'y', 'f16');
    const rec = new Recorder(g);
    if (!g.report.features.shaderF16) {
      expect(() => matvecQ8(rec, tw, tx, ty)).toThrow(/matvec_q8: f16 needs the shader-f16 feature/);
    } else {
      matvecQ8(rec, tw, tx, ty);
      const xh = await g.read(tx); // x as rounded to f16
      const want = linear(xh, dequantizeQ8(q), 1, K, N);
      // f32 accumulation, then one rounding to f16 (relative 2^-11) of y.
      expectClose(await rec.submitAndRead(ty), want, { atol: tolerance(K, xh, dequantizeQ8(q)).atol + 1e-4, rtol: 1e-3 }, 'matvec_q8 f16');
    }
    [tw, tx, ty].forEach((t) => t.dispose());
  });

  it('rejects a non-q8 weight, a K mismatch, a wrong y, bad tuning and a disposed weight, naming them', async () => {
    const g = gpu();
    const [N, K] = [6, 64];
    const w = g.uploadQ8(quantizeQ8(randn(31, N * K), N, K, 32), 'w.q8');
    const wf = g.upload(randn(32, N * K), [N, K], { label: 'w.f32' });
    const x = g.upload(randn(33, K), [K], { label: 'x' });
    const x2 = g.upload(randn(34, K + 4), [K + 4], { label: 'x.long' });
    const xi = g.upload(new Int32Array(K), [K], { label: 'x.i32' });
    const y = g.empty([N], 'f32', 'y');
    const yBad = g.empty([N + 1], 'f32', 'y.long');
    const y2d = g.empty([2, N], 'f32', 'y.2d');
    const rec = new Recorder(g);
    expect(() => matvecQ8(rec, wf, x, y)).toThrow(/matvec_q8: w 'w.f32' \(6, 64\) must be a q8 weight \(gpu.uploadQ8\), got f32/);
    expect(() => matvecQ8(rec, w, x2, y)).toThrow(/matvec_q8: x 'x.long' has shape \(68\), expected \(64\) or \(1, 64\)/);
    expect(() => matvecQ8(rec, w, xi, y)).toThrow(/matvec_q8: x 'x.i32' \(64\) must be f32 or f16, got i32/);
    expect(() => matvecQ8(rec, w, x, yBad)).toThrow(/matvec_q8: y 'y.long' has shape \(7\), expected \(6\) or \(1, 6\)/);
    expect(() => matvecQ8(rec, w, x, y2d)).toThrow(/matvec_q8: y 'y.2d' has shape \(2, 6\), expected \(6\) or \(1, 6\)/);
    const buf = g.empty([K + 64], 'f32', 'buf');
    expect(() => matvecQ8(rec, w, buf.view([K], 0, 'x.view'), buf.view([N], 64, 'y.view'))).toThrow(/matvec_q8: y 'y.view' shares a buffer with x 'x.view'/);
    expect(() => matvecQ8(rec, w, x, y, { WG: 64, TPR: 3 })).toThrow(/matvec_q8: tuning WG 64, TPR 3 is invalid/);
    w.dispose();
    expect(() => matvecQ8(rec, w, x, y)).toThrow(/matvec_q8: tensor 'w.q8' \(6, 64\) was disposed/);
    [wf, x, x2, xi, y, yBad, y2d, buf].forEach((t) => t.dispose());
  });
});
