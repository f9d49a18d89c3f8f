import { expect, it } from 'vitest';
import { Recorder } from '../../src/runtime/recorder';
import { matvec } from '../../src/kernels/matvec';
import { linear } from '../../src/reference/linear';
import { describeGpu, poisoned, useGpu } from '../helpers/gpu';
import { randn } from '../helpers/random';
import { expectClose } from '../helpers/compare';

describeGpu('matvec (f32 weights, one token)', () => {
  const gpu = useGpu();

  // f32 sums of K products: error grows like sqrt(K) ulps of the terms; atol
  // 2e-6 * sqrt(K) * max|x| * max|w| (inputs are O(3)) and rtol 1e-5 leave a wide margin.
  it.each([[1, 1], [1, 7], [7, 48], [64, 5], [65, 1000], [1536, 48], [300, 4097]])('N %i × K %i matches the float64 reference', async (N, K) => {
    const g = gpu();
    const x = randn(N * 31 + K, K);
    const w = randn(N * 17 + K + 1, N * K);
    const tx = g.upload(x, [1, K], { label: 'x' });
    const tw = g.upload(w, [N, K], { label: 'w' });
    const y = poisoned(g, [1, N], 'y');
    const rec = new Recorder(g);
    matvec(rec, tw, tx, y);
    const got = await rec.submitAndRead(y);
    expectClose(got, linear(x, w, 1, K, N), { atol: 2e-6 * Math.sqrt(K) * 16, rtol: 1e-5 }, `matvec ${N}×${K}`);
    [tx, tw, y].forEach((t) => t.dispose());
  });

  it('rejects a q4 or mis-shaped weight, a wrong x and an aliased y', () => {
    const g = gpu();
    const w = g.upload(randn(1, 12), [3, 4], { label: 'w' });
    const x = g.upload(randn(2, 4), [4], { label: 'x' });
    const x5 = g.upload(randn(3, 5), [5], { label: 'x5' });
    const y = g.empty([3], 'f32', 'y');
    const rec = new Recorder(g);
    expect(() => matvec(rec, w, x5, y)).toThrow(/matvec: x 'x5' has shape \(5\), expected \(4\) or \(1, 4\) to match w 'w' \(3, 4\)/);
    expect(() => matvec(rec, w, x, g.empty([4], 'f32', 'y4'))).toThrow(/matvec: y 'y4' \(4\) f32 must be \(3\) or \(1, 3\) f32/);
    expect(() => matvec(rec, w, x, w.view([3], 0, 'alias'))).toThrow(/matvec: y 'alias' shares a buffer with w 'w'/);
    [w, x, x5, y].forEach((t) => t.dispose());
  });
});
