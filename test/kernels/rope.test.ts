import { describe, expect, it } from 'vitest';
import { Recorder } from '../../src/runtime/recorder';
import { rope, ropeInvFreq, ropeTable, type RopeLayout } from '../../src/kernels/rope';
import * as ref from '../../src/reference/ops';
import { cappedGrid, describeGpu, useGpu } from '../helpers/gpu';
import { randn } from '../helpers/random';
import { expectClose } from '../helpers/compare';

describe('rope tables (CPU)', () => {
  it('ropeInvFreq gives hand-checked float32 values', () => {
    // theta^(2i/R) is exactly 1, 10, 100, 1000 for theta = 10000, R = 8
    expect(Array.from(ropeInvFreq(8, 10000))).toEqual([1, 0.1, 0.01, 0.001].map(Math.fround));
    expect(Array.from(ropeInvFreq(2, 500000))).toEqual([1]);
    expect(Array.from(ropeInvFreq(4, 10000))).toEqual([1, Math.fround(0.01)]);
  });

  it.each([
    // rotDim, theta, start, count
    [2, 10000, 0, 3], [64, 10000, 0, 5], [128, 500000, 4090, 7], [6, 10000, 100000, 2], [32, 1e6, 17, 1],
  ])('ropeTable(R %i, theta %i) at positions %i + [0, %i) matches float64 cos/sin', (rotDim, theta, start, count) => {
    const got = ropeTable(ropeInvFreq(rotDim, theta), start, count);
    const want = ref.ropeTable(rotDim, theta, start, count);
    // The float32 angle differs from the exact one by a relative error of at most
    // (3 + ln theta) * 2^-24: one rounding each for the product, the pow and the
    // reciprocal, and the rounding of 2i/R amplified by ln(theta) through theta^e.
    // cos and sin move by at most that much of the angle, plus their own rounding 2^-24.
    let bad = '';
    for (let t = 0; t < count && !bad; t++) {
      for (let i = 0; i < rotDim / 2 && !bad; i++) {
        const angle = (start + t) * theta ** (-(2 * i) / rotDim);
        const tol = angle * (3 + Math.log(theta)) * 2 ** -24 + 2 ** -23;
        for (const k of [0, 1]) {
          const j = (t * rotDim) / 2 + i;
          const err = Math.abs(got[2 * j + k] - want[2 * j + k]);
          if (!(err <= tol)) bad = `position ${start + t}, pair ${i}, ${k ? 'sin' : 'cos'}: got ${got[2 * j + k]}, want ${want[2 * j + k]} (tolerance ${tol})`;
        }
      }
    }
    expect(bad, bad).toBe('');
  });

  it('rejects bad sizes and positions', () => {
    expect(() => ropeInvFreq(7, 10000)).toThrow(/ropeInvFreq: rotDim must be a positive even integer, got 7/);
    expect(() => ropeInvFreq(8, 0)).toThrow(/ropeInvFreq: theta must be a positive number/);
    expect(() => ropeTable(ropeInvFreq(8, 10000), -1, 2)).toThrow(/ropeTable: positions -1 .. 0 must be integers/);
    expect(() => ropeTable(ropeInvFreq(8, 10000), 2 ** 24 - 1, 2)).toThrow(/ropeTable: positions .* must be integers in \[0, 2\^24\)/);
  });
});

