import { expect, it } from 'vitest';
import { Recorder } from '../../src/runtime/recorder';
import { softmax } from '../../src/kernels/softmax';
import * as ref from '../../src/reference/ops';
import { cappedGrid, describeGpu, poisoned, useGpu } from '../helpers/gpu';
import { randn } from '../helpers/random';
import { expectClose } from '../helpers/compare';

// exp(v - max) in f32 is good to (3 + 2|v - max|) ulp, ~3e-6 relative for gaps near 20 here; the f32 sum
// of up to 4097 positive terms adds ~1e-6. rtol 1e-5; atol 1e-9 for the tiny probabilities of the tails.
const TOL = { atol: 1e-9, rtol: 1e-5 };

describeGpu('softmax', () => {
  const gpu = useGpu();

  it.each([
    [1, 1], [1, 7], [3, 64], [5, 255], [2, 1000], [1, 4097], [2, 5000], [70, 33], [300, 2],
    // the workgroup size 256 and one off it: every thread gets 1 or 2 elements, or one gets an extra
    [4, 256], [3, 257], [2, 512], [2, 513],
  ])('rows %i × dim %i matches the float64 reference', async (rows, dim) => {
    const g = gpu();
    const seed = rows * 4099 + dim;
    // scale 4 and an offset of 50: without the max subtraction exp would overflow f32
    const x = randn(seed, rows * dim, 4).map((v) => v + 50);
    const tx = g.upload(x, [rows, dim], { label: 'x' });
    const out = poisoned(g, [rows, dim]);
    const rec = new Recorder(g);
    softmax(rec, tx, out);
    const got = await rec.submitAndRead(out);
    expectClose(got, ref.softmax(x, rows, dim), TOL, `softmax ${rows}×${dim}`);
    [tx, out].forEach((t) => t.dispose());
  });

  // Rows past the workgroups of one grid dimension: grid() folds them over x and y, the kernel finds
  // its row with group_index, and workgroups past the last row must still reach the barriers and
  // write nothing. With the device's 65535 that takes ~25 s of SwiftShader; a limit of 7 gives
  // 40 rows a 7 × 6 grid with 2 spare workgroups.
  it('40 rows over a 7 × 6 grid (a device limit of 7 workgroups per dimension) match the reference', async () => {
    const g = cappedGrid(gpu(), 7);
    const [rows, dim] = [40, 300];
    const x = randn(7070, rows * dim, 4).map((v) => v + 50); // as above
    const tx = g.upload(x, [rows, dim], { label: 'x' });
    const out = poisoned(g, [rows, dim]);
    const rec = new Recorder(g);
    softmax(rec, tx, out);
    expectClose(await rec.submitAndRead(out), ref.softmax(x, rows, dim), TOL, 'softmax on a 2-D grid'); // same tolerance as above
    [tx, out].forEach((t) => t.dispose());
  });

  it('masked (-inf) entries get probability 0 and the rest still sum to 1', async () => {
    const g = gpu();
    const [rows, dim] = [3, 300];
    const x = randn(42, rows * dim, 3);
    for (let i = 0; i < x.length; i += 3) x[i] = -Infinity; // every third logit masked, including each row's first
    const tx = g.upload(x, [rows, dim], { label: 'x' });
    const out = poisoned(g, [rows, dim]);
    const rec = new Recorder(g);
    softmax(rec, tx, out);
    const got = await rec.submitAndRead(out);
    expectClose(got, ref.softmax(x, rows, dim), TOL, 'masked softmax'); // same tolerance as above
    [tx, out].forEach((t) => t.dispose());
  });

  it('rejects bad shapes, dtypes, aliasing and a disposed tensor, naming them', async () => {
    const g = gpu();
    const x = g.upload(randn(1, 12), [3, 4], { label: 'x' });
    const xi = g.upload(new Int32Array(12), [3, 4], { label: 'xi' });
    const out = g.empty([3, 4], 'f32', 'out');
    const out43 = g.empty([4, 3], 'f32', 'out43');
    const rec = new Recorder(g);
    expect(() => softmax(rec, x, out43)).toThrow(/softmax: out 'out43' has shape \(4, 3\), expected \(3, 4\)/);
    expect(() => softmax(rec, xi, out)).toThrow(/softmax: x 'xi' \(3, 4\) must be f32 or f16, got i32/);
    expect(() => softmax(rec, x, x)).toThrow(/softmax: out 'x' shares a buffer with x 'x'/);
    x.dispose();
    expect(() => softmax(rec, x, out)).toThrow(/softmax: tensor 'x' \(3, 4\) was disposed/);
    [xi, out, out43].forEach((t) => t.dispose());
  });
});
