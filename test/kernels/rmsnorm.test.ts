import { expect, it } from 'vitest';
import { Recorder } from '../../src/runtime/recorder';
import { rmsnorm } from '../../src/kernels/rmsnorm';
import * as ref from '../../src/reference/ops';
import { cappedGrid, describeGpu, poisoned, useGpu } from '../helpers/gpu';
import { randn } from '../helpers/random';
import { expectClose } from '../helpers/compare';

// Both layouts (a workgroup or a thread per row); each adapter gets one by tunings.ts.
for (const layout of ['workgroup', 'thread'] as const) describeGpu(`rmsnorm, a ${layout} per row`, () => {
  const gpu = useGpu();

  // f32 sums of squares over up to 4097 values: relative error stays near 1e-6; 1e-5 leaves room.
  const TOL = { atol: 1e-6, rtol: 1e-5 };
  // dim 256 and 512: whole multiples of the 256-wide workgroup (no idle lanes in the last stride).
  it.each([
    [1, 1], [1, 7], [3, 64], [5, 255], [2, 1000], [1, 4097], [70, 96], [4, 256], [3, 512],
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
    rmsnorm(rec, tx, tw, out, eps, layout);
    const got = await rec.submitAndRead(out);
    expectClose(got, ref.rmsnorm(x, w, rows, dim, eps), TOL, `rmsnorm ${rows}×${dim}`);
    [tx, tw, out].forEach((t) => t.dispose());
  });

  // A device limit of 7 workgroups per dimension: 40 rows (a workgroup each) on a 7 × 6 grid, or
  // 500 rows (64 a workgroup: 8) on 4 × 2; both leave spare workgroups.
  it('rows over a 2-D grid (a device limit of 7 workgroups per dimension), with spare workgroups, match the reference', async () => {
    const g = cappedGrid(gpu(), 7);
    const [rows, dim] = [layout === 'thread' ? 500 : 40, 300];
    const x = randn(5050, rows * dim, 3);
    const w = randn(5051, dim);
    const tx = g.upload(x, [rows, dim], { label: 'x' });
    const tw = g.upload(w, [dim], { label: 'w' });
    const out = poisoned(g, [rows, dim]);
    const rec = new Recorder(g);
    rmsnorm(rec, tx, tw, out, 1e-5, layout);
    expectClose(await rec.submitAndRead(out), ref.rmsnorm(x, w, rows, dim, 1e-5), TOL, 'rmsnorm on a 2-D grid');
    [tx, tw, out].forEach((t) => t.dispose());
  });

  it('reads and writes views at 256-byte aligned element offsets of larger buffers', async () => {
    const g = gpu();
    const [rows, dim] = [3, 40];
    const x = randn(4242, 64 + rows * dim, 3);
    const w = randn(4243, dim);
    const tbig = g.upload(x, [64 + rows * dim], { label: 'xbig' });
    const tw = g.upload(w, [dim], { label: 'w' });
    const obig = poisoned(g, [128 + rows * dim], 'obig');
    const rec = new Recorder(g);
    rmsnorm(rec, tbig.view([rows, dim], 64, 'x'), tw, obig.view([rows, dim], 128, 'out'), 1e-5, layout);
    const got = await rec.submitAndRead(obig);
    expect(Array.from(got.subarray(0, 128)).every(Number.isNaN), 'elements before the view stay unwritten').toBe(true);
    expectClose(got.subarray(128), ref.rmsnorm(x.subarray(64), w, rows, dim, 1e-5), TOL, 'rmsnorm of views');
    [tbig, tw, obig].forEach((t) => t.dispose());
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
