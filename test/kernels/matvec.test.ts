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
  // K % 4 = 0, 1, 2 and 3 after the 4-wide loop (K < 4: that loop never runs);
  // N not a multiple of the 64-wide workgroup.
  it.each([[1, 1], [1, 7], [7, 48], [64, 5], [65, 1000], [1536, 48], [300, 4097], [5, 2], [70, 3], [33, 6], [129, 1002]])('N %i × K %i matches the float64 reference', async (N, K) => {
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

  // N = 65536 * 64 + 1 rows: one more 64-wide workgroup than a grid dimension
  // holds, so grid() makes it 32769 × 2 with one spare workgroup, and the kernel
  // finds its row with group_index. K = 3 (only the scalar tail runs). w cycles
  // through a random block of a prime length (cheap to make; a misplaced
  // workgroup reads different rows).
  it('N 4194305 × K 3 (a 32769 × 2 grid) matches the float64 reference', async () => {
    const g = gpu();
    const [N, K, P] = [65536 * 64 + 1, 3, 4099];
    const x = randn(4194305, K);
    const block = randn(4194306, P);
    const w = new Float32Array(N * K);
    for (let i = 0; i < N * K; i += P) w.set(block.subarray(0, Math.min(P, N * K - i)), i);
    const tx = g.upload(x, [K], { label: 'x' });
    const tw = g.upload(w, [N, K], { label: 'w' });
    const y = poisoned(g, [N], 'y');
    const rec = new Recorder(g);
    matvec(rec, tw, tx, y);
    expectClose(await rec.submitAndRead(y), linear(x, w, 1, K, N), { atol: 2e-6 * Math.sqrt(K) * 16, rtol: 1e-5 }, `matvec ${N}×${K}`);
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
