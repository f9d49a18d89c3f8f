import { expect, it } from 'vitest';
import { Recorder } from '../../src/runtime/recorder';
import { addInplace } from '../../src/kernels/add_inplace';
import { describeGpu, useGpu } from '../helpers/gpu';
import { randn } from '../helpers/random';
import { expectClose } from '../helpers/compare';

describeGpu('add_inplace', () => {
  const gpu = useGpu();
  // One f32 addition per element: the only error is the rounding of the sum (rtol 2^-24 ≈ 6e-8).
  const TOL = { atol: 0, rtol: 1.2e-7 };

  it.each([[1, 1], [1, 7], [3, 64], [5, 1000], [2, 4097], [300, 3]])('rows %i × cols %i, full and broadcast row', async (rows, cols) => {
    const g = gpu();
    const seed = rows * 131 + cols;
    const a = randn(seed, rows * cols);
    const b = randn(seed + 1, rows * cols);
    const bias = randn(seed + 2, cols);
    const acc = g.upload(a, [rows, cols], { label: 'acc' });
    const x = g.upload(b, [rows, cols], { label: 'x' });
    const tb = g.upload(bias, [cols], { label: 'bias' });
    const rec = new Recorder(g);
    addInplace(rec, acc, x);
    addInplace(rec, acc, tb);
    const got = await rec.submitAndRead(acc);
    // float64 reference: (a + b) rounded to f32 as the first pass stores it, then + bias
    const want = Float64Array.from(a, (v, i) => Math.fround(v + b[i]) + bias[i % cols]);
    expectClose(got, want, TOL, `add_inplace ${rows}×${cols}`);
    [acc, x, tb].forEach((t) => t.dispose());
  });

  // (673, 24929) = 65536 * 256 + 1 elements: one more 256-wide workgroup than a
  // grid dimension holds, so grid() makes it 32769 × 2 with one spare workgroup,
  // and the kernel finds its elements from the global id. acc and x cycle through
  // random blocks of prime lengths (cheap to make; a misplaced workgroup reads
  // different values); the bias is a row of its own length, 24929.
  it('rows 673 × cols 24929 (a 32769 × 2 grid), full and broadcast row', async () => {
    const g = gpu();
    const [rows, cols] = [673, 24929];
    const n = rows * cols;
    const cycle = (seed: number, P: number) => {
      const block = randn(seed, P);
      const a = new Float32Array(n);
      for (let i = 0; i < n; i += P) a.set(block.subarray(0, Math.min(P, n - i)), i);
      return a;
    };
    const a = cycle(6731, 4099);
    const b = cycle(6732, 4091);
    const bias = randn(6733, cols);
    const acc = g.upload(a, [rows, cols], { label: 'acc' });
    const x = g.upload(b, [rows, cols], { label: 'x' });
    const tb = g.upload(bias, [cols], { label: 'bias' });
    const rec = new Recorder(g);
    addInplace(rec, acc, x);
    addInplace(rec, acc, tb);
    const got = await rec.submitAndRead(acc);
    // as above: (a + b) rounded to f32, then + bias
    const want = new Float64Array(n);
    for (let i = 0; i < n; i++) want[i] = Math.fround(a[i] + b[i]) + bias[i % cols];
    expectClose(got, want, TOL, `add_inplace ${rows}×${cols}`);
    [acc, x, tb].forEach((t) => t.dispose());
  });

  it('rejects mismatched shapes and aliasing, naming the tensors', () => {
    const g = gpu();
    const acc = g.upload(randn(1, 12), [3, 4], { label: 'acc' });
    const x = g.upload(randn(2, 5), [5], { label: 'x' });
    const rec = new Recorder(g);
    expect(() => addInplace(rec, acc, x)).toThrow(/add_inplace: x 'x' \(5\) f32 must match acc 'acc' \(3, 4\) f32 or be one row of 4/);
    expect(() => addInplace(rec, acc, acc.view([4], 0, 'row0'))).toThrow(/add_inplace: acc 'acc' shares a buffer with x 'row0'/);
    [acc, x].forEach((t) => t.dispose());
  });
});
