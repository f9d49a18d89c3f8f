import { expect, it } from 'vitest';
import { Recorder } from '../../src/runtime/recorder';
import { layernorm } from '../../src/kernels/layernorm';
import * as ref from '../../src/reference/ops';
import { cappedGrid, describeGpu, poisoned, useGpu } from '../helpers/gpu';
import { randn } from '../helpers/random';
import { expectClose } from '../helpers/compare';

// Both layouts (a workgroup or a thread per row); each adapter gets one by tunings.ts.
for (const layout of ['workgroup', 'thread'] as const) describeGpu(`layernorm, a ${layout} per row`, () => {
  const gpu = useGpu();

  // f32 two-pass mean/variance over up to 4097 values: relative error near 1e-6; 1e-5 leaves room.
  const TOL = { atol: 1e-6, rtol: 1e-5 };
  // dim 256 and 512: whole multiples of the 256-wide workgroup (no idle lanes in the last stride).
  it.each([
    [1, 1, true], [1, 7, false], [3, 64, true], [5, 255, false], [2, 1000, true], [1, 4097, false], [70, 96, true], [300, 7, true],
    [4, 256, true], [3, 512, false],
  ])('rows %i × dim %i (bias %s) matches the float64 reference', async (rows, dim, hasBias) => {
    const g = gpu();
    const seed = rows * 7919 + dim * 3 + (hasBias ? 1 : 0);
    // an offset mean of 5 exercises the centred variance
    const x = randn(seed, rows * dim, 2).map((v) => v + 5);
    const w = randn(seed + 1, dim);
    const b = randn(seed + 2, dim);
    const eps = 1e-5;
    const tx = g.upload(x, [rows, dim], { label: 'x' });
    const tw = g.upload(w, [dim], { label: 'w' });
    const tb = g.upload(b, [dim], { label: 'b' });
    const out = poisoned(g, [rows, dim]);
    const rec = new Recorder(g);
    layernorm(rec, tx, tw, hasBias ? tb : null, out, eps, layout);
    const got = await rec.submitAndRead(out);
    expectClose(got, ref.layernorm(x, w, hasBias ? b : null, rows, dim, eps), TOL, `layernorm ${rows}×${dim}`);
    [tx, tw, tb, out].forEach((t) => t.dispose());
  });

  // A device limit of 7 workgroups per dimension: 40 rows (a workgroup each) on a 7 × 6 grid, or
  // 500 rows (64 a workgroup: 8) on 4 × 2; both leave spare workgroups.
  it.each([true, false])('rows over a 2-D grid (a device limit of 7 workgroups per dimension), with spare workgroups (bias %s), match the reference', async (hasBias) => {
    const g = cappedGrid(gpu(), 7);
    const [rows, dim] = [layout === 'thread' ? 500 : 40, 300];
    const seed = hasBias ? 4040 : 4050;
    const x = randn(seed, rows * dim, 2).map((v) => v + 5);
    const w = randn(seed + 1, dim);
    const b = randn(seed + 2, dim);
    const tx = g.upload(x, [rows, dim], { label: 'x' });
    const tw = g.upload(w, [dim], { label: 'w' });
    const tb = g.upload(b, [dim], { label: 'b' });
    const out = poisoned(g, [rows, dim]);
    const rec = new Recorder(g);
    layernorm(rec, tx, tw, hasBias ? tb : null, out, 1e-5, layout);
    expectClose(await rec.submitAndRead(out), ref.layernorm(x, w, hasBias ? b : null, rows, dim, 1e-5), TOL, 'layernorm on a 2-D grid');
    [tx, tw, tb, out].forEach((t) => t.dispose());
  });

  it('with and without a bias in one submit use the right variant each', async () => {
    const g = gpu();
    const [rows, dim] = [4, 33];
    const x = randn(11, rows * dim);
    const w = randn(12, dim);
    const b = randn(13, dim, 10);
    const tx = g.upload(x, [rows, dim], { label: 'x' });
    const tw = g.upload(w, [dim], { label: 'w' });
    const tb = g.upload(b, [dim], { label: 'b' });
    const o1 = poisoned(g, [rows, dim], 'o1');
    const o2 = poisoned(g, [rows, dim], 'o2');
    const rec = new Recorder(g);
    layernorm(rec, tx, tw, null, o1, 1e-6, layout);
    layernorm(rec, tx, tw, tb, o2, 1e-6, layout);
    await rec.submit();
    // same tolerance as above
    expectClose(await g.read(o1), ref.layernorm(x, w, null, rows, dim, 1e-6), TOL, 'no bias');
    expectClose(await g.read(o2), ref.layernorm(x, w, b, rows, dim, 1e-6), TOL, 'bias');
    [tx, tw, tb, o1, o2].forEach((t) => t.dispose());
  });

  it('rejects mismatched shapes, a wrong dtype, aliasing and a disposed tensor, naming them', async () => {
    const g = gpu();
    const x = g.upload(randn(1, 12), [3, 4], { label: 'x' });
    const w = g.upload(randn(2, 4), [4], { label: 'w' });
    const b5 = g.upload(randn(3, 5), [5], { label: 'b5' });
    const out = g.empty([3, 4], 'f32', 'out');
    const rec = new Recorder(g);
    expect(() => layernorm(rec, x, w, b5, out, 1e-5)).toThrow(/layernorm: bias 'b5' has shape \(5\), expected \(4\)/);
    expect(() => layernorm(rec, x, b5, null, out, 1e-5)).toThrow(/layernorm: weight 'b5' has shape \(5\), expected \(4\)/);
    const xi = g.upload(new Int32Array(12), [3, 4], { label: 'xi' });
    expect(() => layernorm(rec, xi, w, null, out, 1e-5)).toThrow(/layernorm: x 'xi' \(3, 4\) must be f32 or f16, got i32/);
    const o43 = g.empty([4, 3], 'f32', 'o43');
    expect(() => layernorm(rec, x, w, null, o43, 1e-5)).toThrow(/layernorm: out 'o43' has shape \(4, 3\), expected \(3, 4\)/);
    expect(() => layernorm(rec, x, w, null, x, 1e-5)).toThrow(/layernorm: out 'x' shares a buffer with x 'x'/);
    expect(() => layernorm(rec, x, w, null, out, -1)).toThrow(/layernorm: eps must be a non-negative number/);
    w.dispose();
    expect(() => layernorm(rec, x, w, null, out, 1e-5)).toThrow(/layernorm: tensor 'w' \(4\) was disposed/);
    [x, b5, out, xi, o43].forEach((t) => t.dispose());
  });
});
