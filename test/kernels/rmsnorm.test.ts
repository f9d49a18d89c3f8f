import { expect, it } from 'vitest';
import { Recorder } from '../../src/runtime/recorder';
import { rmsnorm } from '../../src/kernels/rmsnorm';
import * as ref from '../../src/reference/ops';
import { describeGpu, poisoned, useGpu } from '../helpers/gpu';
import { randn } from '../helpers/random';
import { expectClose } from '../helpers/compare';

describeGpu('rmsnorm', () => {
  const gpu = useGpu();

  // f32 sums of squares over up to 4097 values: relative error stays near 1e-6; 1e-5 leaves room.
  const TOL = { atol: 1e-6, rtol: 1e-5 };
  it.each([
    [1, 1], [1, 7], [3, 64], [5, 255], [2, 1000], [1, 4097], [70, 96],
  ])('rows %i × dim %i matches the float64 reference', async (rows, dim) => {
    const g = gpu();
    const seed = rows * 7919 + dim;
    const x = randn(seed, rows * dim, 3);
    const w = randn(seed + 1, dim);
    const eps = 1e-5;
    const tx = g.upload(x, [rows, dim], { label: 'x' });
    const tw = g.upload(w, [dim], { label: 'w' });
    const out = poisoned(g, [rows, dim]);
    const rec = new Recorder(g);
    rmsnorm(rec, tx, tw, out, eps);
    const got = await rec.submitAndRead(out);
    expectClose(got, ref.rmsnorm(x, w, rows, dim, eps), TOL, `rmsnorm ${rows}×${dim}`);
    [tx, tw, out].forEach((t) => t.dispose());
  });

  it('rejects mismatched shapes, a wrong dtype and a disposed tensor, naming them', async () => {
    const g = gpu();
    const x = g.upload(randn(1, 12), [3, 4], { label: 'x' });
    const w = g.upload(randn(2, 5), [5], { label: 'w' });
    const out = g.empty([3, 4], 'f32', 'out');
    const rec = new Recorder(g);
    expect(() => rmsnorm(rec, x, w, out, 1e-5)).toThrow(/rmsnorm: weight 'w' has shape \(5\), expected \(4\)/);
    const xi = g.upload(new Int32Array(12), [3, 4], { label: 'xi' });
    expect(() => rmsnorm(rec, xi, w, out, 1e-5)).toThrow(/rmsnorm: x 'xi' \(3, 4\) must be f32 or f16, got i32/);
    w.dispose();
    expect(() => rmsnorm(rec, x, w, out, 1e-5)).toThrow(/rmsnorm: tensor 'w' \(5\) was disposed/);
    [x, out, xi].forEach((t) => t.dispose());
  });
});