describeGpu('rope', () => {
  const gpu = useGpu();

  // Each output is x_a*c -/+ x_b*s in f32 (maybe fused): error a few 2^-24 of |x_a| + |x_b| <= ~8.
  const TOL = { atol: 2e-6, rtol: 1e-6 };
  const cases: [number, number, number, number, RopeLayout][] = [];
  for (const layout of ['neox', 'interleaved'] as const) {
    cases.push(
      // T, H, Dh, rotDim
      [1, 1, 2, 2, layout], [1, 3, 8, 8, layout], [7, 5, 64, 64, layout], [3, 7, 64, 32, layout],
      [2, 1, 1000, 1000, layout], [17, 1, 241, 240, layout], [1, 9, 128, 128, layout], [33, 4, 6, 4, layout],
    );
  }
  it.each(cases)('T %i × H %i × Dh %i, rotDim %i, %s, matches the float64 HF formula', async (T, H, Dh, rotDim, layout) => {
    const g = gpu();
    const seed = T * 1009 + H * 101 + Dh * 7 + rotDim + (layout === 'neox' ? 0 : 50000);
    const x = randn(seed, T * H * Dh, 2);
    const table = ropeTable(ropeInvFreq(rotDim, 10000), 3, T);
    const tx = g.upload(x, [T, H, Dh], { label: 'x' });
    const tcs = g.upload(table, [T, rotDim / 2, 2], { label: 'cos_sin' });
    const rec = new Recorder(g);
    rope(rec, tx, tcs, layout);
    const got = await rec.submitAndRead(tx);
    // Dims >= rotDim are compared too (the reference passes them through). Positions start at 3, so no
    // rotation is the identity and a pair the kernel skips keeps x, which fails the comparison.
    expectClose(got, ref.rope(x, table, T, H, Dh, rotDim, layout), TOL, `rope ${layout} ${T}×${H}×${Dh}/${rotDim}`);
    [tx, tcs].forEach((t) => t.dispose());
  });

  // Pairs past the workgroups of one grid dimension (T × H × R/2 > 65535 × 256, e.g. an 8192-token
  // prompt of 32 heads of 128): grid() folds them over x and y and the kernel finds its pairs with
  // group_index. A device limit of 3 gives 9 × 7 × 32 = 2016 pairs (8 workgroups) a 3 × 3 grid with
  // one spare workgroup; Dh 72 > rotDim 64 keeps a pass-through tail in each head.
  it.each(['neox', 'interleaved'] as const)('%s over a 3 × 3 grid (a device limit of 3 workgroups per dimension) matches the reference', async (layout) => {
    const g = cappedGrid(gpu(), 3);
    const [T, H, Dh, rotDim] = [9, 7, 72, 64];
    const x = randn(layout === 'neox' ? 8101 : 8102, T * H * Dh, 2);
    const table = ropeTable(ropeInvFreq(rotDim, 10000), 11, T);
    const tx = g.upload(x, [T, H, Dh], { label: 'x' });
    const tcs = g.upload(table, [T, rotDim / 2, 2], { label: 'cos_sin' });
    const rec = new Recorder(g);
    rope(rec, tx, tcs, layout);
    // same tolerance as above
    expectClose(await rec.submitAndRead(tx), ref.rope(x, table, T, H, Dh, rotDim, layout), TOL, `rope ${layout} on a 2-D grid`);
    [tx, tcs].forEach((t) => t.dispose());
  });

  it('the two layouts differ (the override reaches the shader)', async () => {
    const g = gpu();
    const [T, H, Dh] = [2, 2, 8];
    const x = randn(5, T * H * Dh);
    const table = ropeTable(ropeInvFreq(Dh, 10000), 1, T);
    const a = g.upload(x, [T, H, Dh], { label: 'a' });
    const b = g.upload(x, [T, H, Dh], { label: 'b' });
    const tcs = g.upload(table, [T, Dh / 2, 2], { label: 'cos_sin' });
    const rec = new Recorder(g);
    rope(rec, a, tcs, 'neox');
    rope(rec, b, tcs, 'interleaved');
    await rec.submit();
    // same tolerance as above
    expectClose(await g.read(a), ref.rope(x, table, T, H, Dh, Dh, 'neox'), TOL, 'neox');
    expectClose(await g.read(b), ref.rope(x, table, T, H, Dh, Dh, 'interleaved'), TOL, 'interleaved');
    [a, b, tcs].forEach((t) => t.dispose());
  });

  it('rejects bad shapes, dtypes, layouts and a disposed tensor, naming them', async () => {
    const g = gpu();
    const x = g.upload(randn(1, 2 * 3 * 8), [2, 3, 8], { label: 'x' });
    const x2 = g.upload(randn(1, 48), [6, 8], { label: 'x2' });
    const cs = g.upload(new Float32Array(2 * 4 * 2), [2, 4, 2], { label: 'cs' });
    const cs3 = g.upload(new Float32Array(3 * 4 * 2), [3, 4, 2], { label: 'cs3' });
    const csWide = g.upload(new Float32Array(2 * 5 * 2), [2, 5, 2], { label: 'csWide' });
    const csI = g.upload(new Int32Array(2 * 4 * 2), [2, 4, 2], { label: 'csI' });
    const xi = g.upload(new Int32Array(48), [2, 3, 8], { label: 'xi' });
    const rec = new Recorder(g);
    expect(() => rope(rec, x2, cs, 'neox')).toThrow(/rope: x 'x2' has shape \(6, 8\), expected \(T, H, Dh\)/);
    expect(() => rope(rec, xi, cs, 'neox')).toThrow(/rope: x 'xi' \(2, 3, 8\) must be f32 or f16, got i32/);
    expect(() => rope(rec, x, cs3, 'neox')).toThrow(/rope: cosSin 'cs3' \(3, 4, 2\) f32 must be f32 \(2, rotDim\/2, 2\)/);
    expect(() => rope(rec, x, csI, 'neox')).toThrow(/rope: cosSin 'csI' \(2, 4, 2\) i32 must be f32/);
    expect(() => rope(rec, x, csWide, 'neox')).toThrow(/rope: rotDim 10 of cosSin 'csWide' exceeds the head dim 8/);
    expect(() => rope(rec, x, cs, 'gptj' as RopeLayout)).toThrow(/rope: layout must be 'neox' or 'interleaved', got 'gptj'/);
    cs.dispose();
    expect(() => rope(rec, x, cs, 'neox')).toThrow(/rope: tensor 'cs' \(2, 4, 2\) was disposed/);
    [x, x2, cs3, csWide, csI, xi].forEach((t) => t.dispose());
  });
});
